/* Depthwise 1-D convolution over time, one filter per channel, zero outside [0, T):
 *   pre[b, t, c] = bias[c] + sum_j w[c, j] x[b, t - pad_left + j, c],  y = act(pre)
 * Mamba's causal conv (K 4, pad 3, SiLU fused: CONMAMBA_SPEC.md 4.7) and the convolution module's
 * 'same' conv (K 31, pad 15, no activation: 4.6). Channels are the innermost loop, four lanes at
 * a time (contiguous, and vectorised without reordering any sum), over blocks of channels whose
 * filters are first transposed to (K, block) so that tap j of the block is contiguous too; each
 * element's arithmetic is fixed whatever the channel split. `reverse` runs time backwards
 * (conv_row). */
#include "../ffi/ops.h"
#include "mathf_simd.h"

/* The row of time t of sequence b: t, or T-1-t in reverse (BiMamba's backward direction
 * convolved in place: every operation as on the flipped sequence, the bits of flip, conv, flip). */
static inline int64_t conv_row(const cm_conv1d_params* p, int32_t b, int32_t t) {
  return (int64_t)b * p->seqlen + (p->reverse ? p->seqlen - 1 - t : t);
}

/* Channels per block: the transposed filters (and dw's partial sums) of a block fill 16 KiB. */
static inline int32_t block_channels(int32_t K) {
  int32_t cb = (4096 / K) & ~3;
  return cb < 4 ? 4 : cb > 256 ? 256 : cb;
}

/* wt[j * cn + c] = w[(c0 + c) * K + j] */
static void transpose_filters(const float* w, int32_t c0, int32_t cn, int32_t K, float* wt) {
  for (int32_t c = 0; c < cn; c++)
    for (int32_t j = 0; j < K; j++) wt[(int64_t)j * cn + c] = w[(int64_t)(c0 + c) * K + j];
}

/* o[c] += w[c] s[c] for c < cn */
static inline void axpy(float* o, const float* w, const float* s, int32_t cn) {
  int32_t c = 0;
  for (; c + 4 <= cn; c += 4) {
    v128_t v = wasm_f32x4_mul(wasm_v128_load(w + c), wasm_v128_load(s + c));
    wasm_v128_store(o + c, wasm_f32x4_add(wasm_v128_load(o + c), v));
  }
  for (; c < cn; c++) o[c] += w[c] * s[c];
}

/* pre (row stride ld_out) = bias + sum_j w[., j] x[t - pad + j], terms in order of j */
static void conv_pre(const cm_conv1d_params* p, const float* x, const float* w, const float* bias,
                     float* out, int32_t ld_out) {
  int32_t T = p->seqlen, K = p->kernel, nc = p->channels, cb = block_channels(K);
  float wt[K * cb];
  for (int32_t c0 = 0; c0 < nc; c0 += cb) {
    int32_t cn = nc - c0 < cb ? nc - c0 : cb;
    transpose_filters(w, c0, cn, K, wt);
    for (int32_t b = 0; b < p->batch; b++) {
      for (int32_t t = 0; t < T; t++) {
        float* o = out + conv_row(p, b, t) * ld_out + c0;
        for (int32_t c = 0; c < cn; c++) o[c] = bias ? bias[c0 + c] : 0.0f;
        for (int32_t j = 0; j < K; j++) {
          int32_t ts = t - p->pad_left + j;
          if (ts < 0 || ts >= T) continue;
          axpy(o, wt + (int64_t)j * cn, x + conv_row(p, b, ts) * p->ld_x + c0, cn);
        }
      }
    }
  }
}

void cm_conv1d_depthwise_forward(const cm_conv1d_params* p, const float* x, const float* w,
                                 const float* bias, float* y) {
  conv_pre(p, x, w, bias, y, p->ld_y);
  if (!p->activation) return;
  for (int64_t r = 0; r < (int64_t)p->batch * p->seqlen; r++) {
    float* yr = y + r * p->ld_y;
    int32_t c = 0;
    for (; c + 4 <= p->channels; c += 4) { /* SiLU, cm_sigmoidf's bits on each lane */
      v128_t v = wasm_v128_load(yr + c);
      wasm_v128_store(yr + c, wasm_f32x4_mul(v, cm_sigmoidf_v(v)));
    }
    for (; c < p->channels; c++) yr[c] = yr[c] * cm_sigmoidf(yr[c]);
  }
}

