import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { compatTarget, unavailableReason } from "../compat/openclaw-cli.js";
import { eventually } from "../support/adversarial.js";
import { BIN, startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { pairGatewardenWith, startOpenclawUpstream, type OpenclawUpstream } from "../support/openclaw-upstream.js";

// The real OpenClaw Control UI (2026.9.6), served through gatewarden in front
// of a real OpenClaw gateway, in Debian's Chromium: the UI's own browser
// device key pairs through gatewarden, and once approved the UI shows the
// upstream's data. A page on another origin cannot connect.

const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
const SHARED = "gatewarden-control-ui-token-7d2b41";
const target = compatTarget("2026.9.6");
const skip = existsSync(CHROMIUM) ? unavailableReason(target) : `${CHROMIUM} is missing: apt-get install -y chromium`;
if (!existsSync(CHROMIUM) && process.env.CI === "true") throw new Error(`browser tests cannot run in CI: ${skip}`);

interface Pending {
  requestId: string;
  clientId?: string;
}

describe("the real OpenClaw Control UI through gatewarden, in Chromium", { skip }, () => {
  let upstream: OpenclawUpstream;
  let stateDir: string;
  let gw: GatewayProcess;
  let browser: Browser;
  before(async () => {
    upstream = await startOpenclawUpstream(target);
    stateDir = mkdtempSync(join(tmpdir(), "gw-control-ui-"));
    pairGatewardenWith(upstream, stateDir, BIN);
    gw = await startGatewayProcess({ stateDir, args: ["--upstream", upstream.url], env: { GATEWARDEN_TOKEN: SHARED } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--host-resolver-rules=MAP evil.test 127.0.0.1"] });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await upstream?.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("gatewarden's URL opens the real UI; with gatewarden's token it reports that pairing is required; after `gatewarden devices approve` it connects and shows the upstream's data", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${gw.port}/`);
    await page.locator("input[type=password]").fill(SHARED, { timeout: 30_000 });
    await page.locator("button", { hasText: "Connect" }).first().click();
    await page.locator("text=Approve this browser").waitFor({ timeout: 20_000 });

    let request: Pending | undefined;
    await eventually(() => {
      const listed = JSON.parse(gw.cli(["devices", "list", "--json"]).stdout) as { pending: Pending[] };
      request = listed.pending.find((p) => p.clientId === "openclaw-control-ui");
      return request !== undefined;
    }, "the UI's browser device asked gatewarden to pair");
    const approved = gw.cli(["devices", "approve", "--yes", request!.requestId]);
    assert.equal(approved.code, 0, approved.stderr);

    await page.locator("button", { hasText: "Connect" }).first().click();
    await page.locator("text=Connected").first().waitFor({ timeout: 30_000 });
    const admitted = gw.logLines().filter((l) => l.audit === "admission" && l.decision === "admit" && l.clientId === "openclaw-control-ui");
    assert.ok(admitted.length > 0, "gatewarden admitted the UI's session");
    // Upstream data: the upstream's main session, loaded through gatewarden (the UI shows its suggestions once it has it).
    await page.locator("text=What can you do?").first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(ROOT, "docs", "screenshots", "control-ui.png") });
    await page.close();
  });

  it("the same UI loaded from another origin cannot connect: gatewarden refuses its socket", async () => {
    const page = await browser.newPage();
    // The UI connects as soon as it loads.
    await page.goto(`http://evil.test:${gw.port}/`);
    await eventually(
      () => gw.logLines().some((l) => l.audit === "admission" && l.decision === "reject" && String(l.origin ?? "").includes("evil.test")),
      "gatewarden refused the page on another origin",
      20_000,
    );
    assert.ok(!gw.logLines().some((l) => l.audit === "admission" && l.decision === "admit" && String(l.origin ?? "").includes("evil.test")));
    await page.close();
  });
});
