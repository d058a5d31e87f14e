/* Depthwise 1-D convolution over time, one filter per channel, zero outside [0, T):
 *   pre[b, t, c] = bias[c] + sum_j w[c, j] x[b, t - pad_left + j, c],  y = act(pre)
 * Mamba's causal conv (K 4, pad 3, SiLU fused: CONMAMBA_SPEC.md 4.7) and the convolution module's
 * 'same' conv (K 31, pad 15, no activation: 4.6). Channels are the innermost loop (contiguous, and
 * vectorisable without reordering any sum), so each element's arithmetic is fixed whatever the
 * channel split. */
#include "../ffi/ops.h"
#include "mathf.h"

/* pre (row stride ld_out) = bias + sum_j w[., j] x[t - pad + j], terms in order of j */
static void conv_pre(const cm_conv1d_params* p, const float* x, const float* w, const float* bias,
                     float* out, int32_t ld_out) {
  int32_t T = p->seqlen, K = p->kernel, nc = p->channels;
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      float* o = out + ((int64_t)b * T + t) * ld_out;
      for (int32_t c = 0; c < nc; c++) o[c] = bias ? bias[c] : 0.0f;
      for (int32_t j = 0; j < K; j++) {
        int32_t ts = t - p->pad_left + j;
        if (ts < 0 || ts >= T) continue;
        const float* xs = x + ((int64_t)b * T + ts) * p->ld_x;
        for (int32_t c = 0; c < nc; c++) o[c] += w[(int64_t)c * K + j] * xs[c];
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
    for (int32_t c = 0; c < p->channels; c++) yr[c] = yr[c] * cm_sigmoidf(yr[c]); /* SiLU */
  }
}

void cm_conv1d_depthwise_backward(const cm_conv1d_params* p, const float* x, const float* w,
                                  const float* bias, const float* dy, float* dpre, float* dx,
                                  float* dw, float* dbias) {
  int32_t T = p->seqlen, K = p->kernel, nc = p->channels;
  int64_t rows = (int64_t)p->batch * T;
  if (p->activation) { /* dpre = dy silu'(pre), pre recomputed */
    conv_pre(p, x, w, bias, dpre, p->ld_y);
    for (int64_t r = 0; r < rows; r++) {
      float* g = dpre + r * p->ld_y;
      const float* dyr = dy + r * p->ld_y;
      for (int32_t c = 0; c < nc; c++) {
        float s = cm_sigmoidf(g[c]);
        g[c] = dyr[c] * (s * (1.0f + g[c] * (1.0f - s)));
      }
    }
  } else {
    for (int64_t r = 0; r < rows; r++) {
      for (int32_t c = 0; c < nc; c++) dpre[r * p->ld_y + c] = dy[r * p->ld_y + c];
    }
  }
  /* dx[t] = sum_j w[j] dpre[t + pad - j], terms in order of j */
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      float* o = dx + ((int64_t)b * T + t) * p->ld_x;
      for (int32_t c = 0; c < nc; c++) o[c] = 0.0f;
      for (int32_t j = 0; j < K; j++) {
        int32_t tt = t + p->pad_left - j;
        if (tt < 0 || tt >= T) continue;
        const float* g = dpre + ((int64_t)b * T + tt) * p->ld_y;
        for (int32_t c = 0; c < nc; c++) o[c] += w[(int64_t)c * K + j] * g[c];
      }
    }
  }
  /* dw[c, j] = sum over b, then t, of dpre[b, t, c] x[b, t - pad + j, c]; dbias likewise */
  for (int32_t c = 0; c < nc; c++) {
    dbias[c] = 0.0f;
    for (int32_t j = 0; j < K; j++) dw[(int64_t)c * K + j] = 0.0f;
  }
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      const float* g = dpre + ((int64_t)b * T + t) * p->ld_y;
      for (int32_t c = 0; c < nc; c++) dbias[c] += g[c];
      for (int32_t j = 0; j < K; j++) {
        int32_t ts = t - p->pad_left + j;
        if (ts < 0 || ts >= T) continue;
        const float* xs = x + ((int64_t)b * T + ts) * p->ld_x;
        for (int32_t c = 0; c < nc; c++) dw[(int64_t)c * K + j] += g[c] * xs[c];
      }
    }
  }
}
