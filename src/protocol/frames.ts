import { z } from "zod";
import { CLIENT_IDS, CLIENT_MODES } from "./enums.js";

// Frame and connect-param schemas (spec §2, §4.1), built once at module load.
// Every object is closed (`.strict()`), every string and array is bounded.

const str = (max: number) => z.string().min(1).max(max);
const optStr = (max: number) => z.string().max(max).optional();

export const ReqFrameSchema = z
  .object({
    type: z.literal("req"),
    id: str(128),
    method: str(128),
    params: z.unknown().optional(),
    // protocol 4 request extras (spec §16); accepted, unused
    traceparent: optStr(256),
    expectedProfileId: optStr(256),
  })
  .strict();
export type ReqFrame = z.infer<typeof ReqFrameSchema>;

const ClientInfoSchema = z
  .object({
    id: z.enum(CLIENT_IDS),
    displayName: str(256).optional(),
    version: str(128),
    platform: str(128),
    deviceFamily: str(128).optional(),
    modelIdentifier: str(128).optional(),
    mode: z.enum(CLIENT_MODES),
    instanceId: str(256).optional(),
    // protocol 4 (spec §16); bounds as in openclaw 2026.9.6's ConnectParamsSchema
    buildId: str(96).optional(),
    timeZone: str(64).optional(),
  })
  .strict();

const DeviceSchema = z
  .object({
    id: str(256),
    publicKey: str(4096),
    signature: str(1024),
    signedAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    nonce: str(256),
  })
  .strict();

const AuthSchema = z
  .object({
    token: optStr(1024),
    bootstrapToken: optStr(1024),
    deviceToken: optStr(1024),
    password: optStr(1024),
    // protocol 4 (spec §16); accepted, never evidence here
    approvalRuntimeToken: optStr(1024),
    agentRuntimeIdentityToken: optStr(4096),
  })
  .strict();

/** Small JSON values we accept and ignore (protocol-4 feature declarations). */
const OpaqueSchema = z.union([z.boolean(), z.record(z.string().max(128), z.unknown())]).optional();

export const ConnectParamsSchema = z
  .object({
    minProtocol: z.number().int().min(1).max(1000),
    maxProtocol: z.number().int().min(1).max(1000),
    client: ClientInfoSchema,
    caps: z.array(str(128)).max(64).optional(),
    commands: z.array(str(256)).max(1024).optional(),
    permissions: z.record(str(256), z.boolean()).optional(),
    pathEnv: z.string().max(16384).optional(),
    role: str(64).optional(),
    scopes: z.array(str(128)).max(64).optional(),
    device: DeviceSchema.optional(),
    auth: AuthSchema.optional(),
    locale: z.string().max(64).optional(),
    userAgent: z.string().max(1024).optional(),
    computerUse: OpaqueSchema,
    workerRuns: OpaqueSchema,
    modelCatalog: OpaqueSchema,
  })
  .strict();
export type ConnectParams = z.infer<typeof ConnectParamsSchema>;

/** An Ajv-like one-line summary, as upstream clients display it (spec §2.2). */
export function summarizeIssues(error: z.ZodError): string {
  const parts: string[] = [];
  for (const issue of error.issues.slice(0, 8)) {
    const path = issue.path.length ? "/" + issue.path.join("/") : "root";
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys.slice(0, 4)) parts.push(`at ${path}: unexpected property '${sanitize(key)}'`);
    } else {
      parts.push(`at ${path}: ${issue.message}`);
    }
  }
  return parts.join("; ");
}

function sanitize(key: string): string {
  return key.length > 64 ? key.slice(0, 64) + "…" : key;
}

/** Bounded parse of a JSON text; `undefined` on any syntax error. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

export interface ResFrame {
  type: "res";
  id: string;
  ok: boolean;
  payload?: unknown;
  error?: import("./gateway-error.js").WireError;
}

export interface EventFrame {
  type: "event";
  event: string;
  payload?: unknown;
  seq?: number;
  stateVersion?: { presence: number; health: number };
}
