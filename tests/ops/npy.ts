/** A reader for the .npy files of the golden fixtures (format 1.0, little-endian f4 / f8 / i8, C order). */
export function readNpy(path: string | URL): { shape: number[]; data: Float64Array } {
  const bytes = Deno.readFileSync(path);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== "NUMPY") {
    throw new Error(`${path}: not a .npy file`);
  }
  const headerLen = bytes[8] | (bytes[9] << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? "").split(",").map((s) => s.trim())
    .filter((s) => s).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${path}: Fortran order`);
  const body = bytes.slice(10 + headerLen).buffer;
  const data = descr === "<f4"
    ? Float64Array.from(new Float32Array(body))
    : descr === "<f8"
    ? new Float64Array(body)
    : descr === "<i8"
    ? Float64Array.from(new BigInt64Array(body), Number)
    : null;
  if (!data) throw new Error(`${path}: dtype ${descr} not supported`);
  return { shape, data };
}
