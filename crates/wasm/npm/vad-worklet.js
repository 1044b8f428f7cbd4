// The AudioWorklet processor of MicVAD: resamples the microphone to the
// model's rate when the context runs at another, runs Silero VAD chunk by
// chunk (lstmrt in WebAssembly, compiled here from the bytes the page
// fetched) and posts speech starts, ends and probabilities to the page.

import { Model, initSync } from "./lstmrt.js";
import { SileroVad } from "./vad.js";

/** Streaming linear-interpolation resampler with a running average as its low-pass. */
class Resampler {
  constructor(from, to) {
    this.step = from / to;
    this.pos = 0;
    this.prev = 0;
    this.taps = Math.max(1, Math.round(this.step));
    this.history = new Float32Array(this.taps);
    this.at = 0;
    this.sum = 0;
  }
  /** Resampled `input` appended to `out` (an Array). */
  push(input, out) {
    for (let i = 0; i < input.length; i++) {
      // Low-pass: the mean of the last `taps` samples.
      this.sum += input[i] - this.history[this.at];
      this.history[this.at] = input[i];
      this.at = (this.at + 1) % this.taps;
      const cur = this.sum / this.taps;
      while (this.pos <= 1) {
        out.push(this.prev + (cur - this.prev) * this.pos);
        this.pos += this.step;
      }
      this.pos -= 1;
      this.prev = cur;
    }
  }
}

class VadProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { wasm, model, params, keepAudio } = options.processorOptions;
    try {
      initSync(wasm);
      this.vad = new SileroVad(Model.fromBytes(new Uint8Array(model)), params);
      const rate = this.vad.sampleRate;
      this.resampler = sampleRate === rate ? null : new Resampler(sampleRate, rate);
      this.keepAudio = keepAudio;
      this.audio = [];
      this.speaking = false;
      this.chunk = 0;
      this.port.onmessage = (e) => this.message(e.data);
      this.port.postMessage({ type: "ready" });
    } catch (e) {
      this.port.postMessage({ type: "error", message: String(e.message ?? e) });
    }
  }

  message(m) {
    if (m.type === "segments") this.port.postMessage({ type: "segments", id: m.id, segments: this.vad.segments() });
    if (m.type === "free") {
      this.vad.free();
      this.vad = null;
    }
  }

  process(inputs) {
    if (!this.vad) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(mono.length);
      for (const c of channels) for (let i = 0; i < c.length; i++) mono[i] += c[i] / channels.length;
    }
    let samples = mono;
    if (this.resampler) {
      const out = [];
      this.resampler.push(mono, out);
      samples = Float32Array.from(out);
    }
    if (this.keepAudio) this.audio.push(samples.slice());
    const events = this.vad.push(samples, (probability) => {
      this.port.postMessage({ type: "frame", probability, chunk: this.chunk++ });
    });
    for (const e of events) {
      if (e.type === "start") {
        this.speaking = true;
        this.audio = this.audio.slice(-32);
        this.port.postMessage({ type: "start", sample: e.sample, seconds: e.seconds });
      } else {
        this.speaking = false;
        const audio = this.keepAudio ? concat(this.audio) : undefined;
        this.audio = [];
        this.port.postMessage({ type: "end", sample: e.sample, seconds: e.seconds, audio }, audio ? [audio.buffer] : []);
      }
    }
    if (!this.speaking && this.audio.length > 64) this.audio = this.audio.slice(-32);
    return true;
  }
}

function concat(parts) {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

registerProcessor("lstmrt-vad", VadProcessor);
