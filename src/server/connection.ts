import { performance } from "node:perf_hooks";
import type { WebSocket } from "ws";
import { claimsFromConnect, type Claims } from "../admission/claims.js";
import { isBackendSecret } from "../admission/credentials/backend-credential.js";
import { decideAdmission, type AdmissionFacts, type Decision } from "../admission/decide.js";
import type { PeerEvidence } from "../admission/locality.js";
import { nonBlank, type PresentedSecrets } from "../admission/presented.js";
import { secretDigestHex } from "../admission/secret-digest.js";
import { pairingRequiredError } from "../admission/auth-errors.js";
import { verificationCode } from "../pairing/verification-code.js";
import type { PresenceEntry } from "../methods/define-method.js";
import { carryOut, type IssuedToken } from "../pairing/effects.js";
import { requestPairing } from "../pairing/request-pairing.js";
import { CloseCode } from "../protocol/close-codes.js";
import { ConnectParamsValidator, ReqFrameValidator, parseJson, type ConnectParams } from "../protocol/frames.js";
import { GatewayError, handshakeRejection } from "../protocol/gateway-error.js";
import type { AuditEntry } from "./audit.js";
import { closeSocket, frameText, ignoreError, raiseMaxPayload, rejectAndClose, sendRes, sendResJson, writable } from "./frame-io.js";
import type { GatewayRuntime } from "./runtime.js";
import type { DeadlineEntry } from "./handshake-deadlines.js";
import type { ListEntry } from "./linked-list.js";
import type { RegisteredSession, Session } from "./session-registry.js";
import { routeRequest, type RouterContext } from "./session-router.js";
import { storeFailureError } from "./store-failure.js";
import { relayedEventAllowed } from "../relay/relay-events.js";
import { upstreamLabel, type RelayReply, type RelaySession } from "../relay/upstream-relay.js";
import { StoreUnavailableError } from "../store/errors.js";

type State = "awaiting-connect" | "connecting" | "admitted" | "closed";

/** How one decision ended: carried out, or overtaken by a revocation (decide again on fresh facts). */
type Outcome = "done" | "revoked-meanwhile";


/**
 * A handshake whose grant was revoked while it decided is decided again on
 * fresh facts; this many times, then it is refused as retryable.
 */
const MAX_DECISIONS = 3;

/** What the gateway knows of a socket when it hands it to a Connection. */
export interface AcceptedSocket {
  readonly ws: WebSocket;
  readonly connId: string;
  readonly peer: PeerEvidence;
  /** Where failed authentications from this socket are counted. */
  readonly limiterKey: string;
  /** What per-address budgets count this socket under. */
  readonly budgetKey: string;
  /** The socket's place among the gateway's open sockets, handed back when it closes. */
  readonly openEntry: ListEntry<WebSocket>;
}

/** A presented backend secret, whose record the decision needs from the store. */
function backendSecretOf(presented: PresentedSecrets): string | undefined {
  const token = nonBlank(presented.token);
  return isBackendSecret(token) ? token : undefined;
}

/** A presented bootstrap token with a device claim, whose record the decision needs from the store. */
function bootstrapTokenOf(claims: Claims, presented: PresentedSecrets): string | undefined {
  return claims.device ? nonBlank(presented.bootstrapToken) : undefined;
}

/**
 * One socket: its lifecycle and the handshake state machine; once admitted,
 * its frames go to the session's request router (session-router.ts). It only
 * gathers facts and carries out decisions; `decideAdmission` decides.
 */
export class Connection implements RouterContext {
  private state: State = "awaiting-connect";
  /** When the connect request arrived (performance.now()), for the handshake histogram; 0 without metrics. */
  private connectAt = 0;
  /** Until admitted or closed, the socket counts against its address's unauthenticated-socket budget. */
  private preauthHeld = true;
  private readonly nonce: string;
  private deadline: DeadlineEntry | undefined;
  /** Cleared when the socket closes, so that nothing outlives it through this connection. */
  private session: RegisteredSession | undefined;
  private readonly ws: WebSocket;
  readonly connId: string;
  private readonly peer: PeerEvidence;

  constructor(
    readonly rt: GatewayRuntime,
    private readonly socket: AcceptedSocket,
  ) {
    const { ws } = socket;
    this.ws = ws;
    this.connId = socket.connId;
    this.peer = socket.peer;
    this.nonce = rt.random.uuid();
    this.deadline = rt.handshakeDeadlines.add(this);
    ws.on("message", (data, isBinary) => void this.onMessage(data as Buffer, isBinary));
    ws.on("close", () => this.onClose());
    ws.on("error", ignoreError);
    ws.on("ping", this.onPing);
    // The challenge, written out: it goes to every socket, and only the nonce and time vary.
    ws.send(`{"type":"event","event":"connect.challenge","payload":{"nonce":${JSON.stringify(this.nonce)},"ts":${rt.clock.now()}}}`);
  }

