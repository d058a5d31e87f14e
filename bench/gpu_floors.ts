/**
 * GPU floors of one training step, computed without a GPU (issue 10's method: "count each
 * kernel's FLOPs and minimum bytes first"). A counting Backend runs no kernel: alloc hands out
 * increasing fake pointers, upload does nothing, download returns zeros, and every
 * `run(name, params, args)` is recorded. One AsrTrainer step (normalisation, SpecAugment, forward,
 * the recipe's loss, backward, clipping, Adam) of conmamba_large S2S on a batch like the recipe's
 * dynamic batching makes (32 utterances x 1560 frames = 499 s of audio, 60 tokens each) is driven
 * through it, and each call's FLOPs and minimum bytes come from its parameter struct (`cost`).
 *
 * Minimum bytes: every input read once and every output written once, fp32 (4 bytes); an "inout"
 * argument that is read (accumulate, Adam's state) counts read + write; an operand shared across a
 * batch (stride 0) counts once; strided rows count only the elements used (cols, not ld). Scratch
 * outputs that exist only for the kernel's own use (conv1d backward's dpre, CTC's alpha/beta) are
 * not counted: a fused kernel keeps them on chip. FLOPs: matmuls 2 m n k per product (tensor
 * cores, bf16 dense peak); everything else on the fp32 non-tensor peak, counting each add, mul,
 * div, compare, exp, log, erf as one FLOP (the per-element counts are in `cost`).
 *
 * Floor of a call = max(FLOPs / peak, bytes / bandwidth), summed over calls. Peaks are NVIDIA's
 * published specs: H100 SXM bf16 dense 989 TFLOPS, fp32 (non-tensor) 67 TFLOPS, HBM3 3.35 TB/s;
 * H200 the same compute with 4.8 TB/s of HBM3e.
 *
 *   deno task bench floors        (or: deno run -A bench/gpu_floors.ts)
 */
import { InputNormalization } from "../src/audio/input_normalization.ts";
import { loadExperiment } from "../src/config/load.ts";
import { buildModel } from "../src/nn/model_config.ts";
import {
  type Backend,
  type BufferArg,
  type Lifetime,
  noteAllocation,
  type Storage,
} from "../src/tensor/backend.ts";
import { AsrTrainer } from "../src/train/step.ts";
import { stepSettings, syntheticBatch } from "./asr_batch.ts";

export const PEAKS = {
  bf16Tensor: 989e12, // H100/H200 SXM, bf16 dense tensor core
  fp32: 67e12, // H100/H200 SXM, fp32 non-tensor
  h100Bw: 3.35e12, // H100 SXM HBM3
  h200Bw: 4.8e12, // H200 HBM3e
};

/** The batch: ~500 s of audio as the recipe's dynamic batching makes it. */
export const FLOOR_BATCH = { B: 32, T: 1560, U: 60 };

export interface Call {
  name: string;
  flops: number;
  bytes: number;
  tensor: boolean; // FLOPs on tensor cores (matmul)
}

type P = Readonly<Record<string, number>>;
const F = 4; // bytes per fp32 element

