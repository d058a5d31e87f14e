/** The golden fixtures' .npy files as float64 (src/io/npy.ts parses them; this widens the data). */
import { parseNpy } from "../../src/io/npy.ts";

export function readNpy(path: string | URL): { shape: number[]; data: Float64Array } {
  const a = parseNpy(Deno.readFileSync(path), String(path));
  const data = a.dtype === "<i8" || a.dtype === "<i4"
    ? Float64Array.from(a.data as ArrayLike<number | bigint>, Number)
    : Float64Array.from(a.data as ArrayLike<number>);
  return { shape: a.shape, data };
}
