import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { secretDigestHex } from "../../src/admission/secret-digest.js";
import { auditHeadOf, linkAuditRows, rowHash } from "../../src/store/audit-chain.js";
import { Database } from "../../src/store/sqlite-driver.js";
import { SecretLedger, addBackend, assertGatewayServes, delay, detailCode, eventually, helloAuth, openConnect, pairDevice } from "../support/adversarial.js";
import { createTestDevice, type TestDevice } from "../support/device.js";
import { startGatewayProcess, viaProxy, type GatewayProcess } from "../support/gateway-process.js";
import type { TestClient } from "../support/protocol-client.js";

// The store's audit log under attack: what a client sends cannot forge an
// entry or a field, the actor is always the one the server verified, no change
// to a grant escapes the log, a flood neither stalls the gateway nor loses
// entries, tampering is named (and what is not detectable on its own is said),
// pruning never launders an edit, and no secret or stored digest is written.

interface Entry {
  readonly seq: number;
  readonly time: string;
  readonly kind: string;
  readonly actor: string;
  readonly hash: string;
  readonly [field: string]: unknown;
}

interface Row {
  seq: number;
  ts: number;
  event: string;
  prev: string;
  hash: string;
}

/** `audit tail --json`: the raw lines and the entries they parse to (every line must parse). */
function tailJson(gw: GatewayProcess, n = 10_000): { lines: string[]; entries: Entry[] } {
  const r = gw.cli(["audit", "tail", "-n", String(n), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n").filter((l) => l.length > 0);
  return { lines, entries: lines.map((l) => JSON.parse(l) as Entry) };
}

const entries = (gw: GatewayProcess): Entry[] => tailJson(gw).entries;

function verify(gw: GatewayProcess): { code: number; stdout: string; stderr: string } {
  return gw.cli(["audit", "verify"]);
}

function sql<T>(gw: GatewayProcess, fn: (db: InstanceType<typeof Database>) => T): T {
  const db = new Database(join(gw.stateDir, "gatewarden.sqlite"));
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const allRows = (gw: GatewayProcess): Row[] => sql(gw, (db) => db.prepare("SELECT seq, ts, event, prev, hash FROM audit_log ORDER BY seq").all() as Row[]);
const setting = (gw: GatewayProcess, key: string): string | undefined =>
  sql(gw, (db) => (db.prepare("SELECT value FROM settings WHERE key = ?").get(key) as { value: string } | undefined)?.value);
const putSetting = (gw: GatewayProcess, key: string, value: string | undefined): void => {
  sql(gw, (db) => (value === undefined ? db.prepare("DELETE FROM settings WHERE key = ?").run(key) : db.prepare("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)").run(key, value)));
};
const insertRow = (gw: GatewayProcess, row: Row): void => {
  sql(gw, (db) => db.prepare("INSERT INTO audit_log (seq, ts, event, prev, hash) VALUES (@seq, @ts, @event, @prev, @hash)").run(row));
};

/** A refused handshake from `ip` (a wrong shared token), closed at once. */
async function refusedConnect(gw: GatewayProcess, ip: string, ledger = new SecretLedger()): Promise<void> {
  const { client } = await openConnect(gw, { auth: { token: "gwt_wrong-for-audit-attacks-5a4b3c" } }, ledger, viaProxy(ip));
  client.close();
}

/** Ask to pair `device` from a remote address; the request id of the PAIRING_REQUIRED refusal. */
async function requestPairing(
  gw: GatewayProcess,
  device: TestDevice,
  ledger: SecretLedger,
  ip: string,
  extra: { scopes?: string[]; displayName?: string; token?: string } = {},
): Promise<string> {
  const auth = { token: extra.token ?? gw.token! };
  const { client, reply } = await openConnect(gw, { device, scopes: extra.scopes ?? [], auth, ...(extra.displayName ? { displayName: extra.displayName } : {}) }, ledger, viaProxy(ip));
  client.close();
  assert.equal(detailCode(reply), "PAIRING_REQUIRED", JSON.stringify(reply.error));
  return reply.error?.details?.requestId as string;
}

// Characters a terminal acts on or reorders: none may reach `audit tail`'s text output raw.
const TERMINAL_UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;

/**
 * A text line of `audit tail` split into its fields: four positional columns,
 * then `key=value` pairs two spaces apart, where a value is a bare word or a
 * JSON string. Fails when the line does not read that way unambiguously.
 */
function fieldsOfTextLine(line: string): { head: string[]; keys: string[]; values: string[] } {
  const head = line.split("  ", 4);
  let rest = line.slice(head.join("  ").length);
  const keys: string[] = [];
  const values: string[] = [];
  while (rest.length > 0) {
    const m = /^ {2}([A-Za-z]+)=("(?:[^"\\]|\\.)*"|\[(?:"(?:[^"\\]|\\.)*",?)*\]|[^\s"[]+)/u.exec(rest);
    assert.ok(m, `a text line reads as key=value fields: ${JSON.stringify(rest.slice(0, 80))}`);
    keys.push(m[1] as string);
    values.push(m[2] as string);
    rest = rest.slice(m[0].length);
  }
  return { head, keys, values };
}

describe("audit log attack: client-chosen text cannot forge an entry or a field, and is bounded", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  const forge = 'v1\u001b[2J\r\n{"seq":1,"kind":"device.removed","actor":"owner"}\u202e  deviceId=victim  actor=owner';
  // Origin is a header: latin1 only, so its terminal attack is a C1 control (CSI) and forged fields.
  const origin = `http://evil.example\u009b2J  kind=device.removed  "actor":"owner"${"o".repeat(400)}`;
  const displayName = `\u001b]0;owner\u0007{"kind":"device.removed","actor":"owner"}\n\u2066admin\u2069  deviceId=victim${"d".repeat(200)}`.slice(0, 256);
  let pairedId: string;

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
    const device = createTestDevice();
    const { client } = await openConnect(
      gw,
      {
        device,
        auth: { token: "gwt_wrong-token-forging-fields-1a2b" },
        tamper: (p) => ({
          ...p,
          client: { ...(p.client as object), version: forge.padEnd(128, "v").slice(0, 128) },
          role: 'operator\n{"kind":"device.removed"}  actor=owner'.slice(0, 64),
          scopes: Array.from({ length: 64 }, (_, i) => `operator.read\u001b[31m,  kind=x${i}${"s".repeat(100)}`.slice(0, 128)),
          device: { ...(p.device as object), id: `\u001b]0;x\u0007  actor=owner${"i".repeat(300)}`.slice(0, 256) },
        }),
      },
      ledger,
      { ...viaProxy("203.0.113.201"), headers: { ...viaProxy("203.0.113.201").headers, origin } },
    );
    client.close();
    const victim = createTestDevice();
    pairedId = victim.id;
    const requestId = await requestPairing(gw, victim, ledger, "203.0.113.202", { displayName });
    assert.equal(gw.cli(["devices", "approve", "--yes", requestId]).code, 0);
    await eventually(() => entries(gw).some((e) => e.kind === "admission.reject" && e.clientIp === "203.0.113.201"), "the refusal reaches the store");
  });
  after(async () => {
    await gw.stop();
  });

  it("--json prints exactly one valid JSON object per entry, contiguous, and none of them is an entry a client made up", () => {
    const { lines, entries: all } = tailJson(gw);
    const rows = allRows(gw);
    assert.equal(lines.length, rows.length, "one line per stored row");
    all.forEach((e, i) => assert.equal(e.seq, rows[i]?.seq));
    assert.equal(all.filter((e) => e.kind === "device.removed").length, 0, "no client text became a device.removed entry");
    assert.ok(all.every((e) => e.actor === "gateway" || e.actor === "owner"), "only the gateway and the owner acted");
  });

  it("every client-chosen field is kept as one string field of its own entry, bounded (version, role 64; origin 256; scopes 16 x 64; claimed device 64; display name 64)", () => {
    const all = entries(gw);
    const refusal = all.find((e) => e.kind === "admission.reject" && e.clientIp === "203.0.113.201");
    assert.ok(refusal);
    assert.equal(refusal.actor, "gateway");
    assert.equal(refusal.clientVersion, forge.padEnd(128, "v").slice(0, 64));
    assert.equal(typeof refusal.requestedRole, "string");
    assert.ok((refusal.requestedRole as string).length <= 64);
    assert.equal((refusal.origin as string).length, 256);
    assert.ok((refusal.origin as string).startsWith("http://evil.example\u009b2J"));
    const scopes = refusal.requestedScopes as string[];
    assert.ok(scopes.length <= 16 && scopes.every((s) => s.length <= 64), "requested scopes are bounded");
    assert.ok((refusal.claimedDevice as string).length <= 64);
    assert.equal(refusal.deviceId, undefined, "a claimed device is never recorded as the verified one");
    const paired = all.find((e) => e.kind === "device.paired" && e.deviceId === pairedId);
    assert.ok(paired);
    assert.equal(paired.displayName, displayName.slice(0, 64));
    assert.equal(paired.actor, "owner");
  });

  it("the text output is one escaped line per entry: no terminal control or bidi character, the true kind and actor in place, and every field it shows is a field of the entry", () => {
    const r = gw.cli(["audit", "tail", "-n", "10000"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.replace(/\n$/, "").split("\n");
    const all = entries(gw);
    assert.equal(lines.length, all.length, "one text line per entry");
    lines.forEach((line, i) => {
      const e = all[i] as Entry;
      assert.equal(TERMINAL_UNSAFE.test(line), false, `line ${i} holds a raw control character: ${JSON.stringify(line.slice(0, 120))}`);
      const { head, keys } = fieldsOfTextLine(line);
      assert.deepEqual(head, [`#${e.seq}`, e.time, e.kind, e.actor]);
      assert.deepEqual(keys, Object.keys(e).filter((k) => !["seq", "time", "kind", "actor", "hash"].includes(k)), `entry #${e.seq}: the line shows the entry's fields and no other`);
    });
    const refusal = lines[all.findIndex((e) => e.clientIp === "203.0.113.201")] as string;
    assert.match(refusal, /clientVersion="v1\\u001b\[2J\\r\\n\{\\"seq\\":1,\\"kind\\":\\"device\.removed\\"/, "the forged JSON stays inside the quoted value");
    assert.ok(refusal.includes("\\x9b"), "the C1 CSI in the Origin is shown as an escape");
  });

  it("the log still verifies", () => {
    assert.equal(verify(gw).code, 0);
  });
});

describe("audit log attack: the actor is the device the server verified, never a claimed one", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  const approver = createTestDevice();
  const newcomer = createTestDevice();
  const bystander = createTestDevice();
  /** The approver's newest device token (handed out at an admission with the shared token). */
  let approverToken: string | undefined;

  /** The approver's session: its key proves who it is; it claims to be the owner in every label it may choose. */
  async function approverSession(auth: { token?: string; deviceToken?: string }): Promise<TestClient> {
    const { client, reply } = await openConnect(gw, { device: approver, scopes: ["operator.pairing"], auth, displayName: "owner", clientId: "cli" }, ledger, viaProxy("203.0.113.61"));
    const issued = helloAuth(reply).deviceToken;
    ledger.add(issued);
    approverToken = issued ?? approverToken;
    return client;
  }

  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
    // The approver holds operator.pairing only.
    const requestId = await requestPairing(gw, approver, ledger, "203.0.113.61", { scopes: ["operator.pairing"] });
    assert.equal(gw.cli(["devices", "approve", "--yes", requestId]).code, 0);
    const bystanderRequest = await requestPairing(gw, bystander, ledger, "203.0.113.63");
    assert.equal(gw.cli(["devices", "approve", "--yes", bystanderRequest]).code, 0);
  });
  after(async () => {
    await gw.stop();
  });

  it("an approval over the protocol by a session holding only operator.pairing is recorded as device:<its verified id>", async () => {
    const requestId = await requestPairing(gw, newcomer, ledger, "203.0.113.62", { scopes: ["operator.pairing"] });
    const session = await approverSession({ token: gw.token! });
    const approved = await session.request("device.pair.approve", { requestId });
    assert.equal(approved.ok, true, JSON.stringify(approved.error));
    session.close();
    const all = entries(gw);
    for (const kind of ["pairing.approved", "device.paired"]) {
      const e = all.find((x) => x.kind === kind && x.deviceId === newcomer.id);
      assert.equal(e?.actor, `device:${approver.id}`, kind);
    }
  });

  it("a device acting on itself with its device token is recorded as itself; acting on another device is refused and leaves no entry", async () => {
    (await approverSession({ token: gw.token! })).close();
    assert.ok(approverToken, "the approver was handed a device token");
    const before = allRows(gw).at(-1)?.seq ?? 0;
    const session = await approverSession({ deviceToken: approverToken });
    for (const [method, params] of [
      ["device.pair.remove", { deviceId: bystander.id }],
      ["device.token.revoke", { deviceId: bystander.id, role: "operator" }],
      ["device.token.rotate", { deviceId: bystander.id, role: "operator" }],
    ] as const) {
      const r = await session.request(method, params);
      assert.equal(r.ok, false, `${method} on another device is refused`);
    }
    // Last: rotating its own token ends the session (its old token is void), possibly before the reply.
    const rotated = session.request("device.token.rotate", { deviceId: approver.id, role: "operator" }).catch(() => undefined);
    await session.closed;
    ledger.add(((await rotated)?.payload as { token?: string } | undefined)?.token);
    await eventually(() => (allRows(gw).at(-1)?.seq ?? 0) > before, "entries are written");
    await delay(400);
    const all = entries(gw);
    // (Each admission with the shared token handed out a fresh token too: those rotations are the gateway's.)
    const rotation = all.filter((e) => e.seq > before && e.kind === "device.token.rotated" && e.deviceId === approver.id);
    assert.deepEqual(rotation.map((e) => e.actor), [`device:${approver.id}`]);
    assert.deepEqual(all.filter((e) => e.seq > before && e.deviceId === bystander.id), [], "nothing was done to the other device");
    // Every entry a session made names the one verified device; none claims the owner.
    for (const e of all.filter((x) => x.actor.startsWith("device:"))) assert.equal(e.actor, `device:${approver.id}`);
  });

  it("a client claiming another device's id is refused and recorded with the claim apart from any verified device", async () => {
    const { client, reply } = await openConnect(
      gw,
      { device: approver, auth: { token: gw.token! }, tamper: (p) => ({ ...p, device: { ...(p.device as object), id: bystander.id } }) },
      ledger,
      viaProxy("203.0.113.64"),
    );
    client.close();
    assert.equal(reply.ok, false);
    await eventually(() => entries(gw).some((e) => e.clientIp === "203.0.113.64"), "the refusal is written");
    const refusal = entries(gw).find((e) => e.clientIp === "203.0.113.64");
    assert.equal(refusal?.kind, "admission.reject");
    assert.equal(refusal?.actor, "gateway");
    assert.equal(refusal?.claimedDevice, bystander.id);
    assert.equal(refusal?.deviceId, undefined);
  });
});

