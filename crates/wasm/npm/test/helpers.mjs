// What the tests share: the repository's paths, the native tools, .npy files.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
export const bin = (name) => path.join(root, "target/release", name);
export const scratch = () => mkdtempSync(path.join(tmpdir(), "lstmrt-js-"));

/** Runs a native tool; returns stdout. `env` adds variables (LSTMRT_ISA). */
export function native(name, args, env = {}) {
  return execFileSync(bin(name), args, { env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 1 << 26 });
}

/** A float32 or float64 .npy file's values (as float32) and shape. */
export function readNpy(file) {
  const b = readFileSync(file);
  const headerLen = b[6] === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = b[6] === 1 ? 10 : 12;
  const header = b.toString("latin1", start, start + headerLen);
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const descr = header.match(/'descr':\s*'([^']*)'/)[1];
  const body = b.subarray(start + headerLen);
  const n = shape.reduce((a, d) => a * d, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = descr === "<f8" ? body.readDoubleLE(8 * i) : body.readFloatLE(4 * i);
  return { shape, data: out };
}

/** Writes a float32 .npy file. */
export function writeNpy(file, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, "latin1"), Buffer.from(new Float32Array(data).buffer)]));
}

/** The largest |a - b|, Infinity if either holds NaN (a comparison that fails on NaN). */
export function maxDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
