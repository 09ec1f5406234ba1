import { deviceProof, type TestDevice } from "./device.js";

// Generated hostile WebSocket frames for the fuzzing suite: random bytes,
// mutated valid frames, deep nesting, huge strings, invalid UTF-8, prototype
// keys, hostile numbers and unicode. Seeded, so a failing run can be replayed
// with GATEWARDEN_FUZZ_SEED.

/** mulberry32: small, fast, seedable. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** One frame to send: text (possibly with invalid UTF-8 bytes) or binary. */
export interface FuzzFrame {
  readonly kind: string;
  readonly data: string | Buffer;
  readonly binary: boolean;
}

export interface FuzzContext {
  /** Secrets that make some generated connects valid, so deeper paths run too. */
  readonly tokens: readonly string[];
  /** Largest frame the phase may send on purpose (oversized ones are generated separately). */
  readonly maxBytes: number;
}

const METHODS = [
  "connect", "health", "status", "system-presence", "gateway.identity.get", "device.pair.list", "device.pair.approve",
  "device.pair.reject", "device.pair.remove", "device.token.rotate", "device.token.revoke", "config.apply", "send",
  "node.invoke.result", "no.such.method", "constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "",
];
const CLIENT_IDS = ["cli", "gateway-client", "openclaw-control-ui", "webchat-ui", "node-host", "test", "Gateway-Client", "gateway\u2011client"];
const MODES = ["cli", "backend", "webchat", "node", "probe", "ui", "BACKEND", "worker"];
const SCOPES = ["operator.admin", "operator.read", "operator.write", "operator.pairing", "operator.approvals", "node.x", "operator.*", "*", ""];
const PROTO_KEYS = ["__proto__", "constructor", "prototype", "__defineGetter__", "toJSON", "hasOwnProperty"];
const HOSTILE_NUMBERS = ["1e999", "-1e999", "-0", "1e-400", "9007199254740993", "123456789012345678901234567890", "0.1e1", "3.0", "-3", "4e0", "NaN", "Infinity", "0x10", "01"];
const HOSTILE_STRINGS = [
  "", " ", "\u0000", "\ud800", "\udfff\ud800", "\ufeff", "\u202e", "é", "😀", "%00", "../../etc/passwd", "<script>", "${7*7}",
  "\\u0000", "\r\n", "operator.admin", "127.0.0.1", "null", "true",
];

/** A random JSON value (as text), with hostile numbers and strings. */
export function randomJson(rng: Rng, depth = 0): string {
  const r = rng.int(depth > 3 ? 5 : 8);
  switch (r) {
    case 0:
      return rng.pick(["null", "true", "false"]);
    case 1:
      return rng.chance(0.5) ? String(rng.int(10) - 3) : rng.pick(HOSTILE_NUMBERS.filter((n) => !/^(NaN|Infinity|0x10|01)$/.test(n)));
    case 2:
      return JSON.stringify(rng.pick(HOSTILE_STRINGS));
    case 3:
      return JSON.stringify(rng.bytes(rng.int(24)).toString("latin1"));
    case 4:
      return JSON.stringify(rng.pick([...SCOPES, ...CLIENT_IDS, ...METHODS]));
    case 5: {
      const n = rng.int(4);
      return "[" + Array.from({ length: n }, () => randomJson(rng, depth + 1)).join(",") + "]";
    }
    default: {
      const n = rng.int(4);
      const keys = Array.from({ length: n }, () => JSON.stringify(rng.chance(0.3) ? rng.pick(PROTO_KEYS) : rng.pick(["id", "token", "scopes", "role", "a", "x", "requestId", "deviceId"])));
      return "{" + keys.map((k) => `${k}:${randomJson(rng, depth + 1)}`).join(",") + "}";
    }
  }
}