/** FLOPs and minimum bytes of one call; throws on an op it has no rule for. */
export function cost(name: string, p: P, args: readonly BufferArg[]): Call {
  const has = (i: number) => args[i] !== null && args[i] !== undefined;
  const acc = p.accumulate ? 2 : 1; // an accumulated output is read and written
  const c = (flops: number, elems: number, tensor = false): Call => ({
    name,
    flops,
    bytes: elems * F,
    tensor,
  });
  switch (name) {
    case "matmul": {
      // 2 m n k per product; A and B read once (once in all when shared, stride 0; half the
      // bytes when stored as packed bf16), C written (read too when accumulating), bias read once;
      // the GELU + dropout epilogue writes y (half the bytes as packed bf16) from the tile it
      // holds (our tensor-core kernel: C read back from L2, not HBM), its 6 FLOPs per element
      // not counted against the tensor peak.
      const { batch, m, n, k } = p;
      const a = m * k * (p.stride_a === 0 ? 1 : batch) * (p.a_bf16 ? 0.5 : 1);
      const b = k * n * (p.stride_b === 0 ? 1 : batch) * (p.b_bf16 ? 0.5 : 1);
      const y = p.epilogue ? m * n * (p.y_bf16 ? 0.5 : 1) : 0;
      return c(2 * m * n * k * batch, a + b + acc * m * n * batch + (has(2) ? n : 0) + y, true);
    }
    case "sum_rows": // one add per element; read x, write y (cols)
      return c(p.rows * p.cols, p.rows * p.cols + acc * p.cols);
    case "add":
    case "mul": // 1 per element; read a, b, write y
      return c(p.n, 3 * p.n);
    case "scale":
    case "exp_forward":
    case "leaky_relu_forward": // 1 per element; read x, write y
      return c(p.n, 2 * p.n);
    case "leaky_relu_backward": // 1 per element; read x, dy, write dx
      return c(p.n, 3 * p.n);
    case "gelu_forward": // x/sqrt2, erfc, 0.5, x: 4; read x, write y (bf16: half)
      return c(4 * p.n, p.n * (p.y_bf16 ? 1.5 : 2));
    case "gelu_backward": // Phi (3), x phi(x) (5), add, dy: 10; read x, dy, write dx
      return c(10 * p.n, 3 * p.n);
    case "gelu_dropout_forward": // GELU 4 + compare and scale 2; read x, write y (bf16: half)
      return c(6 * p.n, p.n * (p.y_bf16 ? 1.5 : 2));
    case "gelu_dropout_backward": {
      // compare and scale 2 + GELU' 10 (+ 1 for the column sums); read x, dy, write dx (half the
      // bytes as packed bf16) (and the chunks' column sums)
      const rows = Math.min(p.chunks * p.chunk_rows, p.rows - p.chunk0 * p.chunk_rows);
      const e = rows * p.cols, sums = has(3), dx = p.out_bf16 ? 0.5 : 1;
      return c((sums ? 13 : 12) * e, (2 + dx) * e + (sums ? p.chunks * p.cols : 0));
    }
    case "dropout_add": // compare, scale, alpha, add: 4; read x, y, write s
      return c(4 * p.n, 3 * p.n);
    case "leaky_relu_dropout_forward": // compare, slope, compare and scale: 4; read x, write y
      return c(4 * p.n, 2 * p.n);
    case "leaky_relu_dropout_backward": // 4; read x, dy, write dx
      return c(4 * p.n, 3 * p.n);
    case "scale_dropout": {
      // alpha, compare and scale: 3 (+ 1 for the column sums); read x, write y (half the bytes as
      // packed bf16) (and the chunks' column sums)
      const rows = Math.min(p.chunks * p.chunk_rows, p.rows - p.chunk0 * p.chunk_rows);
      const e = rows * p.cols, sums = has(2), y = p.out_bf16 ? 0.5 : 1;
      return c((sums ? 4 : 3) * e, (1 + y) * e + (sums ? p.chunks * p.cols : 0));
    }
    case "silu_forward": // exp, add, div, mul: 4; read x, write y (bf16: half)
      return c(4 * p.n, p.n * (p.y_bf16 ? 1.5 : 2));
    case "silu_backward": // sigmoid (3) + 5: 8; read x, dy, write dx
      return c(8 * p.n, 3 * p.n);
    case "dropout": // compare + scale: 2 (the integer hash not counted); read x, write y (bf16: half)
      return c(2 * p.n, p.n * (p.y_bf16 ? 1.5 : 2));
    case "bf16_pack": // read 2 floats, write 1 slot of two bf16
    case "bf16_unpack": // read 1 slot, write 2 floats
      return c(0, 3 * p.pairs);
    case "fill": // write y
      return c(0, p.n);
    case "layernorm_forward": {
      // mean 1, variance 3, normalise 4: 8 per element; read x, gamma, beta; write y (half the
      // bytes as packed bf16), mean, rstd
      const e = p.rows * p.cols;
      return c(8 * e, e * (p.y_bf16 ? 1.5 : 2) + 2 * p.cols + 2 * p.rows);
    }
    case "dropout_add_layernorm": {
      // dropout_add 4 + LayerNorm 8 per element; read x, y, gamma, beta; write s, ln (half the
      // bytes as packed bf16), mean, rstd: the norm's read of s is what the fusion saves
      const e = p.rows * p.cols;
      return c(12 * e, e * (p.y_bf16 ? 3.5 : 4) + 2 * p.cols + 2 * p.rows);
    }
    case "layernorm_backward": {
      // g = dy gamma, xhat, two row sums, dx: 10, and the two parameter sums' terms 3: 13 per
      // element; read x, dy, gamma, mean, rstd; write dx (read too when accumulating) and the
      // chunks' partial sums (2 cols per chunk)
      const rows = Math.min(p.chunks * p.chunk_rows, p.rows - p.chunk0 * p.chunk_rows);
      const e = rows * p.cols;
      return c(13 * e, 2 * e + acc * e + p.cols + 2 * rows + 2 * p.chunks * p.cols);
    }
    case "softmax_forward":
    case "log_softmax_forward": // max, sub, exp, sum, div/sub: 5; read x, write y
      return c(5 * p.rows * p.cols, 2 * p.rows * p.cols);
    case "softmax_backward":
    case "log_softmax_backward": // 4 per element; read y, dy, write dx
      return c(4 * p.rows * p.cols, 3 * p.rows * p.cols);
    case "glu_forward": // sigmoid 3 + mul, per output; read x (2 cols), write y
      return c(4 * p.rows * p.cols, 3 * p.rows * p.cols);
    case "glu_backward": {
      // 8 per output (+ 2 for the column sums); read x (2 cols), dy; write dx (2 cols; half the
      // bytes as packed bf16) (and the chunks' column sums, 2 cols each)
      const rows = Math.min(p.chunks * p.chunk_rows, p.rows - p.chunk0 * p.chunk_rows);
      const e = rows * p.cols, sums = has(3), dx = p.out_bf16 ? 1 : 2;
      return c((sums ? 10 : 8) * e, (3 + dx) * e + (sums ? 2 * p.chunks * p.cols : 0));
    }
    case "flip_time": // read x, write y
      return c(0, 2 * p.batch * p.seqlen * p.width);
    case "masked_fill_time": // read x, lengths, write y
      return c(0, 2 * p.batch * p.seqlen * p.width + p.batch);
    case "conv1d_depthwise_forward": {
      // 2 K per output (+ bias 1, + SiLU 4); read x, w, bias; write y
      const e = p.batch * p.seqlen * p.channels;
      const fl = e * (2 * p.kernel + (has(2) ? 1 : 0) + (p.activation ? 4 : 0));
      return c(fl, 2 * e + p.channels * p.kernel + (has(2) ? p.channels : 0));
    }
    case "conv1d_depthwise_backward": {
      // recompute pre-activation 2 K (+ SiLU backward 8), dx 2 K, dw 2 K, dbias 1; read x, w,
      // bias, dy; write dx (read too when accumulating), dw, dbias (dpre is scratch: not counted)
      const e = p.batch * p.seqlen * p.channels;
      const fl = e * (6 * p.kernel + 1 + (p.activation ? 9 : 0));
      const wb = p.channels * p.kernel + p.channels;
      return c(fl + (p.accumulate_dx ? e : 0), (3 + (p.accumulate_dx ? 1 : 0)) * e + 2 * wb);
    }
    case "selective_scan_forward": {
      // per state element (b, t, c, n): exp(d A) 2, d B u 2, h update 2, C . h 2 = 8; per
      // (b, t, c): softplus 4, D u 2, silu(z) and the product 5 = 11. Read u, delta, z
      // (B T Di each), B, C (B T Ns each: shared by the channels, read once), A, D, delta_bias;
      // write out (B T Di; half the bytes as packed bf16) and the chunk states (B nchunks Di Ns);
      // other (B T Di): read, 1 more; half: 1 more.
      const btc = p.batch * p.seqlen * p.channels, bt = p.batch * p.seqlen, ns = p.dstate;
      const other = has(10) ? 1 : 0;
      const ins = (2 + (has(6) ? 1 : 0) + other) * btc + 2 * bt * ns + p.channels * ns +
        (has(5) ? p.channels : 0) + (has(7) ? p.channels : 0);
      const outs = btc * (p.out_bf16 ? 0.5 : 1) + p.batch * p.nchunks * p.channels * ns;
      return c(btc * ns * 8 + btc * (11 + other + p.half), ins + outs);
    }
    case "selective_scan_backward": {
      // per state element: recompute 8 + backward 16 (dh, dB, dC, ddelta, dA terms) = 24; per
      // (b, t, c) ~ 20 (softplus, silu(z) and their gradients, D). Read u, delta, z, dout
      // (B T Di each), B, C, A, D, delta_bias, the saved states; write du, ddelta, dz (B T Di),
      // dB, dC (B T Ns), dA (B Di Ns), dD, ddelta_bias (B Di); dz read too when accumulating.
      const btc = p.batch * p.seqlen * p.channels, bt = p.batch * p.seqlen, ns = p.dstate;
      const z = has(6) ? 1 : 0;
      const ins = (3 + z + (z && p.accumulate_dz ? 1 : 0)) * btc + 2 * bt * ns + p.channels * ns +
        2 * p.channels + p.batch * p.nchunks * p.channels * ns;
      const outs = (2 + z) * btc + 2 * bt * ns + p.batch * p.channels * ns +
        (has(15) ? p.batch * p.channels : 0) + (has(17) ? p.batch * p.channels : 0);
      return c(btc * ns * 24 + btc * 20, ins + outs);
    }
    case "im2col_reflect": // read x, write cols
      return c(
        0,
        p.batch * p.time * p.freq * p.channels +
          p.batch * p.time_out * p.freq_out * p.channels * p.ksize * p.ksize,
      );
    case "col2im_reflect": { // one add per cols entry; read cols, write x
      const cols = p.batch * p.time_out * p.freq_out * p.channels * p.ksize * p.ksize;
      return c(cols, cols + p.batch * p.time * p.freq * p.channels);
    }
    case "ctc_loss": {
      // forward + backward over the lattice, ~10 per (t, s) each (log-sum-exp of up to 3 terms);
      // gradient exp(lp) - occupancy, 3 per (t, v). Read log_probs, targets, lengths; write
      // loss, grad (alpha/beta scratch not counted).
      const tv = p.batch * p.time * p.vocab;
      return c(20 * p.batch * p.time * p.lattice + 3 * tv, 2 * tv + p.batch * (p.max_target + 3));
    }
    case "smoothed_nll": {
      // q (log q - lp) summed, and the gradient: 4 per element; read log_probs, targets, weights;
      // write loss, grad
      const e = p.rows * p.vocab;
      return c(4 * e, 2 * e + 3 * p.rows);
    }
    case "adam_step": // ~14 per element; read grad, read + write param, m, v
      return c(14 * p.n, 7 * p.n);
    case "sum_squares_blocks": // mul + add; read x, write the partials
      return c(2 * p.n, p.n + p.blocks);
    case "embedding_forward": // read ids and the rows gathered, write y
      return c(0, p.rows + 2 * p.rows * p.cols);
    case "embedding_backward": // one add per dy element; read ids, dy; write the whole dtable
      return c(p.rows * p.cols, p.rows + p.rows * p.cols + p.vocab * p.cols);
    case "copy_time": // read the copied x, write it into y
      return c(0, 2 * p.batch * p.len * p.width);
    case "swap_axes": // read x, write y (half the bytes as packed bf16)
      return c(0, (p.y_bf16 ? 1.5 : 2) * p.batch * p.d1 * p.d2 * p.inner);
    case "attn_softmax_forward": {
      // scale, mask, max, sub, exp, sum, div: 7 per score; read x (+ key_mask), write y
      const e = p.rows * p.cols;
      return c(7 * e, 2 * e + (has(1) ? p.rows : 0) + (has(2) ? p.cols : 0));
    }
    case "attn_softmax_backward": // dy y, sum, sub, mul, scale: 5; read y, dy, write dx
      return c(5 * p.rows * p.cols, 3 * p.rows * p.cols);
    case "rel_shift_forward": // read the S x S entries used of x, write y
      return c(0, 2 * p.batch * p.seqlen * p.seqlen);
    case "rel_shift_backward": // read dy, write all of dx (2 S - 1 wide, zeros included)
      return c(0, p.batch * p.seqlen * p.seqlen + p.batch * p.seqlen * p.width);
    case "sum_axis": // one add per element (+ divide per output); read x, write y
      return c(p.outer * p.n * p.inner, p.outer * p.n * p.inner + p.outer * p.inner);
    case "broadcast_axis": // one divide per output; read x, write y
      return c(p.outer * p.n * p.inner, p.outer * p.inner + p.outer * p.n * p.inner);
    case "max_last": // one compare per element; read x, write y and index
      return c(p.rows * p.cols, p.rows * p.cols + 2 * p.rows);
    default:
      throw new Error(`gpu_floors: no FLOP/byte rule for op "${name}"`);
  }
}

