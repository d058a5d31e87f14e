/**
 * The float64 reference of every op: plain loops with shape-named indices. This file is the
 * specification the kernels answer to. Each function also returns `mag`, per output element the
 * sum of the absolute values of the terms that make it up (|A||B| for a product), so that tests
 * can bound the float32 rounding error without hiding behind cancellation.
 */

export type F64 = Float64Array;

export interface Result {
  y: F64;
  mag: F64;
}

export interface MatmulRefArgs {
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Elements between batches; 0 for an operand shared by every batch. */
  strideA: number;
  strideB: number;
  bias?: ArrayLike<number> | null;
}

/** C[t, i, j] = sum_p op(A)[t, i, p] op(B)[t, p, j] + bias[j]. a, b as stored; C (batch, m, n). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, q: MatmulRefArgs): Result {
  const { batch, m, n, k } = q;
  const y = new Float64Array(batch * m * n), mag = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0, abs = 0;
        for (let p = 0; p < k; p++) {
          const av = q.transA ? a[t * q.strideA + p * m + i] : a[t * q.strideA + i * k + p];
          const bv = q.transB ? b[t * q.strideB + j * k + p] : b[t * q.strideB + p * n + j];
          sum += av * bv;
          abs += Math.abs(av * bv);
        }
        if (q.bias) {
          sum += q.bias[j];
          abs += Math.abs(q.bias[j]);
        }
        y[(t * m + i) * n + j] = sum;
        mag[(t * m + i) * n + j] = abs;
      }
    }
  }
  return { y, mag };
}

/** Gradients of matmulRef for upstream dc (batch, m, n): da and db as stored, dbias (n). An
 * operand with stride 0 (shared) receives the sum over batches. */
export function matmulBackwardRef(
  dc: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  q: MatmulRefArgs,
): { da: Result; db: Result; dbias: Result } {
  const { batch, m, n, k } = q;
  const sizeA = (q.strideA ? batch : 1) * m * k, sizeB = (q.strideB ? batch : 1) * k * n;
  const da = { y: new Float64Array(sizeA), mag: new Float64Array(sizeA) };
  const db = { y: new Float64Array(sizeB), mag: new Float64Array(sizeB) };
  const dbias = { y: new Float64Array(n), mag: new Float64Array(n) };
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const ia = q.transA ? t * q.strideA + p * m + i : t * q.strideA + i * k + p;
        for (let j = 0; j < n; j++) {
          const ib = q.transB ? t * q.strideB + j * k + p : t * q.strideB + p * n + j;
          const g = dc[(t * m + i) * n + j];
          da.y[ia] += g * b[ib]; // dA[i, p] = sum_j dC[i, j] B[p, j]
          da.mag[ia] += Math.abs(g * b[ib]);
          db.y[ib] += a[ia] * g; // dB[p, j] = sum_i A[i, p] dC[i, j]
          db.mag[ib] += Math.abs(a[ia] * g);
        }
      }
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        dbias.y[j] += dc[(t * m + i) * n + j];
        dbias.mag[j] += Math.abs(dc[(t * m + i) * n + j]);
      }
    }
  }
  return { da, db, dbias };
}

// ---- elementwise ---------------------------------------------------------------------------

export function mapRef(n: number, f: (i: number) => number): Result {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = f(i);
  return { y, mag: y.map(Math.abs) };
}

/** phi(x), the standard normal density. */
export const normalPdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

/**
 * Phi(x) by Simpson's rule on the upper tail, integral of phi over [|x|, |x| + 12] (the rest is
 * below 1e-33): a method independent of the kernel's series, with full relative accuracy in the
 * negative tail. 2000 intervals of width 0.006 give a relative error below 1e-9.
 */
export function normalCdf(x: number): number {
  const z = Math.abs(x), N = 2000, h = 12 / N;
  let s = normalPdf(z) + normalPdf(z + 12);
  for (let i = 1; i < N; i++) s += (i % 2 ? 4 : 2) * normalPdf(z + i * h);
  const tail = (s * h) / 3;
  return x < 0 ? tail : 1 - tail;
}

export const geluRef = (x: number) => x * normalCdf(x);
export const geluGradRef = (x: number) => normalCdf(x) + x * normalPdf(x);
export const sigmoidRef = (x: number) => 1 / (1 + Math.exp(-x));
export const siluRef = (x: number) => x * sigmoidRef(x);
export const siluGradRef = (x: number) => {
  const s = sigmoidRef(x);
  return s * (1 + x * (1 - s));
};

// ---- per-row ops over the last axis (x is (rows, cols)) ----------------------------------------

