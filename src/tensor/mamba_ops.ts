/**
 * The Mamba core on Tensors (CONMAMBA_SPEC.md 4.7-4.9): the depthwise 1-D convolution (causal with
 * SiLU for Mamba, 'same' for the convolution module), the selective scan, and the time flip that
 * makes BiMamba's backward direction. Shapes are checked here; kernels in wasm/.
 */
import {
  asView,
  type ColView,
  expectShape,
  expectView,
  ldOf,
  tensorArg,
  viewArg,
} from "./col_view.ts";
import { sumRows } from "./ops.ts";
import { type DType, ShapeError, Tensor } from "./tensor.ts";

/** Time steps between the states the scan saves for its backward (<= 64, wasm/selective_scan.c). */
export const SCAN_CHUNK = 64;
/** The kernels keep the state vector on the stack: d_state up to 64 (the models use 16). */
export const SCAN_MAX_STATE = 64;

// ---- flip ----------------------------------------------------------------------------------

/** y[b, t] = x[b, T - 1 - t]; x (B, T, W). Its own backward. */
export function flipTime(x: Tensor): Tensor {
  if (x.shape.length !== 3) throw new ShapeError(`flipTime: x must be (B, T, W), got [${x.shape}]`);
  const [batch, seqlen, width] = x.shape;
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run("flip_time", { batch, seqlen, width }, [tensorArg(x), tensorArg(y)]);
  return y;
}

// ---- depthwise conv1d ----------------------------------------------------------------------

export interface Conv1dOptions {
  /** Zeros before t = 0: K - 1 causal (Mamba), (K - 1) / 2 'same' (the convolution module). */
  padLeft: number;
  /** Fuse SiLU after the bias (Mamba). */
  silu?: boolean;
  /** Run time backwards: time t is row T-1-t of x, y and their gradients, so the result is
   * flip(conv(flip(x))) to the bit without the flips (BiMamba's backward direction). */
  reverse?: boolean;
}

function conv1dParams(x: ColView, w: Tensor, o: Conv1dOptions) {
  const xs = x.tensor.shape;
  if (xs.length !== 3) throw new ShapeError(`conv1d: x must be (B, T, ld), got [${xs}]`);
  if (w.shape.length !== 2 || w.shape[0] !== x.cols) {
    throw new ShapeError(`conv1d: w must be (${x.cols}, K), got [${w.shape}]`);
  }
  const kernel = w.shape[1];
  if (o.padLeft < 0 || o.padLeft >= kernel) {
    throw new ShapeError(`conv1d: padLeft ${o.padLeft} must lie in [0, ${kernel})`);
  }
  return {
    batch: xs[0],
    seqlen: xs[1],
    channels: x.cols,
    kernel,
    pad_left: o.padLeft,
    ld_x: ldOf(x),
    ld_y: x.cols,
    activation: o.silu ? 1 : 0,
    reverse: o.reverse ? 1 : 0,
  };
}

/**
 * y[b, t, c] = act(bias[c] + sum_j w[c, j] x[b, t - padLeft + j, c]). x (B, T, C) or a column
 * view of (B, T, ld); w (C, K) (PyTorch's (C, 1, K) squeezed); bias (C). Returns y (B, T, C).
 */
export function conv1dDepthwise(
  x: Tensor | ColView,
  w: Tensor,
  bias: Tensor | null,
  o: Conv1dOptions,
): Tensor {
  const xv = asView(x), p = conv1dParams(xv, w, o);
  if (bias) expectShape("conv1d bias", bias, [p.channels]);
  const y = Tensor.empty(w.backend, [p.batch, p.seqlen, p.channels]);
  w.backend.run("conv1d_depthwise_forward", p, [
    viewArg(xv),
    tensorArg(w),
    tensorArg(bias),
    tensorArg(y),
  ]);
  return y;
}

export interface Conv1dGrads {
  dx: ColView; // x's columns of a tensor shaped like x's (`into` when given)
  dw: Tensor; // (C, K)
  dbias: Tensor; // (C)
}

/**
 * Gradients of conv1dDepthwise; dx goes to x's columns of `into` (shaped like x's tensor), added
 * to what is there with `accumulate` (the bits of a separate add).
 */
