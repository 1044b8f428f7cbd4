// lstmrt's WebAssembly build against onnxruntime-web on Silero VAD, in the
// same headless Chromium and in Node, same audio, same 512-sample chunks:
// per-chunk time (median, p90), time from the fetch to a ready model, and
// the bytes a page downloads (raw, gzip, brotli). Run by hand:
//
//   bash tools/build_wasm.sh
//   (cd tools/web-bench && npm install)          # onnxruntime-web, vad-web's model, playwright-core
//   node tools/bench_web.mjs [--json out.json]
//
// Pages are served with COOP/COEP only so that performance.now() has 5 us
// resolution (neither runtime uses threads here: ORT is set to one). Each
// side's probabilities are compared with native lstm-run's (lstmrt) or
// with ORT's own native-thread numbers where available.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import zlib from "node:zlib";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bench = path.join(root, "tools/web-bench/node_modules");
const npm = path.join(root, "crates/wasm/npm");
const ortDist = path.join(bench, "onnxruntime-web/dist");
const vadWeb = path.join(bench, "@ricky0123/vad-web/dist");
const jsonOut = process.argv.includes("--json") ? process.argv[process.argv.indexOf("--json") + 1] : null;

// ------------------------------------------------------------------ sizes
const sizes = (files) => {
  const raw = files.reduce((n, f) => n + readFileSync(f).length, 0);
  const gz = files.reduce((n, f) => n + zlib.gzipSync(readFileSync(f), { level: 9 }).length, 0);
  const br = files.reduce((n, f) => n + zlib.brotliCompressSync(readFileSync(f)).length, 0);
  return { raw, gzip: gz, brotli: br };
};
const lstmrtFiles = (wasm) => [path.join(npm, wasm), path.join(npm, "lstmrt.js"), path.join(npm, "vad.js"), path.join(npm, "vad-worklet.js")];
const download = {
  "lstmrt (simd128 build + JS)": sizes(lstmrtFiles("lstmrt.wasm")),
  "lstmrt (relaxed-SIMD build + JS)": sizes(lstmrtFiles("lstmrt-relaxed.wasm")),
  "onnxruntime-web (ort.wasm.min.mjs + ort-wasm-simd-threaded.{wasm,mjs})": sizes([
    path.join(ortDist, "ort.wasm.min.mjs"), path.join(ortDist, "ort-wasm-simd-threaded.wasm"), path.join(ortDist, "ort-wasm-simd-threaded.mjs"),
  ]),
  "model: lstmrt silero_vad.lstm (f32)": sizes([path.join(npm, "silero_vad.lstm")]),
  "model: lstmrt silero_vad_f16.lstm": sizes([path.join(npm, "silero_vad_f16.lstm")]),
  "model: vad-web silero_vad_v5.onnx": sizes([path.join(vadWeb, "silero_vad_v5.onnx")]),
};

// ------------------------------------------------------------------ the audio and native numbers
const wav = path.join(root, "models/silero_vad/speech.wav");
const nativeBench = execFileSync(path.join(root, "target/release/lstm-run"), [path.join(root, "models/silero_vad/silero_vad.lstm"), "--bench", "--steps", "200", "--json"], { encoding: "utf8" });
const native = JSON.parse(nativeBench);

