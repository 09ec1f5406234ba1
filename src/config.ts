import { existsSync, readFileSync } from "node:fs";
import { assertPrivatePath, UnsafePathError } from "./private-path.js";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { Type, type Static } from "@sinclair/typebox";
import { isLoopback, parseCidrs } from "./admission/locality.js";
import { normalizeAllowedOrigin } from "./admission/origin.js";
import { DEFAULT_SILENT_SCOPE_CEILING } from "./admission/policy.js";
import { validateRequestedScopes } from "./admission/scopes.js";
import { DEFAULT_PAIRING_LIMITS, type PairingLimits } from "./pairing/limits.js";
import { ROLES, type Role, type Scope } from "./protocol/enums.js";
import { postgresUrlHasPassword } from "./store/postgres-store.js";
import { ClosedObject, LiteralUnion, compileSchema } from "./protocol/schema.js";
import { DEFAULT_RATE_LIMIT, DEFAULT_TRANSPORT_LIMITS, type RateLimitOptions, type TransportLimits } from "./server/limits.js";

// Configuration: defaults < config file < environment < flags. Closed schema:
// a misspelt key is an error, not a silently ignored setting.

// Only JSON bounds here: no defaults or transforms. Defaults are applied below,
// in resolveConfig, in the order of precedence.
const optPositiveInt = (options: { maximum?: number } = {}) => Type.Optional(Type.Integer({ exclusiveMinimum: 0, ...options }));
const nonEmpty = Type.String({ minLength: 1 });

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const FileSchema = ClosedObject({
  host: Type.Optional(nonEmpty),
  port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  stateDir: Type.Optional(nonEmpty),
  auth: Type.Optional(
    ClosedObject({
      mode: Type.Optional(LiteralUnion(["token", "password", "trusted-proxy", "none"])),
      token: Type.Optional(Type.String({ minLength: 16 })),
      password: Type.Optional(Type.String({ minLength: 8 })),
      trustedProxy: Type.Optional(
        ClosedObject({
          userHeader: nonEmpty,
          requiredHeaders: Type.Optional(Type.Array(nonEmpty)),
          allowUsers: Type.Optional(Type.Array(nonEmpty)),
        }),
      ),
    }),
  ),
  trustedProxies: Type.Optional(Type.Array(nonEmpty)),
  allowedOrigins: Type.Optional(Type.Array(nonEmpty)),
  pairing: Type.Optional(
    ClosedObject({
      silentLocal: Type.Optional(
        ClosedObject({
          enabled: Type.Optional(Type.Boolean()),
          scopeCeiling: Type.Optional(Type.Array(Type.String())),
          roles: Type.Optional(Type.Array(LiteralUnion(ROLES))),
        }),
      ),
      pendingTtlMs: optPositiveInt(),
      maxPendingPerIp: optPositiveInt(),
      maxPendingTotal: optPositiveInt(),
    }),
  ),
  limits: Type.Optional(
    ClosedObject({
      maxPreauthPayloadBytes: optPositiveInt({ maximum: 1024 * 1024 }),
      maxPayloadBytes: optPositiveInt({ maximum: 64 * 1024 * 1024 }),
      handshakeTimeoutMs: optPositiveInt(),
      maxPreauthPerIp: optPositiveInt(),
      maxConnectionsPerIp: optPositiveInt(),
      maxConnections: optPositiveInt(),
      maxInflightPerSession: optPositiveInt(),
      maxBufferedBytes: optPositiveInt(),
      tickIntervalMs: optPositiveInt(),
      closeGraceMs: optPositiveInt({ maximum: 60_000 }),
      maxUpgradingPerIp: optPositiveInt(),
      upgradeTimeoutMs: optPositiveInt({ maximum: 600_000 }),
    }),
  ),
  rateLimit: Type.Optional(
    ClosedObject({
      maxFailures: optPositiveInt(),
      windowMs: optPositiveInt(),
      lockoutMs: optPositiveInt(),
      exemptLoopback: Type.Optional(Type.Boolean()),
      maxKeys: optPositiveInt(),
    }),
  ),
  changePollMs: optPositiveInt(),
  upstream: Type.Optional(ClosedObject({ url: nonEmpty })),
  store: Type.Optional(ClosedObject({ url: Type.Optional(nonEmpty), outageGraceMs: optPositiveInt({ maximum: 600_000 }) })),
  metrics: Type.Optional(ClosedObject({ host: Type.Optional(nonEmpty), port: Type.Integer({ minimum: 0, maximum: 65535 }) })),
  log: Type.Optional(ClosedObject({ level: Type.Optional(LiteralUnion(LOG_LEVELS)) })),
  audit: Type.Optional(
    ClosedObject({
      retentionDays: optPositiveInt({ maximum: 36_500 }),
      maxEntries: optPositiveInt({ maximum: 100_000_000 }),
      // Raw Ed25519 keys, base64url (43 characters), as `gatewarden audit key` prints them.
      trustKeys: Type.Optional(Type.Array(Type.String({ pattern: "^[A-Za-z0-9_-]{43}$" }), { maxItems: 64 })),
    }),
  ),
});
const FileValidator = compileSchema(FileSchema);

