import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, connect, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { OWNER } from "../../src/pairing/actor.js";
import { revokeDeviceToken } from "../../src/pairing/device-tokens.js";
import { openPostgresStore } from "../../src/store/postgres-store.js";
import { createTestDevice } from "../support/device.js";
import { BIN, startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import { delay, detailCode, openConnect, pairDevice, SecretLedger } from "../support/adversarial.js";
import { TestClient, type ConnectOptions } from "../support/protocol-client.js";
import { startPostgres, type PostgresServer } from "../support/postgres.js";

// Attacks on the PostgreSQL store and on several instances sharing it
// (src/store/postgres-store.ts, Gateway.onStoreNotice / recordAuthFailure,
// config store.url, `store migrate`). Each case states the secure outcome;
// a failing case is a weakness.

const TOKEN = "several-instances-attacks-token-0123456789";
const NO_POLL = { changePollMs: 600_000 };
const FAR_FUTURE = Date.now() + 10 * 365 * 24 * 3600_000;

let server: PostgresServer | undefined;
const gateways: GatewayProcess[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  server = await startPostgres();
});
after(async () => {
  for (const c of cleanups) await c();
  await Promise.all(gateways.map((g) => g.stop()));
  await server?.destroy();
});

function pgServer(): PostgresServer {
  if (!server) throw new Error("PostgreSQL did not start");
  return server;
}

async function instance(url: string, config: Record<string, unknown> = {}): Promise<GatewayProcess> {
  const gw = await startGatewayProcess({ env: { GATEWARDEN_TOKEN: TOKEN, GATEWARDEN_STORE: url }, config: { ...NO_POLL, ...config } });
  gateways.push(gw);
  return gw;
}

