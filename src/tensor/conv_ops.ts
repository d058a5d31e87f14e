/**
 * The convolution module's and the CNN front end's ops (CONMAMBA_SPEC.md 4.2, 4.6): GLU,
 * LeakyReLU, exp, LayerNorm over the last two axes, and the 2-D convolution (3x3, stride 2,
 * reflect padding 1) as im2col + matmul.
 */
import { type ColumnSums, runChunked } from "./chunk_sums.ts";
import { expectShape, tensorArg } from "./col_view.ts";
import {
  layerNorm,
  layerNormBackward,
  type LayerNormSaved,
  matmul,
  matmulBackward,
} from "./ops.ts";
import { type DType, ShapeError, Tensor } from "./tensor.ts";

function lastHalf(name: string, x: Tensor): { rows: number; cols: number } {
  const w = x.shape[x.shape.length - 1];
  if (x.shape.length === 0 || w % 2 !== 0) {
    throw new ShapeError(`${name}: the last axis must be even, got [${x.shape}]`);
  }
  return { rows: x.size / w, cols: w / 2 };
}

/** GLU over the last axis: x (..., 2d) -> x[..., :d] sigmoid(x[..., d:]) (..., d). */
export function glu(x: Tensor): Tensor {
  const { rows, cols } = lastHalf("glu", x);
  const y = Tensor.empty(x.backend, [...x.shape.slice(0, -1), cols]);
  x.backend.run("glu_forward", { rows, cols, ld: 2 * cols }, [tensorArg(x), tensorArg(y)]);
  return y;
}

/**
 * The GLU's input gradient (..., 2d). With `sums` (2d): also its column sums over all rows (the
 * bias gradient of the pointwise conv before the GLU), from the kernel's per-chunk partials
 * (chunk_sums.ts), added to `sums.out` when `sums.accumulate`. `dtype` "bf16": the gradient packed
 * (when only the pointwise conv's backward products read it), the sums of its float32 values.
 */
export function gluBackward(
  x: Tensor,
  dy: Tensor,
  sums?: ColumnSums,
  dtype: DType = "f32",
): Tensor {
  const { rows, cols } = lastHalf("gluBackward", x);
  expectShape("glu dy", dy, [...x.shape.slice(0, -1), cols]);
  if (sums && sums.out.size !== 2 * cols) {
    throw new ShapeError(`gluBackward: column sums must be (${2 * cols}), got ${sums.out.size}`);
  }
  const dx = Tensor.empty(x.backend, x.shape, "step", dtype);
  const out_bf16 = dtype === "bf16" ? 1 : 0;
  runChunked(x.backend, rows, 2 * cols, sums ? [{ ...sums, col0: 0 }] : [], (chunk, part) => {
    x.backend.run("glu_backward", { rows, cols, ...chunk, out_bf16 }, [
      tensorArg(x),
      tensorArg(dy),
      { storage: dx.storage },
      part && tensorArg(part),
    ]);
  });
  return dx;
}

/** LeakyReLU with slope `alpha` below zero (0.01 in the front end). */
export function leakyRelu(x: Tensor, alpha = 0.01): Tensor {
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run("leaky_relu_forward", { n: x.size, alpha }, [tensorArg(x), tensorArg(y)]);
  return y;
}

export function leakyReluBackward(x: Tensor, dy: Tensor, alpha = 0.01): Tensor {
  expectShape("leakyRelu dy", dy, x.shape);
  const dx = Tensor.empty(x.backend, x.shape);
  x.backend.run("leaky_relu_backward", { n: x.size, alpha }, [
    tensorArg(x),
    tensorArg(dy),
    tensorArg(dx),
  ]);
  return dx;
}

/** exp(x) elementwise (A = -exp(A_log)); the backward is dy * y. */
export function exp(x: Tensor): Tensor {
  const y = Tensor.empty(x.backend, x.shape);
  x.backend.run("exp_forward", { n: x.size }, [tensorArg(x), tensorArg(y)]);
  return y;
}

/**
 * LayerNorm over the last `axes` axes jointly (the front end normalises (freq, channel) of a
 * (B, T, F, C) tensor, CONMAMBA_SPEC.md 4.2): gamma and beta have those axes' shape. Row-major
 * storage makes this the last-axis LayerNorm over F C values.
 */
