import type { Grant } from "../admission/grant.js";
import { satisfies } from "../admission/scopes.js";
import type { OperatorScope } from "../protocol/enums.js";

// Which upstream events reach a client session through gatewarden. The
// upstream already filters them by the upstream session's scopes (exactly the
// client's); gatewarden filters again by its own table, so a lax or newer
// upstream cannot widen what a session hears.

/**
 * Never passed on: the handshake; the upstream's tick and shutdown (gatewarden
 * sends its own, and an upstream going away closes the relayed sessions); the
 * upstream's own pairing events (pairing is gatewarden's); and its presence,
 * whose entries are gatewarden's relayed sessions under gatewarden's device
 * (the sessions' presence is gatewarden's own, as standalone).
 */
const NEVER = new Set(["connect.challenge", "tick", "shutdown", "device.pair.requested", "device.pair.resolved", "presence"]);

/** Events whose scope the upstream documents (spec §12.2); every other relayed event needs operator.read. */
const SCOPED = new Map<string, OperatorScope>([
  ["talk.mode", "operator.write"],
  ["exec.approval.requested", "operator.approvals"],
  ["exec.approval.resolved", "operator.approvals"],
  ["plugin.approval.requested", "operator.approvals"],
  ["plugin.approval.resolved", "operator.approvals"],
  ["node.pair.requested", "operator.pairing"],
  ["node.pair.resolved", "operator.pairing"],
]);

const ANY_CLIENT = new Set(["health", "heartbeat", "update.available"]);

export function relayedEventAllowed(grant: Grant, event: string): boolean {
  if (NEVER.has(event)) return false;
  if (ANY_CLIENT.has(event)) return true;
  if (grant.role !== "operator") return false;
  if (event.startsWith("plugin.") && !SCOPED.has(event)) return satisfies(grant.scopes, "operator.write");
  return satisfies(grant.scopes, SCOPED.get(event) ?? "operator.read");
}
