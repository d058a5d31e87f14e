/**
 * Model verbs (issue: the model family):
 *   params <exp> [--json]      trainable parameters: total and per module; JSON
 *                              {"total", "tensors": [{"name", "shape"}]} (parameters, not buffers)
 *   init <exp> --seed N --out W.safetensors     freshly initialised weights (CONMAMBA_SPEC.md §6)
 *   forward <exp> --weights W --feats X.npy --lengths L.npy [--tokens T.npy] --out DIR
 *                              eval-mode forward; DIR/enc_out.npy, ctc_logprobs.npy and, for S2S
 *                              with tokens, seq_logprobs.npy (float32)
 * Every verb takes `--<hparam> <value>` overrides like `pipeline`.
 */
import { join } from "node:path";
import type { Experiment } from "../config/experiment.ts";
import { formatNpyF32, type NpyArray, readNpy } from "../io/npy.ts";
import type { AsrModel } from "../nn/asr_model.ts";
import { initialize } from "../nn/init.ts";
import { buildModel } from "../nn/model_config.ts";
import { evalContext, type Module } from "../nn/module.ts";
import { loadStateDictFile, saveStateDictFile } from "../nn/state_dict.ts";
import { UserError } from "../pipeline/errors.ts";
import { writeFileAtomic } from "../pipeline/fs_util.ts";
import { defaultThreads } from "../pipeline/threads.ts";
import { Tape } from "../tensor/autograd.ts";
import { Tensor } from "../tensor/tensor.ts";
import { WasmBackend } from "../tensor/wasm_backend.ts";
import { print, table } from "./format.ts";
import type { Product } from "./product.ts";

/** The paper's #Params column (millions), by the original's experiment name (CONMAMBA_SPEC.md §12). */
export const PAPER_PARAMS_M: Record<string, number> = {
  conformer_S_S2S: 13.3,
  conmamba_S_S2S: 14.1,
  conmambamamba_S_S2S: 15.0, // the published yaml gives 14.57 M (§5.3, G10): a paper misprint
  conformer_L_S2S: 109.1,
  conmamba_L_S2S: 115.2,
  conmambamamba_L_S2S: 122.9,
  conformer_L_CTC: 28.8,
  conmamba_L_CTC: 31.6,
};

async function withModel<C extends object, T>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  threads: number,
  fn: (model: AsrModel, config: Experiment) => Promise<T>,
): Promise<T> {
  const config = product.loadExperiment(
    experiment,
    product.parseOverrides(rest),
  ) as unknown as Experiment;
  const be = await WasmBackend.create({ threads });
  try {
    const model = buildModel(be, config);
    try {
      return await fn(model, config);
    } finally {
      model.free();
    }
  } finally {
    be.close();
  }
}

/** Parameter counts grouped by module path (layers of a stack folded into one row). */
export function parameterTable(model: Module): { total: number; rows: string[][] } {
  const groups = new Map<string, { count: number; tensors: number; layers: Set<string> }>();
  let total = 0;
  for (const [name, p] of model.namedParameters()) {
    total += p.size;
    const m = /^(.*\.(?:encoder|decoder)\.layers)\.(\d+)\.([^.]+)/.exec(name);
    const key = m ? `${m[1]}.*.${m[3]}` : name.split(".").slice(0, -1).slice(0, 3).join(".");
    const g = groups.get(key) ?? { count: 0, tensors: 0, layers: new Set() };
    g.count += p.size;
    g.tensors++;
    if (m) g.layers.add(m[2]);
    groups.set(key, g);
  }
  const rows = [["module", "layers", "tensors", "parameters", "share"]];
  for (const [k, g] of groups) {
    rows.push([
      k,
      g.layers.size ? String(g.layers.size) : "",
      String(g.tensors),
      g.count.toLocaleString("en-US"),
      `${(100 * g.count / total).toFixed(1)}%`,
    ]);
  }
  rows.push(["total", "", "", total.toLocaleString("en-US"), "100%"]);
  return { total, rows };
}

export async function paramsVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { json?: boolean },
): Promise<number> {
  return await withModel(product, experiment, rest, 1, (model, c) => {
    if (opts.json) {
      const tensors = [...model.namedParameters()].map(([name, p]) => ({
        name,
        shape: [...p.shape],
      }));
      const total = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
      print(JSON.stringify({ total, tensors }));
    } else {
      const { total, rows } = parameterTable(model);
      print(table(rows));
      const paper = PAPER_PARAMS_M[c.experiment];
      const ours = (total / 1e6).toFixed(1);
      const note = paper === undefined
        ? ""
        : Number(ours) === paper
        ? ` (the paper: ${paper} M)`
        : ` (the paper prints ${paper} M; CONMAMBA_SPEC.md §5.3 / G10: the original's yaml gives ` +
          `this count, the paper's figure is not reproducible from it)`;
      print(`${experiment}: ${ours} M trainable parameters${note}`);
    }
    return Promise.resolve(0);
  });
}