function deviceBlock(rng: Rng): Record<string, unknown> {
  return {
    id: rng.chance(0.5) ? rng.bytes(32).toString("hex") : rng.pick(HOSTILE_STRINGS.filter(Boolean)) ?? "x",
    publicKey: rng.chance(0.7) ? rng.bytes(rng.pick([31, 32, 33])).toString("base64url") : "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
    signature: rng.bytes(rng.pick([0, 63, 64, 65])).toString("base64url") || " ",
    signedAt: rng.pick([Date.now(), 0, Number.MAX_SAFE_INTEGER, Date.now() - 600_000]),
    nonce: rng.pick(["nonce", " ", "00000000-0000-4000-8000-000000000000"]),
  };
}

/** A plausible connect request: valid shape, random choices, sometimes a real token. */
export function connectFrame(rng: Rng, ctx: FuzzContext): Record<string, unknown> {
  const params: Record<string, unknown> = {
    minProtocol: rng.pick([3, 3, 3, 4, 1, 5]),
    maxProtocol: rng.pick([3, 4, 4, 2, 1000]),
    client: {
      id: rng.pick(CLIENT_IDS),
      version: rng.pick(["1.0.0", "dev", "x".repeat(rng.int(200) + 1)]),
      platform: rng.pick(["linux", "darwin", "Windows", " "]),
      mode: rng.pick(MODES),
      ...(rng.chance(0.3) ? { displayName: rng.pick(HOSTILE_STRINGS.filter(Boolean)) } : {}),
      ...(rng.chance(0.1) ? { deviceFamily: "iPhone" } : {}),
    },
    ...(rng.chance(0.8) ? { role: rng.pick(["operator", "operator", "node", "superuser", ""]) } : {}),
    ...(rng.chance(0.8) ? { scopes: Array.from({ length: rng.int(5) }, () => rng.pick(SCOPES)) } : {}),
    ...(rng.chance(0.3) ? { device: deviceBlock(rng) } : {}),
    ...(rng.chance(0.2) ? { caps: ["tool-events"], commands: ["a"], permissions: { x: true } } : {}),
  };
  if (rng.chance(0.85)) {
    const secret = rng.chance(0.6) && ctx.tokens.length > 0 ? rng.pick(ctx.tokens) : rng.pick(["wrong-token-value", "gwb_wrong", " ", ""]);
    params.auth = { [rng.pick(["token", "token", "password", "deviceToken", "bootstrapToken"])]: secret };
  }
  return { type: "req", id: `c${rng.int(1e6)}`, method: "connect", params };
}

/** A plausible post-connect request. */
export function requestFrame(rng: Rng): Record<string, unknown> {
  const method = rng.pick(METHODS);
  const params =
    method === "device.pair.approve" || method === "device.pair.reject"
      ? { requestId: rng.pick(["00000000-0000-4000-8000-000000000000", "x", ""]) }
      : method === "device.token.rotate" || method === "device.token.revoke"
        ? { deviceId: rng.bytes(32).toString("hex"), role: rng.pick(["operator", "node", "admin"]) }
        : {};
  return { type: "req", id: rng.chance(0.05) ? rng.pick(["", "x".repeat(200), "invalid"]) : `r${rng.int(1e9)}`, method, ...(rng.chance(0.8) ? { params } : {}) };
}

/** Byte-level mutations of a valid frame's text. */
function mutateText(rng: Rng, text: string, allowInvalidUtf8: boolean): string | Buffer {
  let b = Buffer.from(text, "utf8");
  const rounds = 1 + rng.int(4);
  for (let i = 0; i < rounds && b.length > 0; i++) {
    const at = rng.int(b.length);
    switch (rng.int(6)) {
      case 0: // flip a byte to another printable one
        b[at] = 0x20 + rng.int(0x5f);
        break;
      case 1: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rng.int(16)))]);
        break;
      case 2: // duplicate a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + rng.int(32)), b.subarray(at)]);
        break;
      case 3: // insert structural characters
        b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(["{", "}", "[", "]", ",", ":", '"', "\\", '\\u0000', "null"])), b.subarray(at)]);
        break;
      case 4: // truncate
        b = b.subarray(0, at);
        break;
      default: // arbitrary bytes (may break UTF-8)
        if (allowInvalidUtf8) b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(3)), b.subarray(at)]);
        else b[at] = 0x20 + rng.int(0x5f);
    }
  }
  return Buffer.from(b.toString("utf8"), "utf8").equals(b) ? b.toString("utf8") : b;
}

