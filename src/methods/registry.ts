import type { TSchema } from "@sinclair/typebox";
import { invalidRequest } from "../protocol/gateway-error.js";
import { compileSchema } from "../protocol/schema.js";
import { err } from "../result.js";
import { requirementOf, type Requirement } from "./authorize.js";
import type { MethodDefinition, RegisteredMethod } from "./define-method.js";

function sameRequirement(a: Requirement, b: Requirement): boolean {
  return a.kind === b.kind && (a.kind !== "scope" || (b.kind === "scope" && a.scope === b.scope));
}

/**
 * Define a method. Its params are validated against a closed schema before the
 * handler runs, and its requirement is declared with it, so a method cannot
 * forget its scope.
 */
export function defineMethod<T extends TSchema>(def: MethodDefinition<T>): RegisteredMethod {
  const params = compileSchema(def.params);
  return {
    name: def.name,
    requires: def.requires,
    async call(rawParams, caller, services) {
      const value = rawParams ?? {};
      if (!params.check(value)) return err(invalidRequest("INVALID_PARAMS", `invalid ${def.name} params: ${params.issues(value)}`));
      return def.handler(value, caller, services);
    },
  };
}

export class MethodRegistry {
  private readonly methods = new Map<string, RegisteredMethod>();

  register(method: RegisteredMethod): void {
    if (this.methods.has(method.name)) throw new Error(`method registered twice: ${method.name}`);
    const table = requirementOf(method.name);
    // A plugged-in method may not declare a weaker requirement than the protocol's table.
    if (!sameRequirement(table, method.requires) && !(table.kind === "scope" && table.scope === "operator.admin")) {
      throw new Error(`method ${method.name} declares a requirement that differs from the protocol's table`);
    }
    this.methods.set(method.name, method);
  }

  get(name: string): RegisteredMethod | undefined {
    return this.methods.get(name);
  }

  /** The requirement the router checks: the registered one, else the table's (admin by default). */
  requirementFor(name: string): Requirement {
    return this.methods.get(name)?.requires ?? requirementOf(name);
  }

  /** Sorted; hello-ok's method list (serialized once per gateway, src/server/hello-ok.ts). */
  names(): string[] {
    return [...this.methods.keys()].sort();
  }
}
