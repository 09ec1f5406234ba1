import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Database } from "../../src/store/sqlite-driver.js";
import { SecretLedger, assertRefused, detailCode, helloAuth, openConnect, pairDevice } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";

// Issue 14: storage that is locked by another process, or an identity file a
// full disk left empty. The gateway's event loop stays responsive, what needs
// no write keeps working, what needs one fails retryably, and every error is
// one line that names the file.

function healthz(port: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/healthz" }, (res) => {
      res.resume();
      res.on("end", () => resolve(Date.now() - started));
    })
      .on("error", reject)
      .end();
  });
}

describe("a store locked by another process", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let lock: Database.Database;

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
  });
  after(async () => {
    if (lock?.inTransaction) lock.exec("ROLLBACK");
    lock?.close();
    await gw.stop();
  });

  it("while another process holds BEGIN IMMEDIATE: /healthz and paired reconnects are served without stalls, writes fail retryably with STORE_UNAVAILABLE, and all recover when the lock goes", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    lock = new Database(join(gw.stateDir, "gatewarden.sqlite"));
    lock.exec("BEGIN IMMEDIATE");

    // A new device's pairing request needs a write: refused retryably, not INTERNAL.
    const fresh = createTestDevice();
    const started = Date.now();
    const pairing = openConnect(gw, { device: fresh, auth: { token: gw.token! } }, ledger);
    // Meanwhile the event loop answers at once, again and again.
    let slowest = 0;
    for (let i = 0; i < 10; i++) slowest = Math.max(slowest, await healthz(gw.port));
    assert.ok(slowest < 1000, `/healthz took ${slowest} ms under the lock (5 s before)`);
    // A paired device's reconnect needs no write.
    const again = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    assert.equal(helloAuth(again.reply).scopes.length, 1);
    again.client.close();
    const { client, reply } = await pairing;
    assert.equal(detailCode(reply), "STORE_UNAVAILABLE", JSON.stringify(reply.error));
    assert.equal(reply.error?.code, "UNAVAILABLE");
    assert.equal(reply.error?.retryable, true);
    assert.ok((reply.error?.retryAfterMs ?? 0) > 0);
    assert.equal((await client.closed).code, 1013);
    assert.ok(Date.now() - started < 15_000);
    await new Promise((r) => setTimeout(r, 500)); // audit lines are written in batches
    const logged = gw.logLines().filter((l) => l.audit === "admission" && l.code === "STORE_UNAVAILABLE");
    assert.ok(logged.length >= 1, "the refusal has an audit line");

    // The admin CLI's reads work under the lock; its writes say in one line what failed.
    const list = gw.cli(["devices", "list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    const revoke = gw.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
    assert.notEqual(revoke.code, 0);
    assert.match(revoke.stderr, /^gatewarden: gatewarden store .* is locked by another process .*\n$/);

    lock.exec("ROLLBACK");
    const later = await openConnect(gw, { device: fresh, auth: { token: gw.token! } }, ledger);
    await assertRefused(later.client, later.reply, "PAIRING_REQUIRED");
  });
});

describe("a database deleted under a running gateway", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
  });
  after(async () => {
    await gw.stop();
  });

  it("is noticed on the change poll and said loudly; from then on nothing is admitted, not even a paired device from memory", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(gw.stateDir, `gatewarden.sqlite${suffix}`), { force: true });
    await new Promise((r) => setTimeout(r, 1000));
    const lost = gw.logLines().filter((l) => l.event === "store-lost");
    assert.equal(lost.length, 1, "said once");
    assert.match(String(lost[0]?.msg), /was deleted while in use.*restore the database from a backup/);
    for (const opts of [{ device, scopes: ["operator.read"], auth: { deviceToken } }, { device: createTestDevice(), auth: { token: gw.token! } }]) {
      const { client, reply } = await openConnect(gw, opts, ledger);
      assert.equal(detailCode(reply), "STORE_UNAVAILABLE", JSON.stringify(reply.error));
      assert.equal((await client.closed).code, 1013);
    }
  });
});

