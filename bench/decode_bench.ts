/**
 * Decoding speed on the Wasm backend as a real-time factor (RTF = decode time / audio time; below 1
 * is faster than real time), one thread against all threads in the same run. Decode time is what
 * the decode stage spends per utterance after reading its features: the eval-mode encoder
 * (normalised features -> encoder output and CTC log-probs) plus the search.
 *
 *   conmamba_small (S2S)      the joint CTC/attention beam search (src/decode/s2s_search.ts) at
 *                             beam 10 (the "no LM" searcher) and 66 (the test searcher)
 *   conmamba_large_ctc (CTC)  the CTC recipes' prefix beam search (src/decode/ctc_beam_search.ts)
 *                             at beam 100, beam_prune_logp -12, token_prune_min_logp -1.2
 *
 * Models are freshly initialised (no trained weights are needed), utterances are synthetic
 * features of 3 and 4 s. Untrained models are not typical inputs for a search:
 *   - an untrained decoder never says eos, so the S2S search runs to max steps (T' = frames / 4,
 *     max_decode_ratio 1): the worst case, decoder cost growing with the square of the steps. The
 *     "typical length" rows cap the steps at 4 tokens per second of audio (max_decode_ratio 0.16;
 *     LibriSpeech speech is ~2.7 words/s, ~1.3 unigram-5000 tokens a word), about where a trained
 *     model's search ends.
 *   - untrained CTC posteriors are flat, so token pruning leaves one candidate per frame (the best
 *     case); the search is also timed alone on synthetic posteriors with three tokens above the
 *     prune threshold in every frame (beams fill up to 100: the worst case).
 *
 *   deno run -A bench/decode_bench.ts     (under 2 minutes on 2 cores; `deno task bench decode`)
 *
 * DECODE_BENCH_WORST66=1 adds the beam-66 worst case (several minutes per thread setting).
 */
import type { Experiment } from "../src/config/experiment.ts";
import { loadExperiment } from "../src/config/load.ts";
import { ctcBeamSearchNbest } from "../src/decode/ctc_beam_search.ts";
import { searchUtterance } from "../src/decode/s2s_search.ts";
import type { AsrModel } from "../src/nn/asr_model.ts";
import { initialize } from "../src/nn/init.ts";
import { buildModel } from "../src/nn/model_config.ts";
import { evalContext } from "../src/nn/module.ts";
import { Tape } from "../src/tensor/autograd.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { WasmBackend } from "../src/tensor/wasm_backend.ts";
import { mulberry32 } from "../src/util/rng.ts";

const SECONDS = [3, 4];
const TYPICAL_RATIO = 0.16; // 4 tokens/s at 25 encoder frames/s
const CHARS = ["<unk>", "<s>", "</s>", "▁", ..."ETAOINSHRDLUCMFWYPVBGKQJXZ'"];

export interface DecodeRow {
  model: string;
  search: string;
  audio_s: number;
  threads: number;
  encoder_s: number;
  search_s: number;
  rtf: number;
}

/** Normalised-looking log-mel features (T, 80): smooth bands plus noise, about zero mean. */
function features(seconds: number, seed: number): Float32Array {
  const r = mulberry32(seed), T = seconds * 100;
  return Float32Array.from({ length: T * 80 }, (_, i) => {
    const t = Math.floor(i / 80), f = i % 80;
    return Math.sin(f / 6 + t / 17 + seed) + 0.5 * Math.sin(t / 5 - f / 11) + (r() - 0.5);
  });
}

function encode(model: AsrModel, x: Float32Array) {
  const be = model.backend, T = x.length / 80;
  const ctx = evalContext(new Tape());
  const out = ctx.tape.noGrad(() => model.forward(ctx, Tensor.from(be, [1, T, 80], x)));
  const [, frames, V] = out.logProbs.shape;
  const r = { ctx, enc: out.encOut.toArray(), lp: out.logProbs.toArray(), frames, V };
  be.resetStep();
  return r;
}

