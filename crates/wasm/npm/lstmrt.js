// lstmrt for JavaScript: LSTM, GRU and RNN models (and Silero VAD) in
// WebAssembly, in browsers, Web Workers, AudioWorklets and Node 20+.
//
//   import { Model } from "lstmrt";
//   const model = await Model.load("silero_vad.lstm");
//   const vad = model.newChunkState();
//   const [p] = vad.run(chunkOf512Samples);
//
// Every call into the runtime is synchronous and allocates nothing once a
// state exists; only loading (fetch, compile) is asynchronous. Errors are
// `Error`s whose message is the runtime's one line. Outputs are fresh
// arrays unless an `out` array is given; `ChunkState.input` is a view into
// the module's memory that a caller can fill in place (no copy).

let W = null; // the instance's exports
let loading = null;
const bytesOf = { f32: 4, u32: 4, f64: 8 };

const isNode = typeof process !== "undefined" && process.versions != null && process.versions.node != null;

/** A module using one relaxed-SIMD instruction (i8x16.relaxed_swizzle). */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 43, 1, 41, 0,
  253, 12, ...new Array(16).fill(0), 253, 12, ...new Array(16).fill(0), 253, 128, 2, 11,
]);
/** A module using one SIMD instruction (i32x4.splat). */
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11]);

/** Which build this engine runs: "relaxed" (fused multiply-add), "simd", or null (no SIMD). */
export function wasmFeatures() {
  if (WebAssembly.validate(RELAXED_PROBE)) return "relaxed";
  if (WebAssembly.validate(SIMD_PROBE)) return "simd";
  return null;
}

/**
 * The .wasm this engine should load, beside this module (or `base`): the
 * relaxed-SIMD build where the engine has relaxed SIMD, else the simd128 one.
 */
export function wasmUrl(base) {
  const features = wasmFeatures();
  if (features === null) {
    throw new Error("lstmrt needs WebAssembly SIMD (Chrome 91, Firefox 89, Safari 16.4, Node 16.4 or later)");
  }
  const name = features === "relaxed" ? "lstmrt-relaxed.wasm" : "lstmrt.wasm";
  return new URL(name, base ?? import.meta.url);
}

function defaultWasm() {
  return wasmUrl();
}

