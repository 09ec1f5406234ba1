import { Type } from "@sinclair/typebox";
import { satisfies } from "../admission/scopes.js";
import { ClosedObject } from "../protocol/schema.js";
import { ok } from "../result.js";
import { defineMethod } from "./registry.js";

// health, status, presence and identity (spec §15). gatewarden runs no agents
// or channels, so those parts of the upstream shapes are empty, not invented.

export const health = defineMethod({
  name: "health",
  requires: { kind: "open" },
  params: ClosedObject({ probe: Type.Optional(Type.Boolean()) }),
  async handler(_p, _caller, services) {
    const started = services.clock.now();
    // A real check of the store, so health says something true.
    await services.store.latestChangeId();
    return ok({
      ok: true,
      ts: started,
      durationMs: services.clock.now() - started,
      channels: {},
      channelOrder: [],
      channelLabels: {},
      heartbeatSeconds: 0,
      defaultAgentId: "main",
      agents: [],
      sessions: { path: "", count: 0, recent: [] },
    });
  },
});

export const status = defineMethod({
  name: "status",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({}),
  async handler(_p, caller, services) {
    const now = services.clock.now();
    const admin = satisfies(caller.grant.scopes, "operator.admin");
    const counts = services.sessionCounts();
    return ok({
      runtimeVersion: services.version,
      heartbeat: { defaultAgentId: "main", agents: [] },
      channelSummary: [],
      queuedSystemEvents: [],
      tasks: [],
      taskAudit: [],
      sessions: { paths: [], count: 0, defaults: { model: null, contextTokens: null }, recent: [], byAgent: [] },
      gateway: {
        uptimeMs: now - services.startedAtMs,
        sessions: counts,
        ...(admin
          ? {
              authMode: services.authMode,
              store: services.store.kind,
              pendingPairingRequests: await services.store.countPendingRequests(),
              pairedDevices: (await services.store.listPairedDevices()).length,
            }
          : {}),
      },
    });
  },
});

export const systemPresence = defineMethod({
  name: "system-presence",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({}),
  handler: async (_p, _caller, services) => ok(services.presence()),
});

export const gatewayIdentity = defineMethod({
  name: "gateway.identity.get",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({}),
  handler: async (_p, _caller, services) => ok({ deviceId: services.identity.deviceId, publicKey: services.identity.publicKey }),
});

export const SYSTEM_METHODS = [health, status, systemPresence, gatewayIdentity];
