import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { TestClient } from "../support/protocol-client.js";

// What a user gets from npm: the packed tarball, installed into an empty
// directory with npm, started with no build step of theirs. The package is
// built and packed from a copy of the sources (never from this checkout's
// dist/, which the other tests are running from).

const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
const work = mkdtempSync(join(tmpdir(), "gatewarden-package-"));
after(() => rmSync(work, { recursive: true, force: true }));
// `npm` and the installed `gatewarden` (#!/usr/bin/env node) run on the Node running this test, whichever
// runtime the suite is under (test/run-suite.ts), so the install is checked on each.
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`, npm_config_update_notifier: "false" };
const nodeMajor = Number(process.versions.node.split(".")[0]);

function run(cmd: string, args: readonly string[], cwd: string, timeoutMs = 300_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: timeoutMs, env });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Build and pack from a copy of what `npm pack` in the checkout would build from; the tarball's path. */
function pack(): string {
  const src = join(work, "src");
  mkdirSync(src);
  for (const entry of ["bin", "src", "web", "docs", "README.md", "package.json", "package-lock.json", "tsconfig.json"]) {
    cpSync(join(ROOT, entry), join(src, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"), "dir");
  run(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], src);
  const out = run("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", work], src).trim().split("\n").at(-1) ?? "";
  return join(work, out);
}

describe("the npm package", () => {
  it("installs from its tarball into an empty directory and runs: --version, serve with a generated token, a client admitted, the approval page, devices list; nothing of the tests inside", { timeout: 600_000 }, async () => {
    const tarball = pack();
    const files = run("tar", ["tzf", tarball], work).split("\n").filter(Boolean);
    for (const needed of ["package/bin/gatewarden.js", "package/dist/src/cli/main.js", "package/web/approvals/index.html", "package/package.json", "package/README.md"]) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const stray = files.filter((f) => /(^|\/)(test|bench)\//.test(f) || f.endsWith(".map") || f.endsWith(".ts") || f.includes("node_modules"));
    assert.deepEqual(stray, [], "no tests, benchmarks, sources or maps in the package");

    const app = join(work, "app");
    mkdirSync(app);
    // Its dependencies come from npm (already in the cache after `npm ci`). On Node 20 the SQLite driver is the
    // optional better-sqlite3 12, built here from source; from Node 22 on it is 13's prebuilt binary, so the
    // optional package is left out, as it is for a user whose machine cannot build it (no compiler).
    const omit = nodeMajor >= 22 ? ["--omit=optional"] : [];
    run("npm", ["install", tarball, "--prefer-offline", "--no-audit", "--no-fund", "--no-save", ...omit], app);
    const installed = readdirSync(join(app, "node_modules"));
    assert.equal(installed.includes("better-sqlite3-node20"), nodeMajor < 22, "better-sqlite3 12 only where it is needed");
    const bin = join(app, "node_modules", ".bin", "gatewarden");
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    assert.equal(run(bin, ["--version"], app).trim(), version);
    assert.ok(!readdirSync(join(app, "node_modules", "gatewarden")).includes("test"));

    const stateDir = join(app, "state");
    const child = spawn(bin, ["serve", "--state-dir", stateDir, "--port", "0"], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!/Operator token[^\n]*\n\s+(\S+)/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 25));
      const port = Number(/listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
      const token = /Operator token[^\n]*\n\s+(\S+)/.exec(out)?.[1];
      assert.ok(port > 0 && token, `serve started and showed its token:\n${out}`);
      const client = await TestClient.open(`ws://127.0.0.1:${port}`);
      assert.equal((await client.connect({ auth: { token } })).ok, true);
      client.close();
      const page = await fetch(`http://127.0.0.1:${port}/approvals`);
      assert.equal(page.status, 200, "the approval page's files are in the package");
      assert.match(run(bin, ["devices", "list", "--state-dir", stateDir], app), /no paired devices|DEVICE|pending/i);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });
});
