/**
 * `gc [--dry-run]`: delete artifacts and interrupted attempts that no current experiment (each
 * hparams file with its defaults) reaches. Keys being built right now (lock held) are kept.
 */
import { join } from "node:path";
import { exists, removeIfExists, treeSize } from "../pipeline/fs_util.ts";
import { HashCache } from "../pipeline/hash_cache.ts";
import { KeyLock } from "../pipeline/lock.ts";
import { planPipeline } from "../pipeline/plan.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import { fmtBytes, print } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export async function gcVerb<C extends object>(
  product: Product<C>,
  opts: { cache?: string; dryRun?: boolean },
): Promise<number> {
  const root = cacheRoot(opts.cache);
  if (!(await exists(root))) {
    print(`no cache at ${root}: nothing to collect`);
    return 0;
  }
  const store = new ArtifactStore(root);
  const hashCache = await HashCache.open(store.hashCachePath);
  const reached = new Set<string>(); // "<stage>/<key>"
  for (const name of product.listExperiments()) {
    let config: C;
    try {
      config = product.loadExperiment(name, {});
    } catch (e) {
      // An experiment that does not load reaches nothing; say so, since it protects nothing.
      print(`warning: skipping ${name}: ${e instanceof Error ? e.message : e}`);
      continue;
    }
    for (const p of await planPipeline(product.pipelineFor(name, config), store, hashCache)) {
      if (p.key) reached.add(`${p.stage.name}/${p.key}`);
    }
  }
  const verb = opts.dryRun ? "would remove" : "removed";
  let count = 0, bytes = 0;
  const candidates = [
    ...(await store.list()).map((a) => ({ ...a, kind: "artifact" as const })),
    ...(await store.listPartial()).map((a) => ({ ...a, kind: "partial" as const })),
  ];
  for (const c of candidates) {
    const id = `${c.stage}/${c.key}`;
    // A partial attempt whose artifact exists is leftover from a crash after publication.
    const leftover = c.kind === "partial" && (await store.get(c.stage, c.key).catch(() => null));
    if (reached.has(id) && !leftover) continue;
    if (await KeyLock.isHeld(store.lockPath(c.stage, c.key))) {
      print(`keeping ${c.kind} ${id}: being built right now`);
      continue;
    }
    const dir = c.kind === "artifact"
      ? store.artifactDir(c.stage, c.key)
      : store.partialDir(c.stage, c.key);
    const size = await treeSize(dir);
    print(`${verb} ${c.kind} ${id} (${fmtBytes(size)})`);
    count++;
    bytes += size;
    if (opts.dryRun) continue;
    if (c.kind === "artifact") await store.remove(c.stage, c.key);
    else await removeIfExists(dir);
    await removeIfExists(store.lockPath(c.stage, c.key));
  }
  if (!opts.dryRun) {
    // Empty stage folders and trash from interrupted removals.
    for (const top of ["artifacts", "partial"]) {
      const d = join(root, top);
      if (!(await exists(d))) continue;
      for await (const e of Deno.readDir(d)) {
        const p = join(d, e.name);
        if (e.name.startsWith(".trash-")) await removeIfExists(p);
        else if (e.isDirectory && (await Array.fromAsync(Deno.readDir(p))).length === 0) {
          await Deno.remove(p);
        }
      }
    }
  }
  print(`${verb} ${count} item(s), ${fmtBytes(bytes)}; ${reached.size} reachable key(s) kept`);
  return 0;
}