describe("audit log attack: no change to a grant escapes the log, and no secret or stored digest is in it", () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  const digests: string[] = [];
  const booted = createTestDevice();
  const expiring = createTestDevice();
  const neverConnected = createTestDevice();
  const minted = createTestDevice();

  before(async () => {
    gw = await startGatewayProcess({ config: { pairing: { pendingTtlMs: 3000 } } });
    ledger.add(gw.token);
    // A bootstrap token: issued by the owner, used by a device (the gateway pairs it and mints its token).
    const boot = gw.cli(["token", "bootstrap", "--scopes", "operator.read", "--json"]);
    assert.equal(boot.code, 0, boot.stderr);
    const { token: bootstrapToken, setupCode } = JSON.parse(boot.stdout) as { token: string; setupCode: string };
    ledger.add(bootstrapToken, setupCode);
    const used = await openConnect(gw, { device: booted, scopes: ["operator.read"], auth: { bootstrapToken } }, ledger, viaProxy("203.0.113.91"));
    ledger.add(helloAuth(used.reply).deviceToken);
    used.client.close();
    // A pending request that expires, found expired when the next request is made.
    await requestPairing(gw, expiring, ledger, "203.0.113.92");
    await delay(3300);
    // Approved, then revoked before it ever connected to receive a token.
    const revokeRequest = await requestPairing(gw, neverConnected, ledger, "203.0.113.93", { scopes: ["operator.read"] });
    assert.equal(gw.cli(["devices", "approve", "--yes", revokeRequest]).code, 0);
    assert.equal(gw.cli(["devices", "revoke", "--device", neverConnected.id, "--role", "operator"]).code, 0);
    // A device token minted at admission, then rotated by the owner.
    await pairDevice(gw, minted, ledger, { scopes: ["operator.read"] });
    const rotated = gw.cli(["devices", "rotate", "--device", minted.id, "--role", "operator", "--json"]);
    assert.equal(rotated.code, 0, rotated.stderr);
    ledger.add((JSON.parse(rotated.stdout) as { token: string }).token);
    addBackend(gw, "attack-backend", ["operator.read"], ledger);
    // Stored digests, taken before the shared token is rotated away.
    digests.push(...sql(gw, (db) => (db.prepare("SELECT token_hash AS h FROM device_tokens UNION ALL SELECT secret_hash FROM backends UNION ALL SELECT token_hash FROM bootstrap_tokens UNION ALL SELECT value FROM settings WHERE key = 'auth.sharedTokenHash'").all() as { h: string }[]).map((r) => r.h).filter((h) => h.length > 0)));
    const shared = gw.cli(["token", "rotate", "--json"]);
    assert.equal(shared.code, 0, shared.stderr);
    ledger.add((JSON.parse(shared.stdout) as { token: string }).token);
    digests.push(setting(gw, "auth.sharedTokenHash") as string);
    await eventually(() => entries(gw).some((e) => e.clientIp === "203.0.113.93"), "admission entries reach the store");
  });
  after(async () => {
    await gw.stop();
  });

  const one = (all: readonly Entry[], kind: string, match: (e: Entry) => boolean = () => true): Entry => {
    const found = all.filter((e) => e.kind === kind && match(e));
    assert.equal(found.length, 1, `one ${kind} entry (found ${found.length})`);
    return found[0] as Entry;
  };

  it("the shared token: created by the gateway at first start, rotated by the owner", () => {
    const all = entries(gw);
    assert.equal(one(all, "shared-token.created").actor, "gateway");
    assert.equal(one(all, "shared-token.rotated").actor, "owner");
  });

  it("a bootstrap token: issued by the owner, used by the gateway's admission, which pairs the device and mints its token", () => {
    const all = entries(gw);
    const issued = one(all, "bootstrap.issued");
    assert.equal(issued.actor, "owner");
    const used = one(all, "bootstrap.used");
    assert.deepEqual([used.actor, used.deviceId, used.bootstrapId], ["gateway", booted.id, issued.bootstrapId]);
    assert.equal(one(all, "device.paired", (e) => e.deviceId === booted.id).actor, "gateway");
    assert.equal(one(all, "device.token.issued", (e) => e.deviceId === booted.id).actor, "gateway");
  });

  it("a pending request that expires is recorded as expired, by the gateway", () => {
    const all = entries(gw);
    const requested = one(all, "pairing.requested", (e) => e.deviceId === expiring.id);
    const expired = one(all, "pairing.expired", (e) => e.deviceId === expiring.id);
    assert.equal(expired.requestId, requested.requestId);
    assert.equal(expired.actor, "gateway");
  });

  it("revoking a role whose token was never handed out is recorded as a revocation, not as a token issued", () => {
    const all = entries(gw).filter((e) => e.deviceId === neverConnected.id && e.kind.startsWith("device.token."));
    assert.deepEqual(all.map((e) => [e.kind, e.actor]), [["device.token.revoked", "owner"]]);
  });

  it("a device token minted at admission is recorded (by the gateway), and its rotation by the owner", () => {
    const all = entries(gw);
    assert.equal(one(all, "device.token.issued", (e) => e.deviceId === minted.id).actor, "gateway");
    assert.equal(one(all, "device.token.rotated", (e) => e.deviceId === minted.id).actor, "owner");
  });

  it("everything stored that grants has its entry: every paired device, backend and bootstrap token", () => {
    const all = entries(gw);
    const paired = sql(gw, (db) => db.prepare("SELECT device_id AS id FROM paired_devices").all() as { id: string }[]);
    assert.equal(paired.length, 3);
    for (const { id } of paired) one(all, "device.paired", (e) => e.deviceId === id);
    const backends = sql(gw, (db) => db.prepare("SELECT id FROM backends").all() as { id: string }[]);
    for (const { id } of backends) one(all, "backend.added", (e) => e.backendId === id);
    const boots = sql(gw, (db) => db.prepare("SELECT id FROM bootstrap_tokens").all() as { id: string }[]);
    for (const { id } of boots) one(all, "bootstrap.issued", (e) => e.bootstrapId === id);
  });

  it("no secret presented or issued (shared tokens old and new, bootstrap token and setup code, device tokens, backend secret) and no digest of one is in any row", () => {
    const stored = allRows(gw).map((r) => `${r.event}\n${r.prev}\n${r.hash}`).join("\n");
    const text = gw.cli(["audit", "tail", "-n", "10000"]).stdout;
    const json = tailJson(gw).lines.join("\n");
    assert.ok(ledger.size >= 7, `the run used secrets (${ledger.size})`);
    for (const where of [stored, text, json]) ledger.assertAbsentFrom(where, "the audit log");
    assert.ok(digests.length >= 5);
    for (const d of digests) assert.equal(stored.includes(d), false, "no stored digest is in the audit log");
    assert.equal(verify(gw).code, 0);
  });
});