void cm_conv1d_depthwise_backward(const cm_conv1d_params* p, const float* x, const float* w,
                                  const float* bias, const float* dy, float* dpre, float* dx,
                                  float* dw, float* dbias) {
  int32_t T = p->seqlen, K = p->kernel, nc = p->channels, cb = block_channels(K);
  int64_t rows = (int64_t)p->batch * T;
  if (p->activation) { /* dpre = dy silu'(pre), pre recomputed */
    conv_pre(p, x, w, bias, dpre, p->ld_y);
    v128_t one = wasm_f32x4_splat(1.0f);
    for (int64_t r = 0; r < rows; r++) {
      float* g = dpre + r * p->ld_y;
      const float* dyr = dy + r * p->ld_y;
      int32_t c = 0;
      for (; c + 4 <= nc; c += 4) {
        v128_t v = wasm_v128_load(g + c), s = cm_sigmoidf_v(v);
        v128_t d = wasm_f32x4_mul(s, wasm_f32x4_add(one, wasm_f32x4_mul(v, wasm_f32x4_sub(one, s))));
        wasm_v128_store(g + c, wasm_f32x4_mul(wasm_v128_load(dyr + c), d));
      }
      for (; c < nc; c++) {
        float s = cm_sigmoidf(g[c]);
        g[c] = dyr[c] * (s * (1.0f + g[c] * (1.0f - s)));
      }
    }
  } else {
    for (int64_t r = 0; r < rows; r++) {
      for (int32_t c = 0; c < nc; c++) dpre[r * p->ld_y + c] = dy[r * p->ld_y + c];
    }
  }
  float wt[K * cb], dwt[K * cb];
  for (int32_t c0 = 0; c0 < nc; c0 += cb) {
    int32_t cn = nc - c0 < cb ? nc - c0 : cb;
    transpose_filters(w, c0, cn, K, wt);
    /* dx[t] = sum_j w[j] dpre[t + pad - j], terms in order of j (into dwt as a row buffer when
     * accumulating: dx + the whole sum, a separate add's bits) */
    for (int32_t b = 0; b < p->batch; b++) {
      for (int32_t t = 0; t < T; t++) {
        float* d = dx + conv_row(p, b, t) * p->ld_x + c0;
        float* o = p->accumulate_dx ? dwt : d;
        for (int32_t c = 0; c < cn; c++) o[c] = 0.0f;
        for (int32_t j = 0; j < K; j++) {
          int32_t tt = t + p->pad_left - j;
          if (tt < 0 || tt >= T) continue;
          axpy(o, wt + (int64_t)j * cn, dpre + conv_row(p, b, tt) * p->ld_y + c0, cn);
        }
        if (p->accumulate_dx)
          for (int32_t c = 0; c < cn; c++) d[c] = d[c] + o[c];
      }
    }
    /* dw[c, j] = sum over b, then t, of dpre[b, t, c] x[b, t - pad + j, c]; dbias likewise */
    float* db = dbias + c0;
    for (int32_t c = 0; c < cn; c++) db[c] = 0.0f;
    for (int64_t i = 0; i < (int64_t)K * cn; i++) dwt[i] = 0.0f;
    for (int32_t b = 0; b < p->batch; b++) {
      for (int32_t t = 0; t < T; t++) {
        const float* g = dpre + conv_row(p, b, t) * p->ld_y + c0;
        int32_t c = 0;
        for (; c + 4 <= cn; c += 4)
          wasm_v128_store(db + c, wasm_f32x4_add(wasm_v128_load(db + c), wasm_v128_load(g + c)));
        for (; c < cn; c++) db[c] += g[c];
        for (int32_t j = 0; j < K; j++) {
          int32_t ts = t - p->pad_left + j;
          if (ts < 0 || ts >= T) continue;
          axpy(dwt + (int64_t)j * cn, g, x + conv_row(p, b, ts) * p->ld_x + c0, cn);
        }
      }
    }
    for (int32_t c = 0; c < cn; c++)
      for (int32_t j = 0; j < K; j++) dw[(int64_t)(c0 + c) * K + j] = dwt[(int64_t)j * cn + c];
  }
}
