// The staff page in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
//   node tests/browser/staff-page.mjs STORE_URL BRIDGE_URL PIN
//
// Run by `scripts/demo --check` with VBZKEY_BROWSER_TEST=1, against the demo's real stack
// (firmware, bridge, PHP store). Four staff browsers:
//   1. the admin page on a loopback origin the bridge allows: type the PIN, the sealed fields
//      open, cards masked to first 6 / last 4 until "reveal";
//   2. the same page from an origin the bridge does NOT allow: nothing opens, though the
//      dongle is unlocked;
//   3. the production case: the page on a public HTTPS origin (https://shop.example, mapped to
//      a local TLS proxy that Chromium is told is public) with Local Network Access granted;
//   4. the same without the grant (a staff member who clicked "Block"): nothing opens.
// Screenshots go to $ARTIFACTS. Ends with "N passed, M failed".

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [store, bridge, pin] = process.argv.slice(2);
if (!store || !bridge || !pin) {
  console.error("usage: node staff-page.mjs STORE_URL BRIDGE_URL PIN");
  process.exit(2);
}
const artifacts = process.env.ARTIFACTS || "artifacts";
mkdirSync(artifacts, { recursive: true });
const SECRET_MARKERS = ["4111111111111111", "5555555555554444", "378282246310005", "St James", "+12127363100"];

let passed = 0;
let failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`FAIL: ${what}`);
  }
}

// A proxy to the PHP store, so the same page can be served from other origins.
function proxyHandler(req, res) {
  const up = http.request(new URL(req.url, store), { method: req.method, headers: { ...req.headers, host: new URL(store).host } }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on("error", () => { res.writeHead(502); res.end(); });
  req.pipe(up);
}
function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

const tmp = mkdtempSync(join(tmpdir(), "vbzkey-browser-"));
// A throwaway self-signed certificate for the "public" HTTPS origin.
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
  "-keyout", join(tmp, "key.pem"), "-out", join(tmp, "cert.pem"), "-days", "1", "-subj", "/CN=shop.example",
  "-addext", "subjectAltName=DNS:shop.example"], { stdio: "ignore" });
const tlsProxy = https.createServer({ key: readFileSync(join(tmp, "key.pem")), cert: readFileSync(join(tmp, "cert.pem")) }, proxyHandler);
const otherProxy = http.createServer(proxyHandler);
const tlsPort = await listen(tlsProxy);
const otherPort = await listen(otherProxy);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    `--host-resolver-rules=MAP shop.example:443 127.0.0.1:${tlsPort}`,
    "--ignore-certificate-errors",
    // The port is required, or the override is silently ignored (and the test passes falsely).
    `--ip-address-space-overrides=127.0.0.1:${tlsPort}=public`,
  ],
});

async function page(context, url) {
  const p = await context.newPage();
  await p.goto(url, { waitUntil: "load" });
  return p;
}
const bar = (p) => p.locator("#vbzkey-bar .vbzkey-state").textContent({ timeout: 15000 });
const opened = (p) => p.locator(".vbzkey-open").count();
async function leaks(p) {
  const text = await p.locator("body").innerText();
  return SECRET_MARKERS.filter((m) => text.includes(m));
}

try {
  // 1. The allowed loopback page: PIN, then the fields open; cards masked until revealed.
  const staff = await browser.newContext();
  const p1 = await page(staff, `${store}/`);
  check((await bar(p1)).startsWith("Locked"), "the page shows the lock state");
  check((await p1.locator(".sealed").count()) === 9, "nine sealed fields on the page");
  await p1.fill(".vbzkey-pin", "000000");
  await p1.click("#vbzkey-bar button[type=submit]");
  await p1.locator(".vbzkey-error-text", { hasText: "Wrong PIN" }).waitFor({ timeout: 15000 });
  check((await p1.locator(".vbzkey-error-text").textContent()).includes("7 tries left"), "a wrong PIN says how many tries are left");
  check((await leaks(p1)).length === 0, "nothing opens after a wrong PIN");
  await p1.fill(".vbzkey-pin", pin);
  await p1.click("#vbzkey-bar button[type=submit]");
  await p1.waitForFunction(() => document.querySelectorAll(".vbzkey-open").length === 9, null, { timeout: 15000 });
  check((await bar(p1)).startsWith("Unlocked"), "the bar says unlocked");
  const card = p1.locator('[data-vbzkey-context="cust_cards/1001/card_number"]');
  check((await card.textContent()) === "411111••••••1111", "the card number is masked to first 6 / last 4");
  check(!(await p1.locator("body").innerText()).includes("4111111111111111"), "no full card number before reveal");
  await p1.locator(".vbzkey-reveal").first().click();
  check((await card.textContent()) === "4111111111111111", "reveal shows the full card number");
  const amex = await p1.locator('[data-vbzkey-context="cust_cards/1003/card_number"]').textContent();
  check(amex === "378282•••••0005", "an Amex is masked to first 6 / last 4 too");
  check((await p1.locator('[data-vbzkey-context="cust_addrs/1002/address"]').textContent()) === "350 Fifth Avenue\nSuite 3300\nNew York, NY", "the address opens");
  check((await p1.locator('[data-vbzkey-context="cust_phones/1002/phone"]').textContent()) === "+12127363100", "the phone opens");
  await p1.screenshot({ path: join(artifacts, "staff-page-unlocked.png"), fullPage: true });

  // 2. The same page from an origin the bridge does not allow: nothing, although unlocked.
  const p2 = await page(await browser.newContext(), `http://127.0.0.1:${otherPort}/`);
  check((await bar(p2)).startsWith("Key bridge not reachable"), "a non-allowed origin is told the bridge is not reachable");
  check((await opened(p2)) === 0 && (await leaks(p2)).length === 0, "a non-allowed origin gets no plaintext");
  await p2.screenshot({ path: join(artifacts, "other-origin-refused.png"), fullPage: true });

  // 3. Production: public HTTPS admin page, Local Network Access granted by the staff member.
  const granted = await browser.newContext();
  await granted.grantPermissions(["local-network-access"], { origin: "https://shop.example" });
  const p3 = await page(granted, "https://shop.example/");
  await p3.waitForFunction(() => document.querySelectorAll(".vbzkey-open").length === 9, null, { timeout: 15000 }).catch(() => {});
  check((await opened(p3)) === 9, "the public HTTPS page opens the fields once Local Network Access is granted");
  await p3.screenshot({ path: join(artifacts, "public-origin-granted.png"), fullPage: true });

  // 4. The same page, permission denied: the browser blocks the call before it leaves.
  const p4 = await page(await browser.newContext(), "https://shop.example/");
  check((await bar(p4)).startsWith("Key bridge not reachable"), "without the permission the page says the bridge is not reachable");
  check((await opened(p4)) === 0 && (await leaks(p4)).length === 0, "without the permission nothing opens");

  // Locking from the page closes everything again.
  await p1.click(".vbzkey-lock");
  await p1.locator("#vbzkey-bar .vbzkey-state", { hasText: /^Locked/ }).waitFor({ timeout: 15000 });
  const left = await opened(p1);
  const leaked = await leaks(p1);
  check(left === 0 && leaked.length === 0, `lock hides every value again (still open: ${left}, visible: ${leaked})`);
} catch (e) {
  check(false, `unexpected error: ${e.stack || e}`);
} finally {
  await browser.close();
  tlsProxy.close();
  otherProxy.close();
  rmSync(tmp, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
