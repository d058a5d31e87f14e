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

// ---- Mamba core (CONMAMBA_SPEC.md 4.7-4.9) -----------------------------------------------------

/** y[b, T - 1 - t, :] = x[b, t, :]; x (B, T, W). */
export function flipTimeRef(x: ArrayLike<number>, batch: number, seqlen: number, width: number) {
  const y = new Float64Array(batch * seqlen * width);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqlen; t++) {
      for (let j = 0; j < width; j++) {
        y[(b * seqlen + seqlen - 1 - t) * width + j] = x[(b * seqlen + t) * width + j];
      }
    }
  }
  return { y, mag: y.map(Math.abs) };
}

export interface Conv1dDims {
  batch: number;
  seqlen: number;
  channels: number;
  kernel: number;
  padLeft: number;
  silu: boolean;
}

/** y[b,t,c] = act(bias[c] + sum_j w[c,j] x[b, t - padLeft + j, c]); x, y (B, T, C); w (C, K). */
export function conv1dDepthwiseRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  q: Conv1dDims,
): Result & { pre: F64; preMag: F64 } {
  const { batch, seqlen: T, channels: C, kernel: K } = q;
  const pre = new Float64Array(batch * T * C), preMag = new Float64Array(batch * T * C);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        let s = bias ? bias[c] : 0, abs = Math.abs(s);
        for (let j = 0; j < K; j++) {
          const ts = t - q.padLeft + j;
          if (ts < 0 || ts >= T) continue;
          s += w[c * K + j] * x[(b * T + ts) * C + c];
          abs += Math.abs(w[c * K + j] * x[(b * T + ts) * C + c]);
        }
        pre[(b * T + t) * C + c] = s;
        preMag[(b * T + t) * C + c] = abs;
      }
    }
  }
  if (!q.silu) return { y: pre, mag: preMag, pre, preMag };
  // silu(p) = p s(p); its error from an error e in p is silu'(p) e, |silu'| <= 1.1
  const y = pre.map(siluRef), mag = preMag.map((m, i) => 1.1 * m + Math.abs(y[i]));
  return { y, mag, pre, preMag };
}

/** Gradients of conv1dDepthwiseRef for upstream dy (B, T, C). */
export function conv1dDepthwiseBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  q: Conv1dDims,
): { dx: Result; dw: Result; dbias: Result } {
  const { batch, seqlen: T, channels: C, kernel: K } = q;
  const { pre } = conv1dDepthwiseRef(x, w, bias, q);
  const g = new Float64Array(batch * T * C);
  for (let i = 0; i < g.length; i++) g[i] = q.silu ? dy[i] * siluGradRef(pre[i]) : dy[i];
  const dx = { y: new Float64Array(batch * T * C), mag: new Float64Array(batch * T * C) };
  const dw = { y: new Float64Array(C * K), mag: new Float64Array(C * K) };
  const dbias = { y: new Float64Array(C), mag: new Float64Array(C) };
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        const gi = g[(b * T + t) * C + c];
        // |g| is itself computed with a few roundings when silu is fused: count it at 2 |dy|
        const gm = q.silu ? 2 * Math.abs(dy[(b * T + t) * C + c]) : Math.abs(gi);
        dbias.y[c] += gi;
        dbias.mag[c] += gm;
        for (let j = 0; j < K; j++) {
          const ts = t - q.padLeft + j;
          if (ts < 0 || ts >= T) continue;
          const xi = (b * T + ts) * C + c;
          dx.y[xi] += w[c * K + j] * gi; // y[t] depends on x[t - pad + j] through w[j]
          dx.mag[xi] += Math.abs(w[c * K + j]) * gm;
          dw.y[c * K + j] += gi * x[xi];
          dw.mag[c * K + j] += gm * Math.abs(x[xi]);
        }
      }
    }
  }
  return { dx, dw, dbias };
}

export interface ScanDims {
  batch: number;
  seqlen: number;
  channels: number;
  dstate: number;
  deltaSoftplus: boolean;
}

export interface ScanRefArgs {
  u: ArrayLike<number>; // (B, T, Di)
  delta: ArrayLike<number>; // (B, T, Di)
  A: ArrayLike<number>; // (Di, Ns)
  B: ArrayLike<number>; // (B, T, Ns)
  C: ArrayLike<number>; // (B, T, Ns)
  D: ArrayLike<number> | null; // (Di)
  z: ArrayLike<number> | null; // (B, T, Di)
  deltaBias: ArrayLike<number> | null; // (Di)
}

