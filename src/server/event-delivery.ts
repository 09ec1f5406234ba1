import type { Grant } from "../admission/grant.js";
import { satisfies } from "../admission/scopes.js";
import { actorOf, mayActOn } from "../pairing/actor.js";

// Who receives which broadcast event (spec §12.2). Fail closed: an event not
// listed here reaches nobody.

const EVERYONE = new Set(["tick", "health", "heartbeat", "shutdown", "update.available"]);
const PAIRING = new Set(["device.pair.requested", "device.pair.resolved", "node.pair.requested", "node.pair.resolved"]);

/**
 * Presence lists other clients' addresses, device ids and scopes: it goes to
 * the sessions that may call `system-presence` (operator.read), not to every
 * session as upstream sends it.
 */
export function maySeePresence(grant: Grant): boolean {
  return grant.role === "operator" && satisfies(grant.scopes, "operator.read");
}

/**
 * `deviceId`: the device a pairing event is about. A session that may act only
 * on its own device (device.pair.list shows it no other) gets no other's events.
 */
export function mayReceive(grant: Grant, event: string, deviceId?: string): boolean {
  if (EVERYONE.has(event)) return true;
  if (event === "presence") return maySeePresence(grant);
  if (grant.role !== "operator") return false;
  if (PAIRING.has(event)) return satisfies(grant.scopes, "operator.pairing") && deviceId !== undefined && mayActOn(actorOf(grant), deviceId);
  return false;
}

/** The events this gateway emits, for hello-ok.features.events. */
export const GATEWAY_EVENTS = ["connect.challenge", "tick", "presence", "health", "shutdown", "device.pair.requested", "device.pair.resolved"];
