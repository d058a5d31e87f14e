/* Column sums over rows: the gradient of a bias broadcast over rows. */
#include "../ffi/ops.h"
#include "simd.h"

void cm_sum_rows(const cm_rows_params* p, const float* x, float* y) {
  int32_t d = p->cols;
  if (!p->accumulate) {
    for (int32_t j = 0; j < d; j++) y[j] = 0.0f;
  }
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * p->ld;
    int32_t j = 0;
    for (; j + 4 <= d; j += 4) {
      /* y[j] += x[r, j] */
      wasm_v128_store(y + j, wasm_f32x4_add(wasm_v128_load(y + j), wasm_v128_load(xr + j)));
    }
    for (; j < d; j++) y[j] += xr[j];
  }
}

/* y[o, :] = sum over i of x[o, i, :], i in order, then / divisor (sum or mean over an axis). */
void cm_sum_axis(const cm_axis_params* p, const float* x, float* y) {
  int32_t d = p->inner;
  for (int32_t o = 0; o < p->outer; o++) {
    float* yo = y + (int64_t)o * d;
    const float* xo = x + (int64_t)o * p->n * d;
    for (int32_t k = 0; k < d; k++) yo[k] = 0.0f;
    for (int32_t i = 0; i < p->n; i++) {
      const float* xi = xo + (int64_t)i * d;
      int32_t k = 0;
      for (; k + 4 <= d; k += 4) {
        /* y[k] += x[i, k] */
        wasm_v128_store(yo + k, wasm_f32x4_add(wasm_v128_load(yo + k), wasm_v128_load(xi + k)));
      }
      for (; k < d; k++) yo[k] += xi[k];
    }
    if (p->divisor != 1.0f) {
      for (int32_t k = 0; k < d; k++) yo[k] /= p->divisor;
    }
  }
}

void cm_broadcast_axis(const cm_axis_params* p, const float* x, float* y) {
  int32_t d = p->inner;
  for (int32_t o = 0; o < p->outer; o++) {
    const float* xo = x + (int64_t)o * d;
    float* yo = y + (int64_t)o * p->n * d;
    for (int32_t i = 0; i < p->n; i++)
      for (int32_t k = 0; k < d; k++) yo[(int64_t)i * d + k] = xo[k] / p->divisor;
  }
}

void cm_max_last(const cm_rows_params* p, const float* x, float* y, float* index) {
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * p->ld;
    float m = xr[0];
    int32_t at = 0;
    for (int32_t j = 1; j < p->cols; j++) {
      if (xr[j] > m) m = xr[j], at = j;
    }
    y[r] = m;
    index[r] = (float)at;
  }
}