export function layerNormRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): Result & { mean: F64; rstd: F64 } {
  const y = new Float64Array(rows * cols), mag = new Float64Array(rows * cols);
  const mean = new Float64Array(rows), rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let mu = 0;
    for (let j = 0; j < cols; j++) mu += x[r * cols + j];
    mu /= cols;
    let v = 0;
    for (let j = 0; j < cols; j++) v += (x[r * cols + j] - mu) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[r * cols + j] - mu) * rs;
      y[r * cols + j] = xhat * gamma[j] + beta[j];
      mag[r * cols + j] = Math.abs(gamma[j]) * (Math.abs(xhat) + 1) + Math.abs(beta[j]);
    }
  }
  return { y, mag, mean, rstd };
}

/** dx, dgamma, dbeta of layerNormRef for upstream dy (rows, cols). */
export function layerNormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  rows: number,
  cols: number,
  eps: number,
): { dx: Result; dgamma: Result; dbeta: Result } {
  const { mean, rstd } = layerNormRef(x, gamma, gamma, rows, cols, eps);
  const dx = { y: new Float64Array(rows * cols), mag: new Float64Array(rows * cols) };
  const dgamma = { y: new Float64Array(cols), mag: new Float64Array(cols) };
  const dbeta = { y: new Float64Array(cols), mag: new Float64Array(cols) };
  for (let r = 0; r < rows; r++) {
    let a = 0, b = 0, absA = 0, absB = 0;
    for (let j = 0; j < cols; j++) {
      const g = dy[r * cols + j] * gamma[j], xhat = (x[r * cols + j] - mean[r]) * rstd[r];
      a += g / cols;
      b += (g * xhat) / cols;
      absA += Math.abs(g) / cols;
      absB += Math.abs(g * xhat) / cols;
    }
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j, g = dy[i] * gamma[j], xhat = (x[i] - mean[r]) * rstd[r];
      dx.y[i] = rstd[r] * (g - a - xhat * b);
      dx.mag[i] = rstd[r] * (Math.abs(g) + absA + Math.abs(xhat) * absB);
      dgamma.y[j] += dy[i] * xhat;
      dgamma.mag[j] += Math.abs(dy[i] * xhat);
      dbeta.y[j] += dy[i];
      dbeta.mag[j] += Math.abs(dy[i]);
    }
  }
  return { dx, dgamma, dbeta };
}

export function softmaxRef(x: ArrayLike<number>, rows: number, cols: number): Result {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity, sum = 0;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[r * cols + j]);
    for (let j = 0; j < cols; j++) sum += Math.exp(x[r * cols + j] - max);
    for (let j = 0; j < cols; j++) y[r * cols + j] = Math.exp(x[r * cols + j] - max) / sum;
  }
  return { y, mag: y.map(Math.abs) };
}

/** dx = y (dy - sum_j dy y), from the forward output y. */
export function softmaxBackwardRef(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
): Result {
  const dx = new Float64Array(rows * cols), mag = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0, abs = 0;
    for (let j = 0; j < cols; j++) {
      s += dy[r * cols + j] * y[r * cols + j];
      abs += Math.abs(dy[r * cols + j] * y[r * cols + j]);
    }
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      dx[i] = y[i] * (dy[i] - s);
      mag[i] = Math.abs(y[i]) * (Math.abs(dy[i]) + abs);
    }
  }
  return { y: dx, mag };
}

/** y = (x - max) - log sum exp(x - max); mag = |x - max| + log-sum + 1 (the scale of the terms). */
export function logSoftmaxRef(x: ArrayLike<number>, rows: number, cols: number): Result {
  const y = new Float64Array(rows * cols), mag = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity, sum = 0;
    for (let j = 0; j < cols; j++) max = Math.max(max, x[r * cols + j]);
    for (let j = 0; j < cols; j++) sum += Math.exp(x[r * cols + j] - max);
    const logSum = Math.log(sum);
    for (let j = 0; j < cols; j++) {
      y[r * cols + j] = x[r * cols + j] - max - logSum;
      mag[r * cols + j] = Math.abs(x[r * cols + j] - max) + logSum + 1;
    }
  }
  return { y, mag };
}

/** dx = dy - exp(y) sum_j dy, from the forward output y. */
export function logSoftmaxBackwardRef(
  y: ArrayLike<number>,
  dy: ArrayLike<number>,
  rows: number,
  cols: number,
): Result {
  const dx = new Float64Array(rows * cols), mag = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let s = 0, abs = 0;
    for (let j = 0; j < cols; j++) {
      s += dy[r * cols + j];
      abs += Math.abs(dy[r * cols + j]);
    }
    for (let j = 0; j < cols; j++) {
      const i = r * cols + j;
      dx[i] = dy[i] - Math.exp(y[i]) * s;
      mag[i] = Math.abs(dy[i]) + Math.exp(y[i]) * abs * (1 + Math.abs(y[i]));
    }
  }
  return { y: dx, mag };
}
