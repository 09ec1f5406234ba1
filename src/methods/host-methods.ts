import { Type } from "@sinclair/typebox";
import { ClosedObject } from "../protocol/schema.js";
import { ok } from "../result.js";
import { defineMethod } from "./registry.js";

// Read methods the official CLI calls while rendering `openclaw status` and
// `openclaw system …` (spec §15). They describe what a full OpenClaw host runs
// behind its gateway: messaging channels, agent heartbeats, its config file.
// gatewarden is only the front door and hosts none of them, so each answer is
// the true one — empty, null, absent — in the shape the CLI reads, rather than
// an "unknown method" error that the CLI reports as a broken gateway.

export const channelsStatus = defineMethod({
  name: "channels.status",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({
    probe: Type.Optional(Type.Boolean()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    // protocol 4: ask for one channel only
    channel: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  }),
  handler: async (_p, _caller, services) =>
    ok({
      ts: services.clock.now(),
      channelOrder: [],
      channelLabels: {},
      channels: {},
      channelAccounts: {},
      channelDefaultAccountId: {},
    }),
});

export const lastHeartbeat = defineMethod({
  name: "last-heartbeat",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({}),
  // No agents run here, so no heartbeat has ever fired: upstream's "none yet" answer.
  handler: async () => ok(null),
});

export const configGet = defineMethod({
  name: "config.get",
  requires: { kind: "scope", scope: "operator.read" },
  params: ClosedObject({}),
  // There is no OpenClaw config file on this host; gatewarden's own settings are
  // not in OpenClaw's schema and are not exposed here.
  handler: async () =>
    ok({
      path: null,
      exists: false,
      valid: true,
      raw: null,
      parsed: null,
      config: {},
      issues: [],
      warnings: [],
      legacyIssues: [],
    }),
});

export const HOST_METHODS = [channelsStatus, lastHeartbeat, configGet];
