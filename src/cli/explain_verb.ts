/**
 * `explain <exp> <stage>`: the ingredients of the stage's key under the current config, and
 * which of them differ from the newest artifact of that stage (why it would run again).
 */
import { UserError } from "../pipeline/errors.ts";
import { exists } from "../pipeline/fs_util.ts";
import { HashCache } from "../pipeline/hash_cache.ts";
import { canonicalJson } from "../pipeline/canonical_json.ts";
import { diffIngredients } from "../pipeline/key.ts";
import { planPipeline } from "../pipeline/plan.ts";
import { ArtifactStore, type Ingredients } from "../pipeline/store.ts";
import { print, short } from "./format.ts";
import { cacheRoot, type Product } from "./product.ts";

export async function explainVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  stageName: string,
  rest: string[],
  opts: { cache?: string },
): Promise<number> {
  const config = product.loadExperiment(experiment, product.parseOverrides(rest));
  const pipeline = product.pipelineFor(experiment, config);
  const stage = pipeline.stages.find((s) => s.name === stageName);
  if (!stage) {
    const names = pipeline.stages.map((s) => s.name).join(", ");
    throw new UserError(`unknown stage "${stageName}" for ${experiment}; its stages are: ${names}`);
  }
  const root = cacheRoot(opts.cache);
  const store = new ArtifactStore(root);
  const hashCache = await HashCache.open((await exists(root)) ? store.hashCachePath : null);
  const plan = (await planPipeline(pipeline, store, hashCache)).find((p) => p.stage === stage)!;

  // Without its upstream artifacts the key is unknown, but config and version still are.
  const now: Ingredients = plan.ingredients ?? {
    stage: stage.name,
    version: stage.version,
    config: Object.fromEntries(
      stage.reads.map((k) => [k, (config as Record<string, unknown>)[k] ?? null]),
    ),
    inputs: {},
    externals: [],
  };
  print(`stage ${stage.name} of ${experiment}: ${plan.state}, key ${plan.key ?? "unknown"}`);
  if (plan.waitsOn) print(`  (the key depends on ${plan.waitsOn}, which is not built yet)`);
  if (plan.problem) print(`  (cannot compute the key: ${plan.problem})`);
  print("ingredients:");
  print(`  version ${now.version}`);
  for (const [k, v] of Object.entries(now.config)) print(`  config ${k} = ${canonicalJson(v)}`);
  for (const [k, v] of Object.entries(now.inputs)) print(`  input ${k}: content ${v}`);
  for (const e of now.externals) print(`  external ${e.path}: content ${e.contentHash}`);
  for (const [k, v] of Object.entries(now.code ?? {})) print(`  code ${k}: ${v}`);

  const others = (await store.list())
    .filter((a) => a.stage === stage.name && !(a.manifest instanceof Error))
    .map((a) => a.manifest as Exclude<typeof a.manifest, Error>)
    .sort((a, b) => b.created.localeCompare(a.created));
  const newest = others[0];
  if (!newest) {
    print(`no artifact of ${stage.name} exists yet in ${root}`);
    return 0;
  }
  if (plan.key && newest.key === plan.key) {
    print(`the newest artifact of ${stage.name} (${newest.created}) has this key: it is reused`);
    return 0;
  }
  print(`newest artifact of ${stage.name}: key ${short(newest.key)}, built ${newest.created}`);
  let diffs = diffIngredients(newest.ingredients, now);
  if (!plan.ingredients) {
    diffs = diffs.filter((d) => !d.startsWith("input ") && !d.startsWith("external "));
  }
  if (diffs.length === 0) print("no differences in the ingredients known so far");
  else {
    print("differences (newest artifact -> now):");
    for (const d of diffs) print(`  ${d}`);
  }
  return 0;
}