export async function initVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { seed: string; out: string },
): Promise<number> {
  const seed = Number(opts.seed);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new UserError(`--seed: expected an integer in [0, 2^32), got "${opts.seed}"`);
  }
  return await withModel(product, experiment, rest, 1, async (model) => {
    initialize(model, seed);
    const tmp = `${opts.out}.tmp-${Deno.pid}`;
    await saveStateDictFile(model, tmp, {
      experiment,
      seed: String(seed),
      producer: "conmamba init",
    });
    await Deno.rename(tmp, opts.out);
    let n = 0;
    for (const [, p] of model.namedParameters()) n += p.size;
    print(`${opts.out}: ${experiment}, seed ${seed}, ${n.toLocaleString("en-US")} parameters`);
    return 0;
  });
}

function f32Of(a: NpyArray, file: string): Float32Array {
  if (a.dtype === "<f4") return a.data;
  if (a.dtype === "<f8") return Float32Array.from(a.data);
  throw new UserError(`${file}: expected float32 values, got dtype ${a.dtype}`);
}

function intsOf(a: NpyArray, file: string): number[] {
  if (a.dtype === "<i8") return Array.from(a.data, Number);
  if (a.dtype === "<i4") return Array.from(a.data);
  throw new UserError(`${file}: expected int64 token ids, got dtype ${a.dtype}`);
}

export async function forwardVerb<C extends object>(
  product: Product<C>,
  experiment: string,
  rest: string[],
  opts: { weights: string; feats: string; lengths: string; tokens?: string; out: string },
): Promise<number> {
  return await withModel(product, experiment, rest, defaultThreads(), async (model, c) => {
    await loadStateDictFile(model, opts.weights);
    const x = await readNpy(opts.feats), l = await readNpy(opts.lengths);
    if (x.shape.length !== 3 || x.shape[2] !== c.n_mels) {
      throw new UserError(`${opts.feats}: expected [B, T, ${c.n_mels}], got [${x.shape}]`);
    }
    const [b, t, f] = x.shape;
    const rel = f32Of(l, opts.lengths);
    if (l.shape.join() !== String(b) || rel.some((v) => !(v > 0 && v <= 1))) {
      throw new UserError(`${opts.lengths}: expected [${b}] relative lengths in (0, 1]`);
    }
    let tokens: { ids: number[]; shape: [number, number] } | null = null;
    if (opts.tokens) {
      if (!model.isS2S) throw new UserError(`--tokens: ${experiment} has no decoder (CTC)`);
      const tk = await readNpy(opts.tokens);
      if (tk.shape.length !== 2 || tk.shape[0] !== b) {
        throw new UserError(`${opts.tokens}: expected [${b}, U] token ids, got [${tk.shape}]`);
      }
      const ids = intsOf(tk, opts.tokens);
      const bad = ids.findIndex((v) => !(v >= 0 && v < c.output_neurons));
      if (bad >= 0) {
        throw new UserError(`${opts.tokens}: id ${ids[bad]} outside [0, ${c.output_neurons})`);
      }
      tokens = { ids, shape: [b, tk.shape[1]] };
    }
    const be = model.backend, tape = new Tape(), ctx = evalContext(tape);
    const out = tape.noGrad(() => {
      const enc = model.encode(ctx, Tensor.from(be, [b, t, f], f32Of(x, opts.feats)), rel);
      const dec = tokens
        ? model.decode(ctx, tokens.ids, tokens.shape, enc.encOut, enc.encLengths)
        : null;
      const files: [string, Tensor][] = [["enc_out", enc.encOut], ["ctc_logprobs", enc.logProbs]];
      if (dec) files.push(["seq_logprobs", dec.seqLogProbs]);
      return files.map(([n, v]) => [n, v.shape, v.toArray()] as const);
    });
    await Deno.mkdir(opts.out, { recursive: true });
    for (const [name, shape, data] of out) {
      const path = join(opts.out, `${name}.npy`);
      await writeFileAtomic(path, formatNpyF32(shape, data));
      print(`${path}: [${shape}] float32`);
    }
    return 0;
  });
}
