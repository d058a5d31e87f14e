/**
 * A toy product for the CLI: experiments come from a JSON file (env TOY_EXPERIMENTS, default: two
 * built-in ones), validated with zod the way the real hparams are.
 */
import { z } from "zod";
import type { Product } from "../../../src/cli/product.ts";
import { UserError } from "../../../src/pipeline/errors.ts";
import { type ToyConfig, toyStages } from "./stages.ts";

const ToySchema = z.strictObject({
  seed: z.number().int(),
  chunks: z.number().int().positive(),
  chunk_bytes: z.number().int().positive(),
  work_ms: z.number().nonnegative(),
  scale: z.number(),
  comment: z.string(),
  unused: z.string(),
  source_dir: z.string().nullable(),
});

export const DEFAULT_TOY: ToyConfig = {
  seed: 1,
  chunks: 6,
  chunk_bytes: 20000,
  work_ms: 30,
  scale: 2,
  comment: "",
  unused: "",
  source_dir: null,
};

function experiments(): Record<string, unknown> {
  const file = Deno.env.get("TOY_EXPERIMENTS");
  if (file) return JSON.parse(Deno.readTextFileSync(file));
  return { toy_a: DEFAULT_TOY, toy_b: { ...DEFAULT_TOY, seed: 2 } };
}

export const toyProduct: Product<ToyConfig> = {
  listExperiments: () => Object.keys(experiments()).sort(),
  loadExperiment(name, overrides) {
    const all = experiments();
    if (!(name in all)) throw new UserError(`unknown experiment "${name}"`);
    const raw = { ...(all[name] as object) } as Record<string, unknown>;
    for (const [k, v] of Object.entries(overrides)) raw[k] = JSON.parse(v);
    const r = ToySchema.safeParse(raw);
    if (!r.success) {
      throw new UserError(
        `${name}: ${r.error.issues[0].path.join(".")}: ${r.error.issues[0].message}`,
      );
    }
    return r.data;
  },
  parseOverrides(argv) {
    const out: Record<string, string> = {};
    for (let i = 0; i < argv.length; i += 2) {
      if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
        throw new UserError(`bad override "${argv[i]}"`);
      }
      out[argv[i].slice(2)] = argv[i + 1];
    }
    return out;
  },
  pipelineFor: (name, config) => ({ experiment: name, config, stages: toyStages }),
};