  /** Server-side close (RouterContext). */
  close(code: number, reason: string | undefined): void {
    closeSocket(this.ws, code, reason, this.rt.limits.closeGraceMs);
  }

  private rejectAndClose(id: string, error: GatewayError): void {
    rejectAndClose(this.ws, id, error, this.rt.limits.closeGraceMs);
  }

  /** Every reply goes through the outbound bound: a peer that never reads is closed, not buffered for (RouterContext). */
  reply(id: string, result: Parameters<typeof sendRes>[2]): void {
    if (this.mayWrite()) sendRes(this.ws, id, result);
  }

  replyWire(id: string, result: RelayReply): void {
    if (!this.mayWrite()) return;
    if (result.ok && result.afterId !== undefined) this.ws.send(`{"type":"res","id":${JSON.stringify(id)},${result.afterId}`);
    else this.ws.send(JSON.stringify(result.ok ? { type: "res", id, ok: true, payload: result.payload } : { type: "res", id, ok: false, error: result.error }));
  }

  /** Pongs count against the same bound (ws's automatic pong is off: see Gateway). */
  private readonly onPing = (data: Buffer): void => {
    if (this.mayWrite()) this.ws.pong(data);
  };

  private mayWrite(): boolean {
    const wasOpen = this.ws.readyState === this.ws.OPEN;
    if (writable(this.ws, this.rt.limits.maxBufferedBytes, this.rt.limits.closeGraceMs)) return true;
    if (wasOpen) {
      if (this.session) this.rt.sessions.remove(this.session);
      this.rt.logger.info({ connId: this.connId, peer: this.peer.remoteAddress, event: "slow-consumer", bufferedBytes: this.ws.bufferedAmount }, "closed a slow consumer");
    }
    return false;
  }

  private endPreauth(): void {
    if (!this.preauthHeld) return;
    this.preauthHeld = false;
    this.rt.preauthEnded(this.socket.budgetKey);
  }

  /** The handshake deadline passed (HandshakeDeadlines). */
  onDeadline(): void {
    if (this.state !== "awaiting-connect" && this.state !== "connecting") return;
    this.rt.logger.info({ connId: this.connId, peer: this.peer.remoteAddress, event: "handshake-timeout" }, "handshake timeout");
    this.close(CloseCode.normal, undefined);
  }

  private endDeadline(): void {
    if (this.deadline === undefined) return;
    this.rt.handshakeDeadlines.remove(this.deadline);
    this.deadline = undefined;
  }

  private onClose(): void {
    this.endDeadline();
    this.session?.session.relay?.close();
    if (this.session) this.rt.sessions.remove(this.session);
    this.session = undefined;
    this.state = "closed";
    this.endPreauth();
    this.rt.connectionClosed(this.socket.budgetKey, this.socket.openEntry);
    // A closed socket's objects can stay reachable until the next full collection
    // (an old object V8 has not yet found dead still points at them). Without its
    // listeners the WebSocket no longer reaches this connection, its claims, grant
    // and session, so those go in the next scavenge instead of being promoted with
    // it (BENCHMARKS.md, "Sixth round"). Nothing is emitted after "close".
    this.ws.removeAllListeners();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    // A socket the server has begun to close (a revocation, a slow consumer, a
    // refusal) executes nothing more, whatever the peer keeps sending.
    if (this.state === "closed" || this.ws.readyState !== this.ws.OPEN) return;
    const text = frameText(data, isBinary);
    if (this.state === "admitted") {
      if (this.session) void routeRequest(this, this.session, text);
      return;
    }
    if (this.state === "connecting") {
      this.close(CloseCode.policyViolation, "handshake in progress");
      return;
    }
    const parsed = text === undefined ? undefined : parseJson(text);
    if (!parsed?.ok) return this.rejectFrame(text === undefined ? "binary frame" : "malformed json");
    const frame = parsed.value;
    if (!ReqFrameValidator.check(frame)) return this.rejectFrame("invalid request frame");
    const { id, method, params } = frame;
    if (method !== "connect") {
      const error = handshakeRejection("INVALID_REQUEST", "HANDSHAKE_REQUIRED", "invalid handshake: first request must be connect");
      this.audit(undefined, { kind: "reject", stage: "frame", code: error.detailCode });
      return this.rejectAndClose(id, error);
    }
    if (!ConnectParamsValidator.check(params)) {
      const error = handshakeRejection("INVALID_REQUEST", "INVALID_PARAMS", `invalid connect params: ${ConnectParamsValidator.issues(params)}`);
      this.audit(undefined, { kind: "reject", stage: "frame", code: error.detailCode });
      return this.rejectAndClose(id, error);
    }
    this.state = "connecting";
    if (this.rt.metrics) this.connectAt = performance.now();
    try {
      const pending = this.handshake(id, params);
      if (pending) pending.catch((e: unknown) => this.handshakeFailed(id, e));
    } catch (e) {
      this.handshakeFailed(id, e);
    }
  }

