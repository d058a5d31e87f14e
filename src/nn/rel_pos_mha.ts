/**
 * SpeechBrain v1.0.0 RelPosMHAXL, self-attention path (CONMAMBA_SPEC.md 4.10, G20), on the tape:
 *   [q_h | k_h | v_h] = rows h 3dh .. (h + 1) 3dh of s W_in^T     (per-head interleaved, no bias)
 *   p = P W_pos^T (1, 2S - 1, d)                                    (linear_pos, no bias)
 *   AC = scale (q + u) k^T;  BD = relShift(scale (q + v) p^T)      scale = 1 / sqrt(d), not dh
 *   out = out_proj(softmax(AC + BD, keys >= length masked) -> Dropout -> prob v)
 * pos_bias_u / pos_bias_v are stored (dh, H) but read as the flat (H, dh) buffer: head h uses
 * flat[h dh .. (h + 1) dh), i.e. the same feature slice as q_h. No dropout after out_proj.
 * Names in state_dict order: in_proj_weight, pos_bias_u, pos_bias_v, out_proj.*, linear_pos.*.
 */
import { attention } from "../tensor/attention.ts";
import type { Tape } from "../tensor/autograd.ts";
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import { Tensor } from "../tensor/tensor.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";

/** x (B, S, d) + bias (any shape of d elements) on every row: x + ones (B S, 1) bias (1, d). */
function addRowBias(tape: Tape, x: Tensor, bias: Tensor): Tensor {
  const [b, s, d] = x.shape;
  const ones = Tensor.from(x.backend, [b * s, 1], new Float32Array(b * s).fill(1));
  const rows = ag.matmul(tape, ones, ag.reshape(tape, bias, [1, d])); // (B S, d), exact copies
  return ag.add(tape, x, ag.reshape(tape, rows, [b, s, d]));
}

export class RelPosMHAXL extends Module {
  readonly in_proj_weight: Tensor; // (3d, d)
  readonly pos_bias_u: Tensor; // (dh, H), read as (H, dh)
  readonly pos_bias_v: Tensor; // (dh, H), read as (H, dh)
  readonly out_proj: Linear; // d -> d, bias
  readonly linear_pos: Linear; // d -> d, no bias
  readonly dh: number;

  constructor(
    be: Backend,
    readonly d: number,
    readonly heads: number,
    readonly dropoutP = 0.1,
  ) {
    super(be);
    if (d % heads !== 0) throw new RangeError(`RelPosMHAXL: d ${d} not divisible by ${heads}`);
    this.dh = d / heads;
    this.in_proj_weight = this.param("in_proj_weight", [3 * d, d]);
    this.pos_bias_u = this.param("pos_bias_u", [this.dh, heads]);
    this.pos_bias_v = this.param("pos_bias_v", [this.dh, heads]);
    this.out_proj = this.child("out_proj", new Linear(be, d, d));
    this.linear_pos = this.child("linear_pos", new Linear(be, d, d, false));
  }

  /**
   * x (B, S, d), posEmb (1, 2S - 1, d) (RelPosEncXL.table, untracked), keyLengths (B) absolute
   * lengths or null (no mask) -> (B, S, d).
   */
  forward(ctx: ForwardContext, x: Tensor, posEmb: Tensor, keyLengths: Tensor | null): Tensor {
    const tape = ctx.tape, [b, s, d] = x.shape, h = this.heads, dh = this.dh;
    if (d !== this.d || posEmb.size !== (2 * s - 1) * d) {
      throw new RangeError(`RelPosMHAXL: x [${x.shape}], posEmb [${posEmb.shape}] for d ${this.d}`);
    }
    // (B, S, H, 3, dh) -> (3, B S H, dh): q, k, v each (B, S, H dh) with head-major features.
    const qkv = ag.matmul(tape, x, this.in_proj_weight, { transB: true }); // (B, S, 3d)
    const parts = ag.reshape(
      tape,
      ag.swapAxes(tape, ag.reshape(tape, qkv, [b * s * h, 3, dh]), 0),
      [1, 3, b * s * d],
    );
    const [q, k, v] = [0, 1, 2].map((i) =>
      ag.reshape(tape, ag.sliceTime(tape, parts, i, 1), [b, s, d])
    );
    const scale = 1 / Math.sqrt(d);
    // BD (B, H, S, S): per head (B S, dh) x (2S - 1, dh)^T with the table shared by the batch,
    // shifted while still head-major (the (S, 2S - 1) blocks are the biggest tensors here).
    const p = this.linear_pos.forward(ctx, posEmb.reshape([2 * s - 1, d])); // (2S - 1, d)
    const ph = ag.scale(tape, ag.swapAxes(tape, ag.reshape(tape, p, [2 * s - 1, h, dh]), 0), scale);
    const qv = addRowBias(tape, q, this.pos_bias_v);
    const qvh = ag.swapAxes(tape, ag.reshape(tape, qv, [b * s, h, dh]), 0); // (H, B S, dh)
    const raw = ag.matmul(tape, qvh, ph, { transB: true }); // (H, B S, 2S - 1)
    const shifted = ag.relShift(tape, ag.reshape(tape, raw, [h, b, s, 2 * s - 1])); // (H, B, S, S)
    const bd = ag.reshape(
      tape,
      ag.swapAxes(tape, ag.reshape(tape, shifted, [h, b, s * s]), 0),
      [b, h, s, s],
    );
    const stream = ctx.stream++;
    const out = attention(tape, addRowBias(tape, q, this.pos_bias_u), k, v, {
      heads: h,
      scale,
      extraScores: bd,
      keyLengths,
      dropout: ctx.training && this.dropoutP > 0
        ? { p: this.dropoutP, seed: ctx.seed, stream }
        : null,
    }); // (B, S, d)
    return this.out_proj.forward(ctx, out);
  }
}
