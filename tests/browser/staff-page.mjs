// The staff page in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
//   node tests/browser/staff-page.mjs STORE_URL BRIDGE_URL PIN
//   (AUDIT_CMD: a JSON array, the command that prints the dongle's audit log)
//
// Run by `scripts/demo --check` with VBZKEY_BROWSER_TEST=1, against the demo's real stack
// (firmware, bridge, PHP store on SQLite). Staff browsers:
//   1. the admin page on a loopback origin the bridge allows: a wrong PIN, a search by last 4,
//      the PIN; the sealed fields open, cards masked to first 6 / last 4 until "reveal",
//      phones as tel: links; labels for the two orders found, printed to PDF (page.pdf) and
//      read back with pdftotext: both addresses on 4×6 in pages, from ONE audited unseal;
//      a Letter packing list; the print sheet gone after printing; after Lock, no plaintext
//      anywhere in the page's HTML;
//   2. the timers (Playwright's clock): a revealed card masks itself again, an unprinted sheet
//      is removed after its timeout, a page whose dongle was locked elsewhere drops its
//      plaintext; values an attacker planted in the database (a phone
//      "javascript:…", an address of HTML) open as text, never as a link or markup;
//   3. the same page from an origin the bridge does NOT allow: nothing opens;
//   4. the production case: the page on a public HTTPS origin (https://shop.example, mapped to
//      a local TLS proxy that Chromium is told is public) with Local Network Access granted;
//   5. the same without the grant (a staff member who clicked "Block"): nothing opens.
// Screenshots and the PDFs go to $ARTIFACTS. Ends with "N passed, M failed".

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
const auditCmd = process.env.AUDIT_CMD ? JSON.parse(process.env.AUDIT_CMD) : null;
const artifacts = process.env.ARTIFACTS || "artifacts";
mkdirSync(artifacts, { recursive: true });
// Plaintexts of the demo's customers: none may be in the page's HTML while it is locked.
const SECRET_MARKERS = ["4111111111111111", "5555555555554444", "378282246310005", "4012888800021111",
  "St James", "Adlington", "Hollymeade", "Fifth Avenue", "NASA Drive", "+442079460958", "+12127363100", "+441625500000"];

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

