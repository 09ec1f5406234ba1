import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  SecretLedger,
  assertDevicesUnchanged,
  assertLogsHoldNoSecret,
  assertNoTraceOf,
  assertRefused,
  delay,
  detailCode,
  helloAuth,
  listDevices,
  openConnect,
  pairDevice,
} from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { BIN, startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// A34–A39: locality comes from the TCP peer; forwarding headers count only
// from a configured trusted proxy and never make a connection local; a browser
// Origin must be allowlisted exactly or be a loopback page on a direct loopback
// connection; an open gateway never listens beyond loopback.

const SPOOFS: Record<string, string>[] = [
  { "x-forwarded-for": "127.0.0.1" },
  { "x-real-ip": "127.0.0.1" },
  { forwarded: "for=127.0.0.1" },
  { "x-forwarded-for": "::1", "x-forwarded-host": "localhost", "x-forwarded-proto": "http" },
];

const SILENT = { pairing: { silentLocal: { enabled: true } } };

describe("A34–A38 locality, proxies and origins over real sockets", () => {
  const ledger = new SecretLedger();
  let silent: GatewayProcess;
  let proxied: GatewayProcess;
  let dual: GatewayProcess;
  let allowlist: GatewayProcess;

  before(async () => {
    [silent, proxied, dual, allowlist] = await Promise.all([
      startGatewayProcess({ config: SILENT }),
      // a reverse proxy on this host at 127.0.35.1
      startGatewayProcess({ config: { ...SILENT, trustedProxies: ["127.0.35.1"] } }),
      // dual-stack: IPv4 peers arrive as ::ffff:a.b.c.d
      startGatewayProcess({ config: { ...SILENT, host: "::" } }),
      startGatewayProcess({ config: { allowedOrigins: ["https://control.example.com"] } }),
    ]);
    ledger.add(silent.token, proxied.token, dual.token, allowlist.token);
  });
  after(async () => {
    await Promise.all([silent.stop(), proxied.stop(), dual.stop(), allowlist.stop()]);
  });

  it("A34 X-Forwarded-For / X-Real-IP / Forwarded: for=127.0.0.1 from an untrusted peer never make it local: no silent pairing", async () => {
    const before = listDevices(silent);
    const devices: ReturnType<typeof createTestDevice>[] = [];
    for (const headers of SPOOFS) {
      const device = createTestDevice();
      devices.push(device);
      const { client, reply } = await openConnect(silent, { device, scopes: ["operator.read"], auth: { token: silent.token! } }, ledger, { headers, localAddress: "127.0.34.1" });
      await assertRefused(client, reply, "PAIRING_REQUIRED");
    }
    const after = listDevices(silent);
    assert.deepEqual(after.paired, before.paired, "nothing was silently paired");
    for (const p of after.pending.filter((x) => devices.some((d) => d.id === x.deviceId))) {
      assert.equal(p.requesterIp ?? p.remoteIp, "127.0.34.1", "the request is recorded against the TCP peer, not the header");
    }
    // the positive control: the same connect without the headers is silently paired
    const control = await openConnect(silent, { device: createTestDevice(), scopes: ["operator.read"], auth: { token: silent.token! } }, ledger, { localAddress: "127.0.34.1" });
    ledger.add(helloAuth(control.reply).deviceToken);
    control.client.close();
  });

  it("A34 a loopback Origin on a connection with spoofed forwarding headers is not a local page", async () => {
    const { client, reply } = await openConnect(silent, { auth: { token: silent.token! } }, ledger, {
      headers: { origin: "http://localhost:18789", "x-forwarded-for": "127.0.0.1" },
      localAddress: "127.0.34.2",
    });
    await assertRefused(client, reply, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
  });

  it("A34 the failure budget is keyed on the TCP peer whatever the forwarding headers say", async () => {
    // A gateway of its own: every loopback address shares one budget (A57), and this test spends it.
    const guessed = await startGatewayProcess();
    ledger.add(guessed.token);
    try {
      const codes: unknown[] = [];
      for (let i = 0; i < 14; i++) {
        const variants: Record<string, string>[] = [{ "x-forwarded-for": `203.0.113.${i}` }, { "x-real-ip": `198.51.100.${i}` }, { forwarded: `for=192.0.2.${i}` }, { "x-forwarded-for": "127.0.0.1" }];
        const headers = variants[i % 4]!;
        const { client, reply } = await openConnect(guessed, { auth: { token: `gwt_spoofed-guess-${i}-4f0c2a` } }, ledger, { headers, localAddress: "127.0.34.3" });
        codes.push(detailCode(reply));
        client.close();
      }
      assert.deepEqual(codes.slice(0, 10), Array(10).fill("AUTH_TOKEN_MISMATCH"));
      assert.deepEqual(codes.slice(10), Array(4).fill("AUTH_RATE_LIMITED"));
      // A client behind the trusted test proxy is another peer: naming the locked address in a header locks it out of nothing.
      const other = await openConnect(guessed, { maxProtocol: 4, auth: { token: guessed.token! } }, ledger, viaProxy("198.51.100.77"));
      assert.equal(helloAuth(other.reply).method, "token", "claiming the locked address in a header does not lock another peer out");
      other.client.close();
    } finally {
      await guessed.stop();
    }
  });

  it("A35 a trusted proxy forwarding a loopback client address is not direct_local: silent pairing does not apply", async () => {
    const before = listDevices(proxied);
    for (const xff of ["127.0.0.1", "::1", "127.0.0.1, 127.0.35.1"]) {
      const device = createTestDevice();
      const { client, reply } = await openConnect(proxied, { device, scopes: ["operator.read"], auth: { token: proxied.token! } }, ledger, {
        headers: { "x-forwarded-for": xff, "x-forwarded-proto": "https" },
        localAddress: "127.0.35.1",
      });
      await assertRefused(client, reply, "PAIRING_REQUIRED");
    }
    assert.deepEqual(listDevices(proxied).paired, before.paired, "nothing was silently paired");
  });

  it("A35 behind a trusted proxy the forwarded client address is what is recorded and rate-limited", async () => {
    const device = createTestDevice();
    const asked = await openConnect(proxied, { device, scopes: ["operator.read"], auth: { token: proxied.token! } }, ledger, {
      headers: { "x-forwarded-for": "203.0.113.9" },
      localAddress: "127.0.35.1",
    });
    await assertRefused(asked.client, asked.reply, "PAIRING_REQUIRED");
    const pending = listDevices(proxied).pending.find((p) => p.deviceId === device.id);
    assert.equal(pending?.remoteIp ?? pending?.requesterIp, "203.0.113.9");

    const codes: unknown[] = [];
    for (let i = 0; i < 11; i++) {
      const { client, reply } = await openConnect(proxied, { auth: { token: `gwt_proxied-guess-${i}-8b3e` } }, ledger, {
        headers: { "x-forwarded-for": "203.0.113.10" },
        localAddress: "127.0.35.1",
      });
      codes.push(detailCode(reply));
      client.close();
    }
    assert.equal(codes.at(-1), "AUTH_RATE_LIMITED");
    const neighbour = await openConnect(proxied, { maxProtocol: 4, auth: { token: proxied.token! } }, ledger, { headers: { "x-forwarded-for": "203.0.113.11" }, localAddress: "127.0.35.1" });
    assert.equal(helloAuth(neighbour.reply).method, "token", "another client behind the same proxy is not locked out");
    neighbour.client.close();
  });

  it("A36 a plain IPv6 ::1 peer is loopback too", async () => {
    const device = createTestDevice();
    const c = await TestClient.open(`ws://[::1]:${dual.port}`);
    const params = c.buildConnect({ device, scopes: ["operator.read"], auth: { token: dual.token! } });
    ledger.addConnectParams(params);
    const auth = helloAuth(await c.request("connect", params));
    ledger.add(auth.deviceToken);
    assert.deepEqual(auth.scopes, ["operator.read"], "silently paired as a direct loopback peer");
    c.close();
  });

  it("A36 an IPv4-mapped ::ffff:127.x peer is classified as loopback, recorded in canonical form, and shares one failure budget", async () => {
    // silent pairing applies exactly as for a plain IPv4 loopback peer
    const device = createTestDevice();
    const { client, reply } = await openConnect(dual, { device, scopes: ["operator.read"], auth: { token: dual.token! } }, ledger, { localAddress: "127.0.36.1" });
    const auth = helloAuth(reply);
    ledger.add(auth.deviceToken);
    assert.deepEqual(auth.scopes, ["operator.read"]);
    client.close();
    const record = listDevices(dual).paired.find((p) => p.deviceId === device.id) as { remoteIp?: string } | undefined;
    assert.equal(record?.remoteIp, "127.0.36.1", "stored unmapped");

    // a spoofed header does not turn a mapped loopback peer into a bypass
    const spoofed = createTestDevice();
    const s = await openConnect(dual, { device: spoofed, scopes: ["operator.read"], auth: { token: dual.token! } }, ledger, { localAddress: "127.0.36.1", headers: { "x-forwarded-for": "127.0.0.1" } });
    await assertRefused(s.client, s.reply, "PAIRING_REQUIRED");

    // one key per client: guesses over the mapped form and the plain IPv4 URL count together
    const codes: unknown[] = [];
    for (let i = 0; i < 12; i++) {
      const url = i % 2 ? dual.url : `ws://[::ffff:127.0.0.1]:${dual.port}`;
      const c = await TestClient.open(url, { localAddress: i % 2 ? "127.0.36.2" : "::ffff:127.0.36.2" });
      const params = c.buildConnect({ auth: { token: `gwt_mapped-guess-${i}-1d7a` } });
      ledger.addConnectParams(params);
      codes.push(detailCode(await c.request("connect", params)));
      c.close();
    }
    assert.deepEqual(codes.slice(0, 10), Array(10).fill("AUTH_TOKEN_MISMATCH"));
    assert.deepEqual(codes.slice(10), ["AUTH_RATE_LIMITED", "AUTH_RATE_LIMITED"]);
    await delay(100);
    // clientIp is written only when a trusted proxy made it differ from peer.
    const audits = dual.logLines().filter((l) => l.audit === "admission" && String(l.peer).endsWith("127.0.36.2"));
    assert.deepEqual([...new Set(audits.map((l) => l.peer))], ["127.0.36.2"], "the audit log names the canonical address");
    assert.deepEqual([...new Set(audits.map((l) => l.clientIp))], [undefined]);
  });

  it("A37 a page on https://evil.example holding a valid stored credential is refused with CONTROL_UI_ORIGIN_NOT_ALLOWED, close 1008", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(silent, device, ledger, { scopes: ["operator.read"] });
    const before = listDevices(silent);
    const attempts: Parameters<typeof openConnect>[1][] = [
      { device, scopes: ["operator.read"], auth: { deviceToken } },
      { clientId: "openclaw-control-ui", clientMode: "webchat", device, scopes: ["operator.read"], auth: { deviceToken } },
      { auth: { token: silent.token! } },
      { device: createTestDevice(), auth: { token: silent.token! } },
    ];
    for (const opts of attempts) {
      const { client, reply } = await openConnect(silent, opts, ledger, { headers: { origin: "https://evil.example" } });
      assert.equal(reply.error?.details?.reason, "origin not allowed");
      await assertRefused(client, reply, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
    }
    assertDevicesUnchanged(silent, before, "no request, no pairing, no token");
  });

  it("A38 Origin: null and look-alikes of loopback or of an allowlisted origin are refused", async () => {
    const device = createTestDevice();
    const cases: [GatewayProcess, string][] = [
      [silent, "null"],
      [silent, "NULL"],
      [silent, "http://127.0.0.1.evil.example"],
      [silent, "http://localhost.evil.example:18789"],
      [silent, "http://evil.example@127.0.0.1"],
      [silent, "http://127.0.0.1/"],
      [silent, "file://"],
      [silent, "chrome-extension://abcdef"],
      [allowlist, "https://control.example.com.evil.example"],
      [allowlist, "https://control.example.co"],
      [allowlist, "http://control.example.com"],
      [allowlist, "https://control.example.com:8443"],
      [allowlist, "https://evil-control.example.com"],
    ];
    for (const [g, origin] of cases) {
      const { client, reply } = await openConnect(g, { device, scopes: ["operator.read"], auth: { token: g.token! } }, ledger, { headers: { origin } });
      await assertRefused(client, reply, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
    }
    assertNoTraceOf(silent, device.id);
    assertNoTraceOf(allowlist, device.id);
    // positive controls: the exact allowlisted origin (any case) and a real loopback page
    for (const [g, origin] of [
      [allowlist, "https://CONTROL.example.com"],
      [silent, "http://localhost:5173"],
    ] as const) {
      const ok = await openConnect(g, { auth: { token: g.token! } }, ledger, { headers: { origin } });
      assert.equal(ok.reply.ok, true, origin);
      ok.client.close();
    }
  });

  it("A47 nothing the locality and origin attacks presented appears in the gateways' logs", async () => {
    for (const g of [silent, proxied, dual, allowlist]) await assertLogsHoldNoSecret(g, ledger);
  });
});

describe("A39 an open gateway never binds beyond loopback", () => {
  function serve(args: string[], env: Record<string, string> = {}, config?: Record<string, unknown>) {
    const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-a39-"));
    try {
      if (config) writeFileSync(join(stateDir, "gatewarden.json"), JSON.stringify(config), { mode: 0o600 });
      return spawnSync(process.execPath, [BIN, "serve", "--port", "0", ...args], {
        env: { ...process.env, GATEWARDEN_STATE_DIR: stateDir, ...env },
        encoding: "utf8",
        timeout: 15_000,
      });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }

  it("A39 gatewarden serve --auth-mode none --host 0.0.0.0 exits non-zero with a clear error and never listens", () => {
    const attempts: [string, ReturnType<typeof serve>][] = [
      ["flags 0.0.0.0", serve(["--auth-mode", "none", "--host", "0.0.0.0"])],
      ["flags ::", serve(["--auth-mode", "none", "--host", "::"])],
      ["flags private address", serve(["--auth-mode", "none", "--host", "10.1.2.3"])],
      ["flags non-canonical loopback", serve(["--auth-mode", "none", "--host", "127.1"])],
      ["environment", serve([], { GATEWARDEN_AUTH_MODE: "none", GATEWARDEN_HOST: "0.0.0.0" })],
      ["config file", serve([], {}, { host: "0.0.0.0", auth: { mode: "none" } })],
    ];
    for (const [how, r] of attempts) {
      assert.notEqual(r.status, 0, how);
      assert.notEqual(r.status, null, `${how}: it exited by itself`);
      assert.match(r.stderr, /auth mode none is only allowed on a loopback address/, how);
      assert.doesNotMatch(r.stdout, /listening/, how);
    }
  });
});
