/* Depthwise 1-D convolution over time on the GPU (wasm/conv1d_depthwise.c), one filter per
 * channel, zero outside [0, T):
 *   pre[b, t, c] = bias[c] + sum_j w[c, j] x[b, t - pad_left + j, c],   y = act(pre)
 * Mamba's causal conv (K 4, pad 3, SiLU fused: CONMAMBA_SPEC.md 4.7) and the convolution module's
 * 'same' conv (K 31, pad 15, no activation: 4.6). x and dx have row stride ld_x; y, dy and dpre
 * ld_y.
 *
 * Forward and the element-wise parts of the backward: one thread per (b, t, c), channels
 * innermost (coalesced). pre is one fixed chain of fused multiply-adds in order of j (explicit
 * __fmaf_rn), so the backward's recomputed pre has the forward's bits. The backward writes
 * dpre = dy silu'(pre) (dy itself without the activation), then dx[t] = sum_j w[j] dpre[t + pad - j]
 * (in order of j), then dw[c, j] and dbias[c]: one block per (32 channels, tap j or the bias),
 * 32 x 16 threads; thread (c, g) sums rows b, t = g, g + 16, ... (batch outer, time inner) and the
 * 16 partials are added in order of g: a fixed order, no atomics (deterministic; not the Wasm
 * kernel's sequential order, so the last bits may differ from it). `reverse` maps time t to row
 * T-1-t everywhere (conv_t): the flipped sequence's arithmetic, in its order. */
#include "common.cuh"

namespace {

struct Conv {
  int32_t batch, T, C, K, pad, rev, acc_dx;
  int64_t ld_x, ld_y;
};

Conv conv_of(const cm_conv1d_params* p) {
  return Conv{p->batch, p->seqlen, p->channels, p->kernel, p->pad_left, p->reverse ? 1 : 0,
              p->accumulate_dx ? 1 : 0, p->ld_x, p->ld_y};
}

/* Time t's row offset within a sequence: t, or T-1-t in reverse (the bits of flip, conv, flip:
 * every sum runs over the flipped sequence's times in their order). Its own inverse. */
__host__ __device__ inline int32_t conv_t(const Conv& g, int32_t t) { return g.rev ? g.T - 1 - t : t; }

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* bias + sum_j w[c, j] x[b, t - pad + j, c], terms in order of j */
__device__ inline float conv_pre(const Conv& g, const float* __restrict__ x,
                                 const float* __restrict__ w, const float* __restrict__ bias,
                                 int64_t b, int32_t t, int32_t c) {
  float o = bias ? bias[c] : 0.0f;
  const float* wc = w + (int64_t)c * g.K;
  for (int32_t j = 0; j < g.K; j++) {
    int32_t ts = t - g.pad + j;
    if (ts < 0 || ts >= g.T) continue;
    o = __fmaf_rn(wc[j], x[(b * g.T + conv_t(g, ts)) * g.ld_x + c], o);
  }
  return o;
}

__global__ void conv_forward_kernel(int64_t n, Conv g, int32_t act, const float* __restrict__ x,
                                    const float* __restrict__ w, const float* __restrict__ bias,
                                    float* __restrict__ y) {
  CM_FOR(i, n) {
    int32_t c = (int32_t)(i % g.C);
    int64_t bt = i / g.C; /* the output's row */
    int32_t t = conv_t(g, (int32_t)(bt % g.T));
    int64_t b = bt / g.T;
    float v = conv_pre(g, x, w, bias, b, t, c);
    if (act) v = v * sigmoid(v);
    y[bt * g.ld_y + c] = v;
  }
}

/* dpre = dy silu'(pre) = dy s (1 + pre (1 - s)), pre recomputed; dy without the activation */
__global__ void conv_dpre_kernel(int64_t n, Conv g, int32_t act, const float* __restrict__ x,
                                 const float* __restrict__ w, const float* __restrict__ bias,
                                 const float* __restrict__ dy, float* __restrict__ dpre) {
  CM_FOR(i, n) {
    int32_t c = (int32_t)(i % g.C);
    int64_t bt = i / g.C;
    int64_t o = bt * g.ld_y + c;
    if (act) {
      int32_t t = conv_t(g, (int32_t)(bt % g.T));
      int64_t b = bt / g.T;
      float v = conv_pre(g, x, w, bias, b, t, c), s = sigmoid(v);
      dpre[o] = dy[o] * (s * (1.0f + v * (1.0f - s)));
    } else {
      dpre[o] = dy[o];
    }
  }
}

/* dx[b, t, c] = sum_j w[c, j] dpre[b, t + pad - j, c], terms in order of j */
__global__ void conv_dx_kernel(int64_t n, Conv g, const float* __restrict__ w,
                               const float* __restrict__ dpre, float* __restrict__ dx) {
  CM_FOR(i, n) {
    int32_t c = (int32_t)(i % g.C);
    int64_t bt = i / g.C;
    int32_t t = conv_t(g, (int32_t)(bt % g.T));
    int64_t b = bt / g.T;
    const float* wc = w + (int64_t)c * g.K;
    float o = 0.0f;
    for (int32_t j = 0; j < g.K; j++) {
      int32_t tt = t + g.pad - j;
      if (tt < 0 || tt >= g.T) continue;
      o = __fmaf_rn(wc[j], dpre[(b * g.T + conv_t(g, tt)) * g.ld_y + c], o);
    }
    float* d = dx + bt * g.ld_x + c;
    *d = g.acc_dx ? __fadd_rn(*d, o) : o; /* a separate add's bits */
  }
}

constexpr int DW_GROUPS = 16;

/* blockIdx.x: 32 channels; blockIdx.y: tap j (j == K: the bias). Block (32, DW_GROUPS). */
__global__ void __launch_bounds__(32 * DW_GROUPS)
    conv_dw_kernel(Conv g, const float* __restrict__ x, const float* __restrict__ dpre,
                   float* __restrict__ dw, float* __restrict__ dbias) {
  __shared__ float part[DW_GROUPS][32];
  int32_t cx = threadIdx.x, grp = threadIdx.y;
  int32_t c = blockIdx.x * 32 + cx, j = blockIdx.y;
  float acc = 0.0f;
  if (c < g.C) {
    for (int32_t b = 0; b < g.batch; b++) {
      const float* gp = dpre + (int64_t)b * g.T * g.ld_y + c;
      const float* xp = x + (int64_t)b * g.T * g.ld_x + c;
      if (j == g.K) {
        for (int32_t t = grp; t < g.T; t += DW_GROUPS) acc += gp[(int64_t)conv_t(g, t) * g.ld_y];
      } else {
        /* the t whose tap j reads inside [0, T): 0 <= t - pad + j < T */
        int32_t lo = g.pad - j > 0 ? g.pad - j : 0;
        int32_t hi = g.T + g.pad - j < g.T ? g.T + g.pad - j : g.T;
        int32_t t = grp;
        if (t < lo) t += (lo - t + DW_GROUPS - 1) / DW_GROUPS * DW_GROUPS;
        for (; t < hi; t += DW_GROUPS)
          acc = __fmaf_rn(gp[(int64_t)conv_t(g, t) * g.ld_y],
                          xp[(int64_t)conv_t(g, t - g.pad + j) * g.ld_x], acc);
      }
    }
  }
  part[grp][cx] = acc;
  __syncthreads();
  if (grp == 0 && c < g.C) {
    float s = 0.0f;
    for (int k = 0; k < DW_GROUPS; k++) s += part[k][cx];
    if (j == g.K) {
      if (dbias) dbias[c] = s;
    } else {
      dw[(int64_t)c * g.K + j] = s;
    }
  }
}

}  // namespace

