import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { openConnect, pairDevice, SecretLedger } from "../support/adversarial.js";
import { metricsUrlOf, sample, scrape } from "../support/metrics-scrape.js";

// The Prometheus endpoint of a real gateway process, scraped over HTTP as
// Prometheus (or curl) would, before and after real handshakes.

const TOKEN = "metrics-test-shared-token-0123456789";
let gw: GatewayProcess;
let metricsUrl = "";

before(async () => {
  gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: TOKEN }, args: ["--metrics-port", "0"], config: { rateLimit: { maxFailures: 2 } } });
  metricsUrl = await metricsUrlOf(gw);
});
after(async () => {
  await gw.stop();
});

describe("metrics endpoint", () => {
  it("handshake, pairing, connection and lockout counters move with real traffic, and the histogram counts handshakes", async () => {
    const before = await scrape(metricsUrl);
    const ledger = new SecretLedger();
    const device = createTestDevice();
    await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    const { client, reply } = await openConnect(gw, { auth: { token: TOKEN } }, ledger);
    assert.equal(reply.ok, true);
    for (let i = 0; i < 2; i++) {
      const bad = await openConnect(gw, { auth: { token: `wrong-token-${i}-0123456789` } }, ledger, viaProxy("203.0.113.44"));
      await bad.client.closed;
    }
    // The CLI's approval reaches the gateway through its change poll (250 ms).
    let afterText = await scrape(metricsUrl);
    const delta = (name: string, labels: Record<string, string> = {}) => sample(afterText, name, labels) - sample(before, name, labels);
    for (let i = 0; i < 60 && delta("gatewarden_pairing_requests_total", { outcome: "approved" }) < 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      afterText = await scrape(metricsUrl);
    }
    assert.equal(delta("gatewarden_handshakes_total", { outcome: "pairing-required", code: "PAIRING_REQUIRED" }), 1);
    assert.equal(delta("gatewarden_handshakes_total", { outcome: "admit", code: "OK" }), 2);
    assert.equal(delta("gatewarden_handshakes_total", { outcome: "reject", code: "AUTH_TOKEN_MISMATCH" }), 2);
    assert.equal(delta("gatewarden_handshake_duration_seconds_count", { outcome: "admit" }), 2);
    assert.equal(delta("gatewarden_pairing_requests_total", { outcome: "requested" }), 1);
    assert.equal(delta("gatewarden_pairing_requests_total", { outcome: "approved" }), 1);
    assert.equal(delta("gatewarden_lockouts_total"), 1);
    assert.equal(sample(afterText, "gatewarden_locked_keys"), 1);
    assert.equal(sample(afterText, "gatewarden_connections", { state: "session" }), 1, "the open session");
    assert.ok(delta("gatewarden_store_operation_duration_seconds_count", { operation: "transact" }) >= 2, "the pairing request and the approval's token issue");
    assert.ok(sample(afterText, "gatewarden_process_resident_memory_bytes") > 0);
    client.close();
  });

  it("serves /metrics only, on its own listener: the gateway's port does not answer it, and nothing else is served there", async () => {
    const other = await fetch(metricsUrl.replace("/metrics", "/"));
    assert.equal(other.status, 404);
    const post = await fetch(metricsUrl, { method: "POST" });
    assert.equal(post.status, 404);
    const onGateway = await fetch(`http://127.0.0.1:${gw.port}/metrics`);
    assert.notEqual(onGateway.status, 200);
    assert.doesNotMatch(await onGateway.text(), /gatewarden_handshakes_total/);
  });
});
