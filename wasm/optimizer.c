/* Adam / AdamW exactly as PyTorch 2.0.1's single-tensor path writes it (CONMAMBA_SPEC.md 8.1),
 * with the clipping coefficient folded in as grad_scale (8.3), and the per-block sums of squares
 * that global-norm clipping adds up (blocks are fixed, so no value depends on the thread split). */
#include "../ffi/ops.h"

void cm_adam_step(const cm_adam_params* p, float* param, const float* grad, float* m, float* v) {
  for (int32_t i = 0; i < p->n; i++) {
    float g = grad[i] * p->grad_scale;
    if (p->decoupled) {
      param[i] *= p->decay_factor; /* param.mul_(1 - lr wd) */
    } else if (p->weight_decay != 0.0f) {
      g += p->weight_decay * param[i]; /* grad.add(param, alpha=wd) */
    }
    m[i] += (1.0f - p->beta1) * (g - m[i]);               /* exp_avg.lerp_(g, 1 - beta1) */
    v[i] = v[i] * p->beta2 + (1.0f - p->beta2) * g * g;   /* mul_(beta2).addcmul_(g, g, 1 - beta2) */
    float denom = __builtin_sqrtf(v[i]) / p->bc2_sqrt + p->eps;
    param[i] += -p->step_size * (m[i] / denom);           /* addcdiv_(m, denom, -step_size) */
  }
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
