// Voice activity with Silero VAD on lstmrt: a whole signal's segments, a
// stream of samples chunk by chunk, and (browsers) the microphone, with the
// model running inside an AudioWorklet, never on the main thread.
//
// Parameters and results are those of `lstm-run --segments` and of the
// `silero-vad` package's get_speech_timestamps / VADIterator: the rules are
// the runtime's own (lstmrt::vad), not a second copy in JavaScript.

import { Model, VadIterator, init, speechTimestamps, wasmUrl, SPEECH_DEFAULTS } from "./lstmrt.js";

/**
 * The Silero VAD model (MIT licence: LICENSE-silero-vad) shipped beside
 * this module. (A function: an AudioWorklet's scope has no `URL`.)
 */
export function sileroModel() {
  return new URL("./silero_vad.lstm", import.meta.url);
}

/**
 * Silero VAD over samples at the model's rate (16 kHz): `push` any number
 * of samples and get speech starts and ends as they happen; `segments()`
 * gives what get_speech_timestamps gives for everything pushed so far.
 */
export class SileroVad {
  /** Loads the model (default: the one shipped with this package). */
  static async load(source, options = {}) {
    const vad = new SileroVad(await Model.load(source ?? sileroModel()), options);
    vad.ownsModel = true;
    return vad;
  }

  constructor(model, options = {}) {
    const chunks = model.info.chunks;
    if (!chunks || chunks.outputs !== 1 || chunks.channels !== 1) {
      throw new Error("a voice-activity model gives one probability per chunk of one channel");
    }
    this.model = model;
    this.options = { ...SPEECH_DEFAULTS, ...options };
    this.sampleRate = chunks.sampleRate;
    this.window = chunks.chunk;
    this.state = model.newChunkState(1);
    this.iterator = new VadIterator({
      threshold: this.options.threshold,
      sampleRate: this.sampleRate,
      minSilenceDurationMs: this.options.minSilenceDurationMs,
      speechPadMs: this.options.speechPadMs,
    });
    this.pending = new Float32Array(this.window);
    this.filled = 0;
    this.samples = 0;
    this.probs = [];
  }

  /** Starts over (a new signal). */
  reset() {
    this.state.reset();
    this.iterator.reset();
    this.filled = 0;
    this.samples = 0;
    this.probs = [];
  }

  /**
   * Adds samples; returns the events of every chunk they complete:
   * `{ type: "start" | "end", sample, seconds }` (VADIterator's rules), and
   * calls `onProbability(p, chunkIndex)` per chunk when given.
   */
  push(samples, onProbability) {
    const events = [];
    let i = 0;
    while (i < samples.length) {
      const take = Math.min(this.window - this.filled, samples.length - i);
      this.pending.set(samples.subarray(i, i + take), this.filled);
      this.filled += take;
      i += take;
      if (this.filled === this.window) {
        this.#chunk(this.pending, events, onProbability);
        this.filled = 0;
      }
    }
    this.samples += samples.length;
    return events;
  }

  #chunk(x, events, onProbability) {
    const p = this.state.run(x)[0];
    this.probs.push(p);
    onProbability?.(p, this.probs.length - 1);
    const e = this.iterator.push(p, this.window);
    if (e) {
      const type = e.start !== undefined ? "start" : "end";
      const sample = e.start ?? e.end;
      events.push({ type, sample, seconds: sample / this.sampleRate });
    }
  }

  /**
   * Ends the signal: the last partial chunk is padded with zeros (as
   * get_speech_timestamps pads it), and the segments of the whole signal
   * are returned: `[{ start, end }]` in samples, and in seconds.
   */
  finish() {
    const events = [];
    if (this.filled > 0) {
      this.pending.fill(0, this.filled);
      this.#chunk(this.pending, events);
      this.filled = 0;
    }
    return { events, segments: this.segments() };
  }

  /** The segments of everything pushed so far (get_speech_timestamps' rules). */
  segments() {
    return speechTimestamps(this.probs, {
      ...this.options,
      sampleRate: this.sampleRate,
      window: this.window,
      length: this.samples,
    }).map(({ start, end }) => ({ start, end, startSeconds: start / this.sampleRate, endSeconds: end / this.sampleRate }));
  }

  /** Speech segments of a whole signal at the model's rate. */
  static async segmentsOf(signal, options = {}, source) {
    const vad = await SileroVad.load(source, options);
    try {
      vad.push(signal);
      return vad.finish().segments;
    } finally {
      vad.free();
    }
  }

  /** Frees the state (and the model, when `load` made it). */
  free() {
    this.state.free();
    this.iterator.free();
    if (this.ownsModel) this.model.free();
  }
}