  private handshakeFailed(reqId: string, e: unknown): void {
    const error = storeFailureError(e, true);
    this.rt.logger.error({ connId: this.connId, code: error.detailCode, err: e instanceof Error ? e.message : String(e) }, "handshake failed");
    this.audit(undefined, { kind: "reject", stage: "store", code: error.detailCode });
    this.rejectAndClose(reqId, error);
  }

  private rejectFrame(note: string): void {
    this.audit(undefined, { kind: "reject", stage: "frame", code: "INVALID_FRAME" }, note);
    this.close(CloseCode.policyViolation, "invalid request frame");
  }

  private audit(claims: Claims | undefined, decision: AuditEntry["decision"], note?: string, requestId?: string): void {
    const metrics = this.rt.metrics;
    if (metrics) {
      const code = decision.kind === "admit" ? "OK" : decision.kind === "pairing-required" ? "PAIRING_REQUIRED" : "error" in decision ? decision.error.detailCode : decision.code;
      metrics.handshake(decision.kind, code, this.connectAt > 0 ? (performance.now() - this.connectAt) / 1000 : undefined);
    }
    this.rt.audit({
      connId: this.connId,
      peer: this.peer,
      claims,
      decision,
      ...(note ? { note } : {}),
      ...(requestId ? { requestId } : {}),
    });
  }

  /** A store operation the decision depended on failed: audit once, reply, close. */
  private refuse(claims: Claims, reqId: string, stage: string, error: GatewayError, note?: string): void {
    this.audit(claims, { kind: "reject", stage, code: error.detailCode }, note);
    this.rejectAndClose(reqId, error.close ? error : handshakeRejection(error.code, error.detailCode, error.message));
  }

  private get open(): boolean {
    return this.state === "connecting" && this.ws.readyState === this.ws.OPEN;
  }

  /**
   * The facts, when every one of them is already in memory (no secret to look
   * up, the claimed device's record cached or no device claimed); otherwise
   * `undefined`, and `gatherFacts` reads the store.
   */
  private factsInMemory(claims: Claims, presented: PresentedSecrets): AdmissionFacts | undefined {
    if (backendSecretOf(presented) !== undefined || bootstrapTokenOf(claims, presented) !== undefined) return undefined;
    if (!claims.device) return this.facts(undefined, undefined, undefined);
    const pairedDevice = this.rt.store.cachedPairedDevice(claims.device.id);
    return pairedDevice === undefined ? undefined : this.facts(pairedDevice, undefined, undefined);
  }

  private async gatherFacts(claims: Claims, presented: PresentedSecrets): Promise<AdmissionFacts> {
    const { store } = this.rt;
    const backendSecret = backendSecretOf(presented);
    const bootstrap = bootstrapTokenOf(claims, presented);
    const deviceLookup = claims.device ? store.getPairedDevice(claims.device.id) : undefined;
    const backendLookup = backendSecret !== undefined ? store.getBackendBySecretHash(secretDigestHex(backendSecret)) : undefined;
    const bootstrapLookup = bootstrap !== undefined ? store.getBootstrapByTokenHash(secretDigestHex(bootstrap)) : undefined;
    // Most connects need the device lookup alone; several are awaited together
    // (Promise.all), so a failing one never goes unhandled while another waits.
    const [pairedDevice, backend, bootstrapRecord] =
      backendLookup === undefined && bootstrapLookup === undefined
        ? [deviceLookup && (await deviceLookup), undefined, undefined]
        : await Promise.all([deviceLookup, backendLookup, bootstrapLookup]);
    return this.facts(pairedDevice, backend, bootstrapRecord);
  }