/** A login role with no privilege granted at all (any other application's user on the same cluster). */
async function unprivilegedUrl(url: string, role: string): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE ROLE ${role} LOGIN`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.username = role;
  return u.toString();
}

async function asRole(url: string, fn: (c: pg.Client) => Promise<void>): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

/** A TCP relay to PostgreSQL that can be frozen: a partition that closes nothing (bytes just stop). */
async function freezableRelay(targetPort: number): Promise<{ port: number; freeze(): void; thaw(): void; close(): Promise<void> }> {
  let frozen = false;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((inbound) => {
    const outbound = connect(targetPort, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    }
    inbound.on("data", (d) => {
      if (!frozen) outbound.write(d);
    });
    outbound.on("data", (d) => {
      if (!frozen) inbound.write(d);
    });
    inbound.on("end", () => outbound.end());
    outbound.on("end", () => inbound.end());
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  return {
    port,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/**
 * Instance B reaches the database through a relay: a device paired on A is
 * admitted once on B (its record is in B's memory), the relay then stops
 * passing bytes without closing anything, and the device's token is revoked
 * directly in the database.
 */
async function revokedDuringSilentPartition(): Promise<{ b: GatewayProcess; asDevice: ConnectOptions; ledger: SecretLedger }> {
  const url = await pgServer().createDatabase();
  const relay = await freezableRelay(pgServer().port);
  cleanups.push(() => relay.close());
  const viaRelay = new URL(url);
  viaRelay.port = String(relay.port);
  const a = await instance(url);
  const b = await instance(viaRelay.toString());
  const ledger = new SecretLedger();
  const device = createTestDevice();
  const { deviceToken } = await pairDevice(a, device, ledger, { scopes: ["operator.read"] });
  const asDevice: ConnectOptions = { device, scopes: ["operator.read"], auth: { deviceToken } };
  const warm = await openConnect(b, asDevice, ledger);
  assert.equal(warm.reply.ok, true, JSON.stringify(warm.reply.error));
  warm.client.close();
  await delay(1100);
  relay.freeze();
  const store = await openPostgresStore({ url });
  try {
    assert.equal((await revokeDeviceToken(store, { deviceId: device.id, role: "operator" }, OWNER, Date.now())).ok, true);
  } finally {
    await store.close();
  }
  return { b, asDevice, ledger };
}

describe("several instances on PostgreSQL: attacks", () => {
  it("a database role with no privileges cannot lock an address out by NOTIFY gatewarden_lockout", async () => {
    const url = await pgServer().createDatabase();
    const a = await instance(url);
    const b = await instance(url);
    const ledger = new SecretLedger();
    const victim = "203.0.113.5";
    const intruder = await unprivilegedUrl(url, "intruder_one");
    // Not a single failed authentication by anyone: just a notification on a channel anyone may use.
    await asRole(intruder, async (c) => {
      await c.query("SELECT pg_notify('gatewarden_lockout', $1)", [JSON.stringify({ key: `ip:${victim}`, untilMs: FAR_FUTURE })]);
      await c.query("SELECT pg_notify('gatewarden_lockout', $1)", [JSON.stringify({ key: "loopback", untilMs: FAR_FUTURE })]);
    });
    await delay(200);
    const refused: string[] = [];
    for (const [name, gw] of [["A", a], ["B", b]] as const) {
      const r = await openConnect(gw, { auth: { token: TOKEN } }, ledger, viaProxy(victim));
      if (r.reply.ok !== true) refused.push(`${victim} on ${name}: ${String(detailCode(r.reply))}`);
      r.client.close();
      // "loopback" is the machine's own budget, never shared: no notice may lock it.
      const local = await openConnect(gw, { auth: { token: TOKEN } }, ledger);
      if (local.reply.ok !== true) refused.push(`loopback on ${name}: ${String(detailCode(local.reply))}`);
      local.client.close();
    }
    assert.deepEqual(refused, [], "the right token is admitted (no failed authentication was ever counted)");
  });

  it("forged lockout notices for more keys than the limiter holds do not lock out every address", async () => {
    const url = await pgServer().createDatabase();
    const a = await instance(url, { rateLimit: { maxKeys: 8 } });
    const ledger = new SecretLedger();
    const intruder = await unprivilegedUrl(url, "intruder_two");
    await asRole(intruder, async (c) => {
      for (let i = 0; i < 9; i++) {
        await c.query("SELECT pg_notify('gatewarden_lockout', $1)", [JSON.stringify({ key: `ip:made-up-${i}`, untilMs: FAR_FUTURE })]);
      }
    });
    await delay(200);
    const r = await openConnect(a, { auth: { token: TOKEN } }, ledger, viaProxy("198.51.100.23"));
    assert.equal(r.reply.ok, true, `an address never named anywhere is admitted with the right token: ${JSON.stringify(r.reply.error)}`);
    r.client.close();
  });

  // Known gap, documented (configuration.md, rateLimit): each instance stops at maxFailures at once,
  // the shared count reaches the others a round trip later, so a concurrent burst over N instances
  // may have up to N × maxFailures guesses evaluated. Reported as todo until closed.
  it("a burst of guesses spread over two instances gets no more evaluated guesses than one shared budget", { todo: "up to N × maxFailures for a concurrent burst over N instances (documented)" }, async () => {
    const url = await pgServer().createDatabase();
    const maxFailures = 4;
    const rateLimit = { maxFailures, windowMs: 60_000, lockoutMs: 60_000 };
    const a = await instance(url, { rateLimit });
    const b = await instance(url, { rateLimit });
    const attacker = "203.0.113.88";
    // Sockets opened first (each has its challenge); then every guess is sent at once.
    const clients = await Promise.all(Array.from({ length: 2 * maxFailures }, (_, i) => TestClient.open((i % 2 === 0 ? a : b).url, viaProxy(attacker))));
    const replies = await Promise.all(clients.map((c, i) => c.request("connect", c.buildConnect({ auth: { token: `wrong-burst-guess-${i}-${"y".repeat(16)}` } }))));
    for (const c of clients) c.close();
    const evaluated = replies.filter((r) => detailCode(r) === "AUTH_TOKEN_MISMATCH").length;
    assert.ok(
      evaluated <= maxFailures,
      `${evaluated} guesses were compared with the token; the shared budget is ${maxFailures} (${JSON.stringify(replies.map(detailCode))})`,
    );
  });

  it("--store and store migrate --to refuse a password given as ?password= (as they refuse postgres://user:pw@…)", async () => {
    const secret = "pw-in-query-7f3a9c2e51";
    const url = `${await pgServer().createDatabase()}?password=${secret}`;
    const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-attack-"));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const env: NodeJS.ProcessEnv = { ...process.env, GATEWARDEN_STATE_DIR: stateDir };
    delete env.GATEWARDEN_STORE;
    const listed = spawnSync(process.execPath, [BIN, "--store", url, "devices", "list"], { encoding: "utf8", timeout: 20_000, env });
    // A source that passes the --from checks (private, existing), so the --to check is what decides.
    const source = join(stateDir, "source.sqlite");
    writeFileSync(source, "", { mode: 0o600 });
    const migrated = spawnSync(process.execPath, [BIN, "store", "migrate", "--from", `sqlite:${source}`, "--to", url], { encoding: "utf8", timeout: 20_000, env });
    assert.equal(/must not carry a password/.test(migrated.stderr), true, `--to with ?password= is refused as carrying a password; got: ${migrated.stderr.trim()}`);
    assert.equal(listed.status, 2, `--store with ?password= is refused (exit 2); got ${listed.status}: ${listed.stderr.trim()}`);
  });

  it("a ?password= in GATEWARDEN_STORE is printed neither in serve's startup summary nor in a CLI error", async () => {
    const secret = "pw-in-query-summary-0b8d44";
    const url = `${await pgServer().createDatabase()}?password=${secret}`;
    const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-attack-"));
    cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
    const env = { ...process.env, GATEWARDEN_STATE_DIR: stateDir, GATEWARDEN_TOKEN: TOKEN, GATEWARDEN_STORE: url };
    const summary = await new Promise<string>((resolve, reject) => {
      const proc = spawn(process.execPath, [BIN, "serve", "--port", "0"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      const timer = setTimeout(() => {
        proc.kill("SIGKILL");
        reject(new Error(`no summary: ${out}`));
      }, 15_000);
      proc.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (/store: .*\n/.test(out)) {
          clearTimeout(timer);
          proc.kill("SIGTERM");
          proc.once("exit", () => resolve(out));
        }
      });
    });
    assert.equal(summary.includes(secret), false, `the startup summary prints the password: ${/store: .*/.exec(summary)?.[0]}`);
    const unreachable = spawnSync(process.execPath, [BIN, "devices", "list"], {
      encoding: "utf8",
      timeout: 20_000,
      env: { ...env, GATEWARDEN_STORE: `postgres://gatewarden@127.0.0.1:1/nowhere?password=${secret}` },
    });
    assert.notEqual(unreachable.status, 0);
    assert.equal(unreachable.stderr.includes(secret), false, `the CLI error prints the password: ${unreachable.stderr.trim()}`);
  });

  // Known gap, documented (configuration.md, store): a partition that closes no connection is
  // noticed when pings stop being answered (within 3 × 500 ms); until then B may admit from memory.
  it("while B's database link is silently partitioned, a device token revoked on A is not admitted on B from B's memory", { todo: "admitted from memory within the first 1.5 s of a silent partition (documented)" }, async () => {
    const { b, asDevice, ledger } = await revokedDuringSilentPartition();
    const after = await openConnect(b, asDevice, ledger);
    after.client.close();
    assert.equal(after.reply.ok, false, "a token revoked (and committed) is not admitted by B while B hears nothing from the database");
  });

  it("once B's silently partitioned database link has not answered for 1.5 s, B admits nothing (refused at once, retryable)", async () => {
    const { b, asDevice, ledger } = await revokedDuringSilentPartition();
    await delay(1700);
    const after = await openConnect(b, asDevice, ledger);
    after.client.close();
    assert.equal(after.reply.ok, false, "after 1.5 s without an answer from the database, B decides nothing from memory");
    assert.equal(detailCode(after.reply), "STORE_UNAVAILABLE");
  });

  it("a lockout committed while B's listener was down holds on B once B is back", async () => {
    const url = await pgServer().createDatabase();
    const relay = await freezableRelay(pgServer().port);
    cleanups.push(() => relay.close());
    const viaRelay = new URL(url);
    viaRelay.port = String(relay.port);
    const rateLimit = { maxFailures: 3, windowMs: 60_000, lockoutMs: 60_000 };
    const a = await instance(url, { rateLimit });
    const b = await instance(viaRelay.toString(), { rateLimit, store: { outageGraceMs: 600_000 } });
    const ledger = new SecretLedger();
    const attacker = "203.0.113.66";
    relay.freeze();
    // B notices (its ping goes unanswered) and admits nobody meanwhile.
    let down = false;
    for (let i = 0; i < 80 && !down; i++) {
      const r = await openConnect(b, { auth: { token: TOKEN } }, ledger, viaProxy("198.51.100.1"));
      r.client.close();
      down = detailCode(r.reply) === "STORE_UNAVAILABLE";
      if (!down) await delay(100);
    }
    assert.ok(down, "B saw its database link go");
    // The attacker spends the whole shared budget on A: locked out in the store.
    for (let i = 0; i < rateLimit.maxFailures; i++) {
      const r = await openConnect(a, { auth: { token: `wrong-while-b-away-${i}-${"z".repeat(16)}` } }, ledger, viaProxy(attacker));
      assert.equal(detailCode(r.reply), "AUTH_TOKEN_MISMATCH");
      await r.client.closed;
    }
    await asRole(url, async (c) => {
      let locked = false;
      for (let i = 0; i < 100 && !locked; i++) {
        locked = (await c.query("SELECT 1 FROM auth_lockouts WHERE key = $1", [`ip:${attacker}`])).rowCount === 1;
        if (!locked) await delay(20);
      }
      assert.ok(locked, "the address is locked out in the shared store");
    });
    relay.thaw();
    let back = false;
    for (let i = 0; i < 100 && !back; i++) {
      const r = await openConnect(b, { auth: { token: TOKEN } }, ledger, viaProxy("198.51.100.1"));
      r.client.close();
      back = r.reply.ok === true;
      if (!back) await delay(100);
    }
    assert.ok(back, "B serves again");
    const r = await openConnect(b, { auth: { token: TOKEN } }, ledger, viaProxy(attacker));
    r.client.close();
    assert.equal(detailCode(r.reply), "AUTH_RATE_LIMITED", "the address locked out in the shared store is locked out on B too");
  });
});