export type ConfigFile = Static<typeof FileSchema>;

export type AuthConfig =
  | { readonly mode: "token"; readonly token: string | undefined }
  | { readonly mode: "password"; readonly password: string }
  | { readonly mode: "trusted-proxy"; readonly userHeader: string; readonly requiredHeaders: readonly string[]; readonly allowUsers: readonly string[] }
  | { readonly mode: "none" };

export interface ResolvedConfig {
  readonly host: string;
  readonly port: number;
  readonly stateDir: string;
  readonly configPath: string | undefined;
  /** `token` with `undefined`: the token lives in the store (generated on first start). */
  readonly auth: AuthConfig;
  readonly trustedProxies: readonly string[];
  readonly allowedOrigins: readonly string[];
  readonly silentLocalPairing: { readonly enabled: boolean; readonly roles: readonly Role[]; readonly scopeCeiling: readonly Scope[] };
  readonly pairingLimits: PairingLimits;
  readonly limits: TransportLimits;
  readonly rateLimit: RateLimitOptions;
  readonly changePollMs: number;
  /** Upstream mode: the OpenClaw gateway gatewarden stands in front of (`serve --upstream`). */
  readonly upstream: string | undefined;
  readonly logLevel: string;
  /** Where pairings, tokens and backends live: SQLite in the state dir (the default), or a PostgreSQL database shared by several instances. */
  readonly store: StoreLocation;
  /** PostgreSQL: how long an unreachable database is ridden out before every session is closed. */
  readonly storeOutageGraceMs: number;
  /** Prometheus metrics on a listener of their own; off unless a port is set. */
  readonly metrics: { readonly host: string; readonly port: number } | undefined;
  /** The store's audit log: how long and how much is kept, and whose checkpoints are trusted besides this gateway's own. */
  readonly audit: { readonly maxAgeMs: number; readonly maxEntries: number; readonly trustKeys: readonly string[] };
}

export const DEFAULT_AUDIT_RETENTION_DAYS = 90;
export const DEFAULT_AUDIT_MAX_ENTRIES = 1_000_000;

export type StoreLocation = { readonly kind: "sqlite"; readonly path: string } | { readonly kind: "postgres"; readonly url: string };

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export interface ConfigOverrides {
  readonly config?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly stateDir?: string | undefined;
  readonly authMode?: string | undefined;
  readonly allowOrigins?: readonly string[] | undefined;
  readonly trustedProxies?: readonly string[] | undefined;
  readonly silentLocalPairing?: boolean | undefined;
  readonly upstream?: string | undefined;
  readonly logLevel?: string | undefined;
  /** `--store`: never with a password in it (the command line is visible to every local user). */
  readonly store?: string | undefined;
  readonly metricsPort?: number | undefined;
  readonly metricsHost?: string | undefined;
}

/**
 * The store to use: a postgres:// URL from the flag, GATEWARDEN_STORE or the
 * config file's store.url; otherwise SQLite in the state dir. A password may
 * come from the environment (GATEWARDEN_STORE, PGPASSWORD) or the private
 * config file, never from the flag.
 */
export function resolveStoreLocation(flag: string | undefined, env: NodeJS.ProcessEnv, fileUrl: string | undefined, stateDir: string): StoreLocation {
  const fromFlag = flag !== undefined && flag.trim() !== "" ? flag.trim() : undefined;
  const text = fromFlag ?? (env.GATEWARDEN_STORE?.trim() || undefined) ?? fileUrl;
  if (text === undefined || text === "sqlite") return { kind: "sqlite", path: databasePath(stateDir) };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ConfigError("the store must be a postgres:// URL (or omitted, for SQLite in the state dir)");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new ConfigError(`the store must be a postgres:// URL (or omitted, for SQLite in the state dir), not ${u.protocol}//…`);
  }
  if (fromFlag !== undefined && postgresUrlHasPassword(u)) {
    throw new ConfigError("--store must not carry a password (any local user can read a command line): set PGPASSWORD, or put the URL in GATEWARDEN_STORE or the config file's store.url");
  }
  return { kind: "postgres", url: text };
}

