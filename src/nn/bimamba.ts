/**
 * The bidirectional Mamba "v2" block of the ConMamba encoder (CONMAMBA_SPEC.md 4.7, 4.9; G22):
 *   xz = W_in u;  x, z = xz[..., :Di], xz[..., Di:]
 *   o_f = core_fwd(x, z);  o_b = flip(core_bwd(flip(x), flip(z)))
 *   out = W_out (0.5 (o_f + o_b))                 (if_devide_out: the average of both directions)
 * core(x, z): x~ = SiLU(causal depthwise conv_4(x)); [delta_r | B | C] = W_x x~;
 *   delta = W_dt delta_r (bias and softplus inside the scan); y = scan(x~, delta, A = -exp(A_log),
 *   B, C, D, z, dt bias). Both directions share in_proj, z and out_proj; each has its own conv1d,
 *   x_proj, dt_proj, A_log and D (suffix _b for the backward one). No padding mask (G2).
 *
 * Each direction's core is one tape node with a hand-written backward: x, z, B, C and delta_r are
 * column views of in_proj's and x_proj's outputs (no copies), which the whole-tensor autograd ops
 * cannot express. The backward direction runs its conv and scan with `reverse` (time t at row
 * T-1-t): the bits of flip, core, flip without the two flips and their gradients' flips. The delta_r @ W_dt^T product reads strided columns, so it calls the matmul kernel
 * with explicit row strides (matmulStrided below; no new kernel).
 */
import type { Tape } from "../tensor/autograd.ts";
import * as ag from "../tensor/autograd_ops.ts";
import type { Backend } from "../tensor/backend.ts";
import { colView, tensorArg } from "../tensor/col_view.ts";
import { exp } from "../tensor/conv_ops.ts";
import {
  conv1dDepthwise,
  conv1dDepthwiseBackward,
  selectiveScan,
  selectiveScanBackward,
} from "../tensor/mamba_ops.ts";
import { matmul, mul, scale } from "../tensor/ops.ts";
import { type DType, Tensor } from "../tensor/tensor.ts";
import { Linear } from "./linear.ts";
import { type ForwardContext, Module } from "./module.ts";
import { Conv1dParams } from "./conv_module.ts";

export interface MambaOptions {
  dModel: number;
  dState?: number; // 16
  expand?: number; // 2
  dConv?: number; // 4
}

/** One direction's own tensors. */
export interface DirectionParams {
  convW: Tensor; // (Di, 1, K)
  convB: Tensor; // (Di)
  xProj: Tensor; // (R + 2 Ns, Di)
  dtW: Tensor; // (Di, R)
  dtB: Tensor; // (Di)
  aLog: Tensor; // (Di, Ns)
  d: Tensor; // (Di)
}

export class BiMamba extends Module {
  readonly dInner: number;
  readonly dtRank: number;
  readonly dState: number;
  readonly dConv: number;
  readonly A_log: Tensor;
  readonly D: Tensor;
  readonly A_b_log: Tensor;
  readonly D_b: Tensor;
  readonly in_proj: Linear;
  readonly conv1d: Conv1dParams;
  readonly x_proj: Linear;
  readonly dt_proj: Linear;
  readonly conv1d_b: Conv1dParams;
  readonly x_proj_b: Linear;
  readonly dt_proj_b: Linear;
  readonly out_proj: Linear;

  constructor(be: Backend, o: MambaOptions) {
    super(be);
    const d = o.dModel, ns = o.dState ?? 16, di = (o.expand ?? 2) * d, k = o.dConv ?? 4;
    const r = Math.ceil(d / 16); // dt_rank "auto"
    this.dInner = di;
    this.dtRank = r;
    this.dState = ns;
    this.dConv = k;
    // Registration order = the original's state_dict order (CONMAMBA_SPEC.md 5.2).
    this.A_log = this.param("A_log", [di, ns]);
    this.D = this.param("D", [di]);
    this.A_b_log = this.param("A_b_log", [di, ns]);
    this.D_b = this.param("D_b", [di]);
    this.in_proj = this.child("in_proj", new Linear(be, d, 2 * di, false));
    this.conv1d = this.child("conv1d", new Conv1dParams(be, [di, 1, k]));
    this.x_proj = this.child("x_proj", new Linear(be, di, r + 2 * ns, false));
    this.dt_proj = this.child("dt_proj", new Linear(be, r, di, true));
    this.conv1d_b = this.child("conv1d_b", new Conv1dParams(be, [di, 1, k]));
    this.x_proj_b = this.child("x_proj_b", new Linear(be, di, r + 2 * ns, false));
    this.dt_proj_b = this.child("dt_proj_b", new Linear(be, r, di, true));
    this.out_proj = this.child("out_proj", new Linear(be, di, d, false));
  }

