/* LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16: biased variance, eps inside the root).
 * Row sums use four f32 lanes combined in a fixed order, so results are the same bits however the
 * rows are split across threads. */
#include "../ffi/ops.h"
#include "bf16_simd.h"
#include "chunk_sums.h"
#include "simd.h"

/* sum_j x[j], four interleaved partial sums then the tail */
static float row_sum(const float* x, int32_t n) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  int32_t j = 0;
  for (; j + 4 <= n; j += 4) acc = wasm_f32x4_add(acc, wasm_v128_load(x + j));
  float s = cm_hsum(acc);
  for (; j < n; j++) s += x[j];
  return s;
}

/* sum_j (x[j] - mean)^2 */
static float row_sq_dev(const float* x, int32_t n, float mean) {
  v128_t acc = wasm_f32x4_splat(0.0f), m = wasm_f32x4_splat(mean);
  int32_t j = 0;
  for (; j + 4 <= n; j += 4) {
    v128_t d = wasm_f32x4_sub(wasm_v128_load(x + j), m);
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(d, d));
  }
  float s = cm_hsum(acc);
  for (; j < n; j++) s += (x[j] - mean) * (x[j] - mean);
  return s;
}

/* One row of the forward: mean, rstd, and y (float32, or packed bf16 when yr16 is given). */
static void ln_forward_row(const float* xr, int32_t d, const float* gamma, const float* beta,
                           float eps, float* yr, uint16_t* yr16, float* mean, float* rstd) {
  float mu = row_sum(xr, d) / (float)d;
  float rs = 1.0f / __builtin_sqrtf(row_sq_dev(xr, d, mu) / (float)d + eps);
  *mean = mu;
  *rstd = rs;
  v128_t m = wasm_f32x4_splat(mu), s = wasm_f32x4_splat(rs);
  int32_t j = 0;
  for (; j + 4 <= d; j += 4) {
    /* y[j] = (x[j] - mu) * rs * gamma[j] + beta[j] */
    v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), m), s);
    cm_store_lanes(yr, yr16, j,
                   wasm_f32x4_add(wasm_f32x4_mul(xhat, wasm_v128_load(gamma + j)),
                                  wasm_v128_load(beta + j)),
                   4);
  }
  for (; j < d; j++) cm_store_f32_or_bf16(yr, yr16, j, (xr[j] - mu) * rs * gamma[j] + beta[j]);
}

void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma,
                          const float* beta, float* y, float* mean, float* rstd) {
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: y rounded to packed bf16 */
  for (int32_t r = 0; r < p->rows; r++) {
    const int64_t o = (int64_t)r * p->ld;
    ln_forward_row(x + o, p->cols, gamma, beta, p->eps, y16 ? 0 : y + o, y16 ? y16 + o : 0,
                   mean + r, rstd + r);
  }
}

/* Per row: s = dropout_add(x, y) (cm_dropout_add itself on the row, mask indices from
 * (row0 + r) cols), then the LayerNorm of s as cm_layernorm_forward computes it, while the row is
 * in cache. */
void cm_dropout_add_layernorm(const cm_add_ln_params* p, const float* x, const float* y,
                              const float* gamma, const float* beta, float* s, float* ln,
                              float* mean, float* rstd) {
  uint16_t* ln16 = p->y_bf16 ? (uint16_t*)ln : 0; /* y_bf16: ln rounded to packed bf16 */
  for (int32_t r = 0; r < p->rows; r++) {
    const int64_t o = (int64_t)r * p->ld;
    const cm_dropout_add_params dp = {p->cols, p->p, p->alpha, p->seed, p->stream,
                                      (p->row0 + r) * p->cols};
    cm_dropout_add(&dp, x + o, y + o, s + o);
    ln_forward_row(s + o, p->cols, gamma, beta, p->eps, ln16 ? 0 : ln + o, ln16 ? ln16 + o : 0,
                   mean + r, rstd + r);
  }
}

typedef struct {
  const cm_ln_backward_params* p;
  const float *x, *gamma, *mean, *rstd, *dy;
  float* dx;
} ln_rows;

/* One row of the backward: dx (+)= rstd (g - a - xhat b), a = mean_j g[j], b = mean_j g[j] xhat[j],
 * g = dy gamma; and the row's parameter-gradient terms added to the group sums gsum (dy xhat in
 * the first cols, dy in the next), each term rounded as in the op table's doc. */
static void ln_backward_row(const void* ctx, int64_t first, int64_t r, float* gsum) {
  (void)first;
  const ln_rows* q = ctx;
  const int32_t d = q->p->cols;
  const float *xr = q->x + r * q->p->ld, *gr = q->dy + r * q->p->ld, *gamma = q->gamma;
  float* dxr = q->dx + r * q->p->ld;
  const float mu = q->mean[r], rs = q->rstd[r];
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int32_t j = 0; j < d; j++) {
    float g = gr[j] * gamma[j];
    sum_g += g;
    sum_gx += g * ((xr[j] - mu) * rs);
  }
  float a = sum_g / (float)d, b = sum_gx / (float)d;
  for (int32_t j = 0; j < d; j++) {
    float xhat = (xr[j] - mu) * rs;
    float v = rs * (gr[j] * gamma[j] - a - xhat * b);
    dxr[j] = q->p->accumulate ? dxr[j] + v : v;
    if (gsum) {
      gsum[j] += gr[j] * xhat;
      gsum[d + j] += gr[j];
    }
  }
}

/* Row by row over this call's chunks; part (chunks, 2, cols): each chunk's sums of dy xhat and of
 * dy in the op table's order (wasm/chunk_sums.h; the CUDA kernel's warps, one per group, give the
 * same bits). */
void cm_layernorm_backward(const cm_ln_backward_params* p, const float* x, const float* gamma,
                           const float* mean, const float* rstd, const float* dy, float* dx,
                           float* part) {
  const ln_rows q = {p, x, gamma, mean, rstd, dy, dx};
  cm_rows_with_sums(p->rows, 2 * p->cols, p->chunk_rows, p->chunks, p->chunk0, part,
                    ln_backward_row, &q);
}