describe("audit log attack: a flood of refused handshakes while the store is locked", () => {
  let gw: GatewayProcess;
  const N = 1200;
  const ip = (i: number) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`;

  before(async () => {
    gw = await startGatewayProcess();
  });
  after(async () => {
    await gw.stop();
  });

  it("the gateway stays responsive, keeps the entries in its bounded queue, says once that it cannot write and once that it can again, and loses none", async () => {
    const lock = new Database(join(gw.stateDir, "gatewarden.sqlite"));
    lock.exec("BEGIN IMMEDIATE");
    const started = Date.now();
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: 40 }, async () => {
          while (next < N) await refusedConnect(gw, ip(next++));
        }),
      );
      // Still serving while its audit writes wait for the store.
      await assertGatewayServes(gw);
      // Hold the lock past the store's 3 s lock wait, so an append fails and is retried.
      await delay(Math.max(0, 4000 - (Date.now() - started)));
      await eventually(() => gw.logLines().some((l) => l.event === "audit-store"), "the failed append is reported", 5000);
    } finally {
      lock.exec("ROLLBACK");
      lock.close();
    }
    await eventually(() => gw.logLines().filter((l) => l.event === "audit-store").length >= 2, "writing works again", 10_000);
    const told = gw.logLines().filter((l) => l.event === "audit-store");
    assert.equal(told.length, 2, "one warning for the outage, one when it ends");
    assert.match(String(told[0]?.msg), /could not be written to the store; retrying/);
    assert.equal(told[1]?.dropped, 0, "nothing dropped below the queue's bound");
    const all = entries(gw);
    const flood = new Set(all.filter((e) => e.kind === "admission.reject" && typeof e.clientIp === "string" && e.clientIp.startsWith("198.18.")).map((e) => e.clientIp));
    assert.equal(flood.size, N, "every refusal is in the log");
    assert.equal(all.filter((e) => e.kind === "audit.dropped").length, 0);
    assert.equal(verify(gw).code, 0);
  });
});

describe("audit log attack: tampering with the anchor, the head and the tail", () => {
  let gw: GatewayProcess;

  before(async () => {
    gw = await startGatewayProcess();
    for (let i = 0; i < 4; i++) await refusedConnect(gw, `203.0.113.${150 + i}`);
    await eventually(() => allRows(gw).length >= 5, "entries are written");
  });
  after(async () => {
    await gw.stop();
  });

  it("an edited anchor is named at the first entry", () => {
    const anchor = setting(gw, "audit.anchor") as string;
    putSetting(gw, "audit.anchor", "ab".repeat(32));
    try {
      const r = verify(gw);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /entry #1 does not follow/);
    } finally {
      putSetting(gw, "audit.anchor", anchor);
    }
    assert.equal(verify(gw).code, 0);
  });

  it("a deleted anchor is named, and the gateway's next entry does not make the log check again (a new anchor does not fit the old chain)", async () => {
    const anchor = setting(gw, "audit.anchor") as string;
    putSetting(gw, "audit.anchor", undefined);
    try {
      assert.match(verify(gw).stderr, /the log's anchor is missing/);
      const before = allRows(gw).length;
      await refusedConnect(gw, "203.0.113.160");
      await eventually(() => allRows(gw).length > before, "the next entry is written");
      const r = verify(gw);
      assert.equal(r.code, 1, "a fresh anchor does not launder the deletion");
      assert.match(r.stderr, /entry #1 does not follow/);
    } finally {
      putSetting(gw, "audit.anchor", anchor);
    }
    assert.equal(verify(gw).code, 0);
  });

  it("dropping the newest entries is not a break on its own: it shows against a head recorded earlier, which the chain no longer reaches", () => {
    const recorded = JSON.parse(gw.cli(["audit", "verify", "--json"]).stdout) as { head: { seq: number; hash: string } };
    const rows = allRows(gw);
    const dropped = rows.slice(-2);
    sql(gw, (db) => db.prepare("DELETE FROM audit_log WHERE seq >= ?").run(dropped[0]?.seq));
    try {
      const now = gw.cli(["audit", "verify", "--json"]);
      assert.equal(now.code, 0, "a truncated chain is still a valid chain (docs/audit.md says so)");
      const head = (JSON.parse(now.stdout) as { head: { seq: number } }).head;
      assert.ok(head.seq < recorded.head.seq);
      assert.equal(entries(gw).some((e) => e.hash === recorded.head.hash), false, "the recorded head is no longer in the chain: that is how the truncation shows");
      // verify --expect-head makes that check: the head recorded earlier must still be in the chain.
      const expecting = gw.cli(["audit", "verify", "--expect-head", `${recorded.head.seq}:${recorded.head.hash}`]);
      assert.equal(expecting.code, 1);
      assert.equal(
        expecting.stderr,
        `gatewarden: audit log broken: entry #${recorded.head.seq} (the head recorded earlier) is gone: the log now ends at #${head.seq}, so its newest entries were deleted\n`,
      );
    } finally {
      for (const row of dropped) insertRow(gw, row);
    }
    const again = JSON.parse(gw.cli(["audit", "verify", "--json"]).stdout) as { head: { seq: number; hash: string } };
    assert.deepEqual(again.head, recorded.head);
    const held = gw.cli(["audit", "verify", "--expect-head", `${recorded.head.seq}:${recorded.head.hash}`]);
    assert.equal(held.code, 0, held.stderr);
    assert.match(held.stdout, new RegExp(`; it still holds #${recorded.head.seq}; head \\d+:[0-9a-f]{64}\n$`));
  });

  it("a chain rewritten consistently from its anchor (someone holding the store) verifies on its own, and --expect-head names the rewrite", () => {
    const recorded = JSON.parse(gw.cli(["audit", "verify", "--json"]).stdout) as { head: { seq: number; hash: string } };
    const rows = allRows(gw);
    const anchor = sql(gw, (db) => (db.prepare("SELECT value FROM settings WHERE key = 'audit.anchor'").get() as { value: string }).value);
    // Rewrite: the same events, one of them altered, every hash recomputed from the anchor on.
    const events = rows.map((r, i) => {
      const e = JSON.parse(r.event) as Record<string, unknown> & { kind: string; actor: string };
      const { kind, actor, ...fields } = e;
      return { kind, actor: i === 1 ? "owner" : actor, fields: fields as Record<string, string>, ts: r.ts };
    });
    const forged = linkAuditRows(auditHeadOf(undefined, undefined, anchor), events, 0);
    sql(gw, (db) => {
      db.prepare("DELETE FROM audit_log").run();
      const put = db.prepare("INSERT INTO audit_log (seq, ts, event, prev, hash) VALUES (?, ?, ?, ?, ?)");
      for (const r of forged) put.run(r.seq, r.ts, r.event, r.prev, r.hash);
    });
    try {
      assert.equal(gw.cli(["audit", "verify"]).code, 0, "a consistent rewrite is a valid chain on its own (docs/audit.md)");
      const expecting = gw.cli(["audit", "verify", "--expect-head", `${recorded.head.seq}:${recorded.head.hash}`, "--json"]);
      assert.equal(expecting.code, 1);
      assert.deepEqual(JSON.parse(expecting.stdout), {
        error: { code: "AUDIT_CHAIN_BROKEN", message: `audit log broken: entry #${recorded.head.seq} is not the one recorded earlier (its hash differs): the log was rewritten since` },
      });
    } finally {
      sql(gw, (db) => {
        db.prepare("DELETE FROM audit_log").run();
      });
      for (const row of rows) insertRow(gw, row);
    }
    assert.equal(gw.cli(["audit", "verify", "--expect-head", `${recorded.head.seq}:${recorded.head.hash}`]).code, 0);
    const bad = gw.cli(["audit", "verify", "--expect-head", "12:nothex"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: option '--expect-head <seq:hash>' argument '12:nothex' is invalid\. must be SEQ:HASH/);
  });

  it("a row inserted above the head is named, and the gateway's later entries do not hide it", async () => {
    const head = allRows(gw).at(-1) as Row;
    const forged = { seq: head.seq + 5, ts: head.ts, event: '{"actor":"owner","deviceId":"x","kind":"device.removed"}', prev: head.hash, hash: "" };
    insertRow(gw, { ...forged, hash: rowHash(forged.prev, forged.seq, forged.ts, forged.event) });
    const r = verify(gw);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`entry #${head.seq + 1} is missing \\(the next entry is #${head.seq + 5}\\)`));
    await refusedConnect(gw, "203.0.113.161");
    await eventually(() => (allRows(gw).at(-1)?.seq ?? 0) > head.seq + 5, "the gateway appends after it");
    assert.match(verify(gw).stderr, new RegExp(`entry #${head.seq + 1} is missing`));
  });
});

