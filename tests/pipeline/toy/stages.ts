/**
 * Toy stages for testing the engine: small, deterministic, slow enough (work_ms per chunk) that a
 * kill -9 lands inside them, and shaped like the real ones (checkpointed generation, a transform
 * of upstream files, a score stage writing results.json).
 */
import { join } from "node:path";
import { defineStage, type Stage } from "../../../src/pipeline/stage.ts";
import { sha256Hex } from "../../../src/pipeline/hash.ts";
import { listFiles } from "../../../src/pipeline/fs_util.ts";

export interface ToyConfig {
  seed: number;
  chunks: number;
  chunk_bytes: number;
  work_ms: number;
  scale: number;
  comment: string; // read by gen but does not change its output
  unused: string; // read by nobody
  source_dir: string | null; // external input of gen
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Deterministic bytes from (seed, index): a xorshift stream. */
function chunkBytes(seed: number, index: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed * 2654435761 + index * 40503 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 255;
  }
  return out;
}

export const gen = defineStage<
  ToyConfig,
  "seed" | "chunks" | "chunk_bytes" | "work_ms" | "comment" | "source_dir"
>({
  name: "gen",
  version: 1,
  description: "writes `chunks` pseudo-random files, checkpointing after each",
  reads: ["seed", "chunks", "chunk_bytes", "work_ms", "comment", "source_dir"],
  after: [],
  externals: (c) => (c.source_dir ? [c.source_dir] : []),
  async run(ctx) {
    const { seed, chunks, chunk_bytes, work_ms, source_dir } = ctx.config;
    void ctx.config.comment;
    const last = await ctx.checkpoints.latest();
    const start = last ? Number(await last.readText("next")) : 0;
    const bar = ctx.progress.bar("gen", { total: chunks, unit: "items" });
    bar.set(start);
    for (let i = start; i < chunks; i++) {
      await sleep(work_ms);
      await ctx.writeFile(
        `chunks/${String(i).padStart(4, "0")}.bin`,
        chunkBytes(seed, i, chunk_bytes),
      );
      await ctx.checkpoints.save(i + 1, { next: String(i + 1) });
      bar.add(1);
    }
    bar.finish();
    let extra = "";
    if (source_dir) {
      for (const rel of await listFiles(source_dir)) {
        extra += `${rel} ${sha256Hex(await Deno.readFile(join(source_dir, rel)))}\n`;
      }
    }
    await ctx.writeFile("source.txt", extra);
  },
});

export const transform = defineStage<ToyConfig, "scale" | "work_ms">({
  name: "transform",
  version: 1,
  description: "one line per upstream chunk; plain (non-atomic) writes, no checkpoints",
  reads: ["scale", "work_ms"],
  after: ["gen"],
  async run(ctx) {
    const src = ctx.inputs.gen.path;
    const files = (await listFiles(src)).filter((f) => f.startsWith("chunks/"));
    let lines = "";
    for (const f of files) {
      await sleep(ctx.config.work_ms / 2);
      const bytes = await Deno.readFile(join(src, f));
      let sum = 0;
      for (const b of bytes) sum += b;
      lines += `${f} ${sum * ctx.config.scale}\n`;
      // A raw write, half of which a kill may interrupt: the engine must never publish it.
      await Deno.writeTextFile(join(ctx.out, "lines.txt"), lines);
    }
  },
});

export const score = defineStage<ToyConfig, "scale">({
  name: "score",
  version: 1,
  description: "writes results.json as the real score stage does",
  reads: ["scale"],
  after: ["transform"],
  async run(ctx) {
    const text = await Deno.readTextFile(join(ctx.inputs.transform.path, "lines.txt"));
    const n = text.trim().split("\n").length;
    const results = {
      "test-clean": {
        wer: n * ctx.config.scale,
        sub: n,
        del: 0,
        ins: 1,
        words: 100,
        sentences: 10,
      },
    };
    await ctx.writeFile("results.json", JSON.stringify(results));
  },
});

export const toyStages: Stage<ToyConfig>[] = [gen, transform, score];