// ------------------------------------------------------------------ the page code (runs in Chromium and in Node)
const runner = `
export async function samples(fetchBytes) {
  const b = new DataView((await fetchBytes("WAV")).buffer);
  let off = 12, start = 0, n = 0;
  while (off < b.byteLength) {
    const id = String.fromCharCode(b.getUint8(off), b.getUint8(off + 1), b.getUint8(off + 2), b.getUint8(off + 3));
    const len = b.getUint32(off + 4, true);
    if (id === "data") { start = off + 8; n = len / 2; break; }
    off += 8 + len;
  }
  const chunks = Math.ceil(n / 512), x = new Float32Array(chunks * 512);
  for (let i = 0; i < n; i++) x[i] = b.getInt16(start + 2 * i, true) / 32768;
  return { x, chunks };
}
export function stats(perRep, single) {
  perRep.sort((a, b) => a - b); single.sort((a, b) => a - b);
  return { median: perRep[perRep.length >> 1], p90: single[Math.floor(single.length * 0.9)], singleMedian: single[single.length >> 1] };
}
export async function lstmrt(lib, fetchBytes, modelName, reps) {
  const t0 = performance.now();
  const model = lib.Model.fromBytes(await fetchBytes(modelName));
  const st = model.newChunkState(1);
  st.run(new Float32Array(512));
  const ready = performance.now() - t0;
  const { x, chunks } = await samples(fetchBytes);
  const probs = new Float32Array(chunks), perRep = [], single = [];
  for (let r = 0; r < reps; r++) {
    st.reset();
    const a = performance.now();
    for (let c = 0; c < chunks; c++) probs[c] = st.run(x.subarray(c * 512, (c + 1) * 512))[0];
    if (r >= 3) perRep.push((performance.now() - a) * 1000 / chunks);
  }
  for (let r = 0; r < 5; r++) { st.reset(); for (let c = 0; c < chunks; c++) { const a = performance.now(); st.run(x.subarray(c * 512, (c + 1) * 512)); single.push((performance.now() - a) * 1000); } }
  return { ready, ...stats(perRep, single), probs: Array.from(probs), isa: lib.wasmFeatures() };
}
export async function ort(ortLib, fetchBytes, reps) {
  ortLib.env.wasm.numThreads = 1;
  const t0 = performance.now();
  const session = await ortLib.InferenceSession.create(await fetchBytes("ONNX"), { executionProviders: ["wasm"] });
  const ready = performance.now() - t0;
  const { x, chunks } = await samples(fetchBytes);
  const sr = new ortLib.Tensor("int64", [16000n]);
  const probs = new Float32Array(chunks), perRep = [], single = [];
  for (let r = 0; r < reps; r++) {
    let state = new ortLib.Tensor("float32", new Float32Array(256), [2, 1, 128]);
    const a = performance.now();
    for (let c = 0; c < chunks; c++) {
      const input = new ortLib.Tensor("float32", x.slice(c * 512, (c + 1) * 512), [1, 512]);
      const t = performance.now();
      const out = await session.run({ input, state, sr });
      if (r >= 2) single.push((performance.now() - t) * 1000);
      state = out.stateN; probs[c] = out.output.data[0];
    }
    if (r >= 1) perRep.push((performance.now() - a) * 1000 / chunks);
  }
  return { ready, ...stats(perRep, single), probs: Array.from(probs) };
}`;

