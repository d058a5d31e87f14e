/* Elementwise add, mul and scale. Their backwards are these same kernels (d(a+b) = dy;
 * d(a*b)/da = dy*b; d(alpha x) = alpha dy), composed in src/tensor. */
#include "../ffi/ops.h"
#include "simd.h"

void cm_add(const cm_elementwise_params* p, const float* a, const float* b, float* y) {
  int32_t n = p->n, i = 0;
  for (; i + 4 <= n; i += 4) {
    /* y[i] = a[i] + b[i] */
    wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  }
  for (; i < n; i++) y[i] = a[i] + b[i];
}

void cm_mul(const cm_elementwise_params* p, const float* a, const float* b, float* y) {
  int32_t n = p->n, i = 0;
  for (; i + 4 <= n; i += 4) {
    /* y[i] = a[i] * b[i] */
    wasm_v128_store(y + i, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  }
  for (; i < n; i++) y[i] = a[i] * b[i];
}

void cm_scale(const cm_elementwise_params* p, const float* x, float* y) {
  int32_t n = p->n, i = 0;
  v128_t alpha = wasm_f32x4_splat(p->alpha);
  for (; i + 4 <= n; i += 4) {
    /* y[i] = alpha * x[i] */
    wasm_v128_store(y + i, wasm_f32x4_mul(alpha, wasm_v128_load(x + i)));
  }
  for (; i < n; i++) y[i] = p->alpha * x[i];
}
