import type { OperatorScope } from "../protocol/enums.js";

// The method → required-scope table (spec §12.1), as data. A method absent
// from it needs operator.admin (default deny), whether or not it exists here.

const READ = [
  "assistant.media.get", "health", "diagnostics.stability", "doctor.memory.status", "doctor.memory.dreamDiary", "logs.tail",
  "channels.status", "status", "usage.status", "usage.cost", "tts.status", "tts.providers", "commands.list", "models.list",
  "models.authStatus", "tools.catalog", "tools.effective", "agents.list", "agent.identity.get", "skills.status", "skills.search",
  "skills.detail", "voicewake.get", "sessions.list", "sessions.get", "sessions.preview", "sessions.resolve",
  "sessions.compaction.list", "sessions.compaction.get", "sessions.subscribe", "sessions.unsubscribe",
  "sessions.messages.subscribe", "sessions.messages.unsubscribe", "sessions.usage", "sessions.usage.timeseries",
  "sessions.usage.logs", "cron.list", "cron.status", "cron.runs", "gateway.identity.get", "system-presence", "last-heartbeat",
  "node.list", "node.describe", "chat.history", "config.get", "config.schema.lookup", "talk.config", "agents.files.list",
  "agents.files.get",
] as const;

const WRITE = [
  "message.action", "send", "poll", "agent", "agent.wait", "wake", "talk.mode", "talk.realtime.session", "talk.speak",
  "tts.enable", "tts.disable", "tts.convert", "tts.setProvider", "voicewake.set", "node.invoke", "chat.send", "chat.abort",
  "sessions.create", "sessions.send", "sessions.steer", "sessions.abort", "sessions.compaction.branch",
  "doctor.memory.backfillDreamDiary", "doctor.memory.resetDreamDiary", "doctor.memory.resetGroundedShortTerm",
  "doctor.memory.repairDreamingArtifacts", "doctor.memory.dedupeDreamDiary", "push.test", "node.pending.enqueue",
] as const;

const APPROVALS = [
  "exec.approval.get", "exec.approval.list", "exec.approval.request", "exec.approval.waitDecision", "exec.approval.resolve",
  "plugin.approval.list", "plugin.approval.request", "plugin.approval.waitDecision", "plugin.approval.resolve",
] as const;

const PAIRING = [
  "node.pair.request", "node.pair.list", "node.pair.reject", "node.pair.verify", "node.pair.approve", "device.pair.list",
  "device.pair.approve", "device.pair.reject", "device.pair.remove", "device.token.rotate", "device.token.revoke", "node.rename",
] as const;

/** Methods only a `node` session may call. */
export const NODE_ONLY_METHODS: ReadonlySet<string> = new Set([
  "node.invoke.result", "node.event", "node.pending.drain", "node.canvas.capability.refresh", "node.pending.pull",
  "node.pending.ack", "skills.bins",
]);

/** Admin-only prefixes even when a method under them is listed elsewhere. */
const ADMIN_PREFIXES = ["config.", "exec.approvals.", "wizard.", "update.", "gatewarden."] as const;

const TABLE = new Map<string, OperatorScope>([
  ...READ.map((m) => [m, "operator.read"] as const),
  ...WRITE.map((m) => [m, "operator.write"] as const),
  ...APPROVALS.map((m) => [m, "operator.approvals"] as const),
  ...PAIRING.map((m) => [m, "operator.pairing"] as const),
]);

/** The operator scope a method requires. */
export function requiredScope(method: string): OperatorScope {
  const listed = TABLE.get(method);
  // config.get and config.schema.lookup are listed as read; other config.* are admin.
  if (listed) return listed;
  if (ADMIN_PREFIXES.some((p) => method.startsWith(p))) return "operator.admin";
  return "operator.admin";
}

/** Methods that every admitted session may call, whatever its role and scopes. */
export const OPEN_METHODS: ReadonlySet<string> = new Set(["health"]);