describe("a corrupted database, and backups", () => {
  const ledger = new SecretLedger();
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gatewarden-corrupt-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a backup taken while serving restores a database whose pages were overwritten with garbage, which serve refuses in one line naming the file; the restore is in the audit log", async () => {
    const stateDir = join(dir, "state");
    const gw = await startGatewayProcess({ stateDir });
    ledger.add(gw.token);
    const device = createTestDevice();
    await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    const backup = join(dir, "backup.sqlite");
    const b = gw.cli(["--state-dir", stateDir, "store", "backup", backup]);
    assert.equal(b.code, 0, b.stderr);
    await gw.stop();

    // Garbage inside the pages after the header page: what a bad disk or a stray write leaves.
    const db = join(stateDir, "gatewarden.sqlite");
    const fd = openSync(db, "r+");
    const size = fstatSync(fd).size;
    for (let off = 4096; off < size; off += 4096) writeSync(fd, Buffer.alloc(512, 0xa5), 0, 512, off);
    closeSync(fd);
    const refused = spawnSync(process.execPath, [BIN, "--state-dir", stateDir, "serve", "--port", "0"], { encoding: "utf8", timeout: 20_000 });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, new RegExp(`^gatewarden: (the database|cannot open the database) ${db.replace(/[.]/g, "\\.")}.*\n$`));
    assert.doesNotMatch(refused.stdout, /listening/);

    const restored = spawnSync(process.execPath, [BIN, "--state-dir", stateDir, "store", "restore", backup], { encoding: "utf8", timeout: 20_000 });
    assert.equal(restored.status, 0, restored.stderr);
    const again = await startGatewayProcess({ stateDir });
    try {
      const list = again.cli(["--state-dir", stateDir, "devices", "list", "--json"]);
      assert.ok((JSON.parse(list.stdout) as { paired: { deviceId: string }[] }).paired.some((p) => p.deviceId === device.id), "the pairing came back with the backup");
      // The audit log came back with it, still intact, and says it was restored.
      const last = again.cli(["--state-dir", stateDir, "audit", "tail", "-n", "1", "--json"]);
      assert.equal((JSON.parse(last.stdout) as { kind: string }).kind, "store.restored");
      const verified = again.cli(["--state-dir", stateDir, "audit", "verify"]);
      assert.equal(verified.code, 0, verified.stderr);
    } finally {
      await again.stop();
    }
  });
});

describe("an identity file a full disk left empty", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gatewarden-identity-"));
    mkdirSync(join(dir, "identity"), { mode: 0o700 });
    writeFileSync(join(dir, "identity", "gateway.json"), "", { mode: 0o600 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a 0-byte identity file stops serve with one line naming the file and the way out", () => {
    const r = spawnSync(process.execPath, [BIN, "serve", "--port", "0"], { encoding: "utf8", env: { ...process.env, GATEWARDEN_STATE_DIR: dir }, timeout: 20_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`^gatewarden: gatewarden's identity file ${join(dir, "identity", "gateway.json")} is damaged .*move it aside.*\\n$`));
  });
});

