/* Attention pieces: the masked, scaled softmax over keys (causal, key lengths, an additive key
 * mask) with its backward, and RelPosMHAXL's relative shift (CONMAMBA_SPEC.md 4.10-4.11). */
#include "../ffi/ops.h"
#include "mathf.h"

#define NEG_INF (-__builtin_inff())

/* Row r of the call: masked keys are -inf; returns the row's max (-inf when all are masked). */
static float masked_row(const cm_attn_params* p, int32_t r, const float* x, const float* lengths,
                        const float* key_mask, float* s) {
  int32_t g = p->row0 + r, S = p->cols;
  int32_t b = g / (p->heads * p->tq), i = g % p->tq;
  int32_t end = S;
  if (lengths) {
    float len = lengths[b];
    end = len < (float)S ? (len > 0.0f ? (int32_t)len : 0) : S;
  }
  if (p->causal && i + 1 < end) end = i + 1; /* keys j <= i */
  const float* km = key_mask ? key_mask + (int64_t)b * S : 0;
  float m = NEG_INF;
  for (int32_t j = 0; j < S; j++) {
    float v = j < end ? p->scale * x[j] + (km ? km[j] : 0.0f) : NEG_INF;
    s[j] = v;
    m = v > m ? v : m;
  }
  return m;
}

void cm_attn_softmax_forward(const cm_attn_params* p, const float* x, const float* key_lengths,
                             const float* key_mask, float* y) {
  int32_t S = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    float* yr = y + (int64_t)r * S;
    float m = masked_row(p, r, x + (int64_t)r * S, key_lengths, key_mask, yr);
    if (m == NEG_INF) { /* every key masked */
      for (int32_t j = 0; j < S; j++) yr[j] = 0.0f;
      continue;
    }
    float sum = 0.0f;
    for (int32_t j = 0; j < S; j++) sum += (yr[j] = yr[j] == NEG_INF ? 0.0f : cm_expf(yr[j] - m));
    for (int32_t j = 0; j < S; j++) yr[j] /= sum;
  }
}

void cm_attn_softmax_backward(const cm_attn_params* p, const float* y, const float* dy, float* dx) {
  int32_t S = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    const float *yr = y + (int64_t)r * S, *gr = dy + (int64_t)r * S;
    float* dxr = dx + (int64_t)r * S;
    float s = 0.0f; /* sum_j dy[j] y[j] */
    for (int32_t j = 0; j < S; j++) s += gr[j] * yr[j];
    for (int32_t j = 0; j < S; j++) dxr[j] = p->scale * (yr[j] * (gr[j] - s));
  }
}

void cm_rel_shift_forward(const cm_seq_params* p, const float* x, float* y) {
  int64_t S = p->seqlen, W = p->width;
  for (int32_t n = 0; n < p->batch; n++)
    for (int64_t i = 0; i < S; i++) {
      const float* src = x + (n * S + i) * W + (S - 1 - i); /* x[n, i, S - 1 - i + j] */
      float* dst = y + (n * S + i) * S;
      for (int64_t j = 0; j < S; j++) dst[j] = src[j];
    }
}

void cm_rel_shift_backward(const cm_seq_params* p, const float* dy, float* dx) {
  int64_t S = p->seqlen, W = p->width;
  for (int32_t n = 0; n < p->batch; n++)
    for (int64_t i = 0; i < S; i++) {
      const float* src = dy + (n * S + i) * S;
      float* row = dx + (n * S + i) * W;
      for (int64_t r = 0; r < S - 1 - i; r++) row[r] = 0.0f;
      for (int64_t j = 0; j < S; j++) row[S - 1 - i + j] = src[j];
      for (int64_t r = 2 * S - 1 - i; r < W; r++) row[r] = 0.0f;
    }
}
