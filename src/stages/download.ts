/**
 * The download stage: the LibriSpeech splits an experiment names, and one manifest per split
 * (CONMAMBA_SPEC.md §10.1-10.2).
 *
 * - data_folder set: the folder holding <split>/ (or LibriSpeech/<split>/) is used in place, not
 *   copied; its files are external inputs of the key (hashed once, then by inode and mtime).
 *   Manifest paths are absolute.
 * - data_folder null: each <split>.tar.gz is fetched from the mirrors (resumed, retried, MD5
 *   checked; a bad archive is never extracted) and extracted into the artifact. Manifest paths are
 *   relative to the artifact's directory. Archives live in the stage's scratch dir and are
 *   deleted once extracted (keeping both would double the 60 GB).
 *
 * Output: manifests/<split>.csv (ID,duration,wav,spk_id,wrd), manifests/train.csv (the training
 * splits concatenated, as the original's train.csv), corpus.json (source, per-split counts).
 */
import { join, resolve } from "node:path";
import type { Experiment } from "../config/experiment.ts";
import { type DownloadOptions, downloadVerified } from "../data/http_download.ts";
import {
  type ArchiveInfo,
  LIBRISPEECH_ARCHIVES,
  LIBRISPEECH_MIRRORS,
} from "../data/librispeech_archives.ts";
import {
  formatLibriSpeechCsv,
  LibriSpeechError,
  type LibriSpeechRow,
  prepareSplit,
} from "../data/librispeech.ts";
import { UserError } from "../pipeline/errors.ts";
import { exists, removeIfExists, writeFileAtomic } from "../pipeline/fs_util.ts";
import { defineStage, type StageContext } from "../pipeline/stage.ts";

type Keys = "data_folder" | "train_splits" | "dev_splits" | "test_splits";
type Cfg = Pick<Experiment, Keys>;

export interface DownloadStageOptions {
  mirrors?: string[];
  archives?: Record<string, ArchiveInfo>;
  download?: DownloadOptions;
}

/** Training splits first (their order is train.csv's), then dev, then test; no repeats. */
export function splitsOf(c: Cfg): string[] {
  return [...new Set([...c.train_splits, ...c.dev_splits, ...c.test_splits])];
}

/** The folder that holds the splits: data_folder itself, or its LibriSpeech/ child. */
export function corpusRoot(dataFolder: string, splits: string[]): string {
  const abs = resolve(dataFolder);
  const has = (dir: string) => splits.every((s) => isDir(join(dir, s)));
  if (has(abs)) return abs;
  if (has(join(abs, "LibriSpeech"))) return join(abs, "LibriSpeech");
  const missing = splits.filter((s) => !isDir(join(abs, s)));
  throw new LibriSpeechError(
    `data_folder ${abs}: no ${missing.join(", ")} folder (nor LibriSpeech/${missing[0]}/); ` +
      `point --data_folder at the LibriSpeech directory, or drop it to download the corpus`,
  );
}

function isDir(p: string): boolean {
  try {
    return Deno.statSync(p).isDirectory;
  } catch {
    return false;
  }
}

