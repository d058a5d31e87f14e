/* Adam / AdamW exactly as PyTorch 2.0.1's single-tensor path writes it (CONMAMBA_SPEC.md 8.1),
 * with the clipping coefficient folded in as grad_scale (8.3), and the per-block sums of squares
 * that global-norm clipping adds up (blocks are fixed, so no value depends on the thread split). */
#include "../ffi/ops.h"
#include "simd.h"

/* One element; the vector loop below does the same operations in the same order on four lanes
 * (IEEE mul, add, sqrt and div are exact per lane), so every element gets these bits. */
static inline void adam_one(const cm_adam_params* p, float* param, const float* grad, float* m,
                            float* v) {
  float g = *grad * p->grad_scale;
  if (p->decoupled) {
    *param *= p->decay_factor; /* param.mul_(1 - lr wd) */
  } else if (p->weight_decay != 0.0f) {
    g += p->weight_decay * *param; /* grad.add(param, alpha=wd) */
  }
  *m += (1.0f - p->beta1) * (g - *m);               /* exp_avg.lerp_(g, 1 - beta1) */
  *v = *v * p->beta2 + (1.0f - p->beta2) * g * g;   /* mul_(beta2).addcmul_(g, g, 1 - beta2) */
  float denom = __builtin_sqrtf(*v) / p->bc2_sqrt + p->eps;
  *param += -p->step_size * (*m / denom);           /* addcdiv_(m, denom, -step_size) */
}

void cm_adam_step(const cm_adam_params* p, float* param, const float* grad, float* m, float* v) {
  int32_t n = p->n, i = 0;
  int decoupled = p->decoupled, l2 = !decoupled && p->weight_decay != 0.0f;
  v128_t scale = wasm_f32x4_splat(p->grad_scale), decay = wasm_f32x4_splat(p->decay_factor);
  v128_t wd = wasm_f32x4_splat(p->weight_decay), b2 = wasm_f32x4_splat(p->beta2);
  v128_t one_b1 = wasm_f32x4_splat(1.0f - p->beta1), one_b2 = wasm_f32x4_splat(1.0f - p->beta2);
  v128_t bc2 = wasm_f32x4_splat(p->bc2_sqrt), eps = wasm_f32x4_splat(p->eps);
  v128_t neg_step = wasm_f32x4_splat(-p->step_size);
  for (; i + 4 <= n; i += 4) {
    v128_t g = wasm_f32x4_mul(wasm_v128_load(grad + i), scale);
    v128_t w = wasm_v128_load(param + i), mi = wasm_v128_load(m + i), vi = wasm_v128_load(v + i);
    if (decoupled) {
      w = wasm_f32x4_mul(w, decay);
    } else if (l2) {
      g = wasm_f32x4_add(g, wasm_f32x4_mul(wd, w));
    }
    mi = wasm_f32x4_add(mi, wasm_f32x4_mul(one_b1, wasm_f32x4_sub(g, mi)));
    vi = wasm_f32x4_add(wasm_f32x4_mul(vi, b2), wasm_f32x4_mul(wasm_f32x4_mul(one_b2, g), g));
    v128_t denom = wasm_f32x4_add(wasm_f32x4_div(wasm_f32x4_sqrt(vi), bc2), eps);
    w = wasm_f32x4_add(w, wasm_f32x4_mul(neg_step, wasm_f32x4_div(mi, denom)));
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    wasm_v128_store(param + i, w);
  }
  for (; i < n; i++) adam_one(p, param + i, grad + i, m + i, v + i);
}

void cm_sum_squares_blocks(const cm_blocks_params* p, const float* x, float* partial) {
  for (int32_t j = 0; j < p->blocks; j++) {
    int64_t start = (int64_t)(p->first_block + j) * p->block, end = start + p->block;
    if (end > p->n) end = p->n;
    const float* xb = x + (int64_t)j * p->block; /* x is already moved to this call's blocks */
    double s = 0.0;
    for (int64_t i = 0; i < end - start; i++) s += (double)xb[i] * xb[i];
    partial[j] = (float)s;
  }
}
