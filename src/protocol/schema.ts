import {
  Kind,
  Type,
  type ObjectOptions,
  type SchemaOptions,
  type Static,
  type TLiteral,
  type TObject,
  type TProperties,
  type TRecord,
  type TSchema,
  type TString,
  type TUnion,
} from "@sinclair/typebox";
import { TypeCompiler, ValueErrorType, type ValueError } from "@sinclair/typebox/compiler";

// Closed schemas as compiled TypeBox validators (spec §2). Each schema is
// compiled once, when its module loads, into a plain predicate. `check`
// validates the value in place and hands back the same object: no copy, no
// defaults, no coercion. The error walk runs only for values that failed.
// (The compiler generates its predicate with `new Function`: node must not run
// with --disallow-code-generation-from-strings.)

/** Most issues reported in one summary. */
const MAX_ISSUES = 8;
/** Longest property name echoed back; longer ones are cut and marked with "…". */
const MAX_ECHOED_KEY = 64;

export type ParseResult<T> = { readonly success: true; readonly data: T } | { readonly success: false; readonly issues: string };

export interface Validator<T extends TSchema> {
  readonly schema: T;
  check(value: unknown): value is Static<T>;
  /** The one-line summary of why `value` fails; only meaningful when `check` said no. */
  issues(value: unknown): string;
  parse(value: unknown): ParseResult<Static<T>>;
}

export function compileSchema<T extends TSchema>(schema: T): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  const issues = (value: unknown): string => summarizeErrors(compiled.Errors(value));
  return {
    schema,
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    issues,
    parse: (value) => (compiled.Check(value) ? { success: true, data: value } : { success: false, issues: issues(value) }),
  };
}

// ---------------------------------------------------------------- schema helpers

/** An object that refuses any property it does not name. */
export function ClosedObject<T extends TProperties>(properties: T, options?: ObjectOptions): TObject<T> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

type LiteralsOf<T extends readonly string[]> = { -readonly [K in keyof T]: TLiteral<T[K] & string> };

/** A closed enumeration of strings, typed as the union of its literals. */
export function LiteralUnion<const T extends readonly string[]>(values: T, options?: SchemaOptions): TUnion<LiteralsOf<T>> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TUnion<LiteralsOf<T>>;
}

/**
 * A record whose property names are `minLength`..`maxLength` UTF-16 code units
 * long. TypeBox's Record drops a String key's length bounds, so they become the
 * key pattern, and `additionalProperties: false` refuses names that miss it
 * (a Record lets them through unchecked otherwise). `propertyNames` states the
 * bound in JSON Schema terms; the error summary reads it from there.
 */
export function BoundedKeyRecord<V extends TSchema>(value: V, key: { minLength: number; maxLength: number }): TRecord<TString, V> {
  // [\s\S], not ".": a name may contain line breaks. No "u" flag: lengths count code units, like String.length.
  const pattern = `^[\\s\\S]{${key.minLength},${key.maxLength}}$`;
  return Type.Record(Type.String({ pattern }), value, {
    additionalProperties: false,
    propertyNames: { type: "string", minLength: key.minLength, maxLength: key.maxLength },
  });
}

// ---------------------------------------------------------------- error summary

/**
 * An Ajv-like one-line summary, as upstream clients display it (spec §2.2):
 * "at /client/id: …; at /auth: unexpected property 'k'", at most 8 issues.
 */
export function summarizeErrors(errors: Iterable<ValueError>): string {
  const parts: string[] = [];
  for (const part of describeAll(errors)) {
    parts.push(part);
    if (parts.length === MAX_ISSUES) break;
  }
  return parts.join("; ");
}

function* describeAll(errors: Iterable<ValueError>): Generator<string> {
  // TypeBox reports a missing required property, then checks the absent value
  // against the property's schema too ("Expected string"): one issue is enough.
  const missing = new Set<string>();
  for (const error of errors) {
    if (error.type === ValueErrorType.ObjectRequiredProperty) missing.add(error.path);
    else if (missing.has(error.path)) continue;
    if (error.type === ValueErrorType.Union) {
      // Where one variant has the value's JSON type (an object given to boolean | record),
      // that variant's own errors say more than "no variant matched".
      const variant = soleVariantOfType(error);
      if (variant) {
        yield* describeAll(variant);
        continue;
      }
    }
    yield describe(error);
  }
}

function describe(error: ValueError): string {
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      // TypeBox reports the extra property's own path; the summary names its object and the key.
      const cut = error.path.lastIndexOf("/");
      const at = where(error.path.slice(0, cut));
      const key = echoKey(unescapePointer(error.path.slice(cut + 1)));
      const names = propertyNameBounds(error.schema);
      if (names) return `at ${at}: property name '${key}' must be ${names.minLength} to ${names.maxLength} characters`;
      return `at ${at}: unexpected property '${key}'`;
    }
    case ValueErrorType.Union: {
      const variants = (error.schema as TUnion).anyOf;
      if (variants.every((v) => v[Kind] === "Literal")) {
        return `at ${where(error.path)}: Expected one of ${variants.map((v) => `'${String((v as TLiteral).const)}'`).join(", ")}`;
      }
      return `at ${where(error.path)}: Expected ${[...new Set(variants.map(schemaType))].join(" or ")}`;
    }
    case ValueErrorType.StringFormat:
      // Formats here are named after what they accept ("scope"): an unknown one is just that.
      return `at ${where(error.path)}: unknown ${String(error.schema.format)}`;
    default:
      return `at ${where(error.path)}: ${error.message}`;
  }
}

function soleVariantOfType(error: ValueError): Iterable<ValueError> | undefined {
  const variants = (error.schema as TUnion).anyOf;
  const type = valueType(error.value);
  const matching = variants.flatMap((v, i) => (schemaType(v) === type ? [i] : []));
  return matching.length === 1 && matching[0] !== undefined ? error.errors[matching[0]] : undefined;
}

function schemaType(schema: TSchema): string {
  const type: unknown = schema.type;
  if (type === "integer") return "number";
  return typeof type === "string" ? type : String(schema[Kind]);
}

function valueType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function propertyNameBounds(schema: TSchema): { minLength: number; maxLength: number } | undefined {
  const names: unknown = schema.propertyNames;
  if (typeof names !== "object" || names === null) return undefined;
  const { minLength, maxLength } = names as { minLength?: unknown; maxLength?: unknown };
  return typeof minLength === "number" && typeof maxLength === "number" ? { minLength, maxLength } : undefined;
}

function where(path: string): string {
  return path === "" ? "root" : path;
}

/** A JSON Pointer segment back to the property name (RFC 6901: ~1 is "/", ~0 is "~"). */
function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

function echoKey(key: string): string {
  return key.length > MAX_ECHOED_KEY ? key.slice(0, MAX_ECHOED_KEY) + "…" : key;
}
