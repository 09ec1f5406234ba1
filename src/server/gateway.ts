import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { AdmissionPolicy } from "../admission/policy.js";
import { addressBudgetKey, resolvePeer, type PeerEvidence } from "../admission/locality.js";
import { HandshakeDeadlines, type Deadline, type DeadlineEntry } from "./handshake-deadlines.js";
import { createTcpPeerCache } from "./tcp-peer-cache.js";
import { satisfies } from "../admission/scopes.js";
import { secretDigest } from "../admission/secret-digest.js";
import type { Grant } from "../admission/grant.js";
import type { Clock, Random } from "../clock.js";
import type { GatewayIdentity, MethodServices, RegisteredMethod } from "../methods/define-method.js";
import { DEVICE_METHODS } from "../methods/device-methods.js";
import { MethodRegistry } from "../methods/registry.js";
import { SYSTEM_METHODS } from "../methods/system-methods.js";
import { HOST_METHODS } from "../methods/host-methods.js";
import { pendingToWire } from "../methods/wire-records.js";
import type { IssuedToken } from "../pairing/effects.js";
import type { PairingLimits } from "../pairing/limits.js";
import { CloseCode } from "../protocol/close-codes.js";
import { cacheDeviceReads, type DeviceReadCachingStore } from "../store/device-read-cache.js";
import { SETTING_SHARED_TOKEN_HASH, type ChangeRecord, type Store, type StoreNotice } from "../store/store.js";
import { Connection } from "./connection.js";
import { ignoreError } from "./frame-io.js";
import { GATEWAY_EVENTS, maySeePresence } from "./event-delivery.js";
import { HelloOkWriter } from "./hello-ok.js";
import { FailedAuthLimiter } from "./failed-auth-limiter.js";
import { GatewayMetrics } from "./metrics.js";
import { KeyedCounter } from "./ip-budget.js";
import { createKeyCache } from "./key-cache.js";
import type { RateLimitOptions, TransportLimits } from "./limits.js";
import type { Logger } from "./logger.js";
import { createAuditLog, type AuditLog } from "./audit.js";
import { pruneAudit, type AuditRetention, type CheckpointSigner } from "./audit-retention.js";
import { AuditStoreSink } from "./audit-store-sink.js";
import { approvalPageResponse, loadApprovalPage } from "./approval-page.js";
import { proxyControlUi, upstreamHttpOrigin } from "../relay/control-ui-proxy.js";
import { rawPeerFacts } from "./peer-facts.js";
import type { GatewayRuntime } from "./runtime.js";
import { RecentRevocations, revocationOf, revokes, type Revocation } from "./revocations.js";
import { SessionRegistry } from "./session-registry.js";
import { closeAfterCloseHandshake } from "./close-after-handshake.js";
import { LinkedList, type ListEntry } from "./linked-list.js";
import type { UpstreamRelay } from "../relay/upstream-relay.js";

export interface GatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly store: Store;
  readonly policy: AdmissionPolicy;
  /** Where the shared token's digest lives: the store (rotatable) or the config (fixed). */
  readonly sharedTokenSource: "store" | "config" | "none";
  readonly limits: TransportLimits;
  readonly rateLimit: RateLimitOptions;
  readonly pairingLimits: PairingLimits;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly random: Random;
  readonly identity: GatewayIdentity;
  readonly version: string;
  /** How often the store's change log is tailed (changes by other processes, e.g. the CLI). */
  readonly changePollMs: number;
  /** Extra methods (see docs/methods.md). */
  readonly methods?: readonly RegisteredMethod[];
  /** Shown to admin sessions in the hello snapshot. */
  readonly stateDir?: string;
  /** Upstream mode: the OpenClaw gateway gatewarden stands in front of. */
  readonly relay?: UpstreamRelay;
  /**
   * A shared store (PostgreSQL) that cannot tell this instance of commits for
   * this long gets its sessions closed: a revocation made meanwhile on
   * another instance could not reach them. Default 5000.
   */
  readonly storeOutageGraceMs?: number;
  /** Keep Prometheus metrics (served by `listenMetrics` on a listener of their own). */
  readonly metrics?: boolean;
  /**
   * Pruning of the store's audit log. Without a signer nothing is pruned
   * (a pruned prefix must leave a signed checkpoint).
   */
  readonly audit?: {
    readonly retention: AuditRetention;
    readonly signer: CheckpointSigner;
    /** Other gateways' keys (base64url) whose checkpoints this one extends (several instances on one store). */
    readonly trustKeys?: readonly string[];
  };
}

