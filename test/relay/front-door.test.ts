import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import type { Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SecretLedger, addBackend, detailCode, eventually, openConnect, pairDevice, rssKiB } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { OpenclawCli, admissionAudits, compatTarget, describeRun, jsonOutput, printedRequestId, unavailableReason, type CliResult } from "../compat/openclaw-cli.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { metricsUrlOf, sample, scrape } from "../support/metrics-scrape.js";
import { connectionsTo, pairGatewardenWith, startOpenclawUpstream, type OpenclawUpstream } from "../support/openclaw-upstream.js";
import type { Frame, TestClient } from "../support/protocol-client.js";

// Issue 15: gatewarden in front of a real OpenClaw gateway. Clients connect to
// gatewarden; what the upstream offers is relayed within the scopes gatewarden
// granted, checked by gatewarden before anything reaches the upstream.

const SHARED = "gatewarden-front-door-token-5c1e9a";
const MAX_BUFFERED = 1024 * 1024;

for (const version of ["2026.4.24", "2026.9.6"]) {
  const target = compatTarget(version);
  const skip = unavailableReason(target);

  describe(`gatewarden in front of OpenClaw ${version}`, { skip }, () => {
    const ledger = new SecretLedger();
    let upstream: OpenclawUpstream;
    let stateDir: string;
    let gw: GatewayProcess;
    /** The real OpenClaw CLI, pointed at gatewarden: reads, and (admin) what changes the upstream. */
    let operator: OpenclawCli;
    let admin: OpenclawCli;

    before(async () => {
      upstream = await startOpenclawUpstream(target, { logRequests: true });
      stateDir = mkdtempSync(join(tmpdir(), "gw-front-door-"));
      pairGatewardenWith(upstream, stateDir, BIN);
      // A 1 MiB bound (default 8 MiB) so that the slow-consumer test fills it with a few MB of upstream answers.
      gw = await startGatewayProcess({ stateDir, args: ["--upstream", upstream.url, "--metrics-port", "0"], env: { GATEWARDEN_TOKEN: SHARED }, config: { limits: { maxBufferedBytes: MAX_BUFFERED } } });
      ledger.add(SHARED);
    });
    after(async () => {
      operator?.dispose();
      admin?.dispose();
      await gw?.stop();
      await upstream?.stop();
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    });

    async function session(scopes: string[], token: string, extra: Record<string, unknown> = {}): Promise<{ client: TestClient; hello: Record<string, unknown> }> {
      const { client, reply } = await openConnect(gw, { scopes, auth: { token }, maxProtocol: 4, ...extra }, ledger);
      assert.equal(reply.ok, true, JSON.stringify(reply.error));
      return { client, hello: reply.payload as Record<string, unknown> };
    }

    it("a session holding operator.read reaches the upstream's read methods through gatewarden, and hello-ok advertises them", async () => {
      const reader = addBackend(gw, "fd-reader", ["operator.read"], ledger);
      const { client, hello } = await session(["operator.read"], reader);
      const methods = (hello.features as { methods: string[] }).methods;
      for (const m of ["sessions.list", "cron.list", "device.pair.list"]) assert.ok(methods.includes(m), m);
      // Methods only the upstream can answer, each answering without network (2026.4.24's models.list fetches a catalog).
      for (const method of ["health", "sessions.list", "cron.list", "channels.status", "tools.catalog"]) {
        const r = await client.request(method, {}, 30_000);
        assert.equal(r.ok, true, `${method}: ${JSON.stringify(r.error)}`);
      }
      client.close();
    });

    it("a paired device holding operator.read: a write, admin or pairing method is refused by gatewarden and never reaches the upstream", async () => {
      const device = createTestDevice();
      const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
      const { client } = await session(["operator.read"], "", { device, auth: { deviceToken } });
      const refused = [
        ["chat.send", "operator.write"],
        ["node.pair.approve", "operator.pairing"],
        ["cron.add", "operator.admin"],
        ["config.set", "operator.admin"],
      ] as const;
      for (const [method, scope] of refused) {
        const r = await client.request(method, {}, 10_000);
        assert.equal(r.ok, false);
        assert.equal(detailCode(r), "MISSING_SCOPE");
        assert.equal(r.error?.message, `missing scope: ${scope}`);
      }
      // A relayed read, as the control: the upstream logs every request it receives.
      assert.equal((await client.request("cron.status", {}, 30_000)).ok, true);
      await new Promise((r) => setTimeout(r, 500));
      const denied = gw.logLines().filter((l) => l.event === "method-denied").map((l) => l.method);
      const seen = upstream.output();
      assert.match(seen, /cron\.status/, "the upstream's request log works");
      for (const [method] of refused) {
        assert.ok(denied.includes(method), `gatewarden refused ${method} itself`);
        assert.ok(!seen.includes(method), `the upstream never saw ${method}`);
      }
      client.close();
    });

    it("the seed scenario through gatewarden (shared token, gateway-client/backend, asking for admin) gets no scopes and reaches nothing that needs one", async () => {
      const { client, hello } = await session(["operator.admin"], SHARED, { clientId: "gateway-client", clientMode: "backend" });
      assert.deepEqual((hello.auth as { scopes: string[] }).scopes, []);
      assert.equal((await client.request("health", {}, 30_000)).ok, true);
      const r = await client.request("sessions.list", {}, 10_000);
      assert.equal(detailCode(r), "MISSING_SCOPE");
      client.close();
    });

    const admits = (): number => admissionAudits(gw.logLines()).filter((a) => a.decision === "admit").length;

    /**
     * The real CLI, admitted by gatewarden: 2026.4.24 presents its device on
     * every call, so it pairs through gatewarden (`gatewarden devices approve`);
     * 2026.9.6 on loopback uses a backend credential an operator registered,
     * within that credential's scopes.
     */
    async function realCli(name: string, scopes: string[], release = target): Promise<OpenclawCli> {
      const cli = new OpenclawCli(release);
      const url = `ws://127.0.0.1:${gw.port}`;
      if (release.protocol === 3) {
        cli.useRemoteGateway(url, SHARED);
        const first = await cli.run(["gateway", "call", "health", "--json"]);
        const requestId = printedRequestId(first);
        assert.ok(requestId, describeRun(first));
        const approved = gw.cli(["devices", "approve", "--yes", requestId]);
        assert.equal(approved.code, 0, approved.stderr);
      } else {
        cli.useRemoteGateway(url, addBackend(gw, name, scopes, ledger));
      }
      return cli;
    }

    /** Run the CLI through gatewarden: it succeeds, prints JSON, and gatewarden admitted the session it used. */
    async function throughGatewarden(cli: OpenclawCli, args: string[]): Promise<CliResult> {
      const before = admits();
      const r = await cli.run([...args, "--json"], 90_000);
      assert.equal(r.code, 0, `${args.join(" ")}: ${describeRun(r)}`);
      // `logs --json` prints JSON lines, the others one JSON value.
      if (args[0] === "logs") JSON.parse(r.stdout.trim().split("\n")[0] ?? "");
      else jsonOutput<unknown>(r);
      await new Promise((res) => setTimeout(res, 100));
      assert.ok(admits() > before, `${args.join(" ")} went through gatewarden`);
      return r;
    }

    it("the real `openclaw` CLI runs what only the upstream can answer through gatewarden: cron, channels, logs, usage, sessions (and, on protocol 4, models)", async () => {
      operator = await realCli("cli-reader", ["operator.read"]);
      const commands = [
        ["cron", "list"],
        ["cron", "status"],
        ["channels", "status"],
        ["logs", "--limit", "5"],
        ["gateway", "usage-cost"],
        ["gateway", "call", "sessions.list"],
        // models.list needs the upstream's "published-model-catalog" capability, passed on in hello-ok; 2026.4.24's fetches a catalog (no network here).
        ...(target.protocol === 4 ? [["models", "list"]] : []),
      ];
      for (const args of commands) await throughGatewarden(operator, args);
      const cron = jsonOutput<{ enabled?: unknown }>(await throughGatewarden(operator, ["cron", "status"]));
      assert.equal(typeof cron.enabled, "boolean", "the upstream's cron service answered");
    });

    const other = compatTarget(version === "2026.4.24" ? "2026.9.6" : "2026.4.24");
    it(`the other release's CLI (OpenClaw ${other.openclaw}, protocol ${other.protocol}) works through gatewarden in front of this one (protocol ${target.protocol})`, { skip: unavailableReason(other) }, async () => {
      const cli = await realCli("cli-other", ["operator.read"], other);
      try {
        for (const args of [["channels", "status"], ["logs", "--limit", "5"], ["gateway", "call", "sessions.list"]]) await throughGatewarden(cli, args);
        if (other.protocol > target.protocol) {
          // Frames are carried over; payloads are the upstream release's. 2026.9.6's CLI expects cron.list's newer page format (docs/upstream.md).
          const cron = await cli.run(["cron", "list", "--json"], 90_000);
          assert.notEqual(cron.code, 0, describeRun(cron));
          assert.match(cron.stderr, /cron\.list returned an invalid inventory page/);
        } else {
          await throughGatewarden(cli, ["cron", "list"]);
        }
        const protocols = admissionAudits(gw.logLines()).filter((a) => a.decision === "admit").map((a) => a.protocol);
        assert.equal(protocols.at(-1), other.protocol, "gatewarden spoke the CLI's protocol to it");
      } finally {
        cli.dispose();
      }
    });

    it("a cron job added with the real CLI through an admin session reaches an operator.read session as an event, and not a session without operator.read", async () => {
      admin = target.protocol === 3 ? operator : await realCli("cli-admin", ["operator.admin"]);
      const reader = await session(["operator.read"], addBackend(gw, "fd-events-reader", ["operator.read"], ledger));
      const scopeless = await session(["operator.read"], SHARED);
      assert.deepEqual((scopeless.hello.auth as { scopes: string[] }).scopes, []);
      const name = `gatewarden-${target.openclaw}`;
      const added = await admin.run(["cron", "add", "--name", name, "--every", "1h", "--message", "hello", "--disabled", "--json"], 90_000);
      assert.equal(added.code, 0, describeRun(added));
      const event = await reader.client.waitEvent("cron", 15_000);
      assert.equal((event.payload as { action?: string }).action, "added");
      const job = jsonOutput<{ id?: string; job?: { id?: string } }>(added);
      assert.equal((event.payload as { jobId?: string }).jobId, job.id ?? job.job?.id, "the event is about the job the CLI added");
      await new Promise((r) => setTimeout(r, 500));
      const leaked = scopeless.client.frames.filter((f: Frame) => f.type === "event" && f.event === "cron");
      assert.deepEqual(leaked, [], "no cron event reaches a session without operator.read");
      reader.client.close();
      scopeless.client.close();
    });

    it("a client that stops reading never makes gatewarden hold more than its bound of upstream answers: it is closed as a slow consumer", async () => {
      const { client } = await session(["operator.read"], addBackend(gw, "fd-slow", ["operator.read"], ledger));
      const rssBefore = rssKiB(gw.proc.pid!);
      (client.ws as unknown as { _socket: Socket })._socket.pause();
      // skills.status answers about 50 KB from the upstream; keep asking while never reading.
      let sent = 0;
      while (!gw.logLines().some((l) => l.event === "slow-consumer") && sent < 4000) {
        for (let i = 0; i < 20; i++) client.sendRaw(JSON.stringify({ type: "req", id: `s${sent++}`, method: "skills.status", params: {} }));
        await new Promise((r) => setTimeout(r, 50));
      }
      const slow = gw.logLines().find((l) => l.event === "slow-consumer");
      assert.ok(slow, `closed as a slow consumer after ${sent} requests`);
      // Closed at the first answer past the bound: at most one more answer (tens of KB) was queued.
      assert.ok((slow.bufferedBytes as number) <= MAX_BUFFERED + 1024 * 1024, `queued ${String(slow.bufferedBytes)} bytes`);
      assert.ok(rssKiB(gw.proc.pid!) - rssBefore < 96 * 1024, "the gateway's memory stayed bounded");
      (client.ws as unknown as { _socket: Socket })._socket.destroy();
    });

    it("revoking the session's backend at gatewarden closes the client (4001) and its upstream session; a client closing closes its upstream session too", async () => {
      // Each session's upstream connection is told apart by its local port: sessions of earlier tests may still be closing.
      const before = connectionsTo(upstream.port);
      const reader = addBackend(gw, "fd-revoked", ["operator.read"], ledger);
      const { client } = await session(["operator.read"], reader);
      const mine = [...connectionsTo(upstream.port)].filter((c) => !before.has(c));
      assert.equal(mine.length, 1, "one upstream session per client session");
      const other = await session(["operator.read"], addBackend(gw, "fd-closing", ["operator.read"], ledger));
      const others = [...connectionsTo(upstream.port)].filter((c) => !before.has(c) && !mine.includes(c));
      assert.equal(others.length, 1, "one upstream session per client session");
      assert.equal(gw.cli(["--state-dir", stateDir, "backends", "revoke", "fd-revoked"]).code, 0);
      assert.equal((await client.closed).code, 4001);
      await eventually(() => !connectionsTo(upstream.port).has(mine[0]!), "the revoked session's upstream session is closed", 5000);
      assert.ok(connectionsTo(upstream.port).has(others[0]!), "the other session's upstream session is still open");
      other.client.close();
      await eventually(() => !connectionsTo(upstream.port).has(others[0]!), "the closed client's upstream session is closed", 5000);
    });

    it("gatewarden serves the upstream's Control UI files with the upstream's security headers, and nothing else of its HTTP surface", async () => {
      const direct = `http://127.0.0.1:${upstream.port}`;
      const via = `http://127.0.0.1:${gw.port}`;
      const [page, pageDirect] = await Promise.all([fetch(`${via}/`), fetch(`${direct}/`)]);
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /text\/html/);
      for (const h of ["content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"]) {
        assert.equal(page.headers.get(h), pageDirect.headers.get(h), h);
      }
      const html = await page.text();
      assert.equal(html, await pageDirect.text());
      const asset = /src="\.?(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(asset, "the page loads its script from /assets/");
      const [a, b] = await Promise.all([fetch(`${via}${asset}`), fetch(`${direct}${asset}`)]);
      assert.equal(a.status, 200);
      assert.deepEqual(Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer()));
      // The upstream answers these (401, or its page for any path); through gatewarden they do not exist.
      // The app's own routes are its page.
      const route = await fetch(`${via}/chat`);
      assert.equal(route.status, 200);
      assert.equal(await route.text(), html);
      for (const path of ["/__openclaw/control-ui-config.json", "/avatar/main", "/api/status", "/assets/settings.json", "/secrets.json"]) {
        assert.equal((await fetch(`${via}${path}`)).status, 426, path);
      }
      assert.equal((await fetch(`${via}/`, { method: "POST", body: "x" })).status, 405);
    });

    it("a node-role client is refused in upstream mode with a clear reason, even once paired", async () => {
      const device = createTestDevice();
      const base = { device, role: "node", scopes: [], auth: { token: SHARED }, maxProtocol: 4 };
      const first = await openConnect(gw, base, ledger);
      assert.equal(detailCode(first.reply), "PAIRING_REQUIRED");
      assert.equal(gw.cli(["devices", "approve", "--yes", first.reply.error?.details?.requestId as string]).code, 0);
      const second = await openConnect(gw, base, ledger);
      assert.equal(detailCode(second.reply), "INVALID_ROLE");
      assert.match(second.reply.error?.message ?? "", /relays operator sessions only/);
    });

    it("an upstream restart closes the client sessions cleanly (1012, with a reason); while it is down a connect gets a retryable UPSTREAM_UNAVAILABLE and no hello-ok; once it is back sessions work", async () => {
      const reader = addBackend(gw, "fd-restart", ["operator.read"], ledger);
      const { client } = await session(["operator.read"], reader);
      const metrics = await metricsUrlOf(gw);
      assert.ok(sample(await scrape(metrics), "gatewarden_upstream_sessions") >= 1, "the open upstream session is counted");
      const unavailableBefore = sample(await scrape(metrics), "gatewarden_relay_errors_total", { kind: "unavailable" });
      await upstream.halt();
      const closed = await client.closed;
      assert.equal(closed.code, 1012);
      assert.equal(closed.reason, "upstream gateway closed the session");
      const refused = await openConnect(gw, { scopes: ["operator.read"], auth: { token: reader }, maxProtocol: 4 }, ledger);
      assert.equal(refused.reply.ok, false, "no hello-ok without a working upstream session");
      assert.equal(detailCode(refused.reply), "UPSTREAM_UNAVAILABLE");
      assert.equal(refused.reply.error?.retryable, true);
      assert.equal((await refused.client.closed).code, 1013);
      const during = await scrape(metrics);
      assert.equal(sample(during, "gatewarden_upstream_sessions"), 0, "no upstream session is counted while the upstream is down");
      assert.ok(sample(during, "gatewarden_relay_errors_total", { kind: "unavailable" }) > unavailableBefore, "the refused upstream session is counted");
      await upstream.resume();
      const again = await session(["operator.read"], reader);
      const r = await again.client.request("cron.list", {}, 30_000);
      assert.equal(r.ok, true, JSON.stringify(r.error));
      again.client.close();
      await throughGatewarden(operator, ["cron", "list"]);
    });
  });
}
