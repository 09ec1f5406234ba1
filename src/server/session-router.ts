import type { CallerSession } from "../methods/define-method.js";
import { authorize } from "../methods/authorize.js";
import { CloseCode } from "../protocol/close-codes.js";
import { ReqFrameValidator, parseJson, type ReqFrame } from "../protocol/frames.js";
import { GatewayError, invalidRequest } from "../protocol/gateway-error.js";
import type { sendRes } from "./frame-io.js";
import type { GatewayRuntime } from "./runtime.js";
import type { RegisteredSession } from "./session-registry.js";
import { storeFailureError } from "./store-failure.js";
import { authorizeRelay } from "../relay/relay-authorize.js";
import type { RelayReply } from "../relay/upstream-relay.js";

// The request router of an admitted session: every frame after hello-ok is
// validated against the closed request schema, bounded (in-flight limit),
// authorized against the session's grant, and only then dispatched. The
// handshake (connection.ts) hands it frames only while the socket is OPEN.

const UNAUTHORIZED_STREAK_LIMIT = 10;

/** What the router needs of the socket's owner. */
export interface RouterContext {
  readonly rt: GatewayRuntime;
  readonly connId: string;
  /** A reply, under the outbound bound. */
  reply(id: string, result: Parameters<typeof sendRes>[2]): void;
  /** A relayed reply whose error is already in wire form, under the same bound. */
  replyWire(id: string, result: RelayReply): void;
  /** A server-side close (nothing more executes; cut after the grace). */
  close(code: number, reason: string | undefined): void;
}

/** One frame of an admitted session: parse and validate, then `dispatch`. */
export async function routeRequest(ctx: RouterContext, registered: RegisteredSession, text: string | undefined): Promise<void> {
  if (text === undefined) return ctx.reply("invalid", { ok: false, error: invalidRequest("INVALID_FRAME", "invalid request frame: binary frames are not supported") });
  const parsed = parseJson(text);
  if (!parsed.ok) return ctx.reply("invalid", { ok: false, error: invalidRequest("INVALID_FRAME", "invalid request frame: malformed JSON") });
  const frame = parsed.value;
  if (!ReqFrameValidator.check(frame)) {
    const raw = frame as { id?: unknown } | null;
    const id = raw && typeof raw === "object" && typeof raw.id === "string" && raw.id.length <= 128 && raw.id.length > 0 ? raw.id : "invalid";
    return ctx.reply(id, { ok: false, error: invalidRequest("INVALID_FRAME", `invalid request frame: ${ReqFrameValidator.issues(frame)}`) });
  }
  return dispatch(ctx, registered, frame);
}

/**
 * A validated request of an admitted session: bounded, authorized against the
 * session's grant, then run. The seam where another way of answering (the
 * upstream relay) plugs in: nothing reaches a handler unauthorized.
 */
export async function dispatch(ctx: RouterContext, registered: RegisteredSession, frame: ReqFrame): Promise<void> {
  const { rt, connId } = ctx;
  const { session } = registered;
  const { id, method, params } = frame;
  if (method === "connect") {
    return ctx.reply(id, { ok: false, error: invalidRequest("ALREADY_CONNECTED", "connect is only valid as the first request") });
  }
  if (session.inflight >= rt.limits.maxInflightPerSession) {
    return ctx.reply(id, {
      ok: false,
      error: new GatewayError({ code: "UNAVAILABLE", detailCode: "TOO_MANY_PENDING_REQUESTS", message: "too many requests in flight", retryable: true, retryAfterMs: 100 }),
    });
  }
  const handler = rt.methods.get(method);
  const relayed = handler === undefined && session.relay !== undefined && rt.relay !== undefined;
  const denied = relayed && rt.relay ? authorizeRelay(session.grant, rt.relay.info.table, method) : authorize(session.grant, rt.methods.requirementFor(method));
  if (denied) {
    session.unauthorizedStreak++;
    ctx.reply(id, { ok: false, error: denied });
    rt.logger.info({ connId, method: method.slice(0, 128), code: denied.detailCode, event: "method-denied" }, "method denied");
    if (session.unauthorizedStreak > UNAUTHORIZED_STREAK_LIMIT) {
      rt.sessions.remove(registered);
      rt.logger.info({ connId, event: "session-closed", reason: "repeated unauthorized calls" }, "session closed");
      ctx.close(CloseCode.policyViolation, "repeated unauthorized calls");
    }
    return;
  }
  session.unauthorizedStreak = 0;
  if (relayed && session.relay) {
    // Params untouched; the upstream checks the same scopes again.
    session.inflight++;
    try {
      ctx.replyWire(id, await session.relay.request(method, params));
    } finally {
      session.inflight--;
    }
    return;
  }
  if (!handler) return ctx.reply(id, { ok: false, error: invalidRequest("UNKNOWN_METHOD", `unknown method: ${method.slice(0, 128)}`) });
  const caller: CallerSession = { connId, grant: session.grant, clientId: session.clientId, clientMode: session.clientMode };
  session.inflight++;
  try {
    const result = await handler.call(params, caller, rt.services);
    ctx.reply(id, result.ok ? { ok: true, payload: result.value } : { ok: false, error: result.error });
  } catch (e) {
    const error = storeFailureError(e, false);
    rt.logger.error({ connId, method, code: error.detailCode, err: e instanceof Error ? e.message : String(e) }, "method failed");
    ctx.reply(id, { ok: false, error });
  } finally {
    session.inflight--;
  }
}
