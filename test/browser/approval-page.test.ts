import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser } from "playwright-core";
import { SecretLedger, addBackend, helloAuth } from "../support/adversarial.js";
import { createTestDevice } from "../support/device.js";
import { startGatewayProcess, type GatewayProcess } from "../support/gateway-process.js";
import { TestClient } from "../support/protocol-client.js";

// gatewarden's approval page in a real headless Chromium (Debian's package,
// driven by playwright-core): an operator signs in with a credential holding
// operator.pairing, sees a device's request with the code the device
// received, approves it with a click, and the device is admitted.

const CHROMIUM = "/usr/bin/chromium";
const ROOT = resolve(fileURLToPath(new URL("../../../", import.meta.url)));
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing: apt-get install -y chromium`;
if (skip && process.env.CI === "true") throw new Error(`browser tests cannot run in CI: ${skip}`);

describe("the approval page in Chromium", { skip }, () => {
  const ledger = new SecretLedger();
  let gw: GatewayProcess;
  let browser: Browser;
  before(async () => {
    gw = await startGatewayProcess();
    ledger.add(gw.token);
    // evil.test is another origin on this machine: a page there must not reach the gateway.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--host-resolver-rules=MAP evil.test 127.0.0.1"] });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it("serves the page with a strict Content-Security-Policy and no framing", async () => {
    const res = await fetch(`http://127.0.0.1:${gw.port}/approvals`);
    assert.equal(res.status, 200);
    const csp = res.headers.get("content-security-policy") ?? "";
    for (const d of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]) assert.ok(csp.includes(d), d);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal((await fetch(`http://127.0.0.1:${gw.port}/approvals`, { method: "POST" })).status, 405);
    assert.equal((await fetch(`http://127.0.0.1:${gw.port}/approvals/../package.json`)).status, 426, "nothing else is served");
  });

  it("an operator signs in with a pairing credential, sees the device's request with the code the device received within a second, approves it narrowed to operator.read with a click, the device is admitted with exactly that, and a revocation from the page closes its session", async () => {
    const approver = addBackend(gw, "approvals-page", ["operator.pairing", "operator.read"], ledger);
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    await page.goto(`http://127.0.0.1:${gw.port}/approvals`);
    await page.fill("#credential", approver);
    await page.click("button[type=submit]");
    await page.waitForSelector("#app:not([hidden])", { timeout: 10_000 });
    assert.match((await page.textContent("#status")) ?? "", /Signed in with .*operator\.pairing/);
    assert.equal(await page.isHidden("#signin"), true, "the sign-in form is gone");
    assert.equal(await page.evaluate("localStorage.length + sessionStorage.length + document.cookie.length"), 0, "the credential is kept nowhere but in memory");
    assert.ok(!page.url().includes(approver), "nor in the URL");

    const device = createTestDevice();
    const client = await TestClient.open(gw.url);
    const refused = await client.connect({ device, scopes: ["operator.read", "operator.write"], auth: { token: gw.token! }, displayName: "<img src=x onerror=alert(1)>phone" });
    const requestId = refused.error?.details?.requestId as string;
    const code = refused.error?.details?.verificationCode as string;
    const shownAt = Date.now();
    const card = page.locator(`li[data-request-id="${requestId}"]`);
    await card.waitFor({ timeout: 5000 });
    assert.ok(Date.now() - shownAt < 1000, `shown after ${Date.now() - shownAt} ms`);
    assert.equal(await card.locator(".code").textContent(), code, "the same code the device received");
    assert.match((await card.textContent()) ?? "", /<img src=x onerror=alert\(1\)>phone/, "client text is shown as text");
    assert.equal(await card.locator("img").count(), 0, "and never as markup");
    await page.screenshot({ path: join(ROOT, "docs", "screenshots", "approvals.png"), fullPage: true });

    // Narrowed to operator.read: the write scope is unchecked before approving.
    await card.locator('input[value="operator.write"]').uncheck();
    await card.locator("button.approve").click();
    await card.waitFor({ state: "detached", timeout: 5000 });
    await page.locator(`li[data-device-id="${device.id}"]`).waitFor({ timeout: 5000 });

    const again = await TestClient.open(gw.url);
    const admitted = await again.connect({ device, scopes: ["operator.read"], auth: { token: gw.token! } });
    assert.equal(admitted.ok, true, JSON.stringify(admitted.error));
    const auth = helloAuth(admitted);
    assert.deepEqual(auth.scopes, ["operator.read"]);
    if (auth.deviceToken) ledger.add(auth.deviceToken);
    // Revoking from the page takes effect at once: the device's live session is closed.
    page.on("dialog", (d) => void d.accept());
    const pairedCard = page.locator(`li[data-device-id="${device.id}"]`);
    await page.click("#refresh");
    await pairedCard.locator("button", { hasText: "Revoke operator token" }).click();
    assert.equal((await again.closed).code, 4001);
    await pairedCard.locator("text=(revoked)").waitFor({ timeout: 5000 });
    assert.deepEqual(problems, []);
    await page.close();
  });

  it("a credential without operator.pairing is not signed in, and a page on another origin cannot connect", async () => {
    const reader = addBackend(gw, "approvals-reader", ["operator.read"], ledger);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${gw.port}/approvals`);
    await page.fill("#credential", reader);
    await page.click("button[type=submit]");
    await page.locator("#status", { hasText: "does not hold operator.pairing" }).waitFor({ timeout: 10_000 });
    assert.equal(await page.isHidden("#app"), true);

    // The same page, loaded from another origin (evil.test, resolved to this machine): the gateway refuses its socket.
    await page.goto(`http://evil.test:${gw.port}/approvals`);
    const approver = addBackend(gw, "approvals-evil", ["operator.pairing"], ledger);
    await page.fill("#credential", approver);
    await page.click("button[type=submit]");
    await page.locator("#status", { hasText: /Not signed in|Signed out \(/ }).waitFor({ timeout: 10_000 });
    assert.equal(await page.isHidden("#app"), true);
    const refusals = gw.logLines().filter((l) => l.audit === "admission" && l.decision === "reject" && /origin/i.test(String(l.code ?? "") + String(l.reason ?? "")));
    assert.ok(refusals.length > 0, "refused for its origin");
    await page.close();
  });
});
