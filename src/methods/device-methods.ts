import { FormatRegistry, Type } from "@sinclair/typebox";
import { actorOf as actorOfGrant, mayActOn } from "../pairing/actor.js";
import { approvePairing, rejectPairing } from "../pairing/approve.js";
import { removeDevice, revokeDeviceToken, rotateDeviceToken } from "../pairing/device-tokens.js";
import { ROLES, isKnownScope, type Scope } from "../protocol/enums.js";
import { ClosedObject, LiteralUnion } from "../protocol/schema.js";
import { ok, type Result } from "../result.js";
import type { CallerSession, MethodServices } from "./define-method.js";
import { defineMethod } from "./registry.js";
import { pairedToWire, pendingToWire } from "./wire-records.js";

// Pairing and token administration (spec §9.5). Every one needs operator.pairing;
// the pairing state machine enforces what the approver itself may grant.

const PAIRING = { kind: "scope", scope: "operator.pairing" } as const;
const id = Type.String({ minLength: 1, maxLength: 256 });
const role = LiteralUnion(ROLES);
// isKnownScope stays the one definition of a scope; the compiled check calls it
// through this named format (registered before any check can run).
FormatRegistry.Set("scope", isKnownScope);
const scopes = Type.Array(Type.Unsafe<Scope>(Type.String({ minLength: 1, maxLength: 128, format: "scope" })), { maxItems: 64 });

const actorOf = (caller: CallerSession) => actorOfGrant(caller.grant);

/** Non-admin sessions admitted by a device token see only their own device. */
function visibleTo(caller: CallerSession): (deviceId: string) => boolean {
  const actor = actorOf(caller);
  return (deviceId) => mayActOn(actor, deviceId);
}

/**
 * The store changed: the gateway reads the change (events, closed sessions)
 * on the next turn of the event loop, once the caller's reply has been
 * written. A device rotating its own token must get the new one before the
 * session of the old one is closed; revocations are not held back by anything
 * a client does.
 */
async function changed<T>(services: MethodServices, result: Promise<Result<T>>): Promise<Result<T>> {
  const r = await result;
  if (r.ok) setImmediate(() => services.storeChanged());
  return r;
}

export const devicePairList = defineMethod({
  name: "device.pair.list",
  requires: PAIRING,
  params: ClosedObject({}),
  async handler(_p, caller, services) {
    const now = services.clock.now();
    const visible = visibleTo(caller);
    const pending = (await services.store.listPendingRequests()).filter((p) => p.expiresAtMs > now && visible(p.deviceId));
    const paired = (await services.store.listPairedDevices()).filter((d) => visible(d.deviceId));
    return ok({ pending: pending.map(pendingToWire), paired: paired.map(pairedToWire) });
  },
});

export const devicePairApprove = defineMethod({
  name: "device.pair.approve",
  requires: PAIRING,
  // `scopes` (gatewarden's extension): approve a subset of what was asked.
  params: ClosedObject({ requestId: id, scopes: Type.Optional(scopes) }),
  async handler(p, caller, services) {
    const r = await changed(services, approvePairing(services.store, p.requestId, actorOf(caller), services.clock.now(), p.scopes));
    return r.ok ? ok({ requestId: r.value.requestId, device: pairedToWire(r.value.device) }) : r;
  },
});

export const devicePairReject = defineMethod({
  name: "device.pair.reject",
  requires: PAIRING,
  params: ClosedObject({ requestId: id }),
  handler: (p, caller, services) => changed(services, rejectPairing(services.store, p.requestId, actorOf(caller), services.clock.now())),
});

export const devicePairRemove = defineMethod({
  name: "device.pair.remove",
  requires: PAIRING,
  params: ClosedObject({ deviceId: id }),
  handler: (p, caller, services) => changed(services, removeDevice(services.store, p.deviceId, actorOf(caller), services.clock.now())),
});

export const deviceTokenRotate = defineMethod({
  name: "device.token.rotate",
  requires: PAIRING,
  params: ClosedObject({ deviceId: id, role, scopes: Type.Optional(scopes) }),
  async handler(p, caller, services) {
    const params = { deviceId: p.deviceId, role: p.role, ...(p.scopes ? { scopes: p.scopes } : {}) };
    return changed(services, rotateDeviceToken(services.store, params, actorOf(caller), { nowMs: services.clock.now(), random: services.random }));
  },
});

export const deviceTokenRevoke = defineMethod({
  name: "device.token.revoke",
  requires: PAIRING,
  params: ClosedObject({ deviceId: id, role }),
  async handler(p, caller, services) {
    return changed(services, revokeDeviceToken(services.store, { deviceId: p.deviceId, role: p.role }, actorOf(caller), services.clock.now()));
  },
});

export const DEVICE_METHODS = [devicePairList, devicePairApprove, devicePairReject, devicePairRemove, deviceTokenRotate, deviceTokenRevoke];
