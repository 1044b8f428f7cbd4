// Silero VAD in WebAssembly against the native runtime: every chunk's
// probability of models/silero_vad/speech.wav within 1e-5 of `lstm-run`
// (f32), the same segments as `lstm-run --segments` (f32 and f16 models),
// the Node stream helper, and errors as one-line JS Errors.
import assert from "node:assert/strict";
import { readFileSync, createReadStream } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { Model, init, speechTimestamps, wasmFeatures } from "../lstmrt.js";
import { SileroVad } from "../vad.js";
import { createVadStream, readWav } from "../node.js";
import { maxDiff, native, readNpy, root, scratch } from "./helpers.mjs";

const vadDir = path.join(root, "models/silero_vad");
const wavPath = path.join(vadDir, "speech.wav");
const npm = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

await init();
console.log(`# wasm build: ${wasmFeatures()} (node ${process.version})`);

function nativeSegments(model) {
  return native("lstm-run", [model, wavPath, "--segments"]).trim().split("\n").map((l) => l.split(" ").map(Number));
}

test("every chunk's probability is within 1e-5 of the native runtime's", () => {
  const dir = scratch();
  const out = path.join(dir, "probs.npy");
  native("lstm-run", [path.join(vadDir, "silero_vad.lstm"), wavPath, "-o", out]);
  const want = readNpy(out).data;
  const model = Model.fromBytes(readFileSync(path.join(npm, "silero_vad.lstm")));
  const { samples } = readWav(readFileSync(wavPath));
  const st = model.newChunkState(1);
  const chunks = Math.ceil(samples.length / 512);
  const got = new Float32Array(chunks);
  for (let c = 0; c < chunks; c++) {
    const x = st.input;
    x.fill(0);
    x.set(samples.subarray(c * 512, Math.min(samples.length, (c + 1) * 512)));
    got[c] = st.run()[0];
  }
  assert.equal(chunks, want.length);
  const d = maxDiff(got, want);
  console.log(`# ${chunks} chunks, max |wasm - native| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max difference ${d}`);
  st.free();
  model.free();
});

for (const file of ["silero_vad.lstm", "silero_vad_f16.lstm"]) {
  test(`${file}: the segments of lstm-run --segments`, async () => {
    const { samples, sampleRate } = readWav(readFileSync(wavPath));
    assert.equal(sampleRate, 16000);
    const segments = await SileroVad.segmentsOf(samples, {}, readFileSync(path.join(npm, file)));
    const ours = segments.map((s) => [Number(s.startSeconds.toFixed(3)), Number(s.endSeconds.toFixed(3))]);
    assert.deepEqual(ours, nativeSegments(path.join(vadDir, "silero_vad.lstm")));
  });
}

test("a Node stream of s16le PCM gives the same segments, and speech events as they happen", async () => {
  const stream = await createVadStream({ format: "s16le", model: readFileSync(path.join(npm, "silero_vad.lstm")) });
  const wav = readFileSync(wavPath);
  const events = [];
  await new Promise((resolve, reject) => {
    stream.on("data", (e) => events.push(e)).on("end", resolve).on("error", reject);
    // Odd-sized pieces: samples split across writes.
    for (let at = 44; at < wav.length; at += 777) stream.write(wav.subarray(at, Math.min(wav.length, at + 777)));
    stream.end();
  });
  const last = events.at(-1);
  assert.equal(last.type, "segments");
  const ours = last.segments.map((s) => [Number(s.startSeconds.toFixed(3)), Number(s.endSeconds.toFixed(3))]);
  assert.deepEqual(ours, nativeSegments(path.join(vadDir, "silero_vad.lstm")));
  const starts = events.filter((e) => e.type === "start").length;
  assert.ok(starts >= 1 && starts === events.filter((e) => e.type === "end").length + (events.filter((e) => e.type === "start").length - events.filter((e) => e.type === "end").length));
});

test("segments follow max_speech_duration_s as lstm-run's --max-speech-s does", () => {
  const dir = scratch();
  const out = path.join(dir, "probs.npy");
  native("lstm-run", [path.join(vadDir, "silero_vad.lstm"), wavPath, "-o", out]);
  const probs = readNpy(out).data;
  const { samples } = readWav(readFileSync(wavPath));
  const want = native("lstm-run", [path.join(vadDir, "silero_vad.lstm"), wavPath, "--segments", "--max-speech-s", "1.5"])
    .trim().split("\n").map((l) => l.split(" ").map(Number));
  const got = speechTimestamps(probs, { maxSpeechDurationS: 1.5, length: samples.length })
    .map((s) => [Number((s.start / 16000).toFixed(3)), Number((s.end / 16000).toFixed(3))]);
  assert.ok(want.length > 2);
  assert.deepEqual(got, want);
});

test("refusals are Errors with the runtime's one-line message", () => {
  assert.throws(() => Model.fromBytes(new Uint8Array([1, 2, 3])), (e) => e instanceof Error && /shorter than the 64-byte header/.test(e.message) && !e.message.includes("\n"));
  const model = Model.fromBytes(readFileSync(path.join(npm, "silero_vad.lstm")));
  const st = model.newChunkState(1);
  assert.throws(() => st.run(new Float32Array(100)), /chunk has 100 values, expected 512/);
  const bad = new Float32Array(512);
  bad[7] = NaN;
  assert.throws(() => st.run(bad), /chunk value 7 is NaN: inputs must be finite/);
  assert.throws(() => model.newChunkState(0), /0 streams: the batch must be 1 to 1048576/);
  assert.throws(() => model.newState(1).step(new Float32Array(5)), /step input has 5 values, expected 128/);
  st.free();
  assert.throws(() => st.run(), /was freed/);
  model.free();
});
