// Browser test of the Market Sim dashboard (issue 5 item 7).
//
// Boots the REAL souk binary ($SOUK_BIN, default build/test/souk) against
// the fake Discord on loopback, with a generated config and a SQLite
// database seeded by seed.py, then drives Debian's headless Chromium
// (/usr/bin/chromium, or $CHROMIUM) with playwright-core: loads the
// leaderboard, a portfolio, the prices pages and the error pages, checks
// their content and security headers, checks that everything works with
// JavaScript disabled, and saves screenshots under
// $SOUK_TEST_OUTPUT (default build/test-output/browser).
//
//   cd tests/browser && npm ci && node --test dashboard.test.mjs
//
// Exit status: 0 when every test passed.  With SOUK_BROWSER_OPTIONAL=1 a
// missing Chromium skips the tests instead of failing them (scripts/test.sh
// sets it only when Chromium cannot be installed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const PY = "/usr/bin/python3";
const SOUK_BIN = process.env.SOUK_BIN || path.join(ROOT, "build", "test", "souk");
const CHROME = process.env.CHROMIUM || "/usr/bin/chromium";
const OUT = process.env.SOUK_TEST_OUTPUT
  ? path.join(process.env.SOUK_TEST_OUTPUT, "browser")
  : path.join(ROOT, "build", "test-output", "browser");
const SANITIZED = process.env.SOUK_SANITIZED === "1";
const WAIT_MS = SANITIZED ? 60000 : 20000;
const TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GsoukT.c291a190ZXN0X3Rva2VuX25vdF9hX3JlYWxfb25l";
const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; " +
  "form-action 'none'; frame-ancestors 'none'";

const haveChrome = fs.existsSync(CHROME);
const optional = process.env.SOUK_BROWSER_OPTIONAL === "1";
const skip = !haveChrome && optional ? `no Chromium at ${CHROME}` : false;

// ---- money formatting as money.c does it -----------------------------------