describe("audit log attack: pruning over a tampered log, and rows spliced in under the checkpoint", () => {
  let gw: GatewayProcess;
  const stateDir = mkdtempSync(join(tmpdir(), "gatewarden-audit-attacks-"));
  const config = { audit: { maxEntries: 4 }, pairing: { pendingTtlMs: 1000 } };
  let token: string | undefined;

  /** Stop, change the store as `meanwhile` says, start again on it (retention runs at start) and wait for its verdict. */
  async function restart(meanwhile: () => void): Promise<void> {
    await gw.stop();
    meanwhile();
    gw = await startGatewayProcess({ stateDir, config });
    await eventually(() => gw.logLines().some((l) => l.event === "audit-prune"), "the gateway tried to prune at start", 10_000);
  }

  before(async () => {
    gw = await startGatewayProcess({ stateDir, config });
    token = gw.token;
    for (let i = 0; i < 8; i++) await refusedConnect(gw, `203.0.113.${170 + i}`);
    await eventually(() => allRows(gw).length >= 9, "entries were written");
    await restart(() => undefined);
  });
  after(async () => {
    await gw.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("a row spliced in below the checkpoint (where pruned rows were) is named, though it hashes correctly", () => {
    const checkpoint = JSON.parse(setting(gw, "audit.checkpoint") as string) as { throughSeq: number; hash: string };
    const seq = checkpoint.throughSeq - 1;
    const event = '{"actor":"owner","deviceId":"victim","kind":"device.removed"}';
    insertRow(gw, { seq, ts: Date.now(), event, prev: "0".repeat(64), hash: rowHash("0".repeat(64), seq, Date.now(), event) });
    try {
      assert.ok(entries(gw).some((e) => e.deviceId === "victim"), "audit tail shows the spliced row among the others");
      const r = verify(gw);
      assert.equal(r.code, 1, `verify must not call a log intact while tail shows an unchecked entry: ${r.stdout}`);
      assert.equal(r.stderr, `gatewarden: audit log broken: entry #${seq} lies before the start of the log (#${checkpoint.throughSeq + 1}): pruned entries were put back, or it was forged\n`);
    } finally {
      sql(gw, (db) => db.prepare("DELETE FROM audit_log WHERE seq = ?").run(seq));
    }
    assert.equal(verify(gw).code, 0);
  });

  it("a deleted checkpoint is named: the rows left no longer start at #1", () => {
    const checkpoint = setting(gw, "audit.checkpoint") as string;
    const first = allRows(gw)[0] as Row;
    putSetting(gw, "audit.checkpoint", undefined);
    try {
      const r = verify(gw);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`entry #1 is missing \\(the next entry is #${first.seq}\\)`));
    } finally {
      putSetting(gw, "audit.checkpoint", checkpoint);
    }
    assert.equal(verify(gw).code, 0);
  });

  it("over an edited entry the gateway refuses to prune, at start and at every later run, says so once, and prunes nothing", async () => {
    for (let i = 0; i < 6; i++) await refusedConnect(gw, `203.0.113.${190 + i}`);
    await eventually(() => allRows(gw).length >= 10, "more entries than maxEntries");
    const rows = allRows(gw);
    const edited = rows[1] as Row;
    const checkpoint = setting(gw, "audit.checkpoint");
    await restart(() => sql(gw, (db) => db.prepare("UPDATE audit_log SET event = ? WHERE seq = ?").run(edited.event.replace(/"actor":"[^"]*"/, '"actor":"owner"'), edited.seq)));
    const refusals = () => gw.logLines().filter((l) => l.event === "audit-prune");
    assert.match(String(refusals()[0]?.msg), new RegExp(`the audit log is not intact \\(entry #${edited.seq} does not match its hash: it was edited\\); nothing is pruned`));
    // The next housekeeping run (30 s) expires a pending request, then tries to prune again.
    await requestPairing(gw, createTestDevice(), new SecretLedger(), "203.0.113.199", { token: token! });
    await eventually(() => entries(gw).some((e) => e.kind === "pairing.expired"), "housekeeping ran again", 40_000);
    await delay(500);
    assert.equal(refusals().length, 1, "the refusal is logged once, not at every run");
    assert.equal(setting(gw, "audit.checkpoint"), checkpoint, "no new checkpoint is signed over the edit");
    assert.equal(allRows(gw)[0]?.seq, rows[0]?.seq, "nothing is pruned");
    assert.match(verify(gw).stderr, new RegExp(`entry #${edited.seq} does not match its hash`));
  });
});
