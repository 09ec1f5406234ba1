import type { UpstreamError } from "./upstream-link.js";
import { UpstreamLink } from "./upstream-link.js";
import type { UpstreamCredentials, UpstreamSigner } from "./upstream-identity.js";

// Pairing gatewarden's own device with the upstream OpenClaw gateway, through
// the upstream's own pairing: connect with the upstream's shared token and
// gatewarden's key; the upstream either approves at once (its silent local
// pairing) or records a request that its owner approves with
// `openclaw devices approve <id>`; gatewarden reconnects until the device
// token is issued or the wait runs out.

/** What gatewarden asks the upstream for: every operator scope (admin satisfies all), so it can relay any client's grant. */
export const UPSTREAM_SCOPES: readonly string[] = ["operator.admin", "operator.read", "operator.write", "operator.approvals", "operator.pairing"];

export type PairOutcome =
  | { readonly ok: true; readonly credentials: UpstreamCredentials; readonly serverVersion: string | undefined }
  | { readonly ok: false; readonly message: string; readonly requestId?: string };

export interface PairOptions {
  readonly url: string;
  readonly sharedToken: string;
  readonly signer: UpstreamSigner;
  /** How long to keep reconnecting while the request waits for the upstream owner's approval. */
  readonly waitMs: number;
  readonly pollMs?: number;
  readonly nowMs: () => number;
  /** Called once, when the upstream records a pairing request. */
  readonly onPending?: (requestId: string | undefined) => void;
}

function describe(e: UpstreamError): string {
  const code = typeof e.details?.code === "string" ? ` (${e.details.code})` : "";
  return `${e.message}${code}`;
}

export async function pairWithUpstream(opts: PairOptions): Promise<PairOutcome> {
  const deadline = opts.nowMs() + opts.waitMs;
  let announced: string | undefined;
  for (;;) {
    const r = await UpstreamLink.open({ url: opts.url, signer: opts.signer, role: "operator", scopes: UPSTREAM_SCOPES, auth: { token: opts.sharedToken } });
    if (r.ok) {
      r.link.close();
      const auth = (r.hello.auth ?? {}) as { deviceToken?: unknown; scopes?: unknown };
      const server = (r.hello.server ?? {}) as { version?: unknown };
      if (typeof auth.deviceToken !== "string") {
        return { ok: false, message: "the upstream admitted gatewarden without issuing a device token; is its device auth disabled? gatewarden needs a paired device" };
      }
      const scopes = Array.isArray(auth.scopes) ? auth.scopes.filter((s): s is string => typeof s === "string") : [];
      const protocol = typeof r.hello.protocol === "number" ? r.hello.protocol : 3;
      return {
        ok: true,
        serverVersion: typeof server.version === "string" ? server.version : undefined,
        credentials: { version: 1, url: opts.url, deviceId: opts.signer.deviceId, role: "operator", scopes, deviceToken: auth.deviceToken, protocol, pairedAtMs: opts.nowMs() },
      };
    }
    if (r.unreachable) return { ok: false, message: r.error.message };
    const code = r.error.details?.code;
    if (code !== "PAIRING_REQUIRED") {
      // A gateway still starting says so, retryably: wait for it within the same budget.
      if (r.error.retryable !== true || opts.nowMs() >= deadline) return { ok: false, message: `the upstream refused gatewarden: ${describe(r.error)}` };
      await new Promise((resolve) => setTimeout(resolve, Math.min(r.error.retryAfterMs ?? 1000, 5000)));
      continue;
    }
    const requestId = typeof r.error.details?.requestId === "string" ? r.error.details.requestId : undefined;
    if (announced !== requestId) {
      announced = requestId;
      opts.onPending?.(requestId);
    }
    if (opts.nowMs() >= deadline) {
      return { ok: false, message: "the upstream's pairing request is still waiting for approval", ...(requestId ? { requestId } : {}) };
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 2000));
  }
}