  private facts(pairedDevice: AdmissionFacts["pairedDevice"], backend: AdmissionFacts["backend"], bootstrap: AdmissionFacts["bootstrap"]): AdmissionFacts {
    const locked = this.rt.limiter.lockedFor(this.socket.limiterKey);
    return {
      nowMs: this.rt.clock.now(),
      challengeNonce: this.nonce,
      peer: this.peer,
      lockout: locked === undefined || this.rt.limiterExempt(this.peer) ? undefined : { retryAfterMs: locked },
      pairedDevice,
      backend,
      bootstrap,
      parseKey: this.rt.parseKey,
    };
  }

  /**
   * Decide and carry out the decision. A paired device presenting its device
   * token (every reconnect) has every fact in memory and needs no store write,
   * so its whole handshake runs synchronously; anything else continues
   * asynchronously (the returned promise).
   */
  private handshake(reqId: string, params: ConnectParams): Promise<void> | undefined {
    const claims = claimsFromConnect(params);
    const unavailable = this.rt.storeUnavailable();
    if (unavailable !== undefined) {
      this.refuse(claims, reqId, "store", storeFailureError(new StoreUnavailableError(unavailable.reason, unavailable.retryAfterMs), true));
      return undefined;
    }
    const presented: PresentedSecrets = params.auth ?? {};
    const facts = this.factsInMemory(claims, presented);
    if (facts !== undefined) {
      const outcome = this.act(reqId, claims, presented, facts, this.rt.revocations.mark());
      if (outcome === "done") return undefined;
      return Promise.resolve(outcome).then((o) => (o === "done" ? undefined : this.decideAgain(reqId, claims, presented, 2)));
    }
    return this.decideAgain(reqId, claims, presented, 1);
  }

  /** Decisions on facts read from the store, from decision number `first` on. */
  private async decideAgain(reqId: string, claims: Claims, presented: PresentedSecrets, first: number): Promise<void> {
    for (let attempt = first; attempt <= MAX_DECISIONS; attempt++) {
      const outcome = await this.decideAndAct(reqId, claims, presented);
      if (outcome !== "revoked-meanwhile") return;
    }
    this.refuse(
      claims,
      reqId,
      "credential",
      new GatewayError({ code: "UNAVAILABLE", detailCode: "AUTH_UNAUTHORIZED", message: "credentials changed during the handshake; retry", retryable: true, retryAfterMs: 250 }),
    );
  }

  /** One decision on the facts as they are now, carried out. */
  private async decideAndAct(reqId: string, claims: Claims, presented: PresentedSecrets): Promise<Outcome> {
    const revocationMark = this.rt.revocations.mark();
    const facts = await this.gatherFacts(claims, presented);
    return this.act(reqId, claims, presented, facts, revocationMark);
  }

  /** Carry out the decision on `facts`: synchronously unless it needs the store (a pairing request, a store write before admitting). */
  private act(reqId: string, claims: Claims, presented: PresentedSecrets, facts: AdmissionFacts, revocationMark: number): Outcome | Promise<Outcome> {
    if (!this.open) return "done";
    const decision = decideAdmission({ claims, presented, facts, policy: this.rt.policy() });

    if (decision.kind === "reject") {
      if (decision.authFailure && !this.rt.limiterExempt(this.peer)) this.rt.recordAuthFailure(this.socket.limiterKey);
      this.audit(claims, decision);
      this.rejectAndClose(reqId, decision.error);
      return "done";
    }
    if (decision.kind === "pairing-required") return this.requestPairing(reqId, claims, decision);
    if (decision.effects.length > 0 || this.rt.relay) return this.admit(reqId, claims, decision, revocationMark);
    return this.register(reqId, claims, decision, revocationMark, undefined, undefined);
  }

  private async requestPairing(reqId: string, claims: Claims, decision: Extract<Decision, { kind: "pairing-required" }>): Promise<Outcome> {
    const created = await requestPairing(this.rt.store, decision.request, {
      limits: this.rt.pairingLimits,
      nowMs: this.rt.clock.now(),
      random: this.rt.random,
    });
    if (!created.ok) {
      this.refuse(claims, reqId, "pairing", created.error);
      return "done";
    }
    this.rt.storeChanged();
    const { request } = created.value;
    this.audit(claims, decision, undefined, request.requestId);
    this.rejectAndClose(
      reqId,
      pairingRequiredError({
        reason: decision.request.reason,
        requestId: request.requestId,
        deviceId: request.deviceId,
        requestedRole: decision.request.role,
        requestedScopes: decision.request.scopes,
        ...(decision.approved ? { approved: decision.approved } : {}),
        verificationCode: verificationCode(request),
      }),
    );
    return "done";
  }