export function layerNormAxes(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  axes: number,
): LayerNormSaved {
  const inner = x.shape.slice(-axes);
  expectShape("layerNorm gamma", gamma, inner);
  expectShape("layerNorm beta", beta, inner);
  const n = inner.reduce((a, b) => a * b, 1);
  const s = layerNorm(x.reshape([x.size / n, n]), gamma.reshape([n]), beta.reshape([n]), eps);
  return { ...s, y: s.y.reshape(x.shape) };
}

export function layerNormAxesBackward(
  dy: Tensor,
  x: Tensor,
  gamma: Tensor,
  saved: { mean: Tensor; rstd: Tensor },
): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const n = gamma.size;
  const g = layerNormBackward(
    dy.reshape([dy.size / n, n]),
    x.reshape([x.size / n, n]),
    gamma.reshape([n]),
    saved,
  );
  return {
    dx: g.dx.reshape(x.shape),
    dgamma: g.dgamma.reshape(gamma.shape),
    dbeta: g.dbeta.reshape(gamma.shape),
  };
}

// ---- conv2d (front end) --------------------------------------------------------------------

export interface Conv2dSaved {
  y: Tensor; // (B, T', F', Cout)
  cols: Tensor; // (B T' F', Cin 9): im2col of x, kept for the weight gradient
}

function conv2dParams(x: Tensor, w: Tensor) {
  if (x.shape.length !== 4) {
    throw new ShapeError(`conv2d: x must be (B, T, F, C), got [${x.shape}]`);
  }
  const [batch, time, freq, channels] = x.shape;
  if (w.shape.length !== 4 || w.shape[1] !== channels || w.shape[2] !== 3 || w.shape[3] !== 3) {
    throw new ShapeError(`conv2d: w must be (Cout, ${channels}, 3, 3), got [${w.shape}]`);
  }
  if (time < 2 || freq < 2) {
    throw new ShapeError(`conv2d: reflect padding needs T >= 2 and F >= 2, got [${x.shape}]`);
  }
  const out = (n: number) => Math.floor((n - 1) / 2) + 1; // kernel 3, stride 2, padding 1
  return {
    batch,
    time,
    freq,
    channels,
    time_out: out(time),
    freq_out: out(freq),
    ksize: 3,
    stride: 2,
    pad: 1,
  };
}

/**
 * Conv2d 3x3, stride 2, reflect padding 1 on both axes, with bias (CONMAMBA_SPEC.md 4.2).
 * x (B, T, F, Cin) channels last; w (Cout, Cin, k_freq, k_time) as PyTorch; bias (Cout).
 * Returns y (B, T', F', Cout), T' = floor((T - 1) / 2) + 1, and the im2col columns.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null): Conv2dSaved {
  const p = conv2dParams(x, w), be = x.backend;
  const rows = p.batch * p.time_out * p.freq_out, k = p.channels * 9;
  const cols = Tensor.empty(be, [rows, k]);
  be.run("im2col_reflect", p, [tensorArg(x), tensorArg(cols)]);
  const y = matmul(cols, w.reshape([w.shape[0], k]), { transB: true, bias });
  return { y: y.reshape([p.batch, p.time_out, p.freq_out, w.shape[0]]), cols };
}

export function conv2dBackward(
  dy: Tensor,
  x: Tensor,
  w: Tensor,
  bias: Tensor | null,
  saved: Conv2dSaved,
): { dx: Tensor; dw: Tensor; dbias: Tensor | null } {
  const p = conv2dParams(x, w), cout = w.shape[0], k = p.channels * 9;
  expectShape("conv2d dy", dy, [p.batch, p.time_out, p.freq_out, cout]);
  const g = matmulBackward(
    dy.reshape([saved.cols.shape[0], cout]),
    saved.cols,
    w.reshape([cout, k]),
    {
      transB: true,
      bias,
    },
  );
  const dx = Tensor.empty(x.backend, x.shape);
  x.backend.run("col2im_reflect", p, [tensorArg(g.da), tensorArg(dx)]);
  return { dx, dw: g.db.reshape(w.shape), dbias: g.dbias };
}