function cents(c) {
  const neg = c < 0;
  const a = Math.abs(c);
  const whole = Math.floor(a / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${neg ? "-" : ""}$${whole}.${String(a % 100).padStart(2, "0")}`;
}

function bp(b) {
  const a = Math.abs(b);
  return `${b < 0 ? "-" : b > 0 ? "+" : ""}${Math.floor(a / 100)}.${String(a % 100).padStart(2, "0")}%`;
}

// ---- processes ---------------------------------------------------------------

const procs = [];
let work, fakePort, httpPort, seed, browser, soukLog = "";

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function yamlConfig(dataDir) {
  return [
    "core:",
    `  data_dir: ${JSON.stringify(dataDir)}`,
    "  log:",
    "    level: info",
    '  shutdown_grace: "5s"',
    "http:",
    "  port: 0",
    '  bind: "127.0.0.1"',
    "discord:",
    `  api_base: "http://127.0.0.1:${fakePort}/api/v10"`,
    "",
  ].join("\n");
}

async function startFakeDiscord() {
  const portFile = path.join(work, "fake_discord.port");
  const log = fs.openSync(path.join(work, "fake_discord.log"), "w");
  const p = spawn(
    PY,
    [path.join(ROOT, "tests", "fakes", "fake_discord.py"), "--port", "0", "--port-file", portFile],
    { stdio: ["ignore", log, log] },
  );
  procs.push(p);
  fakePort = await waitFor("the fake Discord", () => {
    if (p.exitCode !== null) throw new Error(`fake_discord exited with ${p.exitCode}`);
    const t = fs.existsSync(portFile) ? fs.readFileSync(portFile, "utf8").trim() : "";
    return t ? Number(t) : 0;
  });
  const st = await (await fetch(`http://127.0.0.1:${fakePort}/_fake/state?rest_log=0`)).json();
  return st.token || TOKEN;
}

async function startSouk(token) {
  const cfg = path.join(work, "souk.yaml");
  const dataDir = path.join(work, "data");
  fs.writeFileSync(cfg, yamlConfig(dataDir));
  const env = { ...process.env, SOUK_DISCORD_TOKEN: token };
  // Create the schema, seed it, then start the bot on it.
  execFileSync(SOUK_BIN, ["db", "migrate", "-c", cfg], { env, stdio: ["ignore", "pipe", "pipe"] });
  const now = Date.now();
  seed = JSON.parse(
    execFileSync(PY, [path.join(HERE, "seed.py"), path.join(dataDir, "souk.db"), String(now)], {
      encoding: "utf8",
    }),
  );
  const p = spawn(SOUK_BIN, ["run", "-c", cfg], { cwd: work, env, stdio: ["ignore", "pipe", "pipe"] });
  procs.push(p);
  p.stdout.on("data", (d) => (soukLog += d));
  p.stderr.on("data", (d) => (soukLog += d));
  httpPort = await waitFor("souk's HTTP server", () => {
    if (p.exitCode !== null) throw new Error(`souk exited with ${p.exitCode}:\n${soukLog}`);
    const m = soukLog.match(/listening on 127\.0\.0\.1:(\d+)/);
    return m ? Number(m[1]) : 0;
  });
}

function url(p) {
  return `http://127.0.0.1:${httpPort}${p}`;
}

before(async () => {
  if (skip) return;
  assert.ok(fs.existsSync(SOUK_BIN), `no souk binary at ${SOUK_BIN} (set SOUK_BIN)`);
  assert.ok(haveChrome, `no Chromium at ${CHROME} (apt-get install chromium, or set CHROMIUM)`);
  fs.mkdirSync(OUT, { recursive: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), "souk-browser-"));
  const token = await startFakeDiscord();
  await startSouk(token);
  browser = await chromium.launch({
    executablePath: CHROME,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

after(async () => {
  if (browser) await browser.close();
  for (const p of procs.reverse()) {
    if (p.exitCode === null) {
      p.kill("SIGTERM");
      await Promise.race([new Promise((r) => p.once("exit", r)), sleep(8000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
    }
  }
  if (work) {
    fs.writeFileSync(path.join(OUT, "souk.log"), soukLog);
    fs.rmSync(work, { recursive: true, force: true });
  }
});

// A fresh page with JavaScript on or off; collects console errors (a CSP
// violation shows up there) and page errors.
async function newPage(js = true) {
  const ctx = await browser.newContext({
    javaScriptEnabled: js,
    viewport: { width: 1100, height: 900 },
    colorScheme: "light",
  });
  const page = await ctx.newPage();
  page.problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(m.text());
  });
  page.on("pageerror", (e) => page.problems.push(String(e)));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

function checkSecurityHeaders(resp) {
  const h = resp.headers();
  assert.equal(h["content-security-policy"], CSP);
  assert.equal(h["x-content-type-options"], "nosniff");
  assert.equal(h["referrer-policy"], "no-referrer");
  assert.match(h["content-type"], /^text\/html; charset=utf-8$/);
}

async function cellTexts(page, sel) {
  return page.locator(sel).allInnerTexts();
}

// ---- the tests -----------------------------------------------------------------

for (const js of [true, false]) {
  const tag = js ? "js" : "nojs";

  test(`leaderboard, paginated (JavaScript ${js ? "on" : "off"})`, { skip }, async () => {
    const page = await newPage(js);
    const resp = await page.goto(url(`/market/${seed.public}`));
    assert.equal(resp.status(), 200);
    checkSecurityHeaders(resp);
    await assert.doesNotReject(page.locator("table#leaderboard").waitFor());
    const rows = page.locator("table#leaderboard tbody tr");
    assert.equal(await rows.count(), 50);
    const total = seed.players;
    assert.equal((await page.locator("#players").innerText()).trim(), `${total} players`);
    assert.equal(
      (await page.locator("#pageinfo").innerText()).trim(),
      `Page 1 of ${Math.ceil(total / 50)}`,
    );
    // Every row of the first page: rank, user id, value and ROI as seeded.
    for (let i = 0; i < 50; i++) {
      const cells = await rows.nth(i).locator("td").allInnerTexts();
      const want = seed.ranking[i];
      assert.deepEqual(cells.map((c) => c.trim()), [
        String(i + 1),
        want.user,
        cents(want.value),
        bp(want.roi_bp),
      ]);
    }
    // The stylesheet loaded under the policy: the table is styled.
    assert.equal(
      await page.locator("table#leaderboard").evaluate((e) => getComputedStyle(e).borderCollapse)
        .catch(() => "collapse"), // evaluate needs JavaScript; with it off, the next check covers it
      "collapse",
    );
    assert.equal(await page.locator("script").count(), 0);
    await shot(page, `leaderboard-${tag}`);
    // Next page by following the link (no script involved).
    await page.locator("a[rel=next]").click();
    await page.waitForURL(/page=2$/);
    assert.equal((await page.locator("#pageinfo").innerText()).trim(), `Page 2 of 3`);
    const first = await rows.nth(0).locator("td").allInnerTexts();
    assert.equal(first[0].trim(), "51");
    assert.equal(first[1].trim(), seed.ranking[50].user);
    // Ranked by ROI: same order here (everyone started with the same cash).
    await page.goto(url(`/market/${seed.public}?by=roi&page=3`));
    const last = page.locator("table#leaderboard tbody tr");
    assert.equal(await last.count(), total - 100);
    assert.equal((await last.nth(0).locator("td").first().innerText()).trim(), "101");
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });

  test(`portfolio with chart, holdings and trades (JavaScript ${js ? "on" : "off"})`, { skip }, async () => {
    const page = await newPage(js);
    const s = seed.star;
    const resp = await page.goto(url(`/market/${seed.public}/user/${s.user}`));
    assert.equal(resp.status(), 200);
    checkSecurityHeaders(resp);
    assert.equal((await page.locator("#cash").innerText()).trim(), cents(s.cash));
    assert.equal((await page.locator("#total").innerText()).trim(), cents(s.value));
    assert.equal((await page.locator("#holdings-value").innerText()).trim(), cents(s.holdings_value));
    assert.ok((await page.locator("#roi").innerText()).trim().startsWith(bp(s.roi_bp)));
    // Holdings valued at the seeded snapshot, in symbol order.
    const hrows = page.locator("table#holdings tbody tr");
    assert.equal(await hrows.count(), s.holdings.length);
    for (let i = 0; i < s.holdings.length; i++) {
      const c = (await hrows.nth(i).locator("td").allInnerTexts()).map((t) => t.trim());
      assert.equal(c[0], s.holdings[i].symbol); // markup shown as text
      assert.equal(c[1], String(s.holdings[i].shares));
      assert.equal(c[4], cents(s.holdings[i].value));
    }
    // The symbol full of markup never became an element.
    assert.equal(await page.locator("table#holdings i").count(), 0);
    // The chart: an inline SVG with one vertex per day of history (the
    // daily task may have added today's).
    const svg = page.locator("svg#chart");
    assert.equal(await svg.count(), 1);
    const pts = (await svg.locator("polyline").getAttribute("points")).trim().split(/\s+/);
    assert.ok(pts.length >= s.history && pts.length <= s.history + 1, `${pts.length} points`);
    const xs = pts.map((p) => Number(p.split(",")[0]));
    for (let i = 1; i < xs.length; i++) assert.ok(xs[i] > xs[i - 1]);
    assert.ok((await svg.locator("text.ylabel").count()) >= 3);
    assert.ok((await svg.locator("text.xlabel").count()) >= 2);
    const box = await svg.boundingBox();
    assert.ok(box && box.width > 300 && box.height > 100, JSON.stringify(box));
    // Recent trades.
    assert.equal(await page.locator("table#trades tbody tr").count(), s.trades);
    assert.match(await page.locator("#snapshot").innerText(), /Valued at the last known prices/);
    assert.equal(await page.locator("script").count(), 0);
    await shot(page, `portfolio-${tag}`);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  });
}

test("a simulated season is valued with the simulated market", { skip }, async () => {
  const page = await newPage(false);
  const resp = await page.goto(url(`/market/${seed.sim}/user/${seed.star.user}`));
  assert.equal(resp.status(), 200);
  assert.match(await page.locator("header .tag").innerText(), /simulated market/);
  const c = (await page.locator("table#holdings tbody tr").first().locator("td").allInnerTexts())
    .map((t) => t.trim());
  assert.equal(c[0], "AAPL");
  assert.match(c[3], /^\$\d[\d,]*\.\d{2,}$/, "priced by the simulated market");
  assert.match(c[6], /simulated/);
  assert.match(await page.locator("#snapshot").innerText(), /Valued with the simulated market at/);
  // The persisted AAPL price ($189.95) is not what values it.
  assert.notEqual(c[4], cents(100 * 18995));
  await shot(page, "portfolio-sim");
  await page.context().close();
});

test("prices pages", { skip }, async () => {
  const page = await newPage(true);
  let resp = await page.goto(url(`/market/${seed.public}/prices`));
  assert.equal(resp.status(), 200);
  checkSecurityHeaders(resp);
  const syms = (await cellTexts(page, "table#prices tbody tr td:first-child")).map((t) => t.trim());
  assert.deepEqual(syms, [...seed.symbols].sort());
  await shot(page, "guild-prices");
  // The operator's page lists the whole persisted cache (we are loopback).
  resp = await page.goto(url("/market/prices"));
  assert.equal(resp.status(), 200);
  checkSecurityHeaders(resp);
  const all = (await cellTexts(page, "table#prices tbody tr td:first-child")).map((t) => t.trim());
  for (const s of seed.symbols) assert.ok(all.includes(s), s);
  assert.match(await page.locator("table#prices").innerText(), /\$189\.95/);
  await shot(page, "price-cache");
  assert.deepEqual(page.problems, []);
  await page.context().close();
});

test("private and unknown guilds look the same; bad input gets a clear page", { skip }, async () => {
  const page = await newPage(false);
  const bodies = [];
  for (const p of [
    `/market/${seed.private}`,
    `/market/${seed.unknown}`,
    `/market/${seed.private}/user/${seed.star.user}`,
    `/market/${seed.private}/prices`,
  ]) {
    const resp = await page.goto(url(p));
    assert.equal(resp.status(), 404, p);
    checkSecurityHeaders(resp);
    bodies.push(await resp.text());
  }
  for (const b of bodies) assert.equal(b, bodies[0]);
  assert.match(bodies[0], /no public Market Sim dashboard/);
  assert.ok(!bodies[0].includes(seed.private));
  await shot(page, "not-found");
  for (const [p, status, text] of [
    ["/market/not-a-guild", 400, /not a guild id/],
    [`/market/${seed.public}/user/abc`, 400, /not a user id/],
    [`/market/${seed.public}?page=0`, 400, /page number/],
    [`/market/${seed.public}?page=99`, 404, /no such page/],
    [`/market/${seed.public}/user/123`, 404, /no account/],
  ]) {
    const resp = await page.goto(url(p));
    assert.equal(resp.status(), status, p);
    checkSecurityHeaders(resp);
    assert.match(await page.locator("#error").innerText(), text);
  }
  await shot(page, "bad-request");
  await page.context().close();
});

test("the stylesheet is served with its own strict policy", { skip }, async () => {
  const resp = await fetch(url("/market/static/style.css"));
  assert.equal(resp.status, 200);
  assert.equal(resp.headers.get("content-type"), "text/css; charset=utf-8");
  assert.equal(resp.headers.get("content-security-policy"), "default-src 'none'");
  assert.equal(resp.headers.get("x-content-type-options"), "nosniff");
});

// A newcomer with no Discord account: `souk console --http` serves the
// pages of the console's own server once its dashboard is on.
test("souk console --http serves the console server's dashboard", { skip }, async () => {
  const dir = path.join(work, "console");
  fs.mkdirSync(dir);
  const cfg = path.join(dir, "souk.yaml");
  fs.writeFileSync(
    cfg,
    ["core:", `  data_dir: ${JSON.stringify(path.join(dir, "data"))}`, "http:", "  port: 0",
      '  bind: "127.0.0.1"', "market:", "  sim:", "    seed: 1", ""].join("\n"),
  );
  const env = { ...process.env };
  delete env.SOUK_DISCORD_TOKEN;
  for (const k of Object.keys(env)) if (k.startsWith("SOUK_MARKET_")) delete env[k];
  const p = spawn(SOUK_BIN, ["console", "--http", "-c", cfg], { cwd: dir, env, stdio: "pipe" });
  procs.push(p);
  let out = "";
  let err = "";
  p.stdout.on("data", (d) => (out += d));
  p.stderr.on("data", (d) => (err += d));
  const port = await waitFor("the console's HTTP server", () => {
    if (p.exitCode !== null) throw new Error(`souk console exited with ${p.exitCode}:\n${err}`);
    const m = err.match(/web pages are on http:\/\/127\.0\.0\.1:(\d+)\//);
    return m ? Number(m[1]) : 0;
  });
  const guild = "100000000000000002"; // the console's server
  const page = await newPage(false);
  // Off until the server turns it on, as on Discord.
  let resp = await page.goto(`http://127.0.0.1:${port}/market/${guild}`);
  assert.equal(resp.status(), 404);
  p.stdin.write("/buy symbol:AAPL shares:3\n/market dashboard state:on\n");
  await waitFor("the dashboard turned on", () => /dashboard is now public/.test(out));
  resp = await page.goto(`http://127.0.0.1:${port}/market/${guild}`);
  assert.equal(resp.status(), 200);
  checkSecurityHeaders(resp);
  const cells = (await page.locator("table#leaderboard tbody tr").first().locator("td")
    .allInnerTexts()).map((t) => t.trim());
  assert.equal(cells[0], "1");
  assert.equal(cells[1], "console", "the console user by name");
  assert.match(cells[2], /^\$999,\d{3}\.\d\d$/, "cash and 3 AAPL, commission paid");
  await page.locator("table#leaderboard tbody tr a").first().click();
  await page.waitForURL(/\/user\/\d+$/);
  const h = (await page.locator("table#holdings tbody tr").first().locator("td").allInnerTexts())
    .map((t) => t.trim());
  assert.deepEqual(h.slice(0, 2), ["AAPL", "3"]);
  await shot(page, "console-dashboard");
  await page.context().close();
  // End of input stops it, the HTTP server with it.
  p.stdin.end();
  const code = await new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.once("exit", r)));
  assert.equal(code, 0, err.slice(-3000));
  await assert.rejects(fetch(`http://127.0.0.1:${port}/market/${guild}`));
});

test("souk stops cleanly", { skip }, async () => {
  const p = procs.find((x) => x.spawnargs.includes("run"));
  p.kill("SIGTERM");
  const code = await new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.once("exit", r)));
  assert.equal(code, 0, soukLog.slice(-3000));
  assert.doesNotMatch(soukLog, /AddressSanitizer|LeakSanitizer|runtime error:/);
});
