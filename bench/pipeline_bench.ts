/**
 * Engine benchmarks, each with a baseline measured in the same run:
 *   1. sha256 throughput of our streaming hasher vs coreutils `sha256sum` on one large file;
 *   2. the key of a stage over an external corpus (many FLAC-sized files): cold (every byte
 *      read) vs warm (answered from the (dev, inode, size, mtime) hash cache) — what makes a
 *      no-op rerun over the 60 GB LibriSpeech take seconds.
 * Sizes are scaled down to run in about a minute on 2 cores; the ratios are what carry over.
 */
import { join } from "node:path";
import { sha256File } from "../src/pipeline/hash.ts";
import { HashCache } from "../src/pipeline/hash_cache.ts";
import { externalContentHash } from "../src/pipeline/key.ts";

export interface Row {
  what: string;
  ours: string;
  baseline: string;
  ratio: string;
}

async function time<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const view = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < view.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[i] = x >>> 0;
  }
  return out;
}

export async function pipelineBench(
  opts: { fileMB?: number; corpusFiles?: number } = {},
): Promise<Row[]> {
  const fileMB = opts.fileMB ?? 256;
  const corpusFiles = opts.corpusFiles ?? 4000;
  const dir = await Deno.makeTempDir({ prefix: "cm-bench-" });
  const rows: Row[] = [];
  try {
    // 1. one large file
    const big = join(dir, "big.bin");
    await Deno.writeFile(big, randomBytes(fileMB << 20, 7));
    await sha256File(big); // warm the page cache for both contenders
    const [ours, tOurs] = await time(() => sha256File(big));
    const [theirs, tTheirs] = await time(async () => {
      const out = await new Deno.Command("sha256sum", { args: [big], stdout: "piped" }).output();
      return new TextDecoder().decode(out.stdout).split(" ")[0];
    });
    if (ours !== theirs) throw new Error(`sha256 mismatch: ${ours} vs sha256sum ${theirs}`);
    const mbps = (t: number) => `${(fileMB * 1.048576 / t).toFixed(0)} MB/s`;
    rows.push({
      what: `sha256 of a ${fileMB} MiB file (vs sha256sum)`,
      ours: mbps(tOurs),
      baseline: mbps(tTheirs),
      ratio: `${(tTheirs / tOurs).toFixed(2)}x`,
    });

    // 2. a corpus of many files, as an external input
    const corpus = join(dir, "corpus");
    let bytes = 0;
    for (let i = 0; i < corpusFiles; i++) {
      const sub = join(corpus, String(i % 40), String(i % 7));
      await Deno.mkdir(sub, { recursive: true });
      const n = 20_000 + (i * 7919) % 60_000; // 20-80 kB, like 1-3 s of 16 kHz FLAC
      await Deno.writeFile(join(sub, `${i}.flac`), randomBytes(n, i + 1));
      bytes += n;
    }
    const cachePath = join(dir, "hash-cache.json");
    const cold = await HashCache.open(cachePath);
    const [h1, tCold] = await time(() => externalContentHash(corpus, cold));
    await cold.save();
    const warm = await HashCache.open(cachePath);
    const [h2, tWarm] = await time(() => externalContentHash(corpus, warm));
    if (h1 !== h2 || warm.filesHashed !== 0) throw new Error("warm hash differs or reread files");
    rows.push({
      what: `key over ${corpusFiles} files, ${(bytes / 1e6).toFixed(0)} MB: warm cache vs cold`,
      ours: `${tWarm.toFixed(2)} s`,
      baseline: `${tCold.toFixed(2)} s`,
      ratio: `${(tCold / tWarm).toFixed(1)}x`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return rows;
}
