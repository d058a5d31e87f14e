/**
 * The unidirectional Mamba block of mamba-ssm 1.1.3.post1 (`mamba_simple.Mamba`), used by the Mamba
 * decoder (CONMAMBA_SPEC.md 4.7, 4.8, 4.12):
 *   xz = W_in u;  x, z = xz[..., :Di], xz[..., Di:]
 *   x~ = SiLU(causal depthwise conv_4(x));  [delta_r | B | C] = W_x x~
 *   o = scan(x~, delta = W_dt delta_r (+ bias, softplus), A = -exp(A_log), B, C, D) * SiLU(z)
 *   out = W_out o
 * d_state 16, d_conv 4, expand 2, dt_rank ceil(d / 16), conv bias, no in/out projection bias.
 * The core (conv + x_proj + dt_proj + scan) is BiMamba's forward direction (`mambaCore`), one tape
 * node. No dropout and no mask inside the block.
 */
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { type DirectionParams, mambaCore, type MambaOptions } from "./bimamba.ts";
import { Conv1dParams } from "./conv_module.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";

export class Mamba extends Module {
  readonly dInner: number;
  readonly dtRank: number;
  readonly dState: number;
  readonly dConv: number;
  readonly A_log: Tensor; // (Di, Ns)
  readonly D: Tensor; // (Di)
  readonly in_proj: Linear; // (2Di, d), no bias
  readonly conv1d: Conv1dParams; // (Di, 1, K) + bias (Di)
  readonly x_proj: Linear; // (R + 2Ns, Di), no bias
  readonly dt_proj: Linear; // (Di, R) + bias (Di)
  readonly out_proj: Linear; // (d, Di), no bias

  constructor(be: Backend, o: MambaOptions) {
    super(be);
    const d = o.dModel, ns = o.dState ?? 16, di = (o.expand ?? 2) * d, k = o.dConv ?? 4;
    const r = Math.ceil(d / 16); // dt_rank "auto"
    this.dInner = di;
    this.dtRank = r;
    this.dState = ns;
    this.dConv = k;
    // Registration order = mamba-ssm's state_dict order (CONMAMBA_SPEC.md 5.2).
    this.A_log = this.param("A_log", [di, ns]);
    this.D = this.param("D", [di]);
    this.in_proj = this.child("in_proj", new Linear(be, d, 2 * di, false));
    this.conv1d = this.child("conv1d", new Conv1dParams(be, [di, 1, k]));
    this.x_proj = this.child("x_proj", new Linear(be, di, r + 2 * ns, false));
    this.dt_proj = this.child("dt_proj", new Linear(be, r, di, true));
    this.out_proj = this.child("out_proj", new Linear(be, di, d, false));
  }

  core(): DirectionParams {
    return {
      convW: this.conv1d.weight,
      convB: this.conv1d.bias,
      xProj: this.x_proj.weight,
      dtW: this.dt_proj.weight,
      dtB: this.dt_proj.bias!,
      aLog: this.A_log,
      d: this.D,
    };
  }

  /**
   * u (B, T, d) -> (B, T, d), or (B, keepLast, d): the last `keepLast` time steps only (the scan
   * still runs over all T; out_proj is per step, so slicing before it gives the same rows).
   */
  forward(ctx: ForwardContext, u: Tensor, keepLast?: number): Tensor {
    const tape = ctx.tape, t = u.shape[1];
    const xz = this.in_proj.forward(ctx, u); // (B, T, 2Di)
    const whole = keepLast === undefined || keepLast === t; // else a slice reads the result
    const outDtype = whole ? ag.matmulInputDtype(tape, u.backend) : "f32"; // for out_proj alone
    let o = mambaCore(tape, xz, this.core(), this.dState, { outDtype }); // (B, T, Di)
    if (keepLast !== undefined && keepLast !== t) o = ag.sliceTime(tape, o, t - keepLast, keepLast);
    return this.out_proj.forward(ctx, o);
  }
}