  direction(which: "forward" | "backward"): DirectionParams {
    const f = which === "forward";
    const conv = f ? this.conv1d : this.conv1d_b, dt = f ? this.dt_proj : this.dt_proj_b;
    return {
      convW: conv.weight,
      convB: conv.bias,
      xProj: (f ? this.x_proj : this.x_proj_b).weight,
      dtW: dt.weight,
      dtB: dt.bias!,
      aLog: f ? this.A_log : this.A_b_log,
      d: f ? this.D : this.D_b,
    };
  }

  /** u (B, T, d) -> (B, T, d). */
  forward(ctx: ForwardContext, u: Tensor): Tensor {
    const tape = ctx.tape;
    const xz = this.in_proj.forward(ctx, u); // (B, T, 2Di)
    // (o_f + flip∘core∘flip) / 2 as o_f / 2 + o_b / 2: the first scan writes its half, the
    // second (reverse time instead of flips) its half plus the first's
    const halfF = mambaCore(tape, xz, this.direction("forward"), this.dState, { half: true });
    const avg = mambaCore(tape, xz, this.direction("backward"), this.dState, {
      reverse: true,
      half: true,
      other: halfF,
      outDtype: ag.matmulInputDtype(tape, u.backend), // out_proj alone reads it
    });
    return this.out_proj.forward(ctx, avg);
  }
}

/**
 * One direction of the Mamba core on xz (B, T, 2Di): the causal conv + SiLU on x's columns, x_proj,
 * dt_proj on delta_r's columns, and the selective scan gated by SiLU(z). Returns (B, T, Di) before
 * out_proj. One tape node; inputs [xz, convW, convB, xProj, dtW, dtB, aLog, d, other]. `reverse`:
 * time runs backwards (flip, core, flip to the bit); `half`: returns half the core's output (its
 * scan halves it, and its backward halves the upstream gradient, both exact); `other`: added to
 * that (BiMamba's first direction's half; it gets the upstream gradient unchanged); `outDtype`:
 * "bf16" stores the result packed (for out_proj alone, in bf16 mode: ag.matmulInputDtype).
 */
