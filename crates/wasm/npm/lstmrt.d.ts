// Types of lstmrt.js: LSTM, GRU and RNN models (and Silero VAD) in WebAssembly.

/** Where the module comes from: a URL or path, bytes, a fetch Response, or a compiled module. */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | Response | WebAssembly.Module;

/** Loads the WebAssembly module once (the relaxed-SIMD build where the engine has it). */
export function init(source?: WasmSource): Promise<void>;
/** Loads the module synchronously (AudioWorklets: from bytes or a compiled module). */
export function initSync(source: ArrayBuffer | ArrayBufferView | WebAssembly.Module): void;
/** The module's bytes, as `init` would fetch them. */
export function wasmBytes(source?: WasmSource): Promise<Uint8Array>;
/** "relaxed" (fused multiply-add), "simd", or null (no WebAssembly SIMD). */
export function wasmFeatures(): "relaxed" | "simd" | null;
/** The .wasm file this engine should load, beside the module (or `base`). */
export function wasmUrl(base?: string | URL): URL;

export interface ModelInfo {
  cell: "lstm" | "gru" | "rnn_tanh" | "rnn_relu";
  inputSize: number;
  hiddenSize: number;
  /** Values per step of the top layer's output (directions x projection or hidden size). */
  outputSize: number;
  layers: number;
  bidirectional: boolean;
  dtype: "f32" | "f16" | "bf16" | "int8";
  head: { outputs: number; labels: string[] } | null;
  /** Chunked models (a conv front-end and a head, such as Silero VAD). */
  chunks: { chunk: number; channels: number; context: number; sampleRate: number; outputs: number } | null;
  /** The kernel tier ("wide": simd128). */
  isa: string;
  /** Tokens in the vocabulary (0: none). */
  vocabulary: number;
}

/** A model file, validated once. Free it (or let the GC) when done. */
export class Model {
  static load(source: string | URL | ArrayBuffer | ArrayBufferView | Response): Promise<Model>;
  static fromBytes(bytes: ArrayBuffer | Uint8Array): Model;
  readonly info: ModelInfo;
  newState(batch?: number): State;
  newStreamBatch(capacity: number): StreamBatch;
  newChunkState(streams?: number): ChunkState;
  /** A whole sequence `[steps, batch, inputSize]` (flat); returns `[steps, batch, outputSize]`. */
  run(xs: Float32Array, options?: { state?: State; batch?: number; out?: Float32Array }): Float32Array;
  /** The head on one output. */
  head(y: Float32Array, out?: Float32Array): Float32Array;
  free(): void;
}

/** The recurrent state of `batch` sequences. */
export class State {
  readonly batch: number;
  /** One step: `x` `[batch, inputSize]`; returns `[batch, outputSize]`. */
  step(x: Float32Array, out?: Float32Array): Float32Array;
  reset(): void;
  /** `[layers * directions, batch, size]`, as PyTorch's h_n and c_n. */
  h: Float32Array;
  c: Float32Array;
  free(): void;
}

export interface StreamId {
  index: number;
  generation: number;
}

/** Up to `capacity` independent streams stepped together. */
export class StreamBatch {
  readonly capacity: number;
  join(): StreamId;
  leave(id: StreamId): void;
  reset(id: StreamId): void;
  /** One step of `ids` (inputs `[ids.length, inputSize]`); outputs in that order. */
  step(ids: StreamId[], xs: Float32Array, out?: Float32Array): Float32Array;
  free(): void;
}

/** A chunked model's streams: one chunk of each per `run`. */
export class ChunkState {
  readonly streams: number;
  /** The input buffer in the module's memory: fill it, then `run()` (no copy). */
  readonly input: Float32Array;
  /** One chunk of every stream `[streams, chunk, channels]`; returns `[streams, outputs]`. */
  run(x?: Float32Array, out?: Float32Array): Float32Array;
  /** Starts one stream, or every stream, afresh. */
  reset(stream?: number): void;
  free(): void;
}

/** The `silero-vad` package's parameters (and `lstm-run --segments`'). */
export interface SpeechOptions {
  threshold?: number;
  negThreshold?: number;
  minSpeechDurationMs?: number;
  maxSpeechDurationS?: number;
  minSilenceDurationMs?: number;
  speechPadMs?: number;
  minSilenceAtMaxSpeech?: number;
  useMaxPossSilAtMaxSpeech?: boolean;
}

export const SPEECH_DEFAULTS: Readonly<Required<Omit<SpeechOptions, "negThreshold">> & { negThreshold: undefined }>;

/** Speech segments (samples) from one probability per window, by get_speech_timestamps' rules. */
export function speechTimestamps(
  probs: ArrayLike<number>,
  options?: SpeechOptions & { sampleRate?: number; window?: number; length?: number },
): { start: number; end: number }[];

/** VADIterator: speech starts and ends chunk by chunk. */
export class VadIterator {
  constructor(options?: { threshold?: number; sampleRate?: number; minSilenceDurationMs?: number; speechPadMs?: number });
  push(p: number, window: number): { start: number } | { end: number } | null;
  reset(): void;
  free(): void;
}
