/**
 * Runs a pipeline: for each stage in order, compute its key, then reuse the published artifact,
 * resume an interrupted attempt, or run it fresh; publish atomically; record the run.
 */
import { join } from "node:path";
import { Checkpoints } from "./checkpoints.ts";
import { StageFailedError, UserError } from "./errors.ts";
import { exists, fsyncDir, fsyncTree, removeIfExists, writeFileAtomic } from "./fs_util.ts";
import { HashCache } from "./hash_cache.ts";
import { computeKey, restrictConfig } from "./key.ts";
import { KeyLock } from "./lock.ts";
import { hashTree } from "./manifest.ts";
import type { Progress } from "./progress.ts";
import type { ArtifactRef, Pipeline, Stage, StageContext } from "./stage.ts";
import {
  type ArtifactManifest,
  type ArtifactStore,
  type Ingredients,
  MANIFEST_NAME,
} from "./store.ts";
import { runtimeVersions } from "./versions.ts";

export type StageStatus = "reused" | "ran" | "resumed";

export interface StageReport {
  stage: string;
  key: string;
  contentHash: string;
  status: StageStatus;
  seconds: number;
  bytes: number;
}

export interface RunRecord {
  experiment: string;
  started: string;
  finished: string | null;
  /** True when every stage of the pipeline was done (not stopped by --until or an error). */
  complete: boolean;
  error: string | null;
  stages: StageReport[];
}

export interface RunOptions {
  store: ArtifactStore;
  progress: Progress;
  /** Stop after this stage. */
  until?: string;
  /** Stages to rebuild even when their artifact exists. */
  force?: string[];
  /** Called after each stage with its one-line report. */
  onStage?(report: StageReport): void;
}

/** Checks that stage names are unique, `after` names earlier stages, and options name stages. */
export function validateGraph<C extends object>(
  pipeline: Pipeline<C>,
  opts: { until?: string; force?: string[] } = {},
): void {
  const seen = new Set<string>();
  for (const s of pipeline.stages) {
    if (seen.has(s.name)) {
      throw new Error(`pipeline ${pipeline.experiment}: stage "${s.name}" twice`);
    }
    for (const a of s.after) {
      if (!seen.has(a)) {
        throw new Error(
          `pipeline ${pipeline.experiment}: stage "${s.name}" runs after unknown or later stage "${a}"`,
        );
      }
    }
    seen.add(s.name);
  }
  const names = [...seen].join(", ");
  for (const n of [opts.until, ...(opts.force ?? [])]) {
    if (n !== undefined && !seen.has(n)) {
      throw new UserError(
        `unknown stage "${n}" for ${pipeline.experiment}; its stages are: ${names}`,
      );
    }
  }
}

export async function runPipeline<C extends object>(
  pipeline: Pipeline<C>,
  opts: RunOptions,
): Promise<RunRecord> {
  validateGraph(pipeline, opts);
  const { store } = opts;
  await store.init();
  const hashCache = await HashCache.open(store.hashCachePath);
  const record: RunRecord = {
    experiment: pipeline.experiment,
    started: new Date().toISOString(),
    finished: null,
    complete: false,
    error: null,
    stages: [],
  };
  const done = new Map<string, ArtifactManifest>();
  try {
    for (const stage of pipeline.stages) {
      const inputs: Record<string, string> = {};
      for (const a of stage.after) inputs[a] = done.get(a)!.contentHash;
      // Only external inputs need hashing here (upstream hashes are in their manifests).
      const bar = stage.externals
        ? opts.progress.bar(`${stage.name}: hashing external inputs`, { unit: "bytes" })
        : null;
      const { key, ingredients } = await computeKey(
        stage,
        pipeline.config,
        inputs,
        hashCache,
        bar ? (n) => bar.add(n) : undefined,
      );
      bar?.finish();
      await hashCache.save();
      const forced = opts.force?.includes(stage.name) ?? false;
      const { manifest, report } = await buildOrReuse(pipeline, stage, key, ingredients, done, {
        ...opts,
        forced,
      });
      done.set(stage.name, manifest);
      record.stages.push(report);
      opts.onStage?.(report);
      if (stage.name === opts.until) break;
    }
    record.complete = record.stages.length === pipeline.stages.length;
    return record;
  } catch (e) {
    record.error = e instanceof Error ? e.message : String(e);
    throw e;
  } finally {
    record.finished = new Date().toISOString();
    await writeRunRecord(store, record).catch(() => {});
  }
}

async function writeRunRecord(store: ArtifactStore, record: RunRecord): Promise<void> {
  const dir = store.runsDir(record.experiment);
  await Deno.mkdir(dir, { recursive: true });
  const name = `${record.started.replace(/[:.]/g, "-")}-${Deno.pid}.json`;
  await writeFileAtomic(join(dir, name), JSON.stringify(record, null, 1) + "\n");
}