export function mambaCore(
  tape: Tape,
  xz: Tensor,
  p: DirectionParams,
  dState: number,
  o: { reverse?: boolean; half?: boolean; other?: Tensor | null; outDtype?: DType } = {},
): Tensor {
  const reverse = o.reverse ?? false, other = o.other ?? null;
  const [b, t, w] = xz.shape, di = w / 2, k = p.convW.shape[2];
  const r = p.dtW.shape[1], ldDbl = r + 2 * dState, rows = b * t, be = xz.backend;
  const xv = colView(xz, 0, di), zv = colView(xz, di, di);
  const convW = p.convW.reshape([di, k]);
  const convOpts = { padLeft: k - 1, silu: true, reverse };
  const xc = conv1dDepthwise(xv, convW, p.convB, convOpts); // (B, T, Di)
  const dbl = matmul(xc, p.xProj, { transB: true }); // (B, T, R + 2Ns)
  const delta = Tensor.empty(be, [b, t, di]); // delta_r W_dt^T, delta_r = dbl[..., :R]
  matmulStrided(be, {
    a: dbl,
    lda: ldDbl,
    b: p.dtW,
    ldb: r,
    c: delta,
    ldc: di,
    m: rows,
    n: di,
    k: r,
    transB: true,
  });
  const A = scale(exp(p.aLog), -1); // (Di, Ns)
  const q = {
    u: xc,
    delta,
    A,
    B: colView(dbl, r, dState),
    C: colView(dbl, r + dState, dState),
    D: p.d,
    z: zv,
    deltaBias: p.dtB,
    deltaSoftplus: true,
    reverse,
    half: o.half ?? false,
    other,
    outDtype: o.outDtype,
  };
  const saved = selectiveScan(q);
  const inputs = [xz, p.convW, p.convB, p.xProj, p.dtW, p.dtB, p.aLog, p.d];
  tape.record([...inputs, other], [saved.out], ([dOut], [dxzSoFar]) => {
    // With half the scan's backward reads dOut halved; `other` gets dOut itself.
    // xz's gradient so far (the other direction's, when the tape offers it): the scan adds dz and
    // the conv dx to it in place (the bits of the tape's add), else a fresh dxz.
    const ddbl = Tensor.empty(be, dbl.shape), dxz = dxzSoFar ?? Tensor.empty(be, xz.shape);
    const acc = dxzSoFar !== null;
    // dB, dC -> ddbl, dz -> dxz
    const g = selectiveScanBackward(dOut!, q, saved, { bc: ddbl, z: dxz, accumulateZ: acc });
    // ddbl[..., :R] = ddelta W_dt;  dW_dt = ddelta^T delta_r
    matmulStrided(be, {
      a: g.ddelta,
      lda: di,
      b: p.dtW,
      ldb: r,
      c: ddbl,
      ldc: ldDbl,
      m: rows,
      n: r,
      k: di,
    });
    const dDtW = Tensor.empty(be, p.dtW.shape);
    matmulStrided(be, {
      a: g.ddelta,
      lda: di,
      transA: true,
      b: dbl,
      ldb: ldDbl,
      c: dDtW,
      ldc: r,
      m: di,
      n: r,
      k: rows,
    });
    // dxc = du + ddbl W_x: the product accumulates into the scan's du (no separate add); dW_x =
    // ddbl^T xc over all B T rows.
    const dxc = matmul(ddbl, p.xProj, { accumulate: true, out: g.du });
    const dxProj = matmul(ddbl.reshape([rows, ldDbl]), xc.reshape([rows, di]), { transA: true });
    const cg = conv1dDepthwiseBackward(dxc, xv, convW, p.convB, {
      ...convOpts,
      into: dxz,
      accumulate: acc,
    });
    return [dxz, cg.dw, cg.dbias, dxProj, dDtW, g.ddeltaBias, mul(g.dA, A), g.dD, other && dOut];
  }, inputs); // xz through its column views xv, zv; the rest is private to the closure (not other)
  return saved.out;
}

/**
 * C = op(A) op(B) on row-strided operands (columns of wider tensors), one batch: the matmul kernel
 * with explicit lda/ldb/ldc. Shapes are checked against the storages' sizes.
 */
function matmulStrided(
  be: Backend,
  o: {
    a: Tensor;
    lda: number;
    b: Tensor;
    ldb: number;
    c: Tensor;
    ldc: number;
    m: number;
    n: number;
    k: number;
    transA?: boolean;
    transB?: boolean;
  },
): void {
  const aRows = o.transA ? o.k : o.m, bRows = o.transB ? o.n : o.k, cRows = o.m;
  if (aRows * o.lda > o.a.size || bRows * o.ldb > o.b.size || cRows * o.ldc > o.c.size) {
    throw new RangeError(`matmulStrided: operands too small for m ${o.m} n ${o.n} k ${o.k}`);
  }
  be.run("matmul", {
    batch: 1,
    m: o.m,
    n: o.n,
    k: o.k,
    lda: o.lda,
    ldb: o.ldb,
    ldc: o.ldc,
    stride_a: 0,
    stride_b: 0,
    stride_c: 0,
    trans_a: o.transA ? 1 : 0,
    trans_b: o.transB ? 1 : 0,
    accumulate: 0,
  }, [tensorArg(o.a), tensorArg(o.b), null, tensorArg(o.c), null]);
}
