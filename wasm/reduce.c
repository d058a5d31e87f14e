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
