/** SHA-256 helpers. Files are streamed so a 6 GB archive never sits in memory. */
import { createHash } from "node:crypto";

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 of a file's bytes, read in 4 MiB chunks. `onBytes` reports progress. */
export async function sha256File(path: string, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(4 << 20);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
    onBytes?.(n);
  }
  return h.digest("hex");
}
