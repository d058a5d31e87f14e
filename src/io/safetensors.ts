/**
 * safetensors files (https://github.com/huggingface/safetensors, the format of our checkpoints and
 * of the golden weights): an 8-byte little-endian header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {str: str}}, then the data
 * buffer; offsets are relative to the buffer, little-endian, C order. The writer sorts names, packs
 * tensors without gaps in name order and pads the header with spaces to a multiple of 8 bytes, as
 * the reference implementation does, so equal inputs give equal bytes.
 */
import { z } from "zod";

export type SafeTensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "F64"; shape: number[]; data: Float64Array }
  | { dtype: "I64"; shape: number[]; data: BigInt64Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array };

export type SafeDType = SafeTensor["dtype"];

export interface SafeTensorsFile {
  /** In file order of names (sorted by the writer). */
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** A bad or unsupported file: the message names the file and, where one is at fault, the tensor. */
export class SafetensorsError extends Error {}

const BYTES: Record<SafeDType, number> = { F32: 4, F64: 8, I64: 8, I32: 4 };
const METADATA = "__metadata__";
/** The reference implementation refuses headers above 100 MB; so do we. */
const MAX_HEADER = 100_000_000;

const entrySchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  data_offsets: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]),
}).strict();
const metadataSchema = z.record(z.string(), z.string());

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Parses a whole file's bytes; `file` names it in errors. Tensor data is copied (aligned). */
export function parseSafetensors(bytes: Uint8Array, file = "safetensors"): SafeTensorsFile {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${file}: ${msg}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes, not a safetensors file`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > bytes.length) {
    fail(`header length ${n} does not fit in the file's ${bytes.length} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    fail("header is not a JSON object");
  }
  const buffer = bytes.subarray(8 + n);
  const header = json as Record<string, unknown>;
  let metadata: Record<string, string> = {};
  if (METADATA in header) {
    const m = metadataSchema.safeParse(header[METADATA]);
    if (!m.success) fail(`__metadata__ must map strings to strings (${m.error.issues[0].message})`);
    else metadata = m.data;
  }
  const entries: { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA) continue;
    const e = entrySchema.safeParse(raw);
    if (!e.success) {
      const issue = e.error.issues[0];
      fail(`tensor "${name}": bad header entry (${issue.path.join(".")}: ${issue.message})`);
      continue;
    }
    const { dtype, shape, data_offsets: [begin, end] } = e.data;
    if (!(dtype in BYTES)) {
      fail(`tensor "${name}": dtype ${dtype} is not supported (F32, F64, I64, I32)`);
    }
    const d = dtype as SafeDType;
    if (end < begin || end - begin !== sizeOf(shape) * BYTES[d]) {
      fail(
        `tensor "${name}": data_offsets [${begin}, ${end}) hold ${end - begin} bytes, ` +
          `shape [${shape}] of ${d} needs ${sizeOf(shape) * BYTES[d]}`,
      );
    }
    if (end > buffer.length) {
      fail(`tensor "${name}": data_offsets end ${end} beyond the ${buffer.length}-byte buffer`);
    }
    entries.push({ name, dtype: d, shape, begin, end });
  }
  // The format requires the tensors to cover the buffer exactly, without overlaps or holes.
  const byOffset = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of byOffset) {
    if (e.begin !== pos) {
      fail(`tensor "${e.name}": starts at ${e.begin}, expected ${pos} (overlap or hole)`);
    }
    pos = e.end;
  }
  if (pos !== buffer.length) fail(`${buffer.length - pos} bytes after the last tensor`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const copy = buffer.slice(e.begin, e.end).buffer; // aligned
    const count = sizeOf(e.shape);
    tensors.set(e.name, makeTensor(e.dtype, e.shape, copy, count));
  }
  return { tensors, metadata };
}

function makeTensor(dtype: SafeDType, shape: number[], buf: ArrayBuffer, n: number): SafeTensor {
  switch (dtype) {
    case "F32":
      return { dtype, shape, data: new Float32Array(buf, 0, n) };
    case "F64":
      return { dtype, shape, data: new Float64Array(buf, 0, n) };
    case "I64":
      return { dtype, shape, data: new BigInt64Array(buf, 0, n) };
    case "I32":
      return { dtype, shape, data: new Int32Array(buf, 0, n) };
  }
}

export async function readSafetensors(path: string): Promise<SafeTensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/** The bytes of a safetensors file holding `tensors` (any order; written sorted by name). */
export function formatSafetensors(
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = metadata;
  let pos = 0;
  for (const [name, t] of list) {
    if (name === METADATA) throw new SafetensorsError(`"${METADATA}" is not a tensor name`);
    if (t.data.length !== sizeOf(t.shape)) {
      throw new SafetensorsError(
        `tensor "${name}": ${t.data.length} values for shape [${t.shape}] (${sizeOf(t.shape)})`,
      );
    }
    const len = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + len] };
    pos += len;
  }
  let text = JSON.stringify(header);
  const raw = new TextEncoder().encode(text);
  text += " ".repeat((8 - (raw.length % 8)) % 8);
  const head = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + head.length + pos);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const [, t] of list) {
    // Typed arrays are little-endian on every platform Deno runs on (x86-64, aarch64).
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Writes atomically: a temporary file beside `path`, then rename. */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, SafeTensor> | Record<string, SafeTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, formatSafetensors(tensors, metadata));
  await Deno.rename(tmp, path);
}

/** A float32 tensor's data, or an error naming the file and tensor. */
export function getF32(f: SafeTensorsFile, name: string, file = "safetensors"): SafeTensor & {
  dtype: "F32";
} {
  const t = f.tensors.get(name);
  if (!t) throw new SafetensorsError(`${file}: no tensor "${name}"`);
  if (t.dtype !== "F32") {
    throw new SafetensorsError(`${file}: tensor "${name}" is ${t.dtype}, expected F32`);
  }
  return t;
}
