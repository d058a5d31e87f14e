/**
 * NumPy .npy files (format versions 1-3), the exchange format of the golden data and of
 * `conmamba fbank --out X.npy`: little-endian float32 / float64 / int64 / int32, C order.
 */
export type NpyArray =
  | { dtype: "<f4"; shape: number[]; data: Float32Array }
  | { dtype: "<f8"; shape: number[]; data: Float64Array }
  | { dtype: "<i8"; shape: number[]; data: BigInt64Array }
  | { dtype: "<i4"; shape: number[]; data: Int32Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export class NpyError extends Error {}

export function parseNpy(bytes: Uint8Array, name = "array"): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new NpyError(`${name}: not a .npy file`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new NpyError(`${name}: unreadable header ${header}`);
  if (fortran) throw new NpyError(`${name}: Fortran order is not supported`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(start); // aligned copy
  const need = (size: number) => {
    if (body.length < count * size) throw new NpyError(`${name}: truncated (${body.length} bytes)`);
  };
  switch (descr) {
    case "<f4":
      need(4);
      return { dtype: descr, shape, data: new Float32Array(body.buffer, 0, count) };
    case "<f8":
      need(8);
      return { dtype: descr, shape, data: new Float64Array(body.buffer, 0, count) };
    case "<i8":
      need(8);
      return { dtype: descr, shape, data: new BigInt64Array(body.buffer, 0, count) };
    case "<i4":
      need(4);
      return { dtype: descr, shape, data: new Int32Array(body.buffer, 0, count) };
    default:
      throw new NpyError(`${name}: dtype ${descr} is not supported`);
  }
}

export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await Deno.readFile(path), path);
}

/** A version 1.0 .npy of float32 data in C order. */
export function formatNpyF32(shape: readonly number[], data: Float32Array): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
