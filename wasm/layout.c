/* Data movement: copies of time ranges (slice, concat), fill, and swapping two adjacent axes
 * (heads in and out of the feature axis, transposes). Exact: no arithmetic. */
#include "../ffi/ops.h"
#include "bf16.h"

void cm_copy_time(const cm_time_copy_params* p, const float* x, float* y) {
  int64_t w = p->width;
  for (int32_t b = 0; b < p->batch; b++) {
    const float* src = x + ((int64_t)b * p->x_seqlen + p->x_t0) * w;
    float* dst = y + ((int64_t)b * p->y_seqlen + p->y_t0) * w;
    for (int64_t i = 0; i < (int64_t)p->len * w; i++) dst[i] = src[i];
  }
}

void cm_fill(const cm_elementwise_params* p, float* y) {
  for (int32_t i = 0; i < p->n; i++) y[i] = p->alpha;
}

void cm_swap_axes(const cm_swap_params* p, const float* x, float* y) {
  int64_t d1 = p->d1, d2 = p->d2, in = p->inner;
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: y rounded to packed bf16 */
  for (int32_t n = 0; n < p->batch; n++) {
    const float* xb = x + n * d1 * d2 * in;
    for (int64_t i = 0; i < d1; i++)
      for (int64_t j = 0; j < d2; j++) {
        const float* src = xb + (i * d2 + j) * in;             /* x[n, i, j, :] */
        const int64_t dst = ((int64_t)n * d1 * d2 + j * d1 + i) * in; /* y[n, j, i, :] */
        if (y16) cm_bf16_row(y16 + dst, src, in);
        else
          for (int64_t k = 0; k < in; k++) y[dst + k] = src[k];
      }
  }
}