/** A Backend that runs nothing and records every call with its cost. */
export class CountingBackend implements Backend {
  readonly name = "counting";
  readonly threads = 1;
  constructor(readonly matmulPrecision: "fp32" | "bf16" = "fp32") {}
  readonly calls: Call[] = [];
  recording = false;
  #next = 256;
  #paramBytes = 0;
  #stepBytes = 0;
  peakBytes = 0;

  alloc(length: number, lifetime: Lifetime): Storage {
    const ptr = this.#next;
    this.#next += Math.ceil((length * F + 1) / 256) * 256;
    if (lifetime === "param") this.#paramBytes += length * F;
    else this.#stepBytes += length * F;
    this.peakBytes = Math.max(this.peakBytes, this.#paramBytes + this.#stepBytes);
    const s = { ptr, length, lifetime };
    noteAllocation(s);
    return s;
  }
  free(s: Storage): void {
    s.released = true;
    if (s.view) return;
    if (s.lifetime === "param") this.#paramBytes -= s.length * F;
    else this.#stepBytes -= s.length * F;
  }
  resetStep(): void {
    this.#stepBytes = 0;
  }
  upload(_s: Storage, _data: Float32Array, _offset?: number): void {}
  download(s: Storage, offset = 0, length?: number): Float32Array {
    return new Float32Array(length ?? s.length - offset);
  }
  run(name: string, params: P, args: readonly BufferArg[]): void {
    if (this.recording) this.calls.push(cost(name, params, args));
  }
  memoryBytes(): number {
    return this.#paramBytes + this.#stepBytes;
  }
  close(): void {}
  get paramBytes(): number {
    return this.#paramBytes;
  }
}

export interface FloorRow {
  op: string;
  calls: number;
  flops: number;
  bytes: number;
  h100s: number; // sum over calls of max(FLOPs / peak, bytes / 3.35 TB/s)
  h200s: number;
  tensor: boolean;
}

export interface FloorResult {
  experiment: string;
  B: number;
  T: number;
  U: number;
  audioS: number;
  params: number;
  peakBytes: number;
  /** The same step in bf16 matmul mode (saved matmul operands packed in bf16), when computed. */
  bf16?: FloorResult;
  rows: FloorRow[];
  calls: Call[];
}

const floorOf = (c: Call, bw: number) =>
  Math.max(c.flops / (c.tensor ? PEAKS.bf16Tensor : PEAKS.fp32), c.bytes / bw);

/**
 * The recipe's mixed precision at best, in seconds: every activation and gradient moved as bf16,
 * only the optimiser (fp32 master weights and moments) at 4 bytes; the same calls and FLOPs.
 */
export function allBf16Floor(calls: readonly Call[], bw: number): number {
  return calls.reduce(
    (a, c) => a + floorOf(c.name === "adam_step" ? c : { ...c, bytes: c.bytes / 2 }, bw),
    0,
  );
}

export function floorsBench(
  experiment = "conmamba_large",
  shape = FLOOR_BATCH,
  precision: "fp32" | "bf16" = "fp32",
): FloorResult {
  const c = loadExperiment(experiment, {});
  const be = new CountingBackend(precision);
  const model = buildModel(be, c);
  const tr = new AsrTrainer(model, new InputNormalization(c.n_mels!, 4), stepSettings(c));
  // Host-side batch only: token ids stay on the host, features are uploaded (and dropped).
  const batchOf = () =>
    syntheticBatch(shape.B, shape.T, shape.U, {
      n_mels: c.n_mels!,
      output_neurons: c.output_neurons!,
      bos_index: c.bos_index ?? 1,
      eos_index: c.eos_index ?? 2,
    });
  const batch = batchOf();
  // A first step unrecorded: its backward gives each parameter its gradient (a fill each), which
  // the steps of a run find done; the recorded one is a step of a run.
  tr.step(batchOf(), 1);
  be.recording = true;
  const log = tr.step(batch, 1); // loss values are read back as zeros: finite, so it runs through
  be.recording = false;
  if (!log.update) throw new Error("gpu_floors: the step took no optimiser update");
  const by = new Map<string, FloorRow>();
  for (const call of be.calls) {
    const r = by.get(call.name) ??
      { op: call.name, calls: 0, flops: 0, bytes: 0, h100s: 0, h200s: 0, tensor: call.tensor };
    r.calls++;
    r.flops += call.flops;
    r.bytes += call.bytes;
    r.h100s += floorOf(call, PEAKS.h100Bw);
    r.h200s += floorOf(call, PEAKS.h200Bw);
    by.set(call.name, r);
  }
  const params = tr.params.reduce((a, [, p]) => a + p.size, 0);
  return {
    experiment,
    ...shape,
    audioS: log.audioSeconds,
    params,
    peakBytes: be.peakBytes,
    rows: [...by.values()].sort((a, b) => b.h100s - a.h100s),
    calls: be.calls,
  };
}

const f2 = (x: number) => x.toFixed(2);
const ms = (s: number) => (s * 1e3).toFixed(2);

export function floorsTable(r: FloorResult): string {
  const sum = (k: "calls" | "flops" | "bytes" | "h100s" | "h200s", rows = r.rows) =>
    rows.reduce((a, x) => a + x[k], 0);
  const mm = r.rows.filter((x) => x.tensor), rest = r.rows.filter((x) => !x.tensor);
  const out = [
    `${r.experiment} S2S, one training step (forward, loss, backward, clipping, Adam) on ` +
    `${r.B} x ${r.T} frames (${r.audioS} s of audio), ${r.U} tokens per utterance; ` +
    `${(r.params / 1e6).toFixed(1)} M parameters. Floor per call = max(FLOPs / peak, bytes / ` +
    `bandwidth), summed; matmul FLOPs on the bf16 dense peak (989 TFLOPS), the rest on fp32 ` +
    `non-tensor (67 TFLOPS); bytes as fp32; H100 SXM 3.35 TB/s, H200 4.8 TB/s (NVIDIA's ` +
    `published specs). AI = FLOPs / byte.`,
    "",
    "| op | calls | GFLOP | GB | AI | floor H100 ms | floor H200 ms | share (H100) |",
    "|---|---|---|---|---|---|---|---|",
  ];
  const total = sum("h100s");
  for (const x of r.rows) {
    out.push(
      `| ${x.op} | ${x.calls} | ${f2(x.flops / 1e9)} | ${f2(x.bytes / 1e9)} | ` +
        `${f2(x.flops / Math.max(x.bytes, 1))} | ${ms(x.h100s)} | ${ms(x.h200s)} | ` +
        `${(100 * x.h100s / total).toFixed(1)}% |`,
    );
  }
  const line = (label: string, rows: FloorRow[]) =>
    `| **${label}** | ${sum("calls", rows)} | ${f2(sum("flops", rows) / 1e9)} | ` +
    `${f2(sum("bytes", rows) / 1e9)} | ${f2(sum("flops", rows) / sum("bytes", rows))} | ` +
    `${ms(sum("h100s", rows))} | ${ms(sum("h200s", rows))} | ` +
    `${(100 * sum("h100s", rows) / total).toFixed(1)}% |`;
  out.push(line("matmul", mm), line("all other ops", rest), line("step total", r.rows));
  const mmFlops = sum("flops", mm);
  const bf16 = (bw: number) =>
    r.calls.reduce((a, c) => a + floorOf(c.tensor ? { ...c, bytes: c.bytes / 2 } : c, bw), 0);
  const bf16All = (bw: number) => allBf16Floor(r.calls, bw);
  const mfuBudget = mmFlops / (0.4 * PEAKS.bf16Tensor);
  out.push(
    "",
    `- Best case: ${f2(r.audioS / sum("h100s"))} s of audio per second on H100 SXM, ` +
      `${f2(r.audioS / sum("h200s"))} on H200 (${ms(sum("h100s"))} / ${ms(sum("h200s"))} ms ` +
      `per step).`,
    `- Pure compute floor ${ms(mmFlops / PEAKS.bf16Tensor + sum("flops", rest) / PEAKS.fp32)} ` +
      `ms; pure traffic floor ${ms(sum("bytes") / PEAKS.h100Bw)} ms (H100) / ` +
      `${ms(sum("bytes") / PEAKS.h200Bw)} ms (H200).`,
    `- What-if, matmul operands and results moved as bf16 (half the matmul bytes, the rest ` +
      `fp32): ${ms(bf16(PEAKS.h100Bw))} ms (H100) / ${ms(bf16(PEAKS.h200Bw))} ms (H200) per step.`,
    `- What-if, every activation and gradient moved as bf16 (the optimiser's fp32 master ` +
      `weights and moments at 4 bytes), the same kernel calls: ${ms(bf16All(PEAKS.h100Bw))} ms ` +
      `(H100) / ${ms(bf16All(PEAKS.h200Bw))} ms (H200) per step.`,
    `- Matmul FLOPs per step ${f2(mmFlops / 1e12)} TFLOP: issue 10's 40% model FLOP ` +
      `utilisation of the 989 TFLOPS spec needs a step of at most ${ms(mfuBudget)} ms (40% of ` +
      `the measured matmul peak: proportionally longer). The traffic floor of these kernel calls ` +
      `is ${f2(sum("h100s") / mfuBudget)}x that budget in fp32 and ` +
      `${f2(bf16All(PEAKS.h100Bw) / mfuBudget)}x in bf16 on H100 ` +
      `(${f2(bf16All(PEAKS.h200Bw) / mfuBudget)}x on H200): with bf16 storage the goal still ` +
      `needs fused kernels that remove at least ` +
      `${(100 * (1 - mfuBudget / bf16All(PEAKS.h100Bw))).toFixed(0)}% of the bytes moved ` +
      `(H100; ${(100 * (1 - mfuBudget / bf16All(PEAKS.h200Bw))).toFixed(0)}% on H200).`,
    `- Peak memory of the step as the code allocates and frees now (fp32; the tape frees ` +
      `each activation and gradient after its last use: layer scopes, backward refcounts): ` +
      `${f2(r.peakBytes / 2 ** 30)} GiB, of which parameters, gradients and Adam moments ` +
      `${f2((4 * r.params * F) / 2 ** 30)} GiB` +
      (r.bf16 === undefined ? "." : `; with the recipe's precision: bf16 (matmul ` +
        `inputs rounded to bf16, saved matmul operands packed in bf16): ` +
        `${f2(r.bf16.peakBytes / 2 ** 30)} GiB.`),
  );
  if (r.bf16) {
    const b = r.bf16.rows, packs = b.filter((x) => x.op.startsWith("bf16_"));
    out.push(
      `- The step in the recipe's bf16 mode as the code runs it (the table above is fp32 mode): ` +
        `${sum("calls", b)} calls, ${f2(sum("bytes", b) / 1e9)} GB, floor ` +
        `${ms(sum("h100s", b))} ms (H100) / ${ms(sum("h200s", b))} ms (H200); of which ` +
        `${packs.map((x) => `${x.op} ${x.calls} calls ${f2(x.bytes / 1e9)} GB`).join(", ")} ` +
        `(activations packed for the backward's products, which read them packed).`,
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const name = Deno.args[0] ?? "conmamba_large";
  const r = floorsBench(name);
  r.bf16 = floorsBench(name, FLOOR_BATCH, "bf16");
  console.log(floorsTable(r));
}