async function fetchBytes(source) {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (typeof Response !== "undefined" && source instanceof Response) return new Uint8Array(await source.arrayBuffer());
  const url = source instanceof URL ? source : null;
  if (isNode && (url === null || url.protocol === "file:")) {
    const { readFile } = await import("node:fs/promises");
    return new Uint8Array(await readFile(url ?? source));
  }
  const response = await fetch(source);
  if (!response.ok) throw new Error(`${source}: HTTP ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

function start(instance) {
  W = instance.exports;
  return W;
}

/**
 * Loads the WebAssembly module (once). `source`: nothing (the .wasm beside
 * this file), a URL or path, bytes, a `Response`, or a compiled
 * `WebAssembly.Module`.
 */
export function init(source) {
  if (W) return Promise.resolve();
  if (!loading) {
    loading = (async () => {
      if (source instanceof WebAssembly.Module) return start(await WebAssembly.instantiate(source, {}));
      const where = source ?? defaultWasm();
      const url = typeof where === "string" || where instanceof URL;
      if (url && !isNode && typeof WebAssembly.instantiateStreaming === "function") {
        // Compiled while it downloads (needs the server's application/wasm type).
        const response = await fetch(where);
        if (!response.ok) throw new Error(`${where}: HTTP ${response.status} ${response.statusText}`);
        try {
          return start((await WebAssembly.instantiateStreaming(response.clone(), {})).instance);
        } catch (e) {
          if (!(e instanceof TypeError)) throw e; // a wrong MIME type: compile the bytes instead
          return start((await WebAssembly.instantiate(await response.arrayBuffer(), {})).instance);
        }
      }
      const bytes = await fetchBytes(where);
      return start((await WebAssembly.instantiate(bytes, {})).instance);
    })();
    loading.catch(() => { loading = null; });
  }
  return loading.then(() => undefined);
}

/**
 * Loads the module synchronously from bytes or a compiled module: for an
 * AudioWorklet, where nothing can be fetched (compile it on the main thread,
 * or send the bytes, and call this in the processor's constructor).
 */
export function initSync(source) {
  if (W) return;
  const module = source instanceof WebAssembly.Module ? source : new WebAssembly.Module(source);
  start(new WebAssembly.Instance(module, {}));
}

/** The module's bytes, as `init` would fetch them (for handing to a worklet). */
export async function wasmBytes(source) {
  return fetchBytes(source ?? defaultWasm());
}

function ready() {
  if (!W) throw new Error("lstmrt: call `await init()` (or initSync) before using models");
  return W;
}

function text() {
  const bytes = new Uint8Array(W.memory.buffer, W.lstmrt_text(), W.lstmrt_text_len());
  if (typeof TextDecoder !== "undefined") return new TextDecoder().decode(bytes);
  // An AudioWorklet has no TextDecoder: UTF-8 by hand.
  return decodeURIComponent(Array.from(bytes, (b) => "%" + b.toString(16).padStart(2, "0")).join(""));
}

function check(status) {
  if (status !== 0) throw new Error(text());
}

function madeOrThrow(handle) {
  if (handle === 0) throw new Error(text());
  return handle;
}

/** A buffer in the module's memory, with typed views made afresh after the memory grows. */
class Buffer {
  constructor(kind, length) {
    this.kind = kind;
    this.length = length;
    this.bytes = Math.max(length * bytesOf[kind], 1);
    this.ptr = W.lstmrt_alloc(this.bytes);
    if (this.ptr === 0) throw new Error(`lstmrt: cannot allocate ${this.bytes} bytes`);
    this.view_ = null;
  }
  get view() {
    if (this.view_ === null || this.view_.buffer !== W.memory.buffer) {
      const Array_ = this.kind === "f64" ? Float64Array : this.kind === "u32" ? Uint32Array : Float32Array;
      this.view_ = new Array_(W.memory.buffer, this.ptr, this.length);
    }
    return this.view_;
  }
  /** Copies `values` in, unless they are this buffer's own view. */
  fill(values, what) {
    if (values.length !== this.length) {
      throw new Error(`${what} has ${values.length} values, expected ${this.length}`);
    }
    const view = this.view;
    if (values !== view) view.set(values);
  }
  free() {
    if (this.ptr !== 0) W.lstmrt_free(this.ptr, this.bytes);
    this.ptr = 0;
  }
}

const registry = typeof FinalizationRegistry !== "undefined"
  ? new FinalizationRegistry(({ free, handle, buffers }) => {
      free(handle);
      for (const b of buffers) b.free();
    })
  : null;

/** Owns a runtime handle and its buffers; `free()` gives them back (or the GC does). */
class Handle {
  constructor(handle, free, buffers = []) {
    this.handle = handle;
    this.freeFn = free;
    this.buffers = buffers;
    registry?.register(this, { free, handle, buffers }, this);
  }
  get live() {
    if (this.handle === 0) throw new Error(`lstmrt: this ${this.constructor.name} was freed`);
    return this.handle;
  }
  free() {
    if (this.handle === 0) return;
    registry?.unregister(this);
    this.freeFn(this.handle);
    for (const b of this.buffers) b.free();
    this.handle = 0;
  }
}

function outArray(out, length, what) {
  if (out === undefined) return new Float32Array(length);
  if (out.length !== length) throw new Error(`${what} has room for ${out.length} values, needs ${length}`);
  return out;
}

/** A model file, validated once. */
export class Model extends Handle {
  /** A model from a URL, a path (Node) or bytes, loading the module first if needed. */
  static async load(source) {
    const [bytes] = await Promise.all([fetchBytes(source), init()]);
    return Model.fromBytes(bytes);
  }

  /** A model from the bytes of a model file (the module must be loaded: `await init()`). */
  static fromBytes(bytes) {
    const w = ready();
    const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const tmp = new Buffer("f32", Math.ceil(data.length / 4));
    new Uint8Array(w.memory.buffer, tmp.ptr, data.length).set(data);
    let handle;
    try {
      handle = madeOrThrow(w.lstmrt_model_new(tmp.ptr, data.length));
    } finally {
      tmp.free();
    }
    return new Model(handle);
  }

  constructor(handle) {
    super(handle, (h) => W.lstmrt_model_free(h));
    check(W.lstmrt_model_info(handle));
    /** Sizes, cell, dtype, head, chunks (chunked models) and the kernel tier. */
    this.info = JSON.parse(text());
    this.in = null;
    this.out = null;
  }

  /** A state for `batch` sequences run together. */
  newState(batch = 1) {
    return new State(this, batch);
  }

  /** A stream batch of up to `capacity` independent streams stepped together. */
  newStreamBatch(capacity) {
    return new StreamBatch(this, capacity);
  }

  /** Carried state and buffers for `streams` signals of a chunked model. */
  newChunkState(streams = 1) {
    return new ChunkState(this, streams);
  }

  /**
   * Runs a whole sequence `xs` (`[steps, batch, inputSize]`, flat) from
   * `state` (a fresh one of `batch` rows when absent); returns the top
   * layer's output at every step, `[steps, batch, outputSize]`.
   */
  run(xs, { state, batch = 1, out } = {}) {
    const s = state ?? this.newState(batch);
    try {
      const per = s.batch * this.info.inputSize;
      if (xs.length % per !== 0) throw new Error(`input has ${xs.length} values, not a multiple of batch ${s.batch} x input size ${this.info.inputSize}`);
      const steps = xs.length / per;
      const n = steps * s.batch * this.info.outputSize;
      const result = outArray(out, n, "out");
      const xb = new Buffer("f32", xs.length);
      const yb = new Buffer("f32", n);
      try {
        xb.fill(xs, "input");
        check(W.lstmrt_run(this.live, s.live, xb.ptr, steps, yb.ptr));
        result.set(yb.view);
      } finally {
        xb.free();
        yb.free();
      }
      return result;
    } finally {
      if (state === undefined) s.free();
    }
  }

  /** The head applied to one output `y` (`outputSize` values). */
  head(y, out) {
    const h = this.info.head;
    if (!h) throw new Error("this model has no output head");
    const yb = new Buffer("f32", this.info.outputSize);
    const ob = new Buffer("f32", h.outputs);
    try {
      yb.fill(y, "y");
      check(W.lstmrt_head(this.live, yb.ptr, ob.ptr));
      const result = outArray(out, h.outputs, "out");
      result.set(ob.view);
      return result;
    } finally {
      yb.free();
      ob.free();
    }
  }
}

/** The recurrent state of `batch` sequences (`h`, `c` of every layer). */
export class State extends Handle {
  constructor(model, batch) {
    const handle = madeOrThrow(W.lstmrt_state_new(model.live, batch));
    const x = new Buffer("f32", batch * model.info.inputSize);
    const y = new Buffer("f32", batch * model.info.outputSize);
    super(handle, (h) => W.lstmrt_state_free(h), [x, y]);
    this.model = model;
    this.batch = batch;
    this.x = x;
    this.y = y;
  }

  /** One step: `x` `[batch, inputSize]`; returns the top layer's `h` `[batch, outputSize]`. */
  step(x, out) {
    this.x.fill(x, "step input");
    check(W.lstmrt_step(this.model.live, this.live, this.x.ptr, this.y.ptr));
    const result = outArray(out, this.y.length, "out");
    result.set(this.y.view);
    return result;
  }

  /** Back to the model's initial state. */
  reset() {
    check(W.lstmrt_state_reset(this.live));
  }

  get h() { return this.#get(0); }
  get c() { return this.#get(1); }
  set h(values) { this.#set(0, values); }
  set c(values) { this.#set(1, values); }

  #get(which) {
    const n = W.lstmrt_state_len(this.live, which);
    const b = new Buffer("f32", n);
    try {
      check(W.lstmrt_state_get(this.live, which, b.ptr, n));
      return Float32Array.from(b.view);
    } finally {
      b.free();
    }
  }

  #set(which, values) {
    const b = new Buffer("f32", values.length);
    try {
      b.fill(values, which === 0 ? "h" : "c");
      check(W.lstmrt_state_set(this.live, which, b.ptr, values.length));
    } finally {
      b.free();
    }
  }
}

/** A stream's id in a `StreamBatch`. */
function idWords(id) {
  return [id.index, id.generation % 2 ** 32, Math.floor(id.generation / 2 ** 32)];
}

/** Up to `capacity` independent streams, stepped together: each gets what it would alone. */
export class StreamBatch extends Handle {
  constructor(model, capacity) {
    const handle = madeOrThrow(W.lstmrt_streams_new(model.live, capacity));
    const ids = new Buffer("u32", 3 * capacity);
    const x = new Buffer("f32", capacity * model.info.inputSize);
    const y = new Buffer("f32", capacity * model.info.outputSize);
    super(handle, (h) => W.lstmrt_streams_free(h), [ids, x, y]);
    this.model = model;
    this.capacity = capacity;
    this.ids = ids;
    this.x = x;
    this.y = y;
  }

  /** A new stream: `{ index, generation }`. */
  join() {
    check(W.lstmrt_streams_join(this.live, this.ids.ptr));
    const v = this.ids.view;
    return { index: v[0], generation: v[1] + v[2] * 2 ** 32 };
  }

  leave(id) { this.#change(id, 0); }
  reset(id) { this.#change(id, 1); }

  #change(id, what) {
    this.ids.view.set(idWords(id));
    check(W.lstmrt_streams_change(this.live, this.ids.ptr, what));
  }

  /** One step of the streams `ids` (inputs `xs` `[ids.length, inputSize]`, in that order). */
  step(ids, xs, out) {
    const n = ids.length;
    if (n > this.capacity) throw new Error(`${n} streams, but the batch holds ${this.capacity}`);
    const v = this.ids.view;
    ids.forEach((id, i) => v.set(idWords(id), 3 * i));
    const per = this.model.info.inputSize;
    if (xs.length !== n * per) throw new Error(`inputs have ${xs.length} values, expected ${n * per}`);
    this.x.view.set(xs);
    check(W.lstmrt_streams_step(this.model.live, this.live, this.ids.ptr, n, this.x.ptr, this.y.ptr));
    const m = n * this.model.info.outputSize;
    const result = outArray(out, m, "out");
    result.set(this.y.view.subarray(0, m));
    return result;
  }
}

/**
 * A chunked model's streams (Silero VAD): `run` takes one chunk of every
 * stream, `[streams, chunk, channels]`, and returns `[streams, outputs]`.
 */
export class ChunkState extends Handle {
  constructor(model, streams) {
    const c = model.info.chunks;
    if (!c) throw new Error("this model has no stages: it reads feature vectors, not chunks");
    const handle = madeOrThrow(W.lstmrt_chunks_new(model.live, streams));
    const x = new Buffer("f32", streams * c.chunk * c.channels);
    const y = new Buffer("f32", streams * c.outputs);
    super(handle, (h) => W.lstmrt_chunks_free(h), [x, y]);
    this.model = model;
    this.streams = streams;
    this.x = x;
    this.y = y;
  }

  /**
   * The input buffer in the module's memory (`streams * chunk * channels`
   * floats): fill it and call `run()` with no argument to skip a copy.
   * Valid until a model or state is made (the memory may grow then).
   */
  get input() {
    return this.x.view;
  }

  /** One chunk of every stream (`x`, or what `input` holds); returns the outputs. */
  run(x, out) {
    if (x !== undefined) this.x.fill(x, "chunk");
    check(W.lstmrt_chunks_run(this.model.live, this.live, this.x.ptr, this.y.ptr));
    const result = outArray(out, this.y.length, "out");
    result.set(this.y.view);
    return result;
  }

  /** Starts stream `stream` afresh, or every stream. */
  reset(stream) {
    check(W.lstmrt_chunks_reset(this.live, stream === undefined ? -1 : stream));
  }
}

/** Silero VAD's defaults (the `silero-vad` package's and `lstm-run --segments`'). */
export const SPEECH_DEFAULTS = Object.freeze({
  threshold: 0.5,
  negThreshold: undefined,
  minSpeechDurationMs: 250,
  maxSpeechDurationS: Infinity,
  minSilenceDurationMs: 100,
  speechPadMs: 30,
  minSilenceAtMaxSpeech: 98,
  useMaxPossSilAtMaxSpeech: true,
});

/**
 * Speech segments `[{start, end}]` (samples) from one probability per
 * `window` samples at `sampleRate`, for a signal of `length` samples: the
 * rules of the `silero-vad` package's `get_speech_timestamps` (the runtime's
 * own implementation, as `lstm-run --segments` uses).
 */
export function speechTimestamps(probs, { sampleRate = 16000, window, length, ...options } = {}) {
  const w = ready();
  const o = { ...SPEECH_DEFAULTS, ...options };
  const win = window ?? (sampleRate === 16000 ? 512 : 256);
  const n = probs.length;
  const pb = new Buffer("f32", n);
  const ob = new Buffer("f64", 8);
  const out = new Buffer("f64", 2 * Math.max(n, 1));
  try {
    pb.fill(probs instanceof Float32Array ? probs : Float32Array.from(probs), "probabilities");
    ob.view.set([
      o.threshold, o.negThreshold ?? NaN, o.minSpeechDurationMs, o.maxSpeechDurationS, o.minSilenceDurationMs,
      o.speechPadMs, o.minSilenceAtMaxSpeech, o.useMaxPossSilAtMaxSpeech ? 1 : 0,
    ]);
    const count = w.lstmrt_speech_timestamps(pb.ptr, n, win, sampleRate, ob.ptr, length ?? n * win, out.ptr);
    if (count < 0) throw new Error(text());
    const v = out.view;
    return Array.from({ length: count }, (_, i) => ({ start: v[2 * i], end: v[2 * i + 1] }));
  } finally {
    pb.free();
    ob.free();
    out.free();
  }
}

/**
 * Speech starts and ends chunk by chunk, as the package's `VADIterator`:
 * `push(p, window)` returns `{start}` or `{end}` (samples) or `null`.
 */
export class VadIterator extends Handle {
  constructor({ threshold = 0.5, sampleRate = 16000, minSilenceDurationMs = 100, speechPadMs = 30 } = {}) {
    ready();
    const handle = madeOrThrow(W.lstmrt_vad_new(threshold, sampleRate, minSilenceDurationMs, speechPadMs));
    const at = new Buffer("f64", 1);
    super(handle, (h) => W.lstmrt_vad_free(h), [at]);
    this.at = at;
  }

  push(p, window) {
    const kind = W.lstmrt_vad_push(this.live, p, window, this.at.ptr);
    if (kind === 1) return { start: Math.trunc(this.at.view[0]) };
    if (kind === 2) return { end: Math.trunc(this.at.view[0]) };
    return null;
  }

  reset() {
    W.lstmrt_vad_push(this.live, 0, -1, this.at.ptr);
  }
}
