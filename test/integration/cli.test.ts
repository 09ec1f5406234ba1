import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BIN } from "../support/gateway-process.js";

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("gatewarden CLI", () => {
  it("every command has --help", () => {
    for (const args of [[], ["serve"], ["devices"], ["devices", "approve"], ["devices", "rotate"], ["backends", "add"], ["token", "bootstrap"]]) {
      const r = run([...args, "--help"]);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: gatewarden/);
    }
  });

  it("admin commands on a state dir without a gateway say so clearly", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatewarden-empty-"));
    try {
      const r = run(["devices", "list", "--state-dir", dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no gateway state at .*start it once with "gatewarden serve"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("A39 auth mode none on a non-loopback address refuses to start", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatewarden-none-"));
    try {
      const r = run(["serve", "--auth-mode", "none", "--host", "0.0.0.0", "--port", "0"], { GATEWARDEN_STATE_DIR: dir });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /auth mode none is only allowed on a loopback address/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a misspelt config key stops the gateway with an error naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatewarden-cfg-"));
    try {
      const cfg = join(dir, "cfg.json");
      spawnSync("sh", ["-c", `printf '{"prot": 1}' > ${cfg}`]);
      const r = run(["serve", "--config", cfg, "--port", "0"], { GATEWARDEN_STATE_DIR: dir });
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unexpected property 'prot'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