export const softplusRef = (x: number) => x > 20 ? x : Math.log1p(Math.exp(x));

/**
 * The selective scan as a plain sequential recurrence in float64 (the specification), keeping
 * every state for the backward. mag: the same recurrence on absolute values.
 */
export function selectiveScanRef(a: ScanRefArgs, q: ScanDims) {
  const { batch, seqlen: T, channels: Di, dstate: N } = q;
  const out = new Float64Array(batch * T * Di), mag = new Float64Array(batch * T * Di);
  const yPre = new Float64Array(batch * T * Di); // y before the gate
  const h = new Float64Array(batch * Di * (T + 1) * N); // h[b, c, t + 1, n]; t = -1 is 0
  const dlt = new Float64Array(batch * T * Di);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < Di; c++) {
      const hm = new Float64Array(N);
      for (let t = 0; t < T; t++) {
        const i = (b * T + t) * Di + c;
        const pre = a.delta[i] + (a.deltaBias ? a.deltaBias[c] : 0);
        const d = q.deltaSoftplus ? softplusRef(pre) : pre;
        dlt[i] = d;
        let y = 0, ym = 0;
        for (let n = 0; n < N; n++) {
          const e = Math.exp(d * a.A[c * N + n]);
          const bt = a.B[(b * T + t) * N + n], ct = a.C[(b * T + t) * N + n];
          const hp = h[((b * Di + c) * (T + 1) + t) * N + n];
          const hn = e * hp + d * bt * a.u[i];
          h[((b * Di + c) * (T + 1) + t + 1) * N + n] = hn;
          hm[n] = e * hm[n] + Math.abs(d * bt * a.u[i]);
          y += ct * hn;
          ym += Math.abs(ct) * hm[n];
        }
        if (a.D) {
          y += a.D[c] * a.u[i];
          ym += Math.abs(a.D[c] * a.u[i]);
        }
        yPre[i] = y;
        const gate = a.z ? siluRef(a.z[i]) : 1;
        out[i] = y * gate;
        mag[i] = ym * Math.abs(gate) + Math.abs(out[i]);
      }
    }
  }
  return { y: out, mag, yPre, h, dlt };
}

/** All gradients of selectiveScanRef for upstream dout (B, T, Di), by reverse-mode in float64. */
export function selectiveScanBackwardRef(dout: ArrayLike<number>, a: ScanRefArgs, q: ScanDims) {
  const { batch, seqlen: T, channels: Di, dstate: N } = q;
  const f = selectiveScanRef(a, q);
  const r = (n: number) => ({ y: new Float64Array(n), mag: new Float64Array(n) });
  const g = {
    du: r(batch * T * Di),
    ddelta: r(batch * T * Di),
    dA: r(Di * N),
    dB: r(batch * T * N),
    dC: r(batch * T * N),
    dD: r(Di),
    dz: r(batch * T * Di),
    ddeltaBias: r(Di),
  };
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < Di; c++) {
      const dh = new Float64Array(N), dhm = new Float64Array(N);
      for (let t = T - 1; t >= 0; t--) {
        const i = (b * T + t) * Di + c, d = f.dlt[i], ut = a.u[i];
        let dy = dout[i], dym = Math.abs(dout[i]);
        if (a.z) {
          g.dz.y[i] = dout[i] * f.yPre[i] * siluGradRef(a.z[i]);
          g.dz.mag[i] = Math.abs(g.dz.y[i]) * 4 + dym * f.mag[i];
          dy = dout[i] * siluRef(a.z[i]);
          dym = Math.abs(dy) * 2;
        }
        let du = 0, dum = 0, dd = 0, ddm = 0;
        if (a.D) {
          g.dD.y[c] += dy * ut;
          g.dD.mag[c] += dym * Math.abs(ut);
          du = dy * a.D[c];
          dum = dym * Math.abs(a.D[c]);
        }
        for (let n = 0; n < N; n++) {
          const an = a.A[c * N + n], e = Math.exp(d * an);
          const bt = a.B[(b * T + t) * N + n], ct = a.C[(b * T + t) * N + n];
          const hp = f.h[((b * Di + c) * (T + 1) + t) * N + n];
          const hn = f.h[((b * Di + c) * (T + 1) + t + 1) * N + n];
          g.dC.y[(b * T + t) * N + n] += dy * hn;
          g.dC.mag[(b * T + t) * N + n] += dym * Math.abs(hn) * 2;
          dh[n] += dy * ct;
          dhm[n] += dym * Math.abs(ct);
          dd += dh[n] * (an * e * hp + bt * ut);
          ddm += dhm[n] * (Math.abs(an * e * hp) + Math.abs(bt * ut));
          g.dA.y[c * N + n] += dh[n] * d * e * hp;
          g.dA.mag[c * N + n] += dhm[n] * Math.abs(d * e * hp);
          g.dB.y[(b * T + t) * N + n] += dh[n] * d * ut;
          g.dB.mag[(b * T + t) * N + n] += dhm[n] * Math.abs(d * ut);
          du += dh[n] * d * bt;
          dum += dhm[n] * Math.abs(d * bt);
          dh[n] *= e;
          dhm[n] *= e;
        }
        const pre = a.delta[i] + (a.deltaBias ? a.deltaBias[c] : 0);
        const sp = q.deltaSoftplus && pre <= 20 ? sigmoidRef(pre) : 1;
        g.ddelta.y[i] = dd * sp;
        g.ddelta.mag[i] = ddm * sp;
        g.ddeltaBias.y[c] += dd * sp;
        g.ddeltaBias.mag[c] += ddm * sp;
        g.du.y[i] = du;
        g.du.mag[i] = dum;
      }
    }
  }
  return g;
}