// ------------------------------------------------------------------ Chromium
const types = { ".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html", ".wasm": "application/wasm" };
const routes = { "/npm/": npm, "/ort/": ortDist, "/vad/": vadWeb, "/models/": path.join(root, "models") };
const server = createServer(async (req, res) => {
  const url = decodeURIComponent(req.url.split("?")[0]);
  const headers = { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" };
  if (url === "/runner.mjs") return res.writeHead(200, { ...headers, "content-type": "text/javascript" }).end(runner);
  if (url.startsWith("/page")) return res.writeHead(200, { ...headers, "content-type": "text/html" }).end("<!doctype html><title>bench</title>");
  const hit = Object.entries(routes).find(([p]) => url.startsWith(p));
  try {
    const body = await readFile(path.join(hit[1], url.slice(hit[0].length)));
    res.writeHead(200, { ...headers, "content-type": types[path.extname(url)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
const { chromium } = await import(pathToFileURL(path.join(bench, "playwright-core/index.mjs")).href);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const inPage = async (fn, arg) => {
  const page = await browser.newPage();
  await page.goto(`${base}/page`);
  const result = await page.evaluate(fn, arg);
  await page.close();
  return result;
};
const browserFetch = `async (name) => new Uint8Array(await (await fetch({ WAV: "/models/silero_vad/speech.wav", ONNX: "/vad/silero_vad_v5.onnx" }[name] ?? "/npm/" + name)).arrayBuffer())`;
const chromiumResults = {};
for (const model of ["silero_vad.lstm", "silero_vad_f16.lstm"]) {
  chromiumResults[`lstmrt ${model}`] = await inPage(async ({ model, fetchSrc }) => {
    // From the fetch to a model that has run a chunk: the module and the
    // model fetched at once (Model.load), the module compiled as it streams.
    const t0 = performance.now();
    const lib = await import("/npm/lstmrt.js");
    const loaded = await lib.Model.load("/npm/" + model);
    loaded.newChunkState(1).run(new Float32Array(512));
    const ready = performance.now() - t0;
    loaded.free();
    const run = await import("/runner.mjs");
    const r = await run.lstmrt(lib, eval(fetchSrc), model, 40);
    return { ...r, ready };
  }, { model, fetchSrc: browserFetch });
}
chromiumResults["onnxruntime-web silero_vad_v5.onnx"] = await inPage(async ({ fetchSrc }) => {
  const t0 = performance.now();
  const ortLib = await import("/ort/ort.wasm.min.mjs");
  ortLib.env.wasm.wasmPaths = "/ort/";
  const importMs = performance.now() - t0;
  const run = await import("/runner.mjs");
  const r = await run.ort(ortLib, eval(fetchSrc), 6);
  return { ...r, ready: r.ready + importMs };
}, { fetchSrc: browserFetch });
await browser.close();
server.close();

// ------------------------------------------------------------------ Node
const nodeFetch = async (name) => new Uint8Array(readFileSync({ WAV: wav, ONNX: path.join(vadWeb, "silero_vad_v5.onnx") }[name] ?? path.join(npm, name)));
const runnerUrl = "data:text/javascript;base64," + Buffer.from(runner).toString("base64");
const run = await import(runnerUrl);
const nodeResults = {};
{
  const t0 = performance.now();
  const lib = await import(pathToFileURL(path.join(npm, "lstmrt.js")).href);
  await lib.init();
  const initMs = performance.now() - t0;
  const r = await run.lstmrt(lib, nodeFetch, "silero_vad.lstm", 40);
  nodeResults["lstmrt silero_vad.lstm"] = { ...r, ready: r.ready + initMs };
}
{
  const ortLib = await import(pathToFileURL(path.join(ortDist, "ort.wasm.min.mjs")).href);
  ortLib.env.wasm.wasmPaths = pathToFileURL(ortDist + "/").href;
  nodeResults["onnxruntime-web silero_vad_v5.onnx"] = await run.ort(ortLib, nodeFetch, 4);
}

// ------------------------------------------------------------------ report
const nativeProbs = (() => {
  const out = path.join(root, "target/bench-web-probs.npy");
  execFileSync(path.join(root, "target/release/lstm-run"), [path.join(root, "models/silero_vad/silero_vad.lstm"), wav, "-o", out]);
  const b = readFileSync(out);
  const h = b.readUInt16LE(8);
  return new Float32Array(b.buffer.slice(b.byteOffset + 10 + h, b.byteOffset + b.length));
})();
const maxDiff = (p) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - nativeProbs[i])), 0);
const decisions = (p) => p.reduce((n, v, i) => n + ((v >= 0.5) === (nativeProbs[i] >= 0.5) ? 1 : 0), 0) / p.length;
const ortChromium = chromiumResults["onnxruntime-web silero_vad_v5.onnx"].median;
const ortNode = nodeResults["onnxruntime-web silero_vad_v5.onnx"].median;
const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)[1];
console.log(`CPU: ${cpu}; native lstm-run --bench (same run): ${(native.ns_per_chunk_median / 1000).toFixed(1)} us per chunk`);
console.log("\n| where | runtime, model | us/chunk (median) | p90 | vs onnxruntime-web | vs native | ready (ms) | max abs diff vs native lstmrt | decisions as native |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|");
for (const [where, results, ortMs] of [["Chromium", chromiumResults, ortChromium], ["Node " + process.version, nodeResults, ortNode]]) {
  for (const [name, r] of Object.entries(results)) {
    console.log(`| ${where} | ${name}${r.isa ? ` (${r.isa})` : ""} | ${r.median.toFixed(1)} | ${r.p90.toFixed(0)} | ${(ortMs / r.median).toFixed(1)}x | ${(r.median / (native.ns_per_chunk_median / 1000)).toFixed(2)}x | ${r.ready.toFixed(0)} | ${maxDiff(r.probs).toExponential(1)} | ${(100 * decisions(r.probs)).toFixed(1)}% |`);
  }
}
console.log("\n| what a page downloads | raw | gzip | brotli |\n|---|---:|---:|---:|");
for (const [name, s] of Object.entries(download)) console.log(`| ${name} | ${s.raw} | ${s.gzip} | ${s.brotli} |`);
if (jsonOut) {
  const strip = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, { ...v, probs: undefined }]));
  (await import("node:fs")).writeFileSync(jsonOut, JSON.stringify({ cpu, native, chromium: strip(chromiumResults), node: strip(nodeResults), download }, null, 2));
}