function seconds(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** Three tokens (blank or a character) at probability ~0.33 in every frame, the rest tiny. */
function ambiguousPosteriors(frames: number, V: number, seed: number): Float32Array {
  const r = mulberry32(seed), out = new Float32Array(frames * V);
  for (let t = 0; t < frames; t++) {
    const p = new Float64Array(V).fill(0.01 / V);
    for (let j = 0; j < 3; j++) p[j === 0 && r() < 0.6 ? 0 : 3 + Math.floor(r() * (V - 3))] += 0.33;
    const s = p.reduce((a, b) => a + b, 0);
    for (let v = 0; v < V; v++) out[t * V + v] = Math.log(p[v] / s);
  }
  return out;
}

async function withModel<T>(
  name: string,
  threads: number,
  fn: (model: AsrModel, c: Experiment) => T,
): Promise<T> {
  const be = await WasmBackend.create({ threads });
  try {
    const c = loadExperiment(name);
    const model = buildModel(be, c);
    initialize(model, 1);
    try {
      return fn(model, c);
    } finally {
      model.free();
    }
  } finally {
    be.close();
  }
}

export async function decodeBench(
  log: (row: DecodeRow) => void = () => {},
): Promise<{ threads: number; rows: DecodeRow[] }> {
  const all = navigator.hardwareConcurrency;
  const settings = all > 1 ? [1, all] : [1];
  const rows: DecodeRow[] = [];
  const push = (r: DecodeRow) => (rows.push(r), log(r));
  const utts = SECONDS.map((s, i) => features(s, i + 1));
  const audio = SECONDS.reduce((a, b) => a + b, 0);
  const worst66 = Deno.env.get("DECODE_BENCH_WORST66") === "1";

  for (const threads of settings) {
    await withModel("conmamba_small", threads, (model, c) => {
      // Warm-up: compile the kernels' and the search's hot paths on a short utterance.
      const w = encode(model, features(1, 9));
      w.ctx.tape.noGrad(() =>
        searchUtterance(model, w.ctx, w.enc, w.lp, w.frames, {
          beamSize: 4,
          ctcWeight: 0.4,
          temperature: 1,
          maxDecodeRatio: 0.3,
          bos: c.bos_index,
          eos: c.eos_index,
          blank: c.blank_index,
        })
      );
      const runs: { beam: number; ratio: number; utts: Float32Array[]; what: string }[] = [
        { beam: 10, ratio: TYPICAL_RATIO, utts, what: "typical length" },
        { beam: 66, ratio: TYPICAL_RATIO, utts, what: "typical length" },
        { beam: 10, ratio: 1, utts: utts.slice(0, 1), what: "worst case: to max steps" },
      ];
      if (worst66) runs.push({ beam: 66, ratio: 1, utts: utts.slice(0, 1), what: "worst case" });
      for (const run of runs) {
        let enc = 0, search = 0;
        for (const x of run.utts) {
          let e!: ReturnType<typeof encode>;
          enc += seconds(() => (e = encode(model, x)));
          search += seconds(() =>
            e.ctx.tape.noGrad(() =>
              searchUtterance(model, e.ctx, e.enc, e.lp, e.frames, {
                beamSize: run.beam,
                ctcWeight: c.ctc_weight_decode!,
                temperature: 1,
                maxDecodeRatio: run.ratio,
                bos: c.bos_index,
                eos: c.eos_index,
                blank: c.blank_index,
              })
            )
          );
        }
        const secs = run.utts.length === utts.length ? audio : SECONDS[0];
        push({
          model: "conmamba_small (S2S)",
          search: `joint CTC/attention, beam ${run.beam}, ${run.what}`,
          audio_s: secs,
          threads,
          encoder_s: enc,
          search_s: search,
          rtf: (enc + search) / secs,
        });
      }
    });

    await withModel("conmamba_large_ctc", threads, (model, c) => {
      const o = {
        beamSize: c.test_beam_size,
        beamPruneLogp: c.beam_prune_logp!,
        tokenPruneMinLogp: c.token_prune_min_logp!,
        blank: c.blank_index,
      };
      encode(model, features(1, 9)); // warm-up
      let enc = 0, search = 0, ambiguous = 0;
      utts.forEach((x, i) => {
        let e!: ReturnType<typeof encode>;
        enc += seconds(() => (e = encode(model, x)));
        search += seconds(() => ctcBeamSearchNbest(e.lp, e.V, e.frames, CHARS, o));
        const amb = ambiguousPosteriors(e.frames, e.V, i + 1);
        ambiguous += seconds(() => ctcBeamSearchNbest(amb, e.V, e.frames, CHARS, o));
      });
      const row = { model: "conmamba_large_ctc (CTC)", audio_s: audio, threads, encoder_s: enc };
      push({
        ...row,
        search: `CTC prefix search, beam ${o.beamSize}, model's posteriors (flat)`,
        search_s: search,
        rtf: (enc + search) / audio,
      });
      push({
        ...row,
        search: `CTC prefix search, beam ${o.beamSize}, 3 live tokens a frame`,
        search_s: ambiguous,
        rtf: (enc + ambiguous) / audio,
      });
    });
  }
  return { threads: all, rows };
}

export function decodeTable({ threads, rows }: { threads: number; rows: DecodeRow[] }): string {
  const out = [
    `Real-time factor (encoder + search) / audio on the Wasm backend, initialised (untrained) ` +
    `models, synthetic utterances of ${SECONDS.join(", ")} s; all = ${threads} threads`,
    "",
    "| model | search | audio s | threads | encoder s | search s | RTF |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    out.push(
      `| ${r.model} | ${r.search} | ${r.audio_s} | ${r.threads} | ${r.encoder_s.toFixed(2)} | ` +
        `${r.search_s.toFixed(2)} | ${r.rtf.toFixed(3)} |`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const result = await decodeBench((r) => console.error(JSON.stringify(r)));
  console.log(decodeTable(result));
}