void cm_conv1d_depthwise_forward(const cm_conv1d_params* p, const float* x, const float* w,
                                 const float* bias, float* y) {
  Conv g = conv_of(p);
  int64_t n = (int64_t)g.batch * g.T * g.C;
  if (g.batch <= 0 || g.T <= 0 || g.C <= 0) return;
  conv_forward_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, g, p->activation, x, w, bias, y);
  CM_CHECK_LAUNCH("conv1d_depthwise_forward");
}

void cm_conv1d_depthwise_backward(const cm_conv1d_params* p, const float* x, const float* w,
                                  const float* bias, const float* dy, float* dpre, float* dx,
                                  float* dw, float* dbias) {
  Conv g = conv_of(p);
  if (g.C <= 0) return;
  int64_t n = (int64_t)(g.batch > 0 ? g.batch : 0) * (g.T > 0 ? g.T : 0) * g.C;
  if (n > 0) {
    conv_dpre_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, g, p->activation, x, w, bias,
                                                                 dy, dpre);
    CM_CHECK_LAUNCH("conv1d_depthwise_backward");
    conv_dx_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, g, w, dpre, dx);
    CM_CHECK_LAUNCH("conv1d_depthwise_backward");
  }
  /* dw and dbias are written even for an empty batch (zeros), as the Wasm kernel does */
  if (g.batch < 0) g.batch = 0;
  if (g.T < 0) g.T = 0;
  int32_t K = g.K > 0 ? g.K : 0;
  g.K = K;
  dim3 grid((unsigned)((g.C + 31) / 32), (unsigned)(K + 1));
  conv_dw_kernel<<<grid, dim3(32, DW_GROUPS), 0, cm_stream()>>>(g, x, dpre, dw, dbias);
  CM_CHECK_LAUNCH("conv1d_depthwise_backward");
}
