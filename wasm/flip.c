/* Time reversal of (batch, seqlen, width): BiMamba's backward direction runs on the flipped
 * sequence and is flipped back (CONMAMBA_SPEC.md 4.9). Its backward is itself. */
#include "../ffi/ops.h"

void cm_flip_time(const cm_seq_params* p, const float* x, float* y) {
  int32_t T = p->seqlen, w = p->width;
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      const float* src = x + ((int64_t)b * T + t) * w;
      float* dst = y + ((int64_t)b * T + (T - 1 - t)) * w;
      for (int32_t j = 0; j < w; j++) dst[j] = src[j];
    }
  }
}