/**
 * The microphone, with Silero VAD running in an AudioWorklet (no
 * COOP/COEP headers needed: one thread, no SharedArrayBuffer).
 *
 *   const vad = await MicVAD.new({ onSpeechStart, onSpeechEnd });
 *   vad.start();
 *
 * `onSpeechStart({ sample, seconds })`, `onSpeechEnd({ sample, seconds,
 * audio })` (the speech's 16 kHz samples, padded), `onFrameProcessed({
 * probability, chunk })`; the same parameters as `lstm-run --segments`.
 */
export class MicVAD {
  static async new(options = {}) {
    const mic = new MicVAD(options);
    await mic.#setUp();
    return mic;
  }

  constructor(options) {
    this.options = options;
    this.listening = false;
    this.waiting = new Map();
    this.asked = 0;
  }

  async #setUp() {
    const o = this.options;
    const base = o.baseUrl ? new URL(o.baseUrl, location.href) : new URL(".", import.meta.url);
    const [wasm, model] = await Promise.all([
      fetch(wasmUrl(base)).then((r) => r.arrayBuffer()),
      fetch(o.model ? new URL(o.model, location.href) : new URL("silero_vad.lstm", base)).then((r) => r.arrayBuffer()),
    ]);
    this.stream = o.stream ?? (await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, autoGainControl: true, noiseSuppression: true, ...o.audio },
    }));
    // Asking for 16 kHz lets the browser resample with its own filter; a
    // context at another rate is resampled in the worklet.
    this.context = o.audioContext ?? new AudioContext({ sampleRate: 16000 });
    await this.context.audioWorklet.addModule(new URL("vad-worklet.js", base));
    const params = {};
    for (const k of Object.keys(SPEECH_DEFAULTS)) if (o[k] !== undefined) params[k] = o[k];
    this.node = new AudioWorkletNode(this.context, "lstmrt-vad", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      processorOptions: { wasm, model, params, keepAudio: o.keepAudio ?? true },
    });
    this.node.port.onmessage = (e) => this.#message(e.data);
    this.source = this.context.createMediaStreamSource(this.stream);
    await new Promise((resolve, reject) => {
      this.ready = { resolve, reject };
    });
  }

  #message(m) {
    const o = this.options;
    switch (m.type) {
      case "ready": this.ready.resolve(); break;
      case "error": (this.ready ? this.ready.reject : console.error)(new Error(m.message)); break;
      case "frame": o.onFrameProcessed?.({ probability: m.probability, chunk: m.chunk }); break;
      case "start": o.onSpeechStart?.({ sample: m.sample, seconds: m.seconds }); break;
      case "end": o.onSpeechEnd?.({ sample: m.sample, seconds: m.seconds, audio: m.audio }); break;
      case "segments": this.waiting.get(m.id)?.(m.segments); this.waiting.delete(m.id); break;
    }
  }

  /** Starts listening (after a user gesture, browsers may require `resume`). */
  async start() {
    if (this.listening) return;
    this.source.connect(this.node);
    await this.context.resume();
    this.listening = true;
  }

  /** Stops listening; the state is kept. */
  pause() {
    if (!this.listening) return;
    this.source.disconnect(this.node);
    this.listening = false;
  }

  /** The segments of everything heard so far, by get_speech_timestamps' rules. */
  segments() {
    const id = ++this.asked;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.node.port.postMessage({ type: "segments", id });
    });
  }

  /** Stops, releases the microphone and the worklet. */
  async destroy() {
    this.pause();
    this.node.port.postMessage({ type: "free" });
    if (!this.options.stream) this.stream.getTracks().forEach((t) => t.stop());
    if (!this.options.audioContext) await this.context.close();
  }
}

export { init };
