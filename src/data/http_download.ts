/**
 * Fetches one archive over HTTP(S) robustly: resumes a partial file with a Range request, retries
 * with exponential backoff across a list of mirrors on errors, stalls and resets, and accepts the
 * file only when its size and MD5 match. The verified file appears at `dest` by one rename; a
 * failed download leaves at most `dest + ".part"` (which the next attempt resumes).
 */
import { createHash } from "node:crypto";
import { exists, removeIfExists } from "../pipeline/fs_util.ts";

export interface DownloadSpec {
  /** Base URLs; the file is fetched from `<mirror>/<file>`. Tried in order, then round again. */
  mirrors: string[];
  file: string;
  dest: string;
  size: number;
  md5: string;
}

export interface DownloadOptions {
  /** Attempts in all, over all mirrors (default 8). */
  maxAttempts?: number;
  /** Abort a response that delivers no byte for this long (default 60 s). */
  stallMs?: number;
  /** First backoff; doubles per failure, capped at 30 s (default 1 s). */
  backoffMs?: number;
  onProgress?(bytesDone: number, total: number): void;
  /** Called for every failed attempt, with the reason (for logs). */
  onRetry?(reason: string, attempt: number): void;
}

export class DownloadError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

export async function md5File(path: string): Promise<string> {
  const h = createHash("md5");
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(4 << 20);
  for (;;) {
    const n = await f.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Downloads and verifies `spec.file`; returns at once when `dest` already holds it. */
export async function downloadVerified(
  spec: DownloadSpec,
  opts: DownloadOptions = {},
): Promise<void> {
  const maxAttempts = opts.maxAttempts ?? 8;
  const stallMs = opts.stallMs ?? 60_000;
  const backoff0 = opts.backoffMs ?? 1000;
  const part = spec.dest + ".part";
  if ((await exists(spec.dest)) && (await fileSize(spec.dest)) === spec.size) {
    if ((await md5File(spec.dest)) === spec.md5) return;
    await Deno.remove(spec.dest); // a damaged earlier download: fetch again
  }
  const reasons: string[] = [];
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const url = `${spec.mirrors[attempt % spec.mirrors.length].replace(/\/+$/, "")}/${spec.file}`;
    try {
      let have = await fileSize(part);
      if (have > spec.size) {
        await Deno.truncate(part, 0);
        have = 0;
      }
      if (have < spec.size) await fetchInto(url, part, have, spec.size, stallMs, opts.onProgress);
      const md5 = await md5File(part);
      if (md5 !== spec.md5) {
        await removeIfExists(part); // resuming a corrupt file cannot repair it
        throw new Error(`MD5 ${md5}, expected ${spec.md5}`);
      }
      await Deno.rename(part, spec.dest);
      return;
    } catch (e) {
      const reason = `${url}: ${e instanceof Error ? e.message : String(e)}`;
      reasons.push(reason);
      opts.onRetry?.(reason, attempt + 1);
      if (attempt + 1 < maxAttempts) {
        await new Promise((r) => setTimeout(r, Math.min(backoff0 * 2 ** attempt, 30_000)));
      }
    }
  }
  throw new DownloadError(
    `${spec.file}: failed after ${maxAttempts} attempts; last error: ${reasons.at(-1)}`,
  );
}

/** One GET from byte `have` on, appended to `part`. Throws on any anomaly. */
async function fetchInto(
  url: string,
  part: string,
  have: number,
  size: number,
  stallMs: number,
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const ctrl = new AbortController();
  let timer = setTimeout(() => ctrl.abort(new Error(`stalled for ${stallMs} ms`)), stallMs);
  const poke = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new Error(`stalled for ${stallMs} ms`)), stallMs);
  };
  try {
    const headers: HeadersInit = have > 0 ? { Range: `bytes=${have}-` } : {};
    const res = await fetch(url, { headers, signal: ctrl.signal });
    if (res.status === 200 && have > 0) {
      have = 0; // the server ignored the range: start over
    } else if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== have) {
        throw new Error(
          `bad Content-Range "${res.headers.get("content-range")}" for offset ${have}`,
        );
      }
    } else if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status} ${res.statusText}`);
    }
    if (!res.body) throw new Error("empty response");
    using f = await Deno.open(part, { write: true, create: true });
    await f.truncate(have);
    await f.seek(have, Deno.SeekMode.Start);
    let done = have;
    for await (const chunk of res.body) {
      poke();
      if (done + chunk.length > size) throw new Error(`more than the expected ${size} bytes`);
      let off = 0;
      while (off < chunk.length) off += await f.write(chunk.subarray(off));
      done += chunk.length;
      onProgress?.(done, size);
    }
    await f.sync();
    if (done !== size) throw new Error(`connection closed at byte ${done} of ${size}`);
  } catch (e) {
    if (ctrl.signal.aborted && ctrl.signal.reason instanceof Error) throw ctrl.signal.reason;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
