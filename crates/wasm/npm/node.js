// Node helpers: Silero VAD over a stream of raw PCM (s16le or f32le) as a
// Transform stream of speech events, and over a whole WAV or sample array.

import { Transform } from "node:stream";
import { SileroVad } from "./vad.js";

/**
 * A Transform stream: raw mono PCM in at the model's rate (16 kHz), objects
 * out: `{ type: "start" | "end", sample, seconds }` as they happen, and at
 * the end `{ type: "segments", segments }` (get_speech_timestamps' rules,
 * the same as `lstm-run MODEL - --pcm s16le` then `--segments`).
 */
export async function createVadStream({ format = "s16le", ...options } = {}) {
  if (format !== "s16le" && format !== "f32le") throw new Error(`format ${format}: s16le or f32le`);
  const vad = await SileroVad.load(options.model, options);
  const width = format === "s16le" ? 2 : 4;
  let rest = Buffer.alloc(0);
  const samplesOf = (buf) => {
    const n = Math.floor(buf.length / width);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = format === "s16le" ? buf.readInt16LE(2 * i) / 32768 : buf.readFloatLE(4 * i);
    return out;
  };
  return new Transform({
    readableObjectMode: true,
    transform(chunk, _encoding, done) {
      try {
        const buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
        const whole = buf.length - (buf.length % width);
        rest = buf.subarray(whole);
        for (const e of vad.push(samplesOf(buf.subarray(0, whole)))) this.push(e);
        done();
      } catch (e) {
        done(e);
      }
    },
    flush(done) {
      try {
        const { events, segments } = vad.finish();
        for (const e of events) this.push(e);
        this.push({ type: "segments", segments });
        vad.free();
        done();
      } catch (e) {
        done(e);
      }
    },
  });
}

/** A 16-bit, 24-bit, 32-bit or float WAV's samples (mono) and rate. */
export function readWav(bytes) {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  if (b.toString("ascii", 0, 4) !== "RIFF" || b.toString("ascii", 8, 12) !== "WAVE") throw new Error("not a WAV file");
  let fmt = null;
  for (let at = 12; at + 8 <= b.length; ) {
    const id = b.toString("ascii", at, at + 4);
    const len = b.readUInt32LE(at + 4);
    if (id === "fmt ") fmt = { format: b.readUInt16LE(at + 8), channels: b.readUInt16LE(at + 10), rate: b.readUInt32LE(at + 12), bits: b.readUInt16LE(at + 22) };
    if (id === "data") {
      if (!fmt) throw new Error("WAV data before its format");
      const body = b.subarray(at + 8, at + 8 + Math.min(len, b.length - at - 8));
      const width = fmt.bits / 8;
      const frames = Math.floor(body.length / (width * fmt.channels));
      const out = new Float32Array(frames);
      for (let i = 0; i < frames; i++) {
        let sum = 0;
        for (let c = 0; c < fmt.channels; c++) {
          const o = (i * fmt.channels + c) * width;
          sum += fmt.format === 3 ? body.readFloatLE(o)
            : width === 2 ? body.readInt16LE(o) / 32768
            : width === 3 ? body.readIntLE(o, 3) / 8388608
            : width === 4 ? body.readInt32LE(o) / 2147483648
            : (body[o] - 128) / 128;
        }
        out[i] = sum / fmt.channels;
      }
      return { samples: out, sampleRate: fmt.rate, channels: fmt.channels };
    }
    at += 8 + len + (len % 2);
  }
  throw new Error("a WAV file without data");
}