async function buildOrReuse<C extends object>(
  pipeline: Pipeline<C>,
  stage: Stage<C>,
  key: string,
  ingredients: Ingredients,
  done: Map<string, ArtifactManifest>,
  opts: RunOptions & { forced: boolean },
): Promise<{ manifest: ArtifactManifest; report: StageReport }> {
  const { store, progress } = opts;
  const t0 = performance.now();
  const reused = (m: ArtifactManifest) => ({
    manifest: m,
    report: report(m, "reused", t0),
  });
  if (!opts.forced) {
    const m = await store.get(stage.name, key);
    if (m) return reused(m);
  }
  const lock = await KeyLock.acquire(store.lockPath(stage.name, key), {
    onWait: (o) =>
      progress.log(
        `  ${stage.name}: key ${key.slice(0, 12)} is being built by ` +
          (o ? `pid ${o.pid} on ${o.host} since ${o.started}` : "another process") +
          "; waiting for it",
      ),
    onStale: (o) =>
      progress.log(
        `  warning: ${stage.name}: breaking the lock of pid ${o.pid} on ${o.host} ` +
          `(started ${o.started}): that process died while building key ${key.slice(0, 12)}`,
      ),
  });
  try {
    const partial = store.partialDir(stage.name, key);
    if (opts.forced) {
      await store.remove(stage.name, key);
      await removeIfExists(partial);
    } else {
      const m = await store.get(stage.name, key); // built by the run we waited for?
      if (m) {
        await removeIfExists(partial);
        return reused(m);
      }
    }
    const resumed = await exists(partial);
    const out = join(partial, "out");
    const marker = join(partial, "complete");
    // Temp files of atomic writes live here, never in `out`: a kill mid-write must not leave
    // a stray file that would be published. Anything in it is debris of a killed attempt.
    const tmp = join(partial, "tmp");
    await removeIfExists(tmp);
    await Deno.mkdir(out, { recursive: true });
    await Deno.mkdir(tmp, { recursive: true });
    await Deno.mkdir(join(partial, "scratch"), { recursive: true });
    if (!(await exists(marker))) {
      const ctx = makeContext(pipeline, stage, {
        out,
        tmp,
        partial,
        resumed,
        done,
        store,
        ingredients,
        progress,
      });
      try {
        await stage.run(ctx);
      } catch (e) {
        throw new StageFailedError(stage.name, key, e);
      }
      if (await exists(join(out, MANIFEST_NAME))) {
        throw new StageFailedError(
          stage.name,
          key,
          new Error(`wrote ${MANIFEST_NAME} at the top of its output; that name is the engine's`),
        );
      }
      await fsyncTree(out);
      await writeFileAtomic(marker, "", tmp);
    }
    const manifest = await publish(stage, key, ingredients, { out, tmp }, t0, resumed, store);
    await removeIfExists(partial);
    return { manifest, report: report(manifest, resumed ? "resumed" : "ran", t0) };
  } finally {
    await lock.release();
  }
}

function report(m: ArtifactManifest, status: StageStatus, t0: number): StageReport {
  return {
    stage: m.stage,
    key: m.key,
    contentHash: m.contentHash,
    status,
    seconds: (performance.now() - t0) / 1000,
    bytes: m.bytes,
  };
}

async function publish<C extends object>(
  stage: Stage<C>,
  key: string,
  ingredients: Ingredients,
  { out, tmp }: { out: string; tmp: string },
  t0: number,
  resumed: boolean,
  store: ArtifactStore,
): Promise<ArtifactManifest> {
  const tree = await hashTree(out, { exclude: (rel) => rel === MANIFEST_NAME });
  const manifest: ArtifactManifest = {
    format: 1,
    stage: stage.name,
    key,
    ingredients,
    contentHash: tree.contentHash,
    bytes: tree.bytes,
    files: tree.files,
    created: new Date().toISOString(),
    durationMs: Math.round(performance.now() - t0),
    resumed,
    host: Deno.hostname(),
    versions: { ...(await runtimeVersions()) },
  };
  await writeFileAtomic(join(out, MANIFEST_NAME), JSON.stringify(manifest, null, 1) + "\n", tmp);
  const parent = join(store.root, "artifacts", stage.name);
  await Deno.mkdir(parent, { recursive: true });
  await Deno.rename(out, store.artifactDir(stage.name, key));
  await fsyncDir(parent);
  return manifest;
}

function makeContext<C extends object>(
  pipeline: Pipeline<C>,
  stage: Stage<C>,
  s: {
    out: string;
    tmp: string;
    partial: string;
    resumed: boolean;
    done: Map<string, ArtifactManifest>;
    store: ArtifactStore;
    ingredients: Ingredients;
    progress: Progress;
  },
): StageContext<Partial<C>> {
  const { out, progress } = s;
  const inputs: Record<string, ArtifactRef> = {};
  for (const a of stage.after) {
    const m = s.done.get(a)!;
    inputs[a] = {
      stage: a,
      key: m.key,
      contentHash: m.contentHash,
      path: s.store.artifactDir(a, m.key),
    };
  }
  const warn = (m: string) => progress.log(`  ${stage.name}: ${m}`);
  return {
    config: restrictConfig(pipeline.config, stage),
    out,
    inputs,
    externals: s.ingredients.externals,
    resumed: s.resumed,
    scratch: join(s.partial, "scratch"),
    checkpoints: new Checkpoints(join(s.partial, "checkpoints"), 2, warn),
    progress,
    async writeFile(rel, data) {
      const p = join(out, rel);
      await Deno.mkdir(join(p, ".."), { recursive: true });
      await writeFileAtomic(p, data, s.tmp);
    },
  };
}
