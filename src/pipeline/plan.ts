/**
 * What a pipeline would do, without doing it: the key of every stage whose inputs exist, and
 * whether its artifact is done, partial (an interrupted attempt) or missing. Used by the
 * `status`, `explain` and `gc` verbs.
 */
import { exists } from "./fs_util.ts";
import type { HashCache } from "./hash_cache.ts";
import { computeKey } from "./key.ts";
import type { Pipeline, Stage } from "./stage.ts";
import type { ArtifactManifest, ArtifactStore, Ingredients } from "./store.ts";

export type StageState = "done" | "partial" | "missing";

export interface StagePlan<C extends object> {
  stage: Stage<C>;
  state: StageState;
  /** Null when an upstream artifact is missing (the key depends on its content). */
  key: string | null;
  ingredients: Ingredients | null;
  manifest: ArtifactManifest | null;
  /** The upstream stage that must be built before this key can be known. */
  waitsOn: string | null;
  /** Why the key could not be computed, other than a missing upstream (e.g. a missing path). */
  problem: string | null;
}

export async function planPipeline<C extends object>(
  pipeline: Pipeline<C>,
  store: ArtifactStore,
  hashCache: HashCache,
): Promise<StagePlan<C>[]> {
  const plans: StagePlan<C>[] = [];
  const byName = new Map<string, StagePlan<C>>();
  for (const stage of pipeline.stages) {
    const plan: StagePlan<C> = {
      stage,
      state: "missing",
      key: null,
      ingredients: null,
      manifest: null,
      waitsOn: null,
      problem: null,
    };
    const inputs: Record<string, string> = {};
    for (const a of stage.after) {
      const up = byName.get(a)!;
      if (!up.manifest) {
        plan.waitsOn = up.waitsOn ?? a;
        break;
      }
      inputs[a] = up.manifest.contentHash;
    }
    if (!plan.waitsOn) {
      try {
        const k = await computeKey(stage, pipeline.config, inputs, hashCache);
        plan.key = k.key;
        plan.ingredients = k.ingredients;
        plan.manifest = await store.get(stage.name, k.key);
        if (plan.manifest) plan.state = "done";
        else if (await exists(store.partialDir(stage.name, k.key))) plan.state = "partial";
      } catch (e) {
        plan.problem = e instanceof Error ? e.message : String(e);
      }
    }
    plans.push(plan);
    byName.set(stage.name, plan);
  }
  await hashCache.save();
  return plans;
}
