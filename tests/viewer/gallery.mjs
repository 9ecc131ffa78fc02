// node gallery.mjs --deps DIR --base URL --costume NAME --character ID --shots DIR
// Walks the gallery of `l2dfs serve` in headless Chromium: the characters,
// one character's costumes (icons counted once loaded), one costume's page
// (its preview's non-white pixels counted). Prints one JSON report.
import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

const a = { chromium: "/usr/bin/chromium" };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) a[argv[i].slice(2)] = argv[i + 1];
const require = createRequire(path.join(path.resolve(a.deps), "package.json"));
const { chromium } = require("playwright-core");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-angle=swiftshader", "--enable-unsafe-swiftshader"];

const browser = await chromium.launch({ executablePath: a.chromium, headless: true, args: FLAGS });
const report = { bad: [], errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  page.on("response", (r) => { if (r.status() >= 400) report.bad.push(r.status() + " " + r.url()); });
  page.on("pageerror", (e) => report.errors.push(String(e)));
  await page.goto(a.base + "/");
  await page.waitForSelector(".card", { timeout: 30000 });
  report.characters = await page.$$eval(".card", (cs) => cs.map((c) => c.textContent));
  // Keyboard: the first card has the focus; Enter opens it.
  report.focused = await page.evaluate(() => document.activeElement.className);
  await page.goto(a.base + "/#/c/" + a.character);
  await page.waitForSelector(".card img", { timeout: 30000 });
  await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: 30000 });
  report.icons = await page.$$eval(".card img", (is) => is.filter((i) => i.naturalWidth > 0).length);
  report.costumes = await page.$$eval(".card", (cs) => cs.length);
  report.lazy = await page.$$eval(".card img", (is) => is.every((i) => i.loading === "lazy"));
  await page.screenshot({ path: path.join(a.shots, "costumes.png") });
  await page.goto(a.base + "/#/costume/" + a.costume);
  await page.waitForFunction(() => document.body.dataset.preview, null, { timeout: 60000 });
  report.preview = await page.evaluate(() => document.body.dataset.preview);
  await page.waitForTimeout(1500);
  report.pixels = await page.evaluate(() => {
    const app = window.l2dfsApp;
    if (!app) return 0;
    app.render();
    const gl = app.renderer.gl, w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] < 250 || px[i + 1] < 250 || px[i + 2] < 250) n++;
    return n;
  });
  report.files = await page.$$eval("#files tr", (rs) => rs.length);
  report.state = await page.$eval("#state", (e) => e.textContent);
  await page.screenshot({ path: path.join(a.shots, "costume.png") });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + "\n");