export function makeDownloadStage(opts: DownloadStageOptions = {}) {
  const mirrors = opts.mirrors ?? LIBRISPEECH_MIRRORS;
  const archives = opts.archives ?? LIBRISPEECH_ARCHIVES;
  return defineStage<Experiment, Keys>({
    name: "download",
    version: 1,
    description: "LibriSpeech splits (downloaded or in place) and a manifest per split",
    reads: ["data_folder", "train_splits", "dev_splits", "test_splits"],
    after: [],
    externals(c) {
      if (!c.data_folder) return [];
      const splits = splitsOf(c);
      const root = corpusRoot(c.data_folder, splits);
      return splits.map((s) => join(root, s));
    },
    async run(ctx) {
      const c = ctx.config;
      const splits = splitsOf(c);
      const rows = new Map<string, LibriSpeechRow[]>();
      let source: string;
      if (c.data_folder) {
        const root = corpusRoot(c.data_folder, splits);
        source = root;
        for (const s of splits) rows.set(s, await prepareSplit(root, s));
      } else {
        source = "download";
        for (const s of splits) {
          const info = archives[s];
          if (!info) {
            throw new UserError(
              `no archive known for split "${s}"; known: ${Object.keys(archives).join(", ")}`,
            );
          }
          await fetchAndExtract(ctx, s, info, mirrors, opts.download);
          const abs = await prepareSplit(join(ctx.out, "LibriSpeech"), s);
          // Paths relative to the artifact: `out` is renamed into the store when published.
          rows.set(s, abs.map((r) => ({ ...r, wav: r.wav.slice(ctx.out.length + 1) })));
        }
      }
      const summary: Record<string, { utterances: number; hours: number }> = {};
      for (const [s, r] of rows) {
        await ctx.writeFile(`manifests/${s}.csv`, formatLibriSpeechCsv(r));
        const hours = r.reduce((h, x) => h + x.duration, 0) / 3600;
        summary[s] = { utterances: r.length, hours: Number(hours.toFixed(4)) };
      }
      const train = c.train_splits.flatMap((s) => rows.get(s)!);
      await ctx.writeFile("manifests/train.csv", formatLibriSpeechCsv(train));
      await ctx.writeFile(
        "corpus.json",
        JSON.stringify(
          {
            source,
            wav_paths: c.data_folder ? "absolute" : "relative to this artifact",
            splits: summary,
          },
          null,
          1,
        ) + "\n",
      );
    },
  });
}

/** Downloads one split's archive into scratch and extracts it into out/, once per attempt set. */
async function fetchAndExtract(
  ctx: StageContext<Cfg>,
  split: string,
  info: ArchiveInfo,
  mirrors: string[],
  dlOpts: DownloadOptions = {},
): Promise<void> {
  const done = join(ctx.scratch, `extracted-${split}`);
  if (await exists(done)) return;
  const archive = join(ctx.scratch, `${split}.tar.gz`);
  const bar = ctx.progress.bar(`download ${split}.tar.gz`, { total: info.size, unit: "bytes" });
  await downloadVerified(
    { mirrors, file: `${split}.tar.gz`, dest: archive, size: info.size, md5: info.md5 },
    {
      ...dlOpts,
      onProgress: (d) => bar.set(d),
      onRetry: (why, n) => ctx.progress.log(`  download: attempt ${n} failed: ${why}`),
    },
  );
  bar.finish();
  // A killed extraction leaves a partial split folder: start it over.
  await removeIfExists(join(ctx.out, "LibriSpeech", split));
  await extractTarGz(
    archive,
    ctx.out,
    info.size,
    ctx.progress.bar(`extract ${split}`, {
      total: info.size,
      unit: "bytes",
    }),
  );
  await writeFileAtomic(done, "");
  await Deno.remove(archive);
}

/** `tar -xz` fed from our own read loop, so progress (bytes of archive consumed) is exact. */
async function extractTarGz(
  archive: string,
  dest: string,
  size: number,
  bar: { set(n: number): void; finish(): void },
): Promise<void> {
  const tar = new Deno.Command("tar", {
    args: ["-xzf", "-", "-C", dest, "--no-same-owner", "--no-same-permissions"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = tar.stdin.getWriter();
  let fed = 0;
  try {
    using f = await Deno.open(archive, { read: true });
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      const n = await f.read(buf);
      if (n === null) break;
      await writer.write(buf.slice(0, n));
      fed += n;
      bar.set(fed);
    }
  } finally {
    await writer.close().catch(() => {});
  }
  const out = await tar.output();
  bar.finish();
  if (!out.success) {
    const msg = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
    throw new Error(`extracting ${archive} failed (${fed} of ${size} bytes fed): ${msg}`);
  }
}