  /**
   * Admitting changes the store (the decision's effects, in one transaction)
   * or needs the upstream (upstream mode: no hello-ok without a working
   * upstream session for exactly this grant), then the session.
   */
  private async admit(reqId: string, claims: Claims, decision: Extract<Decision, { kind: "admit" }>, revocationMark: number): Promise<Outcome> {
    const { rt } = this;
    let issued: IssuedToken | undefined;
    if (decision.effects.length > 0) {
      const applied = await carryOut(rt.store, decision.effects, { nowMs: rt.clock.now(), random: rt.random });
      if (!applied.ok) {
        // The facts changed since the decision (an approval, a revocation, a racing first pairing): decide again.
        if (applied.stale) return "revoked-meanwhile";
        this.refuse(claims, reqId, "credential", applied.error);
        return "done";
      }
      if (decision.silentApproval) rt.storeChanged();
      issued = applied.value;
    }
    let relay: RelaySession | undefined;
    if (rt.relay) {
      const label = upstreamLabel({ id: claims.clientId, mode: claims.clientMode, version: claims.version, platform: claims.platform, ...(claims.displayName ? { displayName: claims.displayName } : {}) });
      const opened = await rt.relay.openSession(decision.grant, label, decision.protocol);
      if (!opened.ok) {
        this.refuse(claims, reqId, "upstream", opened.error);
        return "done";
      }
      relay = opened.session;
    }
    const outcome = this.register(reqId, claims, decision, revocationMark, issued, relay);
    if (this.session?.session.relay !== relay) relay?.close();
    return outcome;
  }

  /** The admission itself: register the session, send hello-ok, audit. */
  private register(
    reqId: string,
    claims: Claims,
    decision: Extract<Decision, { kind: "admit" }>,
    revocationMark: number,
    issued: IssuedToken | undefined,
    relay: RelaySession | undefined,
  ): Outcome {
    const { rt } = this;
    if (!this.open) return "done";

    const { grant } = decision;
    // Checked here, with no await before the session is registered: a
    // revocation applied after this point finds the session and closes it.
    if (this.rt.revocations.revokedSince(revocationMark, grant)) return "revoked-meanwhile";
    const presence: PresenceEntry | undefined =
      claims.clientMode === "cli"
        ? undefined
        : {
            ts: rt.clock.now(),
            reason: "connect",
            mode: claims.clientMode,
            version: claims.version,
            platform: claims.platform,
            ...(claims.deviceFamily ? { deviceFamily: claims.deviceFamily } : {}),
            ...(claims.modelIdentifier ? { modelIdentifier: claims.modelIdentifier } : {}),
            ...(claims.displayName ? { host: claims.displayName } : {}),
            ...(this.peer.locality === "direct_local" ? {} : { ip: this.peer.clientIp }),
            ...(grant.deviceId ? { deviceId: grant.deviceId } : {}),
            roles: [grant.role],
            scopes: [...grant.scopes],
            instanceId: claims.instanceId ?? this.connId,
          };
    const session: Session = {
      connId: this.connId,
      ws: this.ws,
      grant,
      clientId: claims.clientId,
      clientMode: claims.clientMode,
      clientIp: this.peer.clientIp,
      presence,
      seq: 0,
      inflight: 0,
      unauthorizedStreak: 0,
      relay,
    };
    this.endDeadline();
    this.state = "admitted";
    this.endPreauth();
    raiseMaxPayload(this.ws, rt.limits.maxPayloadBytes);
    sendResJson(this.ws, reqId, rt.helloOkJson({ protocol: decision.protocol, connId: this.connId, grant, issued }));
    const registered = rt.sessions.add(session);
    this.session = registered;
    if (relay) this.bindRelay(registered, relay);
    this.audit(claims, decision, issued ? "device token issued" : undefined);
    return "done";
  }

  /** Upstream events reach the client filtered by its grant; the upstream closing ends the client's session. */
  private bindRelay(registered: RegisteredSession, relay: RelaySession): void {
    const { rt } = this;
    const { grant } = registered.session;
    relay.onEvent((e) => {
      if (relayedEventAllowed(grant, e.event)) rt.sessions.sendEvent(registered, e.event, e.payload);
    });
    relay.onClose((code) => {
      if (this.session !== registered) return;
      rt.sessions.remove(registered);
      rt.logger.info({ connId: this.connId, event: "upstream-closed", code }, "upstream closed the session");
      this.close(CloseCode.serviceRestart, "upstream gateway closed the session");
    });
  }
}
