// node run.mjs --deps DIR --base URL [--chromium PATH] [--timeout S]
//              [--shots DIR] [--pid-file FILE] MODEL_URL_PATH...
// Opens <base>/__viewer/index.html?model=<path> in headless Chromium for each
// model (a new browser context each: no shared HTTP cache), waits for the
// page's report and prints {"results": {path: report}} as JSON, each report
// with what the browser saw: HTTP statuses >= 400, failed requests, page
// errors, console errors and warnings, and the wall time. --pid-file gets
// the browser's pid, so that a caller can end it if this script is killed.
import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

function parseArgs(argv) {
  const a = { chromium: "/usr/bin/chromium", timeout: 60, models: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (["--deps", "--base", "--chromium", "--timeout", "--shots", "--pid-file"].includes(k)) a[k.slice(2)] = argv[++i];
    else a.models.push(k);
  }
  if (!a.deps || !a.base || !a.models.length) {
    console.error("usage: node run.mjs --deps DIR --base URL [--chromium PATH] [--timeout S] " +
      "[--shots DIR] [--pid-file FILE] MODEL...");
    process.exit(2);
  }
  return a;
}

// The flags that give WebGL (SwiftShader) in headless Chromium without a GPU.
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-angle=swiftshader", "--enable-unsafe-swiftshader"];

// Pids of this process's children whose command names the executable
// (the Debian launcher script execs the real binary under another path).
function childPids(exe) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0")[0].includes(path.basename(exe))) out.push(Number(d));
    } catch (e) {
      // the process ended while being looked at
    }
  }
  return out;
}

async function view(browser, a, model) {
  const ctx = await browser.newContext({ viewport: { width: 800, height: 800 } });
  const page = await ctx.newPage();
  const seen = { badStatus: [], failedRequests: [], pageErrors: [], console: [] };
  page.on("response", (r) => { if (r.status() >= 400) seen.badStatus.push({ url: r.url(), status: r.status() }); });
  page.on("requestfailed", (r) => seen.failedRequests.push({ url: r.url(), error: r.failure()?.errorText }));
  page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") seen.console.push(m.type() + ": " + m.text());
  });
  const t0 = Date.now();
  let report;
  try {
    await page.goto(a.base + "/__viewer/index.html?model=" + encodeURIComponent(model));
    const h = await page.waitForFunction(() => window.viewerResult, null, { timeout: a.timeout * 1000 });
    report = await h.jsonValue();
  } catch (e) {
    report = { loaded: false, error: "driver: " + String(e) };
  }
  report.wallMs = Date.now() - t0;
  if (a.shots) {
    const file = path.join(a.shots, model.replace(/[^\w.-]+/g, "_") + ".png");
    await page.screenshot({ path: file }).catch(() => {});
  }
  await ctx.close();
  return Object.assign(report, seen);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const require = createRequire(path.join(path.resolve(a.deps), "package.json"));
  const { chromium } = require("playwright-core");
  if (a.shots) fs.mkdirSync(a.shots, { recursive: true });
  const t0 = Date.now();
  const browser = await chromium.launch({
    executablePath: a.chromium, headless: true, args: FLAGS, timeout: 30000,
  });
  const launchMs = Date.now() - t0;
  if (a["pid-file"]) fs.writeFileSync(a["pid-file"], childPids(a.chromium).join("\n") + "\n");
  const results = {};
  try {
    for (const m of a.models) results[m] = await view(browser, a, m);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify({ launchMs, results }) + "\n");
}

main().catch((e) => { console.error(e); process.exit(1); });