const DEFAULT_STORE_OUTAGE_GRACE_MS = 5000;

const HOUSEKEEPING_MS = 30_000;
/** gatewarden's own system methods that stay its own in upstream mode. */
const RELAY_OWNED = new Set(["system-presence", "gateway.identity.get"]);
/** How often the store's integrity is checked while serving (it is checked at start too). */
const INTEGRITY_CHECK_MS = 10 * 60_000;

const CHANGE_RETENTION_MS = 10 * 60_000;

const PENDING_UPGRADE = Symbol("pendingUpgrade");
type SocketWithUpgrade = Duplex & { [PENDING_UPGRADE]?: PendingUpgrade };

/** A TCP connection between accept and its HTTP upgrade: counted, and cut at its deadline. */
class PendingUpgrade implements Deadline {
  deadline: DeadlineEntry | undefined;
  private ended = false;
  constructor(
    private readonly socket: Socket,
    /** The address slot it holds; none for a trusted proxy. */
    private readonly key: string | undefined,
    private readonly counter: KeyedCounter,
  ) {}

  onDeadline(): void {
    this.deadline = undefined;
    this.socket.destroy();
  }

  /** Upgraded or closed: release the address's slot once. */
  end(deadlines: HandshakeDeadlines): void {
    if (this.ended) return;
    this.ended = true;
    if (this.key !== undefined) this.counter.release(this.key);
    if (this.deadline) deadlines.remove(this.deadline);
    this.deadline = undefined;
    delete (this.socket as SocketWithUpgrade)[PENDING_UPGRADE];
  }
}

/** The gateway: HTTP upgrade, budgets, connections, the change feed and timers. */
export class Gateway implements GatewayRuntime {
  /** The configured store, with paired-device reads cached (see cacheDeviceReads). */
  readonly store: DeviceReadCachingStore;
  readonly revocations = new RecentRevocations();
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Admission entries on their way to the store's audit log. */
  readonly auditSink: AuditStoreSink;
  private auditPruneProblem: string | undefined;
  readonly limits: TransportLimits;
  readonly pairingLimits: PairingLimits;
  readonly limiter: FailedAuthLimiter;
  readonly metrics: GatewayMetrics | undefined;
  readonly sessions: SessionRegistry;
  readonly methods = new MethodRegistry();
  readonly services: MethodServices;
  readonly parseKey = createKeyCache();
  /** The TCP peer's address judged once per address, not once per connection. */
  private readonly tcpPeer = createTcpPeerCache();
  readonly handshakeDeadlines: HandshakeDeadlines;
  readonly relay: UpstreamRelay | undefined;

  private currentPolicy: AdmissionPolicy;
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly preauthPerIp: KeyedCounter;
  /** TCP connections per address that have not finished their HTTP upgrade, and their deadline. */
  private readonly upgradingPerIp: KeyedCounter;
  private readonly upgradeDeadlines: HandshakeDeadlines;
  private readonly connectionsPerIp: KeyedCounter;
  private openConnections = 0;
  private lastChangeId = 0;
  private lastCommitMarker = 0;
  private changesRunning = false;
  private changesAgain = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly startedAtMs: number;
  /** hello-ok payloads; the parts fixed for this process are serialized once. */
  private readonly helloOkWriter: HelloOkWriter;
  private stopping = false;
  /** Every accepted socket, admitted or not, so shutdown reaches them all (a list: see LinkedList). */
  private readonly sockets = new LinkedList<WebSocket>();