export function conv1dDepthwiseBackward(
  dy: Tensor,
  x: Tensor | ColView,
  w: Tensor,
  bias: Tensor | null,
  o: Conv1dOptions & { into?: Tensor; accumulate?: boolean },
): Conv1dGrads {
  const xv = asView(x), be = w.backend;
  const p = { ...conv1dParams(xv, w, o), accumulate_dx: o.accumulate ? 1 : 0 };
  expectShape("conv1d dy", dy, [p.batch, p.seqlen, p.channels]);
  if (o.into) expectShape("conv1d dx buffer", o.into, xv.tensor.shape);
  if (o.accumulate && !o.into) throw new ShapeError("conv1d backward: accumulate needs `into`");
  // dx has x's layout: the same columns of a tensor shaped like x's (only they are written).
  const dx: ColView = { ...xv, tensor: o.into ?? Tensor.empty(be, xv.tensor.shape) };
  const dpre = Tensor.empty(be, dy.shape);
  const dw = Tensor.empty(be, w.shape), dbias = Tensor.empty(be, [p.channels]);
  be.run("conv1d_depthwise_backward", p, [
    viewArg(xv),
    tensorArg(w),
    tensorArg(bias),
    tensorArg(dy),
    tensorArg(dpre),
    viewArg(dx),
    tensorArg(dw),
    tensorArg(dbias),
  ]);
  return { dx, dw, dbias };
}

// ---- selective scan ------------------------------------------------------------------------

export interface ScanInputs {
  u: Tensor; // (B, T, Di): the conv's output x~
  delta: Tensor; // (B, T, Di): W_dt delta, before delta_bias and softplus
  A: Tensor; // (Di, Ns): -exp(A_log)
  B: Tensor | ColView; // (B, T, Ns)
  C: Tensor | ColView; // (B, T, Ns), same row stride as B
  D?: Tensor | null; // (Di)
  z?: Tensor | ColView | null; // (B, T, Di): the gate
  deltaBias?: Tensor | null; // (Di): dt_proj.bias
  /** softplus(delta + deltaBias), identity above 20 (default true, as Mamba calls it). */
  deltaSoftplus?: boolean;
  /** Scan from t = T-1 down to 0: flip(scan(flip(every per-step input))) to the bit, without
   * the flips (BiMamba's backward direction); the gradients likewise. */
  reverse?: boolean;
  /** BiMamba's halves: the output is 0.5 y (exact) and the backward reads dout halved (exact):
   * the bits of scaling by 0.5 before and after, without those passes. */
  half?: boolean;
  /** (B, T, Di) added to the output (after halving): BiMamba's first direction's half, so that
   * the second writes o_f / 2 + o_b / 2, for finite normal values the bits of (o_f + o_b) / 2.
   * Its gradient is dout itself (the caller passes it on). */
  other?: Tensor | null;
  /** "bf16": the output rounded to packed bf16 (when out_proj alone reads it, in bf16 mode). */
  outDtype?: DType;
}

export interface ScanSaved {
  out: Tensor; // (B, T, Di)
  states: Tensor; // (B, nchunks, Di, Ns): h at the start of every chunk
}

function scanParams(q: ScanInputs) {
  if (q.u.shape.length !== 3) {
    throw new ShapeError(`scan: u must be (B, T, Di), got [${q.u.shape}]`);
  }
  const [batch, seqlen, channels] = q.u.shape;
  expectShape("scan delta", q.delta, q.u.shape);
  if (q.A.shape.length !== 2 || q.A.shape[0] !== channels) {
    throw new ShapeError(`scan: A must be (${channels}, Ns), got [${q.A.shape}]`);
  }
  const dstate = q.A.shape[1];
  if (dstate > SCAN_MAX_STATE) throw new ShapeError(`scan: d_state ${dstate} > ${SCAN_MAX_STATE}`);
  const B = asView(q.B), C = asView(q.C);
  expectView("scan B", B, batch * seqlen, dstate);
  expectView("scan C", C, batch * seqlen, dstate);
  if (ldOf(B) !== ldOf(C)) throw new ShapeError("scan: B and C must have the same row stride");
  const z = q.z ? asView(q.z) : null;
  if (z) expectView("scan z", z, batch * seqlen, channels);
  if (q.D) expectShape("scan D", q.D, [channels]);
  if (q.deltaBias) expectShape("scan delta_bias", q.deltaBias, [channels]);
  const nchunks = Math.max(1, Math.ceil(seqlen / SCAN_CHUNK));
  const params = {
    batch,
    seqlen,
    channels,
    dstate,
    ld_u: channels,
    ld_bc: ldOf(B),
    ld_z: z ? ldOf(z) : 0,
    delta_softplus: q.deltaSoftplus === false ? 0 : 1,
    chunk: SCAN_CHUNK,
    nchunks,
    ld_state: channels * dstate,
    reverse: q.reverse ? 1 : 0,
    half: q.half ? 1 : 0,
  };
  return { params, B, C, z };
}