/** Replace the value at a random path of a frame object with a random JSON value. */
function structural(rng: Rng, frame: Record<string, unknown>): string {
  const text = JSON.stringify(frame);
  const value = randomJson(rng);
  // replace one value occurrence (after a colon) by the random value
  const positions: number[] = [];
  for (let i = 0; i < text.length; i++) if (text[i] === ":") positions.push(i);
  if (positions.length === 0) return text;
  const at = rng.pick(positions) + 1;
  // find the end of the current value: scan to the next , or } at the same depth (approximate)
  let depth = 0;
  let inString = false;
  let end = at;
  for (; end < text.length; end++) {
    const ch = text[end];
    if (inString) {
      if (ch === "\\") end++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") {
      if (depth === 0) break;
      depth--;
    } else if (ch === "," && depth === 0) break;
  }
  return text.slice(0, at) + value + text.slice(end);
}

/** Insert a prototype key into a frame's text at the top level or inside params/client/auth. */
function prototypeKeys(rng: Rng, frame: Record<string, unknown>): string {
  const key = rng.pick(PROTO_KEYS);
  const value = rng.pick(['{"admin":true}', '{"scopes":["operator.admin"]}', '{"prototype":{"polluted":1}}', "true", '"x"']);
  const text = JSON.stringify(frame);
  const anchors = ['{"type"', '"params":{', '"client":{', '"auth":{', '"device":{'].filter((a) => text.includes(a));
  const anchor = rng.pick(anchors);
  const at = text.indexOf(anchor) + anchor.length - (anchor === '{"type"' ? 5 : 0);
  const entry = `"${key}":${value}`;
  return text.slice(0, at) + entry + (text[at] === "}" ? "" : ",") + text.slice(at);
}

/** A deeply nested value: arrays, objects or mixed, within `maxBytes`. */
function deepNesting(rng: Rng, maxBytes: number): string {
  const budget = Math.max(16, Math.min(maxBytes - 64, 4 + rng.int(maxBytes)));
  switch (rng.int(4)) {
    case 0: {
      const n = Math.floor(budget / 2);
      return "[".repeat(n) + "]".repeat(n);
    }
    case 1: {
      const n = Math.floor(budget / 6);
      return '{"a":'.repeat(n) + "1" + "}".repeat(n);
    }
    case 2: {
      const n = Math.max(0, Math.floor((budget - 60) / 2));
      return `{"type":"req","id":"deep","method":"health","params":${"[".repeat(n)}${"]".repeat(n)}}`;
    }
    default: {
      const n = Math.floor(budget / 2);
      return "[".repeat(n); // unterminated
    }
  }
}

/** A frame carrying a huge string field (size chosen by the caller). */
export function hugeStringFrame(rng: Rng, bytes: number, method = "connect"): string {
  const head = `{"type":"req","id":"huge","method":"${method}","params":{"${rng.pick(["pad", "displayName", "token"])}":"`;
  return head + rng.pick(["x", "é", "\\u0000", "😀"]).repeat(Math.max(1, Math.floor((bytes - head.length - 3) / 4))) + '"}}';
}

/** Bytes that are not valid UTF-8, sent as a text frame. */
function invalidUtf8(rng: Rng, frame: Record<string, unknown>): Buffer {
  const text = Buffer.from(JSON.stringify(frame), "utf8");
  const bad = rng.pick([[0xc3, 0x28], [0xa0, 0xa1], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80]]);
  const at = rng.int(text.length);
  return Buffer.concat([text.subarray(0, at), Buffer.from(bad), text.subarray(at)]);
}

/**
 * One generated frame. `preauth` frames are connect-centred (the handshake
 * closes on anything bad); post-auth frames are request-centred.
 * `closingWeight` scales the frames that always close the socket (invalid
 * UTF-8, oversized) so a phase that reuses sockets is not all reconnects.
 */
