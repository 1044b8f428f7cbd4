import { Model, SpeechOptions } from "./lstmrt.js";
export { init } from "./lstmrt.js";

/** The Silero VAD model file shipped beside the module. */
export function sileroModel(): URL;

export interface SpeechEvent {
  type: "start" | "end";
  /** Samples at the model's rate from the start of the signal. */
  sample: number;
  seconds: number;
}

export interface Segment {
  start: number;
  end: number;
  startSeconds: number;
  endSeconds: number;
}

/** Silero VAD over samples at the model's rate (16 kHz). */
export class SileroVad {
  static load(source?: string | URL | ArrayBuffer | ArrayBufferView, options?: SpeechOptions): Promise<SileroVad>;
  static segmentsOf(signal: Float32Array, options?: SpeechOptions, source?: string | URL | ArrayBuffer | ArrayBufferView): Promise<Segment[]>;
  constructor(model: Model, options?: SpeechOptions);
  readonly sampleRate: number;
  /** Chunk probabilities so far. */
  readonly probs: number[];
  push(samples: Float32Array, onProbability?: (p: number, chunk: number) => void): SpeechEvent[];
  finish(): { events: SpeechEvent[]; segments: Segment[] };
  segments(): Segment[];
  reset(): void;
  free(): void;
}

export interface MicVADOptions extends SpeechOptions {
  onSpeechStart?: (e: { sample: number; seconds: number }) => void;
  /** `audio`: the speech's 16 kHz samples. */
  onSpeechEnd?: (e: { sample: number; seconds: number; audio?: Float32Array }) => void;
  onFrameProcessed?: (e: { probability: number; chunk: number }) => void;
  /** Where lstmrt.wasm, silero_vad.lstm and vad-worklet.js are (default: beside vad.js). */
  baseUrl?: string | URL;
  /** Another model file URL. */
  model?: string | URL;
  /** Use this stream instead of asking for the microphone. */
  stream?: MediaStream;
  audioContext?: AudioContext;
  audio?: MediaTrackConstraints;
  /** Hand the speech's samples to onSpeechEnd (default true). */
  keepAudio?: boolean;
}

/** The microphone with Silero VAD in an AudioWorklet. */
export class MicVAD {
  static new(options?: MicVADOptions): Promise<MicVAD>;
  start(): Promise<void>;
  pause(): void;
  segments(): Promise<Segment[]>;
  destroy(): Promise<void>;
}
