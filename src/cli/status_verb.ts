/** `status <exp> [--json]`: each stage done / partial / missing, with key, content hash, size. */
import { HashCache } from "../pipeline/hash_cache.ts";
import { planPipeline } from "../pipeline/plan.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { exists, treeSize } from "../pipeline/fs_util.ts";
import { fmtBytes, print, short, table } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export async function statusVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { cache?: string; json?: boolean },
): Promise<number> {
  const config = product.loadExperiment(experiment, product.parseOverrides(rest));
  const pipeline = product.pipelineFor(experiment, config);
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  // Status must not create the cache; the hash cache is only read (saving needs the folder).
  const hashCache = await HashCache.open((await exists(root)) ? store.hashCachePath : null);
  const plans = await planPipeline(pipeline, store, hashCache);
  const rows = [];
  for (const p of plans) {
    const partialBytes = p.state === "partial" && p.key
      ? await treeSize(store.partialDir(p.stage.name, p.key))
      : 0;
    rows.push({
      stage: p.stage.name,
      state: p.state,
      key: p.key,
      contentHash: p.manifest?.contentHash ?? null,
      bytes: p.manifest?.bytes ?? partialBytes,
      created: p.manifest?.created ?? null,
      waitsOn: p.waitsOn,
      problem: p.problem,
    });
  }
  const pending = product.pendingStages?.(experiment, config) ?? [];
  if (opts.json) {
    print(JSON.stringify({ experiment, cache: root, stages: rows, pending }, null, 1));
    return 0;
  }
  print(`${experiment} (cache ${root})`);
  const lines = [["stage", "state", "key", "content", "size", "note"]];
  for (const r of rows) {
    lines.push([
      r.stage,
      r.state,
      short(r.key),
      short(r.contentHash),
      r.bytes ? fmtBytes(r.bytes) : "-",
      r.problem ?? (r.waitsOn ? `waits on ${r.waitsOn}` : r.created ? `built ${r.created}` : ""),
    ]);
  }
  print(table(lines));
  if (pending.length > 0) print(`not implemented in this build yet: ${pending.join(", ")}`);
  return 0;
}
