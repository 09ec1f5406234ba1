import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import {
  COMPAT_GATEWAY_HOST,
  OpenclawCli,
  admissionAudits,
  compatTarget,
  describeRun,
  jsonOutput,
  printedRequestId,
  unavailableReason,
} from "./openclaw-cli.js";

// The published OpenClaw CLI 2026.9.6 (protocol 4, Node 24) against a real
// gatewarden process on loopback.
//
// This CLI drops its device identity when the gateway URL is loopback and a
// shared token is configured, and asks the server to trust the scopes it
// claims (upstream keeps them for local `cli` clients). gatewarden grants
// nothing on a claim, so such a session has no scopes: `health` works, the
// rest is refused. Addressed by a LAN-style name (resolved to 127.0.0.1 by the
// sandbox preload) the CLI presents its device, as it does from an operator's
// own machine, and every scope it gets is one an operator approved.

const target = compatTarget("2026.9.6");
const skip = unavailableReason(target);

interface PairingList {
  pending: { requestId: string; deviceId: string; reason?: string; scopes?: string[] }[];
  paired: { deviceId: string; scopes?: string[] }[];
}

describe(`openclaw ${target.openclaw} CLI (protocol ${target.protocol}) against gatewarden`, { skip }, () => {
  let gw: GatewayProcess;
  let operator: OpenclawCli;
  let loopbackUrl: string;
  let lanUrl: string;
  let token: string;

  before(async () => {
    gw = await startGatewayProcess();
    loopbackUrl = `ws://127.0.0.1:${gw.port}`;
    lanUrl = `ws://${COMPAT_GATEWAY_HOST}:${gw.port}`;
    token = gw.token!;
    operator = new OpenclawCli(target);
  });
  after(async () => {
    await gw?.stop();
    operator?.dispose();
  });

  const pending = (): PairingList["pending"] => {
    const listed = gw.cli(["devices", "list", "--json"]);
    assert.equal(listed.code, 0, listed.stderr);
    return (JSON.parse(listed.stdout) as PairingList).pending;
  };

  it("negotiates protocol 4: `gateway call health` over loopback with the shared token is admitted without a device and with no scopes", async () => {
    const r = await operator.run(["gateway", "call", "health", "--url", loopbackUrl, "--token", token, "--json"]);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(jsonOutput<{ ok: boolean }>(r).ok, true);
    const audit = admissionAudits(gw.logLines()).filter((a) => a.clientVersion === target.openclaw);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]?.decision, "admit");
    assert.equal(audit[0]?.protocol, 4);
    assert.deepEqual(audit[0]?.requestedScopes, ["operator.read"]);
    assert.deepEqual(audit[0]?.scopes, [], "a device-less shared-token session gets no scopes");
    assert.equal(audit[0]?.claimedDevice, undefined, "this CLI sends no device identity to a loopback URL");
  });

  it("a scope the device-less loopback CLI only claims is not granted: `openclaw devices list` is refused with missing scope operator.pairing", async () => {
    const r = await operator.run(["devices", "list", "--url", loopbackUrl, "--token", token, "--json"]);
    assert.notEqual(r.code, 0, describeRun(r));
    assert.match(`${r.stdout}\n${r.stderr}`, /missing scope: operator\.pairing/, describeRun(r));
    assert.deepEqual(pending(), [], "and no pairing request was created: there was no device to pair");
  });

  it("on loopback, a backend credential an operator registered for the CLI admits it without a device, within that credential's scopes only", async () => {
    const added = gw.cli(["backends", "add", "local-openclaw-cli", "--scopes", "operator.read,operator.pairing", "--json"]);
    assert.equal(added.code, 0, added.stderr);
    const { secret } = JSON.parse(added.stdout) as { secret: string };
    const listed = await operator.run(["devices", "list", "--url", loopbackUrl, "--token", secret, "--json"]);
    assert.equal(listed.code, 0, describeRun(listed));
    assert.ok(Array.isArray(jsonOutput<PairingList>(listed).paired));
    const audit = admissionAudits(gw.logLines()).filter((a) => a.principal === "local-openclaw-cli" && a.decision === "admit");
    assert.ok(audit.length >= 1);
    assert.equal(audit.at(-1)?.evidence, "backend");
    for (const scope of audit.at(-1)?.scopes ?? []) assert.ok(["operator.read", "operator.pairing"].includes(scope), `granted ${scope}`);
    assert.equal(gw.cli(["backends", "revoke", "local-openclaw-cli"]).code, 0);
  });

  it("addressed by a LAN name the CLI presents its device: `openclaw system presence` leaves a pending request and is admitted with operator.read once `gatewarden devices approve` approves it", async () => {
    const call = ["system", "presence", "--url", lanUrl, "--token", token, "--json"];
    const refused = await operator.run(call);
    assert.notEqual(refused.code, 0, describeRun(refused));
    const requestId = printedRequestId(refused);
    assert.ok(requestId, describeRun(refused));
    const request = pending().find((p) => p.requestId === requestId);
    assert.equal(request?.reason, "not-paired");
    assert.deepEqual(request?.scopes, ["operator.read"], "this CLI asks for the least scope of the one method it calls");

    assert.equal(gw.cli(["devices", "approve", "--yes", requestId]).code, 0);
    const admitted = await operator.run(call);
    assert.equal(admitted.code, 0, describeRun(admitted));
    assert.ok(Array.isArray(jsonOutput<unknown>(admitted)), "system-presence answers a list");
    const audit = admissionAudits(gw.logLines()).filter((a) => a.deviceId === request?.deviceId && a.decision === "admit");
    assert.deepEqual(audit.at(-1)?.scopes, ["operator.read"]);
    assert.equal(audit.at(-1)?.authMethod, "token");
  });

  it("`openclaw devices list` from that device needs operator.pairing: a scope upgrade that only an operator's second approval grants, after which it lists gatewarden's devices", async () => {
    const call = ["devices", "list", "--url", lanUrl, "--token", token, "--json"];
    const refused = await operator.run(call);
    assert.notEqual(refused.code, 0, describeRun(refused));
    assert.match(`${refused.stdout}\n${refused.stderr}`, /scope upgrade pending approval/, describeRun(refused));
    const requestId = printedRequestId(refused);
    assert.ok(requestId, describeRun(refused));
    const upgrade = pending().find((p) => p.requestId === requestId);
    assert.equal(upgrade?.reason, "scope-upgrade");

    assert.equal(gw.cli(["devices", "approve", "--yes", requestId]).code, 0);
    const listed = await operator.run(call);
    assert.equal(listed.code, 0, describeRun(listed));
    const list = jsonOutput<PairingList>(listed);
    const me = list.paired.find((p) => p.deviceId === upgrade?.deviceId);
    assert.deepEqual(me?.scopes, ["operator.pairing", "operator.read"], "exactly what was approved, nothing the CLI merely asked for");
  });

  it("`openclaw status` with a remote-gateway config reaches gatewarden over protocol 4, authenticates with the token and renders the summary", async () => {
    operator.useRemoteGateway(lanUrl, token);
    const json = await operator.run(["status", "--json"]);
    assert.equal(json.code, 0, describeRun(json));
    const summary = jsonOutput<{ gateway: { reachable: boolean; error: string | null; url: string } }>(json);
    assert.equal(summary.gateway.reachable, true, describeRun(json));
    assert.equal(summary.gateway.error, null);
    assert.equal(summary.gateway.url, lanUrl);

    const text = await operator.run(["status"]);
    assert.equal(text.code, 0, describeRun(text));
    // The table wraps long cells; read it with the box drawing folded away.
    const flat = text.stdout.replace(/[│\s]+/g, " ");
    assert.match(flat, /Gateway remote · ws:\/\/gatewarden-compat\.local:\d+ \(config gateway\.remote\.url\) · reachable [\d.]+m?s · auth token/, describeRun(text));

    const probe = admissionAudits(gw.logLines()).filter((a) => a.clientMode === "probe" && a.decision === "admit");
    assert.ok(probe.length >= 1);
    assert.equal(probe.at(-1)?.protocol, 4);
    assert.deepEqual(probe.at(-1)?.scopes, ["operator.read"], "the probe asks for operator.read and gets exactly that");
  });
});
