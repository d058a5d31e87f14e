/** Shared helpers for the engine tests: temp dirs, the toy pipeline in- and out-of-process. */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runPipeline } from "../../src/pipeline/engine.ts";
import { silentProgress } from "../../src/pipeline/progress.ts";
import { ArtifactStore } from "../../src/pipeline/store.ts";
import type { Stage } from "../../src/pipeline/stage.ts";
import { DEFAULT_TOY } from "./toy/product.ts";
import { type ToyConfig, toyStages } from "./toy/stages.ts";

export const DENO = Deno.execPath();
export const TOY_CLI = fileURLToPath(new URL("./toy/cli.ts", import.meta.url));

export async function tempDir(prefix = "cm-test-"): Promise<string> {
  return await Deno.makeTempDir({ prefix });
}

export function toyConfig(over: Partial<ToyConfig> = {}): ToyConfig {
  return { ...DEFAULT_TOY, work_ms: 0, ...over };
}

/** Runs the toy pipeline in-process; returns the run record. */
export async function runToy(
  cache: string,
  over: Partial<ToyConfig> = {},
  opts: { until?: string; force?: string[]; stages?: Stage<ToyConfig>[] } = {},
) {
  const store = new ArtifactStore(cache);
  return await runPipeline(
    { experiment: "toy_a", config: toyConfig(over), stages: opts.stages ?? toyStages },
    { store, progress: silentProgress, until: opts.until, force: opts.force },
  );
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts the toy CLI as a child process (so it can be killed) with the given experiments. */
export function spawnToyCli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(DENO, {
    args: ["run", "-A", TOY_CLI, ...args],
    env: { CONMAMBA_PROGRESS_INTERVAL_MS: "1000000", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

export async function runToyCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const out = await spawnToyCli(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Writes an experiments file for the toy CLI and returns the env that points at it. */
export async function toyExperiments(
  dir: string,
  experiments: Record<string, Partial<ToyConfig>>,
): Promise<Record<string, string>> {
  const full: Record<string, ToyConfig> = {};
  for (const [k, v] of Object.entries(experiments)) full[k] = { ...DEFAULT_TOY, ...v };
  const path = join(dir, "experiments.json");
  await Deno.writeTextFile(path, JSON.stringify(full));
  return { TOY_EXPERIMENTS: path };
}

/** Map of relative path -> bytes of every file under the published artifacts (manifests aside). */
export async function artifactFiles(cache: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const root = join(cache, "artifacts");
  async function walk(dir: string, rel: string) {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name), r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p, r);
      else if (e.name !== "manifest.json") out.set(r, await Deno.readFile(p));
    }
  }
  await walk(root, "");
  return out;
}

export { mulberry32 } from "../../src/util/rng.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `path` exists (polling), or throws after `timeoutMs`. */
export async function waitForPath(path: string, timeoutMs = 20_000): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    try {
      await Deno.lstat(path);
      return;
    } catch {
      if (performance.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${path}`);
      await sleep(5);
    }
  }
}
