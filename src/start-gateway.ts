import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { parseCidrs } from "./admission/locality.js";
import type { AdmissionPolicy, AuthPolicy } from "./admission/policy.js";
import { secretDigest } from "./admission/secret-digest.js";
import { systemClock, systemRandom, type Clock, type Random } from "./clock.js";
import { ConfigError, identityPath, type ResolvedConfig, type StoreLocation } from "./config.js";
import { assertPrivatePath, UnsafePathError } from "./private-path.js";
import { loadUpstreamIdentity, loadUpstreamSigner } from "./relay/upstream-identity.js";
import { UpstreamRelay } from "./relay/upstream-relay.js";
import { DEVICE_SIGNATURE_SKEW_MS } from "./identity/verify-device-proof.js";
import type { RegisteredMethod } from "./methods/define-method.js";
import { claimSharedToken, newSharedToken, storedSharedTokenDigest } from "./pairing/shared-token.js";
import { Gateway } from "./server/gateway.js";
import { loadOrCreateIdentity } from "./server/gateway-identity.js";
import { listenMetrics } from "./server/metrics.js";
import type { Logger } from "./server/logger.js";
import { openSqliteStore } from "./store/sqlite-store.js";
import { openPostgresStore } from "./store/postgres-store.js";
import { SETTING_LISTEN_URL, SETTING_SHARED_TOKEN_SOURCE, type Store } from "./store/store.js";

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** The configured store; a PostgreSQL one listens for other instances' commits. */
async function openStore(location: StoreLocation, logger: Logger): Promise<Store> {
  if (location.kind === "sqlite") {
    return openSqliteStore({ path: location.path, warn: (message) => logger.warn({ event: "store-reserve" }, message) });
  }
  try {
    return await openPostgresStore({ url: location.url, listen: true, warn: (message) => logger.warn({ event: "store-connection" }, message) });
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
}

/** ws://host:port of a listening address; a wildcard bind is reached on loopback from this machine. */
function listenUrl(address: AddressInfo): string {
  const host = address.address === "0.0.0.0" || address.address === "::" ? "127.0.0.1" : address.address;
  return `ws://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}

/**
 * What the admin CLI needs to know of the running gateway: where its shared
 * token comes from (`token rotate` cannot change one from the config) and its
 * address (`token bootstrap`'s setup code). Not needed to serve: a store that
 * cannot take the write now is only warned about.
 */
async function recordStart(store: Store, source: "store" | "config" | "none", url: string, logger: Logger): Promise<void> {
  try {
    await store.transact(async (tx) => {
      await tx.setSetting(SETTING_SHARED_TOKEN_SOURCE, source);
      await tx.setSetting(SETTING_LISTEN_URL, url);
    });
  } catch (e) {
    logger.warn({ event: "start-not-recorded", err: e instanceof Error ? e.message : String(e) }, "could not record this start for the admin CLI");
  }
}

export interface RunningGateway {
  readonly gateway: Gateway;
  readonly store: Store;
  readonly address: AddressInfo;
  /** The shared token, when this start generated it: shown once, never again. */
  readonly generatedToken: string | undefined;
  /** Where Prometheus metrics are served, when they are. */
  readonly metricsAddress: AddressInfo | undefined;
  stop(): Promise<void>;
}

/** Open the state, build the policy from config, listen. */
export async function startGateway(
  config: ResolvedConfig,
  deps: { logger: Logger; clock?: Clock; random?: Random; store?: Store; methods?: readonly RegisteredMethod[] },
): Promise<RunningGateway> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? systemRandom;
  if (!deps.store) {
    // resolveConfig checked the state dir; its files are checked before they are trusted too.
    const files = config.store.kind === "sqlite" ? ([[config.store.path, "database"], [identityPath(config.stateDir), "identity file"]] as const) : ([[identityPath(config.stateDir), "identity file"]] as const);
    for (const [path, what] of files) {
      try {
        assertPrivatePath(path, what);
      } catch (e) {
        throw e instanceof UnsafePathError ? new ConfigError(e.message) : e;
      }
    }
  }
  const store = deps.store ?? (await openStore(config.store, deps.logger));
  try {
    const damage = await store.damage();
    if (damage) {
      throw new ConfigError(`${damage}; refusing to serve from it. Restore a backup (gatewarden store restore <file>) with the gateway stopped`);
    }
    let generatedToken: string | undefined;
    /** A token made for a store that had none: stored (and shown) only once the gateway listens. */
    let unclaimed: { readonly token: string; readonly digestHex: string } | undefined;
    let auth: AuthPolicy;
    let sharedTokenSource: "store" | "config" | "none" = "none";
    switch (config.auth.mode) {
      case "token":
        if (config.auth.token !== undefined) {
          auth = { mode: "token", tokenDigest: secretDigest(config.auth.token) };
          sharedTokenSource = "config";
        } else {
          const stored = await storedSharedTokenDigest(store);
          if (stored === undefined) unclaimed = newSharedToken(random);
          auth = { mode: "token", tokenDigest: Buffer.from(stored ?? unclaimed?.digestHex ?? "", "hex") };
          sharedTokenSource = "store";
        }
        break;
      case "password":
        auth = { mode: "password", passwordDigest: secretDigest(config.auth.password) };
        sharedTokenSource = "config";
        break;
      case "trusted-proxy":
        auth = { mode: "trusted-proxy", userHeader: config.auth.userHeader, requiredHeaders: config.auth.requiredHeaders, allowUsers: config.auth.allowUsers };
        break;
      case "none":
        auth = { mode: "none" };
        break;
    }
    const policy: AdmissionPolicy = {
      auth,
      trustedProxies: parseCidrs(config.trustedProxies),
      allowedOrigins: config.allowedOrigins,
      silentLocalPairing: config.silentLocalPairing,
      signatureSkewMs: DEVICE_SIGNATURE_SKEW_MS,
    };
    // Upstream mode: gatewarden's own paired identity, and the upstream reached once before listening.
    let relay: UpstreamRelay | undefined;
    if (config.upstream !== undefined) {
      try {
        const { credentials, signer } = loadUpstreamIdentity(config.stateDir, identityPath(config.stateDir), config.upstream);
        relay = await UpstreamRelay.connect({ credentials, signer, connectTimeoutMs: 10_000, requestTimeoutMs: 60_000, maxBufferedBytes: config.limits.maxBufferedBytes });
      } catch (e) {
        throw new ConfigError(e instanceof Error ? e.message : String(e));
      }
    }
    const identity = loadOrCreateIdentity(identityPath(config.stateDir), clock.now());
    // The same key signs the audit log's checkpoints: it lives in the state dir, out of the store's reach.
    const signer = loadUpstreamSigner(identityPath(config.stateDir));
    const gateway = new Gateway({
      host: config.host,
      port: config.port,
      store,
      policy,
      sharedTokenSource,
      limits: config.limits,
      rateLimit: config.rateLimit,
      pairingLimits: config.pairingLimits,
      logger: deps.logger,
      clock,
      random,
      identity,
      audit: {
        retention: { maxAgeMs: config.audit.maxAgeMs, maxEntries: config.audit.maxEntries },
        signer: { publicKey: signer.publicKey, sign: signer.sign },
        trustKeys: config.audit.trustKeys,
      },
      version: packageVersion(),
      changePollMs: config.changePollMs,
      storeOutageGraceMs: config.storeOutageGraceMs,
      metrics: config.metrics !== undefined,
      stateDir: config.stateDir,
      ...(deps.methods ? { methods: deps.methods } : {}),
      ...(relay ? { relay } : {}),
    });
    let address: AddressInfo;
    try {
      address = await gateway.listen();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === "EADDRINUSE") throw new ConfigError(`cannot listen on ${config.host}:${config.port}: the port is in use (another gatewarden, or another program); stop it or choose another port with --port`);
      if (code === "EACCES") throw new ConfigError(`cannot listen on ${config.host}:${config.port}: permission denied (ports below 1024 need privileges); choose another port with --port`);
      if (code === "EADDRNOTAVAIL") throw new ConfigError(`cannot listen on ${config.host}:${config.port}: no such address on this machine; check --host`);
      throw e;
    }
    if (unclaimed !== undefined) {
      const inForce = await claimSharedToken(store, unclaimed.digestHex);
      // Another instance on a shared store claimed first: its token is the one, and ours is never shown.
      if (inForce === unclaimed.digestHex) generatedToken = unclaimed.token;
      else gateway.adoptSharedToken(inForce);
    }
    await recordStart(store, sharedTokenSource, listenUrl(address), deps.logger);
    let metricsServer: Awaited<ReturnType<typeof listenMetrics>> | undefined;
    if (config.metrics !== undefined && gateway.metrics !== undefined) {
      try {
        metricsServer = await listenMetrics(gateway.metrics, config.metrics.host, config.metrics.port);
      } catch (e) {
        await gateway.close();
        const code = (e as { code?: unknown }).code;
        throw new ConfigError(`cannot serve metrics on ${config.metrics.host}:${config.metrics.port}: ${code === "EADDRINUSE" ? "the port is in use" : e instanceof Error ? e.message : String(e)}`);
      }
    }
    return {
      gateway,
      store,
      address,
      generatedToken,
      metricsAddress: metricsServer?.address,
      async stop() {
        await metricsServer?.close();
        await gateway.close();
        await store.close();
      },
    };
  } catch (e) {
    if (!deps.store) await store.close();
    throw e;
  }
}
