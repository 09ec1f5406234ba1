import { Type, type Static } from "@sinclair/typebox";
import { CLIENT_IDS, CLIENT_MODES } from "./enums.js";
import { BoundedKeyRecord, ClosedObject, LiteralUnion, compileSchema } from "./schema.js";

// Frame and connect-param schemas (spec §2, §4.1), compiled once at module load.
// Every object is closed (`additionalProperties: false`), every string and array is bounded.

const str = (max: number) => Type.String({ minLength: 1, maxLength: max });
const optStr = (max: number) => Type.Optional(Type.String({ maxLength: max }));

export const ReqFrameSchema = ClosedObject({
  type: Type.Literal("req"),
  id: str(128),
  method: str(128),
  params: Type.Optional(Type.Unknown()),
  // protocol 4 request extras (spec §16); accepted, unused
  traceparent: optStr(256),
  expectedProfileId: optStr(256),
});
export type ReqFrame = Static<typeof ReqFrameSchema>;
export const ReqFrameValidator = compileSchema(ReqFrameSchema);

const ClientInfoSchema = ClosedObject({
  id: LiteralUnion(CLIENT_IDS),
  displayName: Type.Optional(str(256)),
  version: str(128),
  platform: str(128),
  deviceFamily: Type.Optional(str(128)),
  modelIdentifier: Type.Optional(str(128)),
  mode: LiteralUnion(CLIENT_MODES),
  instanceId: Type.Optional(str(256)),
  // protocol 4 (spec §16); bounds as in openclaw 2026.9.6's ConnectParamsSchema
  buildId: Type.Optional(str(96)),
  timeZone: Type.Optional(str(64)),
});

const DeviceSchema = ClosedObject({
  id: str(256),
  publicKey: str(4096),
  signature: str(1024),
  signedAt: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  nonce: str(256),
});

const AuthSchema = ClosedObject({
  token: optStr(1024),
  bootstrapToken: optStr(1024),
  deviceToken: optStr(1024),
  password: optStr(1024),
  // protocol 4 (spec §16); accepted, never evidence here
  approvalRuntimeToken: optStr(1024),
  agentRuntimeIdentityToken: optStr(4096),
});

/**
 * Small JSON values we accept and ignore (protocol-4 feature declarations).
 * Never read, so a `__proto__` name in one stays an inert own property.
 */
const OpaqueSchema = Type.Optional(Type.Union([Type.Boolean(), BoundedKeyRecord(Type.Unknown(), { minLength: 0, maxLength: 128 })]));

export const ConnectParamsSchema = ClosedObject({
  minProtocol: Type.Integer({ minimum: 1, maximum: 1000 }),
  maxProtocol: Type.Integer({ minimum: 1, maximum: 1000 }),
  client: ClientInfoSchema,
  caps: Type.Optional(Type.Array(str(128), { maxItems: 64 })),
  commands: Type.Optional(Type.Array(str(256), { maxItems: 1024 })),
  permissions: Type.Optional(BoundedKeyRecord(Type.Boolean(), { minLength: 1, maxLength: 256 })),
  pathEnv: optStr(16384),
  role: Type.Optional(str(64)),
  scopes: Type.Optional(Type.Array(str(128), { maxItems: 64 })),
  device: Type.Optional(DeviceSchema),
  auth: Type.Optional(AuthSchema),
  locale: optStr(64),
  userAgent: optStr(1024),
  computerUse: OpaqueSchema,
  workerRuns: OpaqueSchema,
  modelCatalog: OpaqueSchema,
});
export type ConnectParams = Static<typeof ConnectParamsSchema>;
export const ConnectParamsValidator = compileSchema(ConnectParamsSchema);

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
