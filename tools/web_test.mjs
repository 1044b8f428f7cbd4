// The demo page (examples/web/) in headless Chromium with a fake microphone
// playing models/silero_vad/speech.wav once: the page must load, run Silero
// VAD in its AudioWorklet, and find the segments `lstm-run --segments`
// finds in the file (the same number; each boundary within 0.15 s once the
// capture's start-up delay is taken out). Also saves a screenshot.
//
//   bash tools/build_wasm.sh && node tools/web_test.mjs [--screenshot out.png]
//
// Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM=path) and
// playwright-core (PLAYWRIGHT_CORE=path to its index.mjs, default: the
// copy tools/wasm_tests.sh installs under target/web-test/).
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pw = process.env.PLAYWRIGHT_CORE ?? path.join(root, "target/web-test/node_modules/playwright-core/index.mjs");
const { chromium } = await import(pathToFileURL(pw).href);
const shot = process.argv.includes("--screenshot") ? process.argv[process.argv.indexOf("--screenshot") + 1] : null;

const types = { ".js": "text/javascript", ".html": "text/html", ".wasm": "application/wasm", ".json": "application/json" };
const server = createServer(async (req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, "http://x").pathname));
  if (!file.startsWith(root)) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": types[path.extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const port = server.address().port;

const wav = path.join(root, "models/silero_vad/speech.wav");
const want = execFileSync(path.join(root, "target/release/lstm-run"), [path.join(root, "models/silero_vad/silero_vad.lstm"), wav, "--segments"], { encoding: "utf8" })
  .trim().split("\n").map((l) => l.split(" ").map(Number));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${wav}%noloop`, "--autoplay-policy=no-user-gesture-required",
  ],
});
let failed = null;
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`http://127.0.0.1:${port}/examples/web/index.html?autostart`);
  await page.waitForFunction(() => window.demo.ready || window.demo.error, null, { timeout: 30000 });
  const error = await page.evaluate(() => window.demo.error);
  if (error) throw new Error(`the page failed: ${error}`);
  // speech.wav is 11.9 s; wait until the worklet has processed all of it.
  await page.waitForFunction(() => window.demo.probs.length >= 372, null, { timeout: 40000 });
  await page.waitForTimeout(500);
  const got = (await page.evaluate(() => window.demo.segments())).map((s) => [s.startSeconds, s.endSeconds]);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  console.log(`lstm-run --segments: ${JSON.stringify(want)}`);
  console.log(`the page (fake microphone): ${JSON.stringify(got.map((s) => s.map((v) => Number(v.toFixed(3)))))}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  if (got.length !== want.length) throw new Error(`${got.length} segments, lstm-run finds ${want.length}`);
  // The capture starts before the worklet listens: the page's times are
  // the file's minus that delay (the same for every boundary).
  const delay = want[0][0] - got[0][0];
  for (let i = 0; i < want.length; i++) {
    for (let j = 0; j < 2; j++) {
      const d = Math.abs(got[i][j] + delay - want[i][j]);
      // The first start is the reference; the others within 0.15 s.
      if (d > 0.15) throw new Error(`segment ${i + 1}: ${got[i][j].toFixed(3)} + ${delay.toFixed(3)} s is ${d.toFixed(3)} s from ${want[i][j]}`);
    }
  }
  console.log(`ok: ${got.length} segments match (capture delay ${delay.toFixed(3)} s)`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
  server.close();
}
if (failed) {
  console.error(`web_test: ${failed.message}`);
  process.exit(1);
}