/** A small tmpfs of our own (mounting needs root); `undefined` says why there is none. */
function mountTmpfs(dir: string, sizeKiB: number): string | undefined {
  if (process.getuid?.() !== 0) return "mounting a tmpfs needs root";
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0700`, "tmpfs", dir], { encoding: "utf8" });
  return r.status === 0 ? undefined : `cannot mount a tmpfs: ${r.stderr.trim()}`;
}

function unmount(dir: string): void {
  spawnSync("umount", ["-l", dir]);
}

/** Writes until the filesystem refuses; returns the filler's path. */
function fillDisk(dir: string): string {
  const filler = join(dir, "filler");
  const fd = openSync(filler, "w");
  try {
    for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(512)]) {
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

const fsRoot = mkdtempSync(join(tmpdir(), "gatewarden-fs-"));
const noTmpfs = (() => {
  const probe = join(fsRoot, "probe");
  mkdirSync(probe);
  const why = mountTmpfs(probe, 64);
  if (why === undefined) unmount(probe);
  return why;
})();

describe("a full disk", { skip: noTmpfs }, () => {
  const ledger = new SecretLedger();
  const mnt = join(fsRoot, "full");
  let gw: GatewayProcess;
  before(async () => {
    mkdirSync(mnt);
    const why = mountTmpfs(mnt, 8 * 1024);
    if (why) throw new Error(why);
    const stateDir = join(mnt, "state");
    mkdirSync(stateDir, { mode: 0o700 });
    gw = await startGatewayProcess({ stateDir, env: { GATEWARDEN_TOKEN: "full-disk-test-token-0123456789abcdef" } });
    ledger.add(gw.token);
  });
  after(async () => {
    await gw?.stop();
    unmount(mnt);
  });

  it("refuses what needs a write retryably, keeps serving what needs none, and still takes a revocation (from the reserved space), which closes the device's session", async () => {
    const device = createTestDevice();
    const { deviceToken } = await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    const reserve = join(gw.stateDir, "gatewarden.sqlite-reserve");
    assert.equal(statSync(reserve).size, 1024 * 1024, "space is set aside for revocations at start");
    const live = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    assert.equal(live.reply.ok, true);
    const filler = fillDisk(mnt);

    // A new device's pairing request is a write: refused retryably, not INTERNAL.
    const fresh = await openConnect(gw, { device: createTestDevice(), auth: { token: gw.token! } }, ledger);
    assert.equal(detailCode(fresh.reply), "STORE_UNAVAILABLE", JSON.stringify(fresh.reply.error));
    assert.equal(fresh.reply.error?.retryable, true);
    assert.equal((await fresh.client.closed).code, 1013);
    // What needs no write still works: a paired reconnect, /healthz, the CLI's reads.
    const again = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    assert.equal(again.reply.ok, true);
    again.client.close();
    assert.ok((await healthz(gw.port)) < 1000);
    const list = gw.cli(["devices", "list", "--json"]);
    assert.equal(list.code, 0, list.stderr);
    // A write the CLI cannot make is said in one line.
    const add = gw.cli(["backends", "add", "reporting", "--scopes", "operator.read"]);
    assert.notEqual(add.code, 0, "registering a backend grants: it gets no reserved space");
    assert.match(add.stderr, /^gatewarden: .*the disk is full; free space and retry\n$/);

    // The owner can still cut the device off.
    const revoke = gw.cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stderr, /the disk under .* is full: a revocation used the space reserved for it; free space soon/);
    const closed = await live.client.closed;
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, "device token revoked");
    const refused = await openConnect(gw, { device, scopes: ["operator.read"], auth: { deviceToken } }, ledger);
    assert.equal(detailCode(refused.reply), "AUTH_DEVICE_TOKEN_MISMATCH");

    // Space back: writes work again and the reserve is set aside again.
    rmSync(filler);
    const later = await openConnect(gw, { device: createTestDevice(), auth: { token: gw.token! } }, ledger);
    await assertRefused(later.client, later.reply, "PAIRING_REQUIRED");
    const removeAfter = gw.cli(["devices", "remove", device.id]);
    assert.equal(removeAfter.code, 0, removeAfter.stderr);
    assert.equal(statSync(reserve).size, 1024 * 1024, "the reserve is set aside again once there is space");
  });
});

describe("read-only media", { skip: noTmpfs }, () => {
  const ledger = new SecretLedger();
  const mnt = join(fsRoot, "ro");
  after(() => unmount(mnt));

  it("the CLI's read commands work on a state dir that cannot be written; its writes say so in one line", async () => {
    mkdirSync(mnt);
    const why = mountTmpfs(mnt, 8 * 1024);
    if (why) throw new Error(why);
    const stateDir = join(mnt, "state");
    mkdirSync(stateDir, { mode: 0o700 });
    const gw = await startGatewayProcess({ stateDir, env: { GATEWARDEN_TOKEN: "read-only-test-token-0123456789abcdef" } });
    ledger.add(gw.token);
    const device = createTestDevice();
    await pairDevice(gw, device, ledger, { scopes: ["operator.read"] });
    await gw.stop();
    const remount = spawnSync("mount", ["-o", "remount,ro", mnt], { encoding: "utf8" });
    assert.equal(remount.status, 0, remount.stderr);

    const cli = (args: string[]) => spawnSync(process.execPath, [BIN, "--state-dir", stateDir, ...args], { encoding: "utf8", timeout: 20_000 });
    const list = cli(["devices", "list", "--json"]);
    assert.equal(list.status, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { paired: { deviceId: string }[] }).paired.some((p) => p.deviceId === device.id));
    assert.equal(cli(["backends", "list"]).status, 0);
    const revoke = cli(["devices", "revoke", "--device", device.id, "--role", "operator"]);
    assert.notEqual(revoke.status, 0);
    assert.match(revoke.stderr, /^gatewarden: [^\n]+\n$/);
  });
});

describe("a log that cannot be written", { skip: noTmpfs }, () => {
  const mnt = join(fsRoot, "log");
  after(() => unmount(mnt));

  it("the gateway keeps admitting and answering while every log write fails with ENOSPC, and exits cleanly", async () => {
    mkdirSync(mnt);
    const why = mountTmpfs(mnt, 256);
    if (why) throw new Error(why);
    const logPath = join(mnt, "gateway.log");
    const logFd = openSync(logPath, "w");
    const filler = fillDisk(mnt);
    const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-log-"));
    const token = "log-full-test-token-0123456789abcdef";
    const proc = spawn(process.execPath, [BIN, "serve", "--port", "0"], {
      env: { ...process.env, GATEWARDEN_STATE_DIR: stateDir, GATEWARDEN_TOKEN: token, GATEWARDEN_LOG_LEVEL: "debug" },
      stdio: ["ignore", "pipe", logFd],
    });
    closeSync(logFd);
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    try {
      let stdout = "";
      proc.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not listening: ${stdout}`)), 15_000);
        const check = (): void => {
          const m = /listening on ws:\/\/[^\s]+:(\d+)/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        };
        proc.stdout?.on("data", check);
        void exited.then((code) => reject(new Error(`exited ${code}: ${stdout}`)));
      });
      const gw = { url: `ws://127.0.0.1:${port}` };
      const ledger = new SecretLedger();
      ledger.add(token);
      // Every refusal is a log line (and an audit line) that cannot be written.
      for (let i = 0; i < 5; i++) {
        const wrong = await openConnect(gw, { device: createTestDevice(), auth: { token: `wrong-${i}` } }, ledger);
        assert.equal(wrong.reply.ok, false);
        wrong.client.close();
      }
      const fresh = await openConnect(gw, { device: createTestDevice(), auth: { token } }, ledger);
      await assertRefused(fresh.client, fresh.reply, "PAIRING_REQUIRED");
      assert.ok((await healthz(port)) < 1000);
      assert.equal(proc.exitCode, null, "still running");
      // Space back: the next lines are written, first one that says how many were lost.
      rmSync(filler);
      const later = await openConnect(gw, { device: createTestDevice(), auth: { token } }, ledger);
      await assertRefused(later.client, later.reply, "PAIRING_REQUIRED");
      await new Promise((r) => setTimeout(r, 200));
      const written = readFileSync(logPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as { event?: string; count?: number });
      const lost = written.find((l) => l.event === "log-lines-lost");
      assert.ok(lost && (lost.count ?? 0) >= 1, `a line counts what was lost: ${JSON.stringify(written.slice(0, 3))}`);
      proc.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      proc.kill("SIGKILL");
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});

after(() => rmSync(fsRoot, { recursive: true, force: true }));