export function generateFrame(rng: Rng, ctx: FuzzContext, preauth: boolean, closingWeight = 1): FuzzFrame {
  const valid = preauth || rng.chance(0.15) ? connectFrame(rng, ctx) : requestFrame(rng);
  const roll = rng.next();
  if (roll < 0.05) return { kind: "random-binary", data: rng.bytes(rng.int(512)), binary: true };
  if (roll < 0.05 + 0.02 * closingWeight) return { kind: "random-bytes-as-text", data: rng.bytes(1 + rng.int(256)), binary: false };
  if (roll < 0.1) return { kind: "printable-garbage", data: rng.bytes(rng.int(128)).toString("base64"), binary: false };
  if (roll < 0.3) return { kind: "valid", data: JSON.stringify(valid), binary: false };
  if (roll < 0.5) {
    const m = mutateText(rng, JSON.stringify(valid), rng.chance(0.1 * closingWeight));
    return { kind: "mutated", data: m, binary: false };
  }
  if (roll < 0.7) return { kind: "structural", data: structural(rng, valid), binary: false };
  if (roll < 0.8) return { kind: "prototype-keys", data: prototypeKeys(rng, valid), binary: false };
  if (roll < 0.86) return { kind: "deep-nesting", data: deepNesting(rng, ctx.maxBytes), binary: false };
  if (roll < 0.9) return { kind: "random-json", data: randomJson(rng), binary: false };
  if (roll < 0.9 + 0.01 * closingWeight) return { kind: "invalid-utf8", data: invalidUtf8(rng, valid), binary: false };
  if (roll < 0.95) return { kind: "big-string", data: hugeStringFrame(rng, 1024 + rng.int(Math.max(1, ctx.maxBytes - 2048)), preauth ? "connect" : rng.pick(METHODS)), binary: false };
  return { kind: "hostile-unicode", data: JSON.stringify({ ...valid, id: rng.pick(HOSTILE_STRINGS) }).replace('"type"', rng.pick(['"type"', '"\\u0074ype"', '"type "'])), binary: false };
}

/**
 * A connect whose device proof verifies (signed over this socket's nonce), with
 * hostile values in every unsigned field, so the pairing paths (pending
 * requests, their caps, silent approval, stored metadata) run on fuzzed input.
 */
export function signedConnectFrame(rng: Rng, device: TestDevice, nonce: string, token: string): string {
  const role = rng.chance(0.8) ? "operator" : "node";
  const scopes = role === "operator" ? SCOPES.slice(0, 5).filter(() => rng.chance(0.4)) : rng.chance(0.5) ? ["node.x"] : [];
  const clientId = rng.pick(["cli", "gateway-client", "node-host", "test", "openclaw-macos"]);
  const clientMode = rng.pick(["cli", "backend", "node", "probe"]);
  const platform = rng.pick(["linux", "darwin", " Linux ", "é"]);
  const hostile = () => rng.pick(HOSTILE_STRINGS.filter(Boolean)) + (rng.chance(0.2) ? rng.bytes(8).toString("latin1") : "");
  const params = {
    minProtocol: 3,
    maxProtocol: rng.pick([3, 4]),
    client: {
      id: clientId,
      version: hostile(),
      platform,
      mode: clientMode,
      displayName: hostile(),
      ...(rng.chance(0.3) ? { instanceId: hostile(), modelIdentifier: hostile() } : {}),
    },
    role,
    scopes,
    caps: [hostile()],
    ...(rng.chance(0.3) ? { commands: [hostile(), hostile()], pathEnv: hostile(), locale: hostile(), userAgent: hostile() } : {}),
    auth: { token },
    device: deviceProof(device, { clientId, clientMode, role, scopes, token, nonce, platform, signedAt: Date.now() }),
  };
  let text = JSON.stringify({ type: "req", id: "signed", method: "connect", params });
  // prototype keys in the record-typed (unsigned) fields
  if (rng.chance(0.3)) text = text.replace('"caps":', '"permissions":{"__proto__":true,"constructor":false},"caps":');
  return text;
}