  constructor(private readonly options: GatewayOptions) {
    this.metrics =
      options.metrics === true
        ? new GatewayMetrics({
            connections: () => {
              const sessions = this.sessions.counts().total;
              return { sessions, unauthenticated: Math.max(0, this.openConnections - sessions) };
            },
            lockedKeys: () => this.limiter.lockedCount(),
            ...(options.relay ? { upstreamSessions: () => options.relay?.openSessions ?? 0 } : {}),
          })
        : undefined;
    const metrics = this.metrics;
    this.store = cacheDeviceReads(options.store, undefined, metrics ? (operation, seconds) => metrics.store(operation, seconds) : undefined);
    if (metrics && options.relay) options.relay.onError = (kind) => metrics.relayError(kind);
    this.clock = options.clock;
    this.random = options.random;
    this.logger = options.logger;
    const logger = options.logger;
    this.auditSink = new AuditStoreSink((events) => this.store.appendAudit(events), {
      warn: (message, fields) => logger.warn({ event: "audit-store", ...fields }, message),
    });
    const sink = this.auditSink;
    this.audit = createAuditLog(options.logger, (event) => sink.push(event));
    this.limits = options.limits;
    this.pairingLimits = options.pairingLimits;
    this.currentPolicy = options.policy;
    this.limiter = new FailedAuthLimiter(options.rateLimit, options.clock);
    this.handshakeDeadlines = new HandshakeDeadlines(options.limits.handshakeTimeoutMs);
    this.sessions = new SessionRegistry(options.limits.maxBufferedBytes, options.limits.closeGraceMs);
    this.preauthPerIp = new KeyedCounter(options.limits.maxPreauthPerIp);
    this.upgradingPerIp = new KeyedCounter(options.limits.maxUpgradingPerIp);
    this.upgradeDeadlines = new HandshakeDeadlines(options.limits.upgradeTimeoutMs);
    this.connectionsPerIp = new KeyedCounter(options.limits.maxConnectionsPerIp);
    this.startedAtMs = options.clock.now();
    this.relay = options.relay;
    // In upstream mode gatewarden answers only what must stay its own (pairing,
    // tokens, its identity, its presence); every other method is relayed.
    const own = options.relay ? [...DEVICE_METHODS, ...SYSTEM_METHODS.filter((m) => RELAY_OWNED.has(m.name))] : [...SYSTEM_METHODS, ...HOST_METHODS, ...DEVICE_METHODS];
    for (const m of [...own, ...(options.methods ?? [])]) this.methods.register(m);
    this.helloOkWriter = new HelloOkWriter({
      version: options.version,
      // Random per process: lets protocol-4 clients tell a restart from a reconnect (`server.bootId`).
      bootId: options.random.uuid(),
      methods: options.relay ? [...new Set([...this.methods.names(), ...options.relay.info.methods])].sort() : this.methods.names(),
      events: options.relay ? [...new Set([...GATEWAY_EVENTS, ...options.relay.info.events])] : GATEWAY_EVENTS,
      capabilities: options.relay?.info.capabilities ?? [],
      policy: { maxPayload: options.limits.maxPayloadBytes, maxBufferedBytes: options.limits.maxBufferedBytes, tickIntervalMs: options.limits.tickIntervalMs },
    });
    const sessions = this.sessions;
    this.services = {
      store: this.store,
      clock: options.clock,
      random: options.random,
      pairingLimits: options.pairingLimits,
      identity: options.identity,
      version: options.version,
      startedAtMs: this.startedAtMs,
      authMode: options.policy.auth.mode,
      presence: () => sessions.presence(),
      sessionCounts: () => sessions.counts(),
      storeChanged: () => this.storeChanged(),
    };
    const approvalPage = loadApprovalPage();
    const controlUi = options.relay ? upstreamHttpOrigin(options.relay.url) : undefined;
    this.http = createServer((req, res) => {
      if (req.url === "/healthz") {
        res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
        return;
      }
      const page = approvalPageResponse(approvalPage, req.method, req.url);
      if (page) {
        res.writeHead(page.status, page.headers).end(page.body);
        return;
      }
      if (controlUi !== undefined && proxyControlUi(controlUi, req, res)) return;
      res.writeHead(426, { "content-type": "text/plain", upgrade: "websocket" }).end("gatewarden: connect with a WebSocket client\n");
    });
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 15_000;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: options.limits.maxPreauthPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Pongs are sent by Connection, under the outbound bound like every other write.
      autoPong: false,
    });
    this.http.on("connection", (socket: Socket) => this.onTcpConnection(socket));
    this.http.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket, head));
  }

  policy(): AdmissionPolicy {
    return this.currentPolicy;
  }

  /** The shared token in force is the stored one (claimed by another instance first). */
  adoptSharedToken(digestHex: string): void {
    if (this.currentPolicy.auth.mode !== "token") return;
    this.currentPolicy = { ...this.currentPolicy, auth: { mode: "token", tokenDigest: Buffer.from(digestHex, "hex") } };
    // Whatever the previous token admitted goes with it.
    this.revoke({ kind: "shared-secret" }, "gateway auth changed");
  }

  private lostStore: string | undefined;
  /** Why a shared store cannot tell this instance of commits now, and since when. */
  private storeOutage: { readonly reason: string; readonly sinceMs: number; readonly timer: NodeJS.Timeout } | undefined;
  private unsubscribeNotices: (() => void) | undefined;

  storeUnavailable(): { readonly reason: string; readonly retryAfterMs: number } | undefined {
    if (this.lostStore !== undefined) return { reason: this.lostStore, retryAfterMs: 60_000 };
    if (this.storeOutage !== undefined) return { reason: this.storeOutage.reason, retryAfterMs: 2000 };
    // Pings unanswered, no error yet (a silent partition): refused at once rather than after a read times out.
    const notices = this.options.store.notices;
    if (notices !== undefined && !notices.live()) return { reason: "the store does not answer", retryAfterMs: 2000 };
    return undefined;
  }

  /** Shared across instances when the store counts failures; the loopback budget stays this machine's own. */
  recordAuthFailure(limiterKey: string): void {
    if (this.limiter.recordFailure(limiterKey)) this.metrics?.lockout();
    const shared = this.options.store.lockouts;
    if (shared === undefined || limiterKey === "loopback") return;
    const { windowMs, maxFailures, lockoutMs } = this.options.rateLimit;
    shared.recordFailure(limiterKey, this.clock.now(), { windowMs, maxFailures, lockoutMs }).then(
      (untilMs) => {
        if (untilMs !== undefined && this.limiter.lockUntil(limiterKey, untilMs)) this.metrics?.lockout();
      },
      (e: unknown) => this.logger.warn({ event: "shared-lockout-failed", err: e instanceof Error ? e.message : String(e) }, "could not count a failed authentication in the shared store"),
    );
  }

  /**
   * A lockout notice is only a hint: any role of the database may send one.
   * What the lockout table says (writing it takes this store's privileges) is
   * applied, never longer than this gateway's own lockout, and never to the
   * loopback budget, which is each machine's own.
   */
  private async applySharedLockout(key: string): Promise<void> {
    const shared = this.options.store.lockouts;
    if (shared === undefined || key === "loopback") return;
    try {
      const now = this.clock.now();
      const until = await shared.lockedUntil(key, now);
      if (until !== undefined && this.limiter.lockUntil(key, Math.min(until, now + this.options.rateLimit.lockoutMs))) this.metrics?.lockout();
    } catch (e) {
      this.logger.warn({ event: "shared-lockout-failed", err: e instanceof Error ? e.message : String(e) }, "could not read a shared lockout");
    }
  }

  private async loadSharedLockouts(): Promise<void> {
    const shared = this.options.store.lockouts;
    if (shared === undefined) return;
    try {
      const now = this.clock.now();
      for (const l of await shared.activeLockouts(now)) {
        if (l.key !== "loopback") this.limiter.lockUntil(l.key, Math.min(l.untilMs, now + this.options.rateLimit.lockoutMs));
      }
    } catch (e) {
      this.logger.warn({ event: "shared-lockout-failed", err: e instanceof Error ? e.message : String(e) }, "could not read the shared lockouts");
    }
  }

  /**
   * A shared store pushes its commits: cached reads go and the change feed is
   * read at once (a revocation on another instance closes sessions here
   * within milliseconds, not at the next poll). While it cannot, nothing new
   * is admitted, and after the grace the sessions are closed too.
   */
  private onStoreNotice(notice: StoreNotice): void {
    switch (notice.kind) {
      case "commit":
        this.store.invalidate();
        this.storeChanged();
        return;
      case "lockout":
        void this.applySharedLockout(notice.key);
        return;
      case "interrupted": {
        this.store.invalidate();
        if (this.storeOutage !== undefined) return;
        const graceMs = this.options.storeOutageGraceMs ?? DEFAULT_STORE_OUTAGE_GRACE_MS;
        const timer = setTimeout(() => {
          const n = this.sessions.closeWhere(() => true, CloseCode.tryAgainLater, "gateway state unavailable");
          this.logger.error({ event: "store-outage-sessions-closed", count: n, graceMs }, "the store is still unreachable: closed every session (a revocation elsewhere could not reach them)");
        }, graceMs);
        timer.unref();
        this.storeOutage = { reason: `the store is unreachable (${notice.reason})`, sinceMs: this.clock.now(), timer };
        this.logger.error({ event: "store-outage", reason: notice.reason, graceMs }, "store unreachable: admitting nobody new; sessions are closed if it lasts");
        return;
      }
      case "resumed": {
        const outage = this.storeOutage;
        this.store.invalidate();
        // Lockouts decided elsewhere while this instance was not listening.
        void this.loadSharedLockouts();
        if (outage === undefined) return;
        clearTimeout(outage.timer);
        this.storeOutage = undefined;
        this.logger.info({ event: "store-resumed", outageMs: this.clock.now() - outage.sinceMs }, "store reachable again");
        // What was committed meanwhile (revocations above all) is applied now.
        this.storeChanged();
        return;
      }
    }
  }

  /** Checked on every change poll: a store whose file is gone can neither record nor report a revocation. */
  private checkStoreFile(): void {
    if (this.lostStore !== undefined) return;
    const lost = this.store.lost();
    if (lost !== undefined) this.markStoreLost(lost);
  }

  private markStoreLost(lost: string): void {
    if (this.lostStore !== undefined) return;
    this.lostStore = lost;
    this.logger.fatal(
      { event: "store-lost", reason: lost },
      `${lost}. gatewarden refuses every new connection from now on (a revocation could not be recorded): restore the database from a backup and restart, or restart to begin with an empty store (every device must pair again)`,
    );
  }

  limiterExempt(peer: PeerEvidence): boolean {
    return this.options.rateLimit.exemptLoopback && peer.locality === "direct_local";
  }

  async listen(): Promise<AddressInfo> {
    this.lastChangeId = await this.store.latestChangeId();
    this.lastCommitMarker = await this.store.commitMarker();
    const { notices, lockouts } = this.options.store;
    if (notices) this.unsubscribeNotices = notices.subscribe((n) => this.onStoreNotice(n));
    if (lockouts) await this.loadSharedLockouts();
    await new Promise<void>((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(this.options.port, this.options.host, () => {
        this.http.off("error", reject);
        resolve();
      });
    });
    this.every(this.limits.tickIntervalMs, () => this.sessions.broadcast("tick", { ts: this.clock.now() }));
    this.every(this.options.changePollMs, () => void this.pollCommits());
    this.every(HOUSEKEEPING_MS, () => void this.housekeeping());
    // Retention applies from the start: a gateway restarted with a smaller limit prunes now.
    void this.pruneAuditLog(this.clock.now());
    this.every(INTEGRITY_CHECK_MS, () => void this.checkIntegrity());
    return this.address();
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private reject503(socket: Duplex, message: string): void {
    socket.end(`HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`);
  }

  /**
   * Before its upgrade a TCP connection is counted against its address and
   * timed: a peer that trickles header bytes holds no more than
   * `maxUpgradingPerIp` sockets, none for longer than `upgradeTimeoutMs`.
   */
  private onTcpConnection(socket: Socket): void {
    const tcp = this.tcpPeer(socket.remoteAddress ?? "", this.currentPolicy.trustedProxies);
    // A configured proxy carries many clients: it gets the deadline, not the per-address cap.
    const key = tcp.trustedProxy ? undefined : tcp.budgetKey;
    if (key !== undefined && !this.upgradingPerIp.tryAcquire(key)) {
      socket.destroy();
      return;
    }
    const pending = new PendingUpgrade(socket, key, this.upgradingPerIp);
    pending.deadline = this.upgradeDeadlines.add(pending);
    (socket as SocketWithUpgrade)[PENDING_UPGRADE] = pending;
    socket.once("close", () => pending.end(this.upgradeDeadlines));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    (socket as SocketWithUpgrade)[PENDING_UPGRADE]?.end(this.upgradeDeadlines);
    socket.on("error", ignoreError);
    if (this.stopping) return this.reject503(socket, "Gateway stopping");
    const policy = this.currentPolicy;
    const proxyHeaderNames = policy.auth.mode === "trusted-proxy" ? [policy.auth.userHeader, ...policy.auth.requiredHeaders] : [];
    const tcp = this.tcpPeer(req.socket.remoteAddress ?? "", policy.trustedProxies);
    const peer = resolvePeer(rawPeerFacts(req, proxyHeaderNames), policy.trustedProxies, tcp);
    const budgetKey = peer.clientIp === tcp.remoteAddress ? tcp.budgetKey : addressBudgetKey(peer.clientIp);
    if (this.openConnections >= this.limits.maxConnections) return this.reject503(socket, "Too many connections");
    if (!this.connectionsPerIp.tryAcquire(budgetKey)) return this.reject503(socket, "Too many connections from this address");
    if (!this.preauthPerIp.tryAcquire(budgetKey)) {
      this.connectionsPerIp.release(budgetKey);
      return this.reject503(socket, "Too many unauthenticated sockets");
    }
    this.openConnections++;
    /** The callback ran, or the upgrade was found refused and its budgets released. */
    let settled = false;
    // Corked, the 101 response and the challenge written in the callback leave in one
    // write: one segment and one wake-up of the client instead of two.
    socket.cork();
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      if (settled) {
        // Called after handleUpgrade returned (only a verifyClient hook, which this server
        // does not set, defers it): the budgets are already released, so no session.
        ws.terminate();
        return;
      }
      settled = true;
      closeAfterCloseHandshake(socket, ws);
      const openEntry = this.sockets.push(ws);
      const limiterKey = failureBudgetKey(tcp, budgetKey);
      new Connection(this, { ws, connId: this.random.uuid(), peer, limiterKey, budgetKey, openEntry });
    });
    socket.uncork();
    // Without a verifyClient hook `ws` completes or refuses an upgrade before
    // handleUpgrade returns; a refused one (bad headers, a dead socket) is
    // answered and ended by `ws`, and releases its budgets here.
    if (!settled) {
      settled = true;
      this.preauthEnded(budgetKey);
      this.connectionClosed(budgetKey);
    }
  }

  preauthEnded(budgetKey: string): void {
    this.preauthPerIp.release(budgetKey);
  }

  connectionClosed(budgetKey: string, openEntry?: ListEntry<WebSocket>): void {
    if (openEntry) this.sockets.remove(openEntry);
    this.openConnections--;
    this.connectionsPerIp.release(budgetKey);
  }

  helloOkJson(input: { protocol: number; connId: string; grant: Grant; issued: IssuedToken | undefined }): string {
    const { grant } = input;
    const admin = satisfies(grant.scopes, "operator.admin");
    // Every field named, not `...input`: a spread copy gets a hidden class of its
    // own, and one more property then makes a new one for every handshake
    // (--log-maps), with new inline-cache handlers to match.
    return this.helloOkWriter.payloadJson({
      protocol: input.protocol,
      connId: input.connId,
      grant,
      issued: input.issued,
      snapshot: {
        presence: maySeePresence(grant) ? this.sessions.presence() : [],
        health: {},
        stateVersion: this.sessions.stateVersion,
        uptimeMs: this.clock.now() - this.startedAtMs,
        ...(admin ? { authMode: this.currentPolicy.auth.mode, ...(this.options.stateDir ? { stateDir: this.options.stateDir } : {}) } : {}),
      },
    });
  }


  /**
   * Commits by another process (the admin CLI) show up here: cached reads are
   * dropped and the change feed is read in the same pass.
   */
  private pollFailing = false;

  private async pollCommits(): Promise<void> {
    this.checkStoreFile();
    try {
      const marker = await this.store.commitMarker();
      this.pollFailing = false;
      if (marker === this.lastCommitMarker) return;
      this.lastCommitMarker = marker;
    } catch (e) {
      // Not knowing is treated as a change: drop the cache and read the feed.
      // Said once per failing stretch, not four times a second.
      const first = !this.pollFailing;
      this.pollFailing = true;
      if (!first) {
        this.store.invalidate();
        return; // the feed is read again once the poll succeeds (the marker will differ)
      }
      this.logger.error({ err: e instanceof Error ? e.message : String(e) }, "store poll failed");
      this.lastCommitMarker = Number.NaN;
    }
    this.store.invalidate();
    this.storeChanged();
  }

  /** React to store changes now (coalesced; one pass at a time). */
  storeChanged(): void {
    if (this.changesRunning) {
      this.changesAgain = true;
      return;
    }
    this.changesRunning = true;
    void this.drainChanges().finally(() => {
      this.changesRunning = false;
      if (this.changesAgain) {
        this.changesAgain = false;
        this.storeChanged();
      }
    });
  }

  private async drainChanges(): Promise<void> {
    try {
      for (;;) {
        const batch = await this.store.changesSince(this.lastChangeId, 500);
        // A change read here may come from another process, and the feed can
        // show it before the commit poll does: cached records go first, so no
        // handshake admitted after the change is applied decides on them.
        if (batch.length > 0) this.store.invalidate();
        for (const change of batch) {
          this.lastChangeId = change.id;
          await this.applyChange(change);
        }
        if (batch.length < 500) return;
      }
    } catch (e) {
      this.logger.error({ err: e instanceof Error ? e.message : String(e) }, "change feed failed");
    }
  }

  private async applyChange(change: ChangeRecord): Promise<void> {
    switch (change.kind) {
      case "pairing.requested":
        this.metrics?.pairingRequest("requested");
        this.sessions.broadcast("device.pair.requested", pendingToWire(change.request), change.request.deviceId);
        return;
      case "pairing.resolved":
        this.metrics?.pairingRequest(change.decision);
        if (change.decision === "expired") return;
        this.sessions.broadcast("device.pair.resolved", { requestId: change.requestId, deviceId: change.deviceId, decision: change.decision, ts: change.ts }, change.deviceId);
        return;
      case "device.removed":
      case "device.token.changed":
      case "backend.revoked": {
        const revocation = revocationOf(change);
        // Says what happened (upstream says "device removed" for all three).
        const reason = change.kind === "backend.revoked" ? "backend revoked" : change.kind === "device.removed" ? "device removed" : `device token ${change.change}`;
        if (revocation) this.revoke(revocation, reason);
        return;
      }
      case "shared-secret.rotated": {
        if (this.options.sharedTokenSource !== "store" || this.currentPolicy.auth.mode !== "token") return;
        const hex = await this.store.getSetting(SETTING_SHARED_TOKEN_HASH);
        if (hex) this.adoptSharedToken(hex);
        return;
      }
    }
  }

  /** Close the sessions a change took away, and remember it for handshakes still deciding. */
  private revoke(revocation: Revocation, reason: string): void {
    this.revocations.record(revocation);
    const n = this.sessions.closeWhere((s) => revokes(revocation, s.grant), CloseCode.authChanged, reason);
    if (n > 0) this.logger.info({ event: "sessions-closed", reason, count: n }, "closed sessions");
  }

  /** A store found damaged while serving is treated as lost: nothing new is admitted from it. */
  private async checkIntegrity(): Promise<void> {
    try {
      const damage = await this.store.damage();
      if (damage) this.markStoreLost(damage);
    } catch (e) {
      this.logger.error({ err: e instanceof Error ? e.message : String(e) }, "integrity check failed");
    }
  }

  private async housekeeping(): Promise<void> {
    const now = this.clock.now();
    try {
      await this.store.transact(async (tx) => {
        await tx.deleteExpiredPending(now);
        await tx.deleteStaleBootstrap(now);
        await tx.pruneChanges(now - CHANGE_RETENTION_MS);
      });
    } catch (e) {
      this.logger.error({ err: e instanceof Error ? e.message : String(e) }, "housekeeping failed");
    }
    await this.pruneAuditLog(now);
  }

  /** Retention of the audit log: one run per housekeeping; a refusal is logged once until it changes. */
  private async pruneAuditLog(nowMs: number): Promise<void> {
    const audit = this.options.audit;
    if (!audit) return;
    const trusted = new Set([audit.signer.publicKey, ...(audit.trustKeys ?? [])]);
    try {
      const outcome = await pruneAudit(this.store, { nowMs, retention: audit.retention, signer: audit.signer, trusted: (key) => trusted.has(key) });
      if ("refused" in outcome) {
        if (this.auditPruneProblem !== outcome.refused) this.logger.error({ event: "audit-prune" }, outcome.refused);
        this.auditPruneProblem = outcome.refused;
        return;
      }
      this.auditPruneProblem = undefined;
      if (outcome.pruned > 0 && "throughSeq" in outcome) this.logger.info({ event: "audit-prune", pruned: outcome.pruned, throughSeq: outcome.throughSeq }, "pruned audit entries under a signed checkpoint");
    } catch (e) {
      this.logger.error({ event: "audit-prune", err: e instanceof Error ? e.message : String(e) }, "pruning the audit log failed");
    }
  }

  /** Tell clients, close every socket, stop listening. The store stays open (its owner closes it). */
  async close(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.unsubscribeNotices?.();
    if (this.storeOutage) clearTimeout(this.storeOutage.timer);
    this.handshakeDeadlines.close();
    this.upgradeDeadlines.close();
    this.sessions.broadcast("shutdown", { reason: "gateway stopping" });
    for (const ws of this.sockets.toArray()) ws.close(1001, "gateway stopping");
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    // Peers get a moment to answer the close handshake; then the sockets are cut.
    const grace = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
    await Promise.race([closed, grace]);
    for (const ws of this.sockets.toArray()) ws.terminate();
    await closed;
    // The last admissions reach the audit log before the owner closes the store.
    await this.auditSink.close();
  }
}

/**
 * Where a connection's failed authentications are counted. Every loopback
 * address (127/8, ::1, IPv4-mapped) is one budget: any local process can bind
 * all of 127.0.0.0/8, so per-address budgets there are free guesses. An Origin
 * header buys no budget of its own either. Others: per address (an IPv6 /64).
 */
export function failureBudgetKey(tcp: { readonly loopback: boolean; readonly trustedProxy: boolean }, budgetKey: string): string {
  return tcp.loopback && !tcp.trustedProxy ? "loopback" : `ip:${budgetKey}`;
}

/** The digest the token policy compares against. */
export function tokenDigestOf(token: string): Buffer {
  return secretDigest(token);
}
