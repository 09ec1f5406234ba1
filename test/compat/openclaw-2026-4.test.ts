import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CLI_DEFAULT_OPERATOR_SCOPES } from "../../src/protocol/enums.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import {
  OpenclawCli,
  admissionAudits,
  compatTarget,
  describeRun,
  jsonOutput,
  printedRequestId,
  unavailableReason,
} from "./openclaw-cli.js";

// The published OpenClaw CLI 2026.4.24 (protocol 3, Node 22) against a real
// gatewarden process on loopback. This CLI presents its device identity on
// every gateway call, so pairing is driven through it directly.

const target = compatTarget("2026.4.24");
const skip = unavailableReason(target);

interface PairingList {
  pending: { requestId: string; deviceId: string; clientId?: string; scopes?: string[] }[];
  paired: { deviceId: string; scopes?: string[] }[];
}

describe(`openclaw ${target.openclaw} CLI (protocol ${target.protocol}) against gatewarden`, { skip }, () => {
  let gw: GatewayProcess;
  let operator: OpenclawCli;
  let url: string;
  let token: string;
  const sortedCliScopes = [...CLI_DEFAULT_OPERATOR_SCOPES].sort();

  before(async () => {
    gw = await startGatewayProcess();
    url = `ws://127.0.0.1:${gw.port}`;
    token = gw.token!;
    operator = new OpenclawCli(target);
  });
  after(async () => {
    await gw?.stop();
    operator?.dispose();
  });

  it("`gateway call health`: the first call leaves a pending request for the CLI's own device, and after `gatewarden devices approve` the same call is admitted with the approved scopes", async () => {
    const call = ["gateway", "call", "health", "--url", url, "--token", token, "--json"];
    const refused = await operator.run(call);
    assert.notEqual(refused.code, 0, describeRun(refused));
    assert.match(refused.stderr, /pairing required/, describeRun(refused));
    const requestId = printedRequestId(refused);
    assert.ok(requestId, describeRun(refused));

    const identity = operator.readJson("identity/device.json") as { deviceId: string } | undefined;
    assert.ok(identity?.deviceId, "the CLI created its device identity in its state dir");
    const listed = gw.cli(["devices", "list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    const request = (JSON.parse(listed.stdout) as PairingList).pending.find((p) => p.requestId === requestId);
    assert.ok(request, listed.stdout);
    assert.equal(request.deviceId, identity.deviceId);
    assert.equal(request.clientId, "cli");
    assert.deepEqual(request.scopes, sortedCliScopes, "the CLI asks for its six default operator scopes");

    const approved = gw.cli(["devices", "approve", "--yes", requestId]);
    assert.equal(approved.code, 0, approved.stderr);

    const admitted = await operator.run(call);
    assert.equal(admitted.code, 0, describeRun(admitted));
    const health = jsonOutput<{ ok: boolean; agents: unknown[] }>(admitted);
    assert.equal(health.ok, true);
    assert.deepEqual(health.agents, [], "gatewarden hosts no agents and says so");

    const audit = admissionAudits(gw.logLines()).filter((a) => a.deviceId === identity.deviceId && a.decision === "admit");
    assert.equal(audit.length, 1, "admitted once, after the approval");
    assert.deepEqual(audit[0]?.scopes, sortedCliScopes);
    assert.equal(audit[0]?.clientVersion, target.openclaw);
    assert.equal(audit[0]?.protocol, 3);

    // The CLI stores hello-ok.auth.scopes with its device token: it must be the session's effective scopes.
    const stored = operator.readJson("identity/device-auth.json") as { tokens: Record<string, { scopes: string[] }> } | undefined;
    assert.deepEqual(stored?.tokens.operator?.scopes, sortedCliScopes);
  });

  it("`openclaw status` with a remote-gateway config reaches gatewarden, authenticates with the token and renders the summary", async () => {
    operator.useRemoteGateway(url, token);
    const json = await operator.run(["status", "--json"]);
    assert.equal(json.code, 0, describeRun(json));
    const summary = jsonOutput<{ gateway: { reachable: boolean; error: string | null; url: string } }>(json);
    assert.equal(summary.gateway.reachable, true, describeRun(json));
    assert.equal(summary.gateway.error, null);
    assert.equal(summary.gateway.url, url);

    const text = await operator.run(["status"]);
    assert.equal(text.code, 0, describeRun(text));
    // The table wraps long cells; read it with the box drawing folded away.
    const flat = text.stdout.replace(/[│\s]+/g, " ");
    assert.match(flat, /Gateway remote · ws:\/\/127\.0\.0\.1:\d+ \(config gateway\.remote\.url\) · reachable [\d.]+m?s · auth token/, describeRun(text));

    // The status probe asks for operator.read only, and gets exactly that.
    const probe = admissionAudits(gw.logLines()).filter((a) => a.clientMode === "probe" && a.decision === "admit");
    assert.ok(probe.length >= 1);
    assert.equal(probe.at(-1)?.protocol, 3);
    assert.deepEqual(probe.at(-1)?.scopes, ["operator.read"]);
  });

  it("`openclaw devices list` shows gatewarden's pending and paired devices, and `openclaw devices approve` admits another device", async () => {
    const other = new OpenclawCli(target);
    try {
      const call = ["gateway", "call", "health", "--url", url, "--token", token, "--json"];
      const refused = await other.run(call);
      const requestId = printedRequestId(refused);
      assert.ok(requestId, describeRun(refused));
      const operatorDevice = (operator.readJson("identity/device.json") as { deviceId: string }).deviceId;

      const listed = await operator.run(["devices", "list", "--url", url, "--token", token, "--json"]);
      assert.equal(listed.code, 0, describeRun(listed));
      const list = jsonOutput<PairingList>(listed);
      assert.ok(list.pending.some((p) => p.requestId === requestId), listed.stdout);
      assert.ok(list.paired.some((p) => p.deviceId === operatorDevice), listed.stdout);

      const approved = await operator.run(["devices", "approve", requestId, "--url", url, "--token", token, "--json"]);
      assert.equal(approved.code, 0, describeRun(approved));

      const admitted = await other.run(call);
      assert.equal(admitted.code, 0, describeRun(admitted));
      const paired = (JSON.parse(gw.cli(["devices", "list", "--json"]).stdout) as PairingList).paired;
      const otherDevice = (other.readJson("identity/device.json") as { deviceId: string }).deviceId;
      assert.deepEqual(paired.find((p) => p.deviceId === otherDevice)?.scopes, sortedCliScopes);
    } finally {
      other.dispose();
    }
  });

  it("`openclaw system heartbeat last` gets gatewarden's truthful answer: no heartbeat has run", async () => {
    const r = await operator.run(["system", "heartbeat", "last", "--url", url, "--token", token, "--json"]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.stdout.trim(), "null");
  });
});