// ---- convolution module and CNN front end (CONMAMBA_SPEC.md 4.2, 4.6) ---------------------------

/** y = a sigmoid(g) with x rows [a | g] of width 2 d; and dx for upstream dy. */
export function gluRef(x: ArrayLike<number>, dy: ArrayLike<number>, rows: number, d: number) {
  const y = new Float64Array(rows * d), dx = new Float64Array(rows * 2 * d);
  const dxMag = new Float64Array(rows * 2 * d);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < d; j++) {
      const a = x[r * 2 * d + j], s = sigmoidRef(x[r * 2 * d + d + j]), g = dy[r * d + j];
      y[r * d + j] = a * s;
      dx[r * 2 * d + j] = g * s;
      dx[r * 2 * d + d + j] = g * a * s * (1 - s);
      dxMag[r * 2 * d + j] = Math.abs(g * s);
      // 1 - s cancels as s -> 1: its rounding is U absolute, so the scale is |g a| s, not the result
      dxMag[r * 2 * d + d + j] = Math.abs(g * a) * s;
    }
  }
  return { y: { y, mag: y.map(Math.abs) }, dx: { y: dx, mag: dxMag } };
}

const reflectRef = (i: number, n: number) => i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;

export interface Conv2dDims {
  batch: number;
  time: number;
  freq: number;
  cin: number;
  cout: number;
}

/**
 * Conv2d 3x3 stride 2, reflect padding 1, bias: y[b, t', f', co] = bias[co] + sum over ci, kf, kt
 * of w[co, ci, kf, kt] x[b, r(2t' - 1 + kt), r(2f' - 1 + kf), ci]; x (B, T, F, Cin) channels
 * last; w (Cout, Cin, k_freq, k_time).
 */
export function conv2dRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  bias: ArrayLike<number>,
  q: Conv2dDims,
) {
  const to = Math.floor((q.time - 1) / 2) + 1, fo = Math.floor((q.freq - 1) / 2) + 1;
  const n = q.batch * to * fo * q.cout, y = new Float64Array(n), mag = new Float64Array(n);
  const xi = (b: number, t: number, f: number, c: number) =>
    ((b * q.time + reflectRef(t, q.time)) * q.freq + reflectRef(f, q.freq)) * q.cin + c;
  for (let b = 0; b < q.batch; b++) {
    for (let t = 0; t < to; t++) {
      for (let f = 0; f < fo; f++) {
        for (let co = 0; co < q.cout; co++) {
          let s = bias[co], abs = Math.abs(bias[co]);
          for (let ci = 0; ci < q.cin; ci++) {
            for (let kf = 0; kf < 3; kf++) {
              for (let kt = 0; kt < 3; kt++) {
                const v = w[((co * q.cin + ci) * 3 + kf) * 3 + kt] *
                  x[xi(b, 2 * t - 1 + kt, 2 * f - 1 + kf, ci)];
                s += v;
                abs += Math.abs(v);
              }
            }
          }
          const o = ((b * to + t) * fo + f) * q.cout + co;
          y[o] = s;
          mag[o] = abs;
        }
      }
    }
  }
  return { y, mag, to, fo, xi };
}