// Headless Chromium has no print dialog: window.print() there leaves the page "being printed"
// and page.pdf() (the real print path, with print media, @page sizes and the beforeprint /
// afterprint events) then refuses to run. So the dialog is replaced by a counter, and the
// test prints with page.pdf(), as the staff member's "Save as PDF" or printer would.
async function staffContext(options = {}) {
  const context = await browser.newContext(options);
  await context.addInitScript(() => {
    window.__prints = 0;
    window.print = () => { window.__prints += 1; };
  });
  return context;
}
async function page(context, url) {
  const p = await context.newPage();
  await p.goto(url, { waitUntil: "load" });
  return p;
}
const bar = (p) => p.locator("#vbzkey-bar .vbzkey-state").textContent({ timeout: 15000 });
const opened = (p) => p.locator(".vbzkey-open").count();
async function leaks(p) {
  const text = await p.content(); // the whole HTML: text, attributes, hidden elements
  return SECRET_MARKERS.filter((m) => text.includes(m));
}
function auditLines() {
  if (!auditCmd) return null;
  return execFileSync(auditCmd[0], auditCmd.slice(1), { encoding: "utf8" }).split("\n").filter((l) => l.trim());
}
// The audit line's fields: version, seq, time, event, keys, ok, failed, host, hash.
const unseals = (lines) => lines.map((l) => l.split(" ")).filter((f) => f[3] === "unseal").map((f) => Number(f[5]));
function pdfText(path) {
  return execFileSync("pdftotext", ["-layout", path, "-"], { encoding: "utf8" });
}
function pdfPages(path) {
  const info = execFileSync("pdfinfo", [path], { encoding: "utf8" });
  return { pages: Number(/Pages:\s+(\d+)/.exec(info)[1]), size: /Page size:\s+([\d.]+ x [\d.]+) pts/.exec(info)[1] };
}
// The bridge's API as another page of the store would call it.
async function bridgePost(path, body) {
  const r = await fetch(bridge + path, { method: "POST", headers: { Origin: store, "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}
async function printTo(p, button, path) {
  const before = await p.evaluate(() => window.__prints);
  await p.click(button);
  await p.waitForFunction((n) => window.__prints > n, before, { timeout: 15000 });
  await p.pdf({ path, preferCSSPageSize: true, printBackground: false });
}

try {
  // 1. The allowed loopback page.
  const staff = await staffContext();
  const p1 = await page(staff, `${store}/`);
  check((await bar(p1)).startsWith("Locked"), "the page shows the lock state");
  check((await p1.locator("tbody .sealed").count()) === 12, "twelve sealed fields for four orders");
  await p1.fill(".vbzkey-pin", "000000");
  await p1.click("#vbzkey-bar button[type=submit]");
  await p1.locator(".vbzkey-error-text", { hasText: "Wrong PIN" }).waitFor({ timeout: 15000 });
  check((await p1.locator(".vbzkey-error-text").textContent()).includes("7 tries left"), "a wrong PIN says how many tries are left");
  check((await leaks(p1)).length === 0, "nothing opens after a wrong PIN");

  // Search by the card's last 4: the two orders paid with a card ending 1111.
  await p1.fill("input[name=q]", "1111");
  await Promise.all([p1.waitForNavigation(), p1.press("input[name=q]", "Enter")]);
  const found = await p1.locator("input[data-vbzkey-select]").evaluateAll((boxes) => boxes.map((b) => b.value).sort());
  check(JSON.stringify(found) === JSON.stringify(["#1041", "#1044"]), `a search by last 4 finds the two orders (${found})`);
  await p1.fill(".vbzkey-pin", pin);
  await p1.click("#vbzkey-bar button[type=submit]");
  await p1.waitForFunction(() => document.querySelectorAll("tbody .vbzkey-open").length === 6, null, { timeout: 15000 });
  check((await bar(p1)).startsWith("Unlocked"), "the bar says unlocked");
  const card = p1.locator('tbody [data-vbzkey-context="cust_cards/1001/card_number"]');
  check((await card.textContent()) === "411111••••••1111", "the card number is masked to first 6 / last 4");
  check(!(await p1.content()).includes("4111111111111111"), "no full card number in the page before reveal");
  await p1.locator('tbody [data-vbzkey-context="cust_cards/1001/card_number"] + .vbzkey-reveal').click();
  check((await card.textContent()) === "4111111111111111", "reveal shows the full card number");
  check((await p1.locator('tbody [data-vbzkey-context="cust_addrs/1004/address"]').textContent()) === "Hollymeade\nAdlington Road\nWilmslow", "the address opens");
  const tel = await p1.locator('tbody [data-vbzkey-context="cust_phones/1001/phone"] a').getAttribute("href");
  check(tel === "tel:+442079460958", `an opened phone number is a tel: link (${tel})`);
  const mail = await p1.locator('a[href^="mailto:"]').first().getAttribute("href");
  check(mail === "mailto:alan@example.com" || mail === "mailto:ada@example.com", `an email is a mailto: link (${mail})`);
  await p1.screenshot({ path: join(artifacts, "staff-page-unlocked.png"), fullPage: true });

  // Labels for both orders: one batch unseal, 4×6 in pages, both addresses in the PDF.
  await p1.check('input[data-vbzkey-select][value="#1041"]');
  await p1.check('input[data-vbzkey-select][value="#1044"]');
  const auditBefore = auditLines();
  const labels = join(artifacts, "labels.pdf");
  await printTo(p1, "button[data-vbzkey-print=labels]", labels);
  const labelText = pdfText(labels);
  for (const want of ["Ada Lovelace", "12 St James's Square", "SW1Y 4JH", "Alan Turing", "Hollymeade", "Adlington Road", "Wilmslow", "SK9 4LZ", "Order #1041", "Order #1044"]) {
    check(labelText.includes(want), `the labels PDF holds "${want}"`);
  }
  const lp = pdfPages(labels);
  check(lp.pages === 2 && lp.size === "288 x 432", `one 4×6 in page per label (${lp.pages} pages of ${lp.size} pt)`);
  check(!labelText.includes("Demo store — orders"), "the labels PDF holds the labels only, not the page");
  if (auditBefore) {
    const added = unseals(auditLines().slice(auditBefore.length));
    check(JSON.stringify(added) === "[2]", `the labels were one audited unseal of the two addresses (new unseal lines: ${JSON.stringify(added)})`);
  } else {
    check(false, "AUDIT_CMD is set (scripts/demo sets it)");
  }
  check((await p1.locator(".vbzkey-print").count()) === 0, "after printing, the print sheet and its plaintext are gone");

  // A Letter packing list: items and ship-to address.
  await p1.selectOption("select[data-vbzkey-paper]", "letter");
  const packing = join(artifacts, "packing-list.pdf");
  await printTo(p1, "button[data-vbzkey-print=packing]", packing);
  const packText = pdfText(packing);
  for (const want of ["Packing list — order #1041", "Notes on the Analytical Engine", "Brass pen nibs", "12 St James's Square", "On Computable Numbers", "Hollymeade"]) {
    check(packText.includes(want), `the packing list holds "${want}"`);
  }
  const pp = pdfPages(packing);
  check(pp.pages === 2 && pp.size === "612 x 792", `one Letter page per order (${pp.pages} pages of ${pp.size} pt)`);

  // Nothing selected: nothing is opened or printed, and the page says why.
  await p1.uncheck('input[data-vbzkey-select][value="#1041"]');
  await p1.uncheck('input[data-vbzkey-select][value="#1044"]');
  const printsBefore = await p1.evaluate(() => window.__prints);
  await p1.click("button[data-vbzkey-print=labels]");
  await p1.locator(".vbzkey-notice", { hasText: "Select the orders" }).waitFor({ timeout: 15000 });
  check((await p1.evaluate(() => window.__prints)) === printsBefore, "with no order selected, nothing is printed");

  // 2. Timers, on a second staff page with Playwright's clock.
  const timed = await staffContext();
  await timed.clock.install();
  const p5 = await page(timed, `${store}/?q=1111`);
  await p5.waitForFunction(() => document.querySelectorAll("tbody .vbzkey-open").length === 6, null, { timeout: 15000 });
  const card5 = p5.locator('tbody [data-vbzkey-context="cust_cards/1004/card_number"]');
  await p5.locator('tbody [data-vbzkey-context="cust_cards/1004/card_number"] + .vbzkey-reveal').click();
  check((await card5.textContent()) === "4012888800021111", "reveal on the second page");
  await timed.clock.fastForward(31_000);
  check((await card5.textContent()) === "401288••••••1111", "a revealed card number masks itself again after 30 s");
  await p5.check('input[data-vbzkey-select][value="#1044"]');
  await p5.click("button[data-vbzkey-print=labels]");
  await p5.waitForFunction(() => window.__prints === 1, null, { timeout: 15000 });
  check((await p5.locator(".vbzkey-print").count()) === 1, "the label sheet is there while the print dialog is open");
  await timed.clock.fastForward(121_000);
  check((await p5.locator(".vbzkey-print").count()) === 0, "an unprinted sheet is removed after its timeout");
  // The dongle locked elsewhere (another page, the idle lock): this page notices within 15 s.
  await bridgePost("/v1/lock", {});
  await timed.clock.fastForward(16_000);
  await p5.waitForFunction(() => document.querySelectorAll(".vbzkey-open").length === 0, null, { timeout: 15000 }).catch(() => {});
  check((await p5.locator(".vbzkey-open").count()) === 0 && (await leaks(p5)).length === 0,
    "a page whose dongle was locked elsewhere drops its plaintext");
  check((await bridgePost("/v1/unlock", { pin })).status === 200, "unlocked again for the next pages");
  await timed.close();

  // 3. The same page from an origin the bridge does not allow: nothing, although unlocked.
  const p2 = await page(await staffContext(), `http://127.0.0.1:${otherPort}/`);
  check((await bar(p2)).startsWith("Key bridge not reachable"), "a non-allowed origin is told the bridge is not reachable");
  check((await opened(p2)) === 0 && (await leaks(p2)).length === 0, "a non-allowed origin gets no plaintext");
  await p2.screenshot({ path: join(artifacts, "other-origin-refused.png"), fullPage: true });

  // Values planted in the database by an attacker (scripts/demo seals them to the public key
  // for customer 1003) open as text: no link to javascript:, no markup, no script run.
  const p6 = await page(await staffContext(), `${store}/?q=23666`);
  await p6.waitForFunction(() => document.querySelectorAll("tbody .vbzkey-open").length === 3, null, { timeout: 15000 });
  const phone6 = p6.locator('tbody [data-vbzkey-context="cust_phones/1003/phone"]');
  check((await phone6.textContent()) === "javascript:alert(document.domain)" && (await phone6.locator("a").count()) === 0,
    "a planted phone value that is not a number is shown as text, not as a link");
  const addr6 = p6.locator('tbody [data-vbzkey-context="cust_addrs/1003/address"]');
  check((await addr6.locator("img").count()) === 0 && (await p6.evaluate(() => window.__pwned)) === undefined,
    "a planted address holding HTML is text: no element made, no script run");

  // 4. Production: public HTTPS admin page, Local Network Access granted by the staff member.
  const granted = await staffContext();
  await granted.grantPermissions(["local-network-access"], { origin: "https://shop.example" });
  const p3 = await page(granted, "https://shop.example/");
  await p3.waitForFunction(() => document.querySelectorAll("tbody .vbzkey-open").length === 12, null, { timeout: 15000 }).catch(() => {});
  check((await opened(p3)) === 12, "the public HTTPS page opens the fields once Local Network Access is granted");
  await p3.screenshot({ path: join(artifacts, "public-origin-granted.png"), fullPage: true });

  // 5. The same page, permission denied: the browser blocks the call before it leaves.
  const p4 = await page(await staffContext(), "https://shop.example/");
  check((await bar(p4)).startsWith("Key bridge not reachable"), "without the permission the page says the bridge is not reachable");
  check((await opened(p4)) === 0 && (await leaks(p4)).length === 0, "without the permission nothing opens");

  // Lock: a sheet in the print area and every field lose their plaintext at once.
  await p1.check('input[data-vbzkey-select][value="#1041"]');
  await p1.click("button[data-vbzkey-print=labels]");
  await p1.waitForFunction(() => document.querySelector(".vbzkey-print") && document.querySelector(".vbzkey-print").textContent.includes("James"), null, { timeout: 15000 });
  await p1.click(".vbzkey-lock");
  await p1.locator("#vbzkey-bar .vbzkey-state", { hasText: /^Locked/ }).waitFor({ timeout: 15000 });
  const left = await opened(p1);
  const leaked = await leaks(p1);
  check(left === 0 && leaked.length === 0, `after Lock the page's HTML holds no plaintext (still open: ${left}, found: ${leaked})`);
  check((await p1.locator(".vbzkey-print").count()) === 0, "Lock removes a print sheet too");
  await p1.screenshot({ path: join(artifacts, "staff-page-locked.png"), fullPage: true });
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
