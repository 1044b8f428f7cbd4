import { Transform } from "node:stream";
import { SpeechOptions } from "./lstmrt.js";

/** Raw mono PCM at 16 kHz in, speech events out, then `{ type: "segments", segments }`. */
export function createVadStream(
  options?: SpeechOptions & { format?: "s16le" | "f32le"; model?: string | URL | ArrayBuffer | ArrayBufferView },
): Promise<Transform>;

/** A WAV file's samples (channels averaged), rate and channel count. */
export function readWav(bytes: ArrayBuffer | Uint8Array): { samples: Float32Array; sampleRate: number; channels: number };