/** Gradients of conv2dRef for upstream dy (B, T', F', Cout). */
export function conv2dBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  q: Conv2dDims,
) {
  const { to, fo, xi } = conv2dRef(x, w, new Float64Array(q.cout), q);
  const r = (n: number) => ({ y: new Float64Array(n), mag: new Float64Array(n) });
  const dx = r(x.length), dw = r(w.length), dbias = r(q.cout);
  for (let b = 0; b < q.batch; b++) {
    for (let t = 0; t < to; t++) {
      for (let f = 0; f < fo; f++) {
        for (let co = 0; co < q.cout; co++) {
          const g = dy[((b * to + t) * fo + f) * q.cout + co];
          dbias.y[co] += g;
          dbias.mag[co] += Math.abs(g);
          for (let ci = 0; ci < q.cin; ci++) {
            for (let kf = 0; kf < 3; kf++) {
              for (let kt = 0; kt < 3; kt++) {
                const wi = ((co * q.cin + ci) * 3 + kf) * 3 + kt;
                const i = xi(b, 2 * t - 1 + kt, 2 * f - 1 + kf, ci);
                dx.y[i] += g * w[wi];
                dx.mag[i] += Math.abs(g * w[wi]);
                dw.y[wi] += g * x[i];
                dw.mag[wi] += Math.abs(g * x[i]);
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw, dbias };
}

// ---- losses (CONMAMBA_SPEC.md 7.1-7.2) -----------------------------------------------------

const lse = (a: number, b: number) => {
  const m = Math.max(a, b);
  return m === -Infinity ? -Infinity : m + Math.log(Math.exp(a - m) + Math.exp(b - m));
};

/**
 * CTC negative log-likelihood of one utterance by the plain alpha recursion over the lattice
 * (blank, y1, blank, ..., yS, blank). lp (T, V) log-probabilities.
 */
export function ctcNllRef(
  lp: ArrayLike<number>,
  vocab: number,
  frames: number,
  labels: readonly number[],
  blank = 0,
): number {
  const ext = [blank];
  for (const l of labels) ext.push(l, blank);
  let alpha = ext.map((_, s) => (s < 2 && frames > 0 ? lp[ext[s]] : -Infinity));
  if (frames === 0) return labels.length === 0 ? 0 : Infinity;
  for (let t = 1; t < frames; t++) {
    alpha = ext.map((l, s) => {
      let a = alpha[s];
      if (s >= 1) a = lse(a, alpha[s - 1]);
      if (s >= 2 && l !== blank && l !== ext[s - 2]) a = lse(a, alpha[s - 2]);
      return a + lp[t * vocab + l];
    });
  }
  const L = ext.length;
  return -(L >= 2 ? lse(alpha[L - 1], alpha[L - 2]) : alpha[L - 1]);
}

/** sum_k q(k) (log q(k) - lp[k]) for one position; q smoothed as CONMAMBA_SPEC.md 7.2. */
export function smoothedNllRef(lp: ArrayLike<number>, target: number, eps: number): number {
  const V = lp.length;
  let s = 0;
  for (let k = 0; k < V; k++) {
    const q = k === target ? 1 - eps : eps / (V - 1);
    if (q > 0) s += q * (Math.log(q) - lp[k]);
  }
  return s;
}

// ---- Adam (PyTorch 2.0.1 _single_tensor_adam / adamw, CONMAMBA_SPEC.md 8.1) -------------------

/** One Adam(W) update in float64, in place on p, m, v. */
export function adamRef(
  p: Float64Array,
  g: ArrayLike<number>,
  m: Float64Array,
  v: Float64Array,
  o: {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    decoupled: boolean;
    step: number;
  },
): void {
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (o.decoupled) p[i] *= 1 - o.lr * o.weightDecay;
    else gi += o.weightDecay * p[i];
    m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
    v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
    const mHat = m[i] / (1 - o.beta1 ** o.step), vHat = v[i] / (1 - o.beta2 ** o.step);
    p[i] -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
  }
}

// ---- embedding, attention, reductions (CONMAMBA_SPEC.md 4.10-4.14) -----------------------------

/** dtable[v, k] = sum of dy[r, k] over the rows r with ids[r] = v; mag: the sum of |terms|. */
export function embeddingBackwardRef(
  ids: ArrayLike<number>,
  dy: ArrayLike<number>,
  vocab: number,
  d: number,
): Result {
  const y = new Float64Array(vocab * d), mag = new Float64Array(vocab * d);
  for (let r = 0; r < ids.length; r++) {
    for (let k = 0; k < d; k++) {
      y[ids[r] * d + k] += dy[r * d + k];
      mag[ids[r] * d + k] += Math.abs(dy[r * d + k]);
    }
  }
  return { y, mag };
}

export interface AttnRefMask {
  batch: number;
  heads: number;
  tq: number;
  s: number;
  scale: number;
  causal: boolean;
  keyLengths?: ArrayLike<number> | null; // (B)
  keyMask?: ArrayLike<number> | null; // (B, S)
}

/** softmax_j(scale x + mask) over unmasked keys, 0 at masked ones and in fully masked rows. */
export function attnSoftmaxRef(x: ArrayLike<number>, q: AttnRefMask): Result {
  const { batch, heads, tq, s } = q, y = new Float64Array(batch * heads * tq * s);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        const row = ((b * heads + h) * tq + i) * s;
        const v = new Float64Array(s).fill(-Infinity);
        for (let j = 0; j < s; j++) {
          const masked = (q.causal && j > i) || (q.keyLengths && j >= q.keyLengths[b]);
          if (!masked) v[j] = q.scale * x[row + j] + (q.keyMask ? q.keyMask[b * s + j] : 0);
        }
        const max = Math.max(...v);
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < s; j++) sum += Math.exp(v[j] - max);
        for (let j = 0; j < s; j++) y[row + j] = Math.exp(v[j] - max) / sum;
      }
    }
  }
  return { y, mag: y.map(Math.abs) };
}

/** y[n, i, j] = x[n, i, S - 1 - i + j]; x (N, S, 2S - 1). */
export function relShiftRef(x: ArrayLike<number>, n: number, s: number): F64 {
  const y = new Float64Array(n * s * s), w = 2 * s - 1;
  for (let m = 0; m < n; m++) {
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) y[(m * s + i) * s + j] = x[(m * s + i) * w + s - 1 - i + j];
    }
  }
  return y;
}

