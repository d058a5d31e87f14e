/* LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16: biased variance, eps inside the root).
 * Row sums use four f32 lanes combined in a fixed order, so results are the same bits however the
 * rows are split across threads. */
#include "../ffi/ops.h"
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

void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma,
                          const float* beta, float* y, float* mean, float* rstd) {
  int32_t d = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * p->ld;
    float* yr = y + (int64_t)r * p->ld;
    float mu = row_sum(xr, d) / (float)d;
    float rs = 1.0f / __builtin_sqrtf(row_sq_dev(xr, d, mu) / (float)d + p->eps);
    mean[r] = mu;
    rstd[r] = rs;
    v128_t m = wasm_f32x4_splat(mu), s = wasm_f32x4_splat(rs);
    int32_t j = 0;
    for (; j + 4 <= d; j += 4) {
      /* y[j] = (x[j] - mu) * rs * gamma[j] + beta[j] */
      v128_t xhat = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(xr + j), m), s);
      wasm_v128_store(yr + j, wasm_f32x4_add(wasm_f32x4_mul(xhat, wasm_v128_load(gamma + j)),
                                             wasm_v128_load(beta + j)));
    }
    for (; j < d; j++) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
  }
}

/* One row of the backward: dx (+)= rstd (g - a - xhat b), a = mean_j g[j], b = mean_j g[j] xhat[j],
 * g = dy gamma; and the row's parameter-gradient terms added to the group sums sg (dy xhat) and
 * sb (dy), each term rounded as in the op table's doc. */
static void row_backward(int32_t d, int32_t accumulate, const float* xr, const float* gamma,
                         float mu, float rs, const float* gr, float* dxr, float* sg, float* sb) {
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
    dxr[j] = accumulate ? dxr[j] + v : v;
    sg[j] += gr[j] * xhat;
    sb[j] += gr[j];
  }
}

/* part[c] = the chunk's group sums added in group order; a group is chunk_rows / 8 consecutive
 * rows summed in row order (the CUDA kernel's warps, one per group, give the same bits). */
void cm_layernorm_backward(const cm_ln_backward_params* p, const float* x, const float* gamma,
                           const float* mean, const float* rstd, const float* dy, float* dx,
                           float* part) {
  const int32_t d = p->cols, group = p->chunk_rows / 8;
  if (p->chunk_rows < 8 || p->chunk_rows % 8 != 0) __builtin_trap(); /* the op's contract */
  if (d <= 0 || p->chunks <= 0) return;
  /* rows of this call: its chunks, the last one cut at the whole call's end */
  const int64_t left = (int64_t)p->rows - (int64_t)p->chunk0 * p->chunk_rows;
  const int64_t rows = (int64_t)p->chunks * p->chunk_rows < left
                           ? (int64_t)p->chunks * p->chunk_rows
                           : left;
  float gsum[2 * d]; /* one group's sums: dy xhat, then dy */
  for (int32_t c = 0; c < p->chunks; c++) {
    float *pg = part + (int64_t)c * 2 * d, *pb = pg + d;
    for (int32_t j = 0; j < d; j++) pg[j] = pb[j] = 0.0f;
    for (int32_t g = 0; g < 8; g++) {
      for (int32_t j = 0; j < 2 * d; j++) gsum[j] = 0.0f;
      const int64_t r0 = (int64_t)c * p->chunk_rows + (int64_t)g * group;
      for (int64_t r = r0; r < r0 + group && r < rows; r++) {
        row_backward(d, p->accumulate, x + r * p->ld, gamma, mean[r], rstd[r], dy + r * p->ld,
                     dx + r * p->ld, gsum, gsum + d);
      }
      for (int32_t j = 0; j < d; j++) {
        pg[j] += gsum[j];
        pb[j] += gsum[d + j];
      }
    }
  }
}
