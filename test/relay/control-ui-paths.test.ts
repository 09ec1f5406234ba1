import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isControlUiFile, isControlUiRoute } from "../../src/relay/control-ui-proxy.js";
import { upstreamLabel } from "../../src/relay/upstream-relay.js";

// What of the upstream's HTTP surface gatewarden passes on (the Control UI's
// files and routes only), and how a client session is labelled upstream.

describe("the Control UI paths gatewarden passes on", () => {
  it("the UI's page, static files and routes", () => {
    for (const p of ["/", "/index.html", "/assets/index-DsEuFQRE.js", "/assets/core.css", "/fonts/dm-sans-latin.woff2", "/file-icons/compact/light/ts.svg", "/sw.js", "/manifest.webmanifest"]) {
      assert.ok(isControlUiFile(p), p);
    }
    for (const p of ["/chat", "/sessions/main", "/agents/"]) assert.ok(isControlUiRoute(p), p);
  });

  it("nothing else: the upstream's endpoints, dot segments, hidden files, other file types", () => {
    for (const p of ["/__openclaw/control-ui-config.json", "/avatar/main", "/api/status", "/assets/../healthz", "/assets/.env", "/fonts/x.json", "/secrets.json", "/assets", "//evil.test/x.js"]) {
      assert.ok(!isControlUiFile(p) && !isControlUiRoute(p), p);
    }
    for (const p of ["/avatar", "/api/x", "/approvals", "/healthz", "/__openclaw/x", "/chat.json"]) assert.ok(!isControlUiRoute(p), p);
  });
});

describe("the upstream label of a client session", () => {
  it("a browser client is a CLI upstream (gatewarden already checked its Origin), always on gatewarden's platform; version and name kept", () => {
    const ui = upstreamLabel({ id: "openclaw-control-ui", mode: "webchat", version: "2026.9.6", platform: "Linux x86_64", displayName: "UI" });
    assert.deepEqual(ui, { id: "cli", mode: "cli", version: "2026.9.6", platform: process.platform, displayName: "UI" });
    const cli = upstreamLabel({ id: "cli", mode: "cli", version: "1", platform: "darwin" });
    assert.deepEqual(cli, { id: "cli", mode: "cli", version: "1", platform: process.platform });
    assert.equal(upstreamLabel({ id: "gateway-client", mode: "backend", version: "1", platform: "linux" }).mode, "backend", "labels stay labels: they grant nothing at gatewarden");
  });
});