/**
 * Multi-head attention after the projections (nn.MultiheadAttention, CONMAMBA_SPEC.md 4.11):
 * q (B, Tq, H dh), k, v (B, S, H dh) -> (B, Tq, H dh), no dropout.
 */
export function attentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  m: AttnRefMask,
): F64 {
  const { batch, heads, tq, s } = m, d = q.length / (batch * tq), dh = d / heads;
  const scores = new Float64Array(batch * heads * tq * s);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        for (let j = 0; j < s; j++) {
          let acc = 0;
          for (let c = 0; c < dh; c++) {
            acc += q[(b * tq + i) * d + h * dh + c] * k[(b * s + j) * d + h * dh + c];
          }
          scores[((b * heads + h) * tq + i) * s + j] = acc;
        }
      }
    }
  }
  const p = attnSoftmaxRef(scores, m).y, out = new Float64Array(batch * tq * d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < tq; i++) {
        for (let c = 0; c < dh; c++) {
          let acc = 0;
          for (let j = 0; j < s; j++) {
            acc += p[((b * heads + h) * tq + i) * s + j] * v[(b * s + j) * d + h * dh + c];
          }
          out[(b * tq + i) * d + h * dh + c] = acc;
        }
      }
    }
  }
  return out;
}

/** y[o, k] = sum_i x[o, i, k] / divisor; mag: sum of |terms|. */
export function sumAxisRef(
  x: ArrayLike<number>,
  outer: number,
  n: number,
  inner: number,
  divisor: number,
): Result {
  const y = new Float64Array(outer * inner), mag = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < inner; k++) {
        y[o * inner + k] += x[(o * n + i) * inner + k] / divisor;
        mag[o * inner + k] += Math.abs(x[(o * n + i) * inner + k]) / divisor;
      }
    }
  }
  return { y, mag };
}