function upstreamUrl(text: string | undefined): string | undefined {
  if (text === undefined || text.trim() === "") return undefined;
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw new ConfigError(`upstream must be a ws:// or wss:// URL, got ${JSON.stringify(text)}`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new ConfigError(`upstream must be a ws:// or wss:// URL, got ${JSON.stringify(text)}`);
  return u.toString().replace(/\/$/, "");
}

/** A state dir or config file another user could have written is refused before anything in it is trusted. */
function guard(path: string, what: string): void {
  try {
    assertPrivatePath(path, what);
  } catch (e) {
    if (e instanceof UnsafePathError) throw new ConfigError(e.message);
    throw e;
  }
}

export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  return env.GATEWARDEN_STATE_DIR ?? join(homedir(), ".gatewarden");
}

function readFile(path: string): ConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  // Validated in place: the parsed JSON is the config, nothing is filled in or converted.
  if (!FileValidator.check(json)) throw new ConfigError(`invalid config file ${path}: ${FileValidator.issues(json)}`);
  return json;
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number, got ${JSON.stringify(v)}`);
  return n;
}

/** The config file that applies (flag, GATEWARDEN_CONFIG, or the state dir's gatewarden.json), checked private and read. */
function loadConfigFile(stateDir: string, explicit: string | undefined): { readonly configPath: string | undefined; readonly file: ConfigFile } {
  const implicit = join(stateDir, "gatewarden.json");
  guard(stateDir, "state dir");
  const configPath = explicit ? resolve(explicit) : existsSync(implicit) ? implicit : undefined;
  if (explicit && !existsSync(resolve(explicit))) throw new ConfigError(`config file not found: ${explicit}`);
  if (configPath) guard(configPath, "config file");
  return { configPath, file: configPath ? readFile(configPath) : {} };
}

/** The store the admin commands act on: the same one `serve` would use with the same state dir, environment and config. */
export function adminStoreLocation(stateDirFlag: string | undefined, storeFlag: string | undefined, env: NodeJS.ProcessEnv): StoreLocation {
  const stateDir = resolve(stateDirFlag ?? defaultStateDir(env));
  if (!existsSync(stateDir)) return resolveStoreLocation(storeFlag, env, undefined, stateDir);
  const { file } = loadConfigFile(stateDir, env.GATEWARDEN_CONFIG);
  return resolveStoreLocation(storeFlag, env, file.store?.url, stateDir);
}

/** Where metrics are served: off unless a port is given; loopback unless a host is. */
function metricsListener(flags: ConfigOverrides, env: NodeJS.ProcessEnv, file: ConfigFile): { host: string; port: number } | undefined {
  const port = flags.metricsPort ?? envInt(env, "GATEWARDEN_METRICS_PORT") ?? file.metrics?.port;
  if (port === undefined) return undefined;
  return { host: flags.metricsHost ?? env.GATEWARDEN_METRICS_HOST ?? file.metrics?.host ?? "127.0.0.1", port };
}

function logLevel(text: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(text)) {
    throw new ConfigError(`unknown log level ${JSON.stringify(text)} (${LOG_LEVELS.join(", ")})`);
  }
  return text;
}

export function resolveConfig(flags: ConfigOverrides, env: NodeJS.ProcessEnv): ResolvedConfig {
  const stateDir = resolve(flags.stateDir ?? defaultStateDir(env));
  const { configPath, file } = loadConfigFile(stateDir, flags.config ?? env.GATEWARDEN_CONFIG);

  const host = flags.host ?? env.GATEWARDEN_HOST ?? file.host ?? "127.0.0.1";
  const port = flags.port ?? envInt(env, "GATEWARDEN_PORT") ?? file.port ?? 18789;
  const modeText = flags.authMode ?? env.GATEWARDEN_AUTH_MODE ?? file.auth?.mode ?? (env.GATEWARDEN_PASSWORD ?? file.auth?.password ? "password" : "token");
  const token = env.GATEWARDEN_TOKEN ?? file.auth?.token;
  const password = env.GATEWARDEN_PASSWORD ?? file.auth?.password;

  let auth: AuthConfig;
  switch (modeText) {
    case "token":
      if (token !== undefined && token.trim() !== token) {
        throw new ConfigError("the shared token (GATEWARDEN_TOKEN or auth.token) must not start or end with whitespace; clients would have to send it exactly so");
      }
      if (token !== undefined && token.length < 16) throw new ConfigError("the shared token must be at least 16 characters");
      auth = { mode: "token", token };
      break;
    case "password":
      if (!password) throw new ConfigError("auth mode password needs a password (GATEWARDEN_PASSWORD or auth.password)");
      if (password.length < 8) throw new ConfigError("the password must be at least 8 characters");
      auth = { mode: "password", password };
      break;
    case "trusted-proxy": {
      const tp = file.auth?.trustedProxy;
      if (!tp) throw new ConfigError("auth mode trusted-proxy needs auth.trustedProxy.userHeader in the config file");
      auth = {
        mode: "trusted-proxy",
        userHeader: tp.userHeader.toLowerCase(),
        requiredHeaders: (tp.requiredHeaders ?? []).map((h) => h.toLowerCase()),
        allowUsers: tp.allowUsers ?? [],
      };
      break;
    }
    case "none":
      auth = { mode: "none" };
      break;
    default:
      throw new ConfigError(`unknown auth mode ${JSON.stringify(modeText)} (token, password, trusted-proxy or none)`);
  }

  const trustedProxies = flags.trustedProxies ?? file.trustedProxies ?? [];
  try {
    parseCidrs(trustedProxies);
  } catch {
    throw new ConfigError(`invalid trusted proxy address or CIDR in ${JSON.stringify(trustedProxies)}`);
  }
  if (auth.mode === "trusted-proxy" && trustedProxies.length === 0) {
    throw new ConfigError("auth mode trusted-proxy needs trustedProxies (the proxies' addresses or CIDRs)");
  }
  // An open gateway is acceptable only where nothing but this machine can reach it.
  if (auth.mode === "none" && !(isLoopback(host) || host === "localhost")) {
    throw new ConfigError(`auth mode none is only allowed on a loopback address, not ${host}`);
  }

  let allowedOrigins: string[];
  try {
    allowedOrigins = [...(file.allowedOrigins ?? []), ...(flags.allowOrigins ?? [])].map(normalizeAllowedOrigin);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }

  const silent = file.pairing?.silentLocal;
  const ceiling = silent?.scopeCeiling ?? [...DEFAULT_SILENT_SCOPE_CEILING];
  const roles = silent?.roles ?? ["operator", "node"];
  for (const s of ceiling) {
    if (!roles.some((r) => validateRequestedScopes([s], r).ok)) throw new ConfigError(`invalid scope in pairing.silentLocal.scopeCeiling: ${s}`);
  }

  return {
    host,
    port,
    stateDir,
    configPath,
    auth,
    trustedProxies,
    allowedOrigins,
    silentLocalPairing: { enabled: flags.silentLocalPairing ?? silent?.enabled ?? false, roles, scopeCeiling: ceiling as Scope[] },
    pairingLimits: {
      pendingTtlMs: file.pairing?.pendingTtlMs ?? DEFAULT_PAIRING_LIMITS.pendingTtlMs,
      maxPendingPerIp: file.pairing?.maxPendingPerIp ?? DEFAULT_PAIRING_LIMITS.maxPendingPerIp,
      maxPendingTotal: file.pairing?.maxPendingTotal ?? DEFAULT_PAIRING_LIMITS.maxPendingTotal,
    },
    limits: { ...DEFAULT_TRANSPORT_LIMITS, ...file.limits },
    rateLimit: { ...DEFAULT_RATE_LIMIT, ...file.rateLimit },
    changePollMs: file.changePollMs ?? 250,
    upstream: upstreamUrl(flags.upstream ?? env.GATEWARDEN_UPSTREAM ?? file.upstream?.url),
    logLevel: logLevel(flags.logLevel ?? env.GATEWARDEN_LOG_LEVEL ?? file.log?.level ?? "info"),
    store: resolveStoreLocation(flags.store, env, file.store?.url, stateDir),
    storeOutageGraceMs: file.store?.outageGraceMs ?? 5000,
    metrics: metricsListener(flags, env, file),
    audit: {
      maxAgeMs: (file.audit?.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS) * 86_400_000,
      maxEntries: file.audit?.maxEntries ?? DEFAULT_AUDIT_MAX_ENTRIES,
      trustKeys: file.audit?.trustKeys ?? [],
    },
  };
}

export function databasePath(stateDir: string): string {
  return join(stateDir, "gatewarden.sqlite");
}

export function identityPath(stateDir: string): string {
  return join(stateDir, "identity", "gateway.json");
}