/** out = selective_scan(u, delta, A, B, C, D, z, deltaBias) as CONMAMBA_SPEC.md 4.7. */
export function selectiveScan(q: ScanInputs): ScanSaved {
  const { params: p, B, C, z } = scanParams(q), be = q.u.backend;
  if (q.other) expectShape("scan other", q.other, q.u.shape);
  const dtype = q.outDtype ?? "f32"; // the channel split starts parts at multiples of 4: even
  const out = Tensor.empty(be, q.u.shape, "step", dtype);
  const states = Tensor.empty(be, [p.batch, p.nchunks, p.channels, p.dstate]);
  be.run("selective_scan_forward", { ...p, out_bf16: dtype === "bf16" ? 1 : 0 }, [
    tensorArg(q.u),
    tensorArg(q.delta),
    tensorArg(q.A),
    viewArg(B),
    viewArg(C),
    tensorArg(q.D),
    viewArg(z),
    tensorArg(q.deltaBias),
    { storage: out.storage },
    tensorArg(states),
    tensorArg(q.other),
  ]);
  return { out, states };
}

export interface ScanGrads {
  du: Tensor; // (B, T, Di)
  ddelta: Tensor; // (B, T, Di): with respect to delta before bias and softplus
  dA: Tensor; // (Di, Ns)
  dB: ColView; // like B
  dC: ColView; // like C
  dD: Tensor | null; // (Di)
  dz: ColView | null; // like z
  ddeltaBias: Tensor | null; // (Di)
}

/**
 * Gradients of selectiveScan for upstream dout (B, T, Di). dB and dC are written into `into.bc`
 * (a tensor shaped like B's and C's, at their columns; only those columns are written) when B
 * and C are views, dz into `into.z` likewise (added to what is there with `into.accumulateZ`:
 * the bits of a separate add); otherwise into fresh tensors.
 */
export function selectiveScanBackward(
  dout: Tensor,
  q: ScanInputs,
  saved: ScanSaved,
  into: { bc?: Tensor; z?: Tensor; accumulateZ?: boolean } = {},
): ScanGrads {
  const s = scanParams(q), { B, C, z } = s, be = q.u.backend;
  const p = { ...s.params, accumulate_dz: into.accumulateZ ? 1 : 0 };
  if (into.accumulateZ && !(into.z && z)) {
    throw new ShapeError("scan backward: accumulateZ needs z and `into.z`");
  }
  expectShape("scan dout", dout, q.u.shape);
  const bcBuf = (v: ColView) => {
    if (into.bc) expectShape("scan dB/dC buffer", into.bc, v.tensor.shape);
    return { ...v, tensor: into.bc ?? Tensor.empty(be, v.tensor.shape) };
  };
  const dB = bcBuf(B); // B and C are usually columns of one tensor: one gradient buffer
  const dC = C.tensor === B.tensor ? { ...C, tensor: dB.tensor } : bcBuf(C);
  let dz: ColView | null = null;
  if (z) {
    if (into.z) expectShape("scan dz buffer", into.z, z.tensor.shape);
    dz = { ...z, tensor: into.z ?? Tensor.empty(be, z.tensor.shape) };
  }
  const du = Tensor.empty(be, q.u.shape), ddelta = Tensor.empty(be, q.u.shape);
  const dAPart = Tensor.empty(be, [p.batch, p.channels * p.dstate]);
  const dDPart = q.D ? Tensor.empty(be, [p.batch, p.channels]) : null;
  const dbPart = q.deltaBias ? Tensor.empty(be, [p.batch, p.channels]) : null;
  be.run("selective_scan_backward", p, [
    tensorArg(q.u),
    tensorArg(q.delta),
    tensorArg(q.A),
    viewArg(B),
    viewArg(C),
    tensorArg(q.D),
    viewArg(z),
    tensorArg(q.deltaBias),
    tensorArg(saved.states),
    tensorArg(dout),
    tensorArg(du),
    tensorArg(ddelta),
    tensorArg(dAPart),
    viewArg(dB),
    viewArg(dC),
    tensorArg(dDPart),
    viewArg(dz),
    tensorArg(dbPart),
  ]);
  // Parameter gradients come per sequence; summed over the batch in order (no atomics).
  return {
    du,
    ddelta,
    dA: sumRows(dAPart).reshape(q.A.shape),
    dB,
    dC,
    dD: dDPart ? sumRows(dDPart) : null,
    dz,
    ddeltaBias: dbPart ? sumRows(dbPart) : null,
  };
}
