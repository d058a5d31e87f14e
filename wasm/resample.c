/* Polyphase windowed-sinc resampling (torchaudio's Resample, CONMAMBA_SPEC.md §8.7), used for
 * speed perturbation: output block b (one input stride of `orig` samples) holds `cols` phases,
 * y[b cols + j] = sum_t k[j taps + t] x[b orig + t - width], x = 0 outside [0, n_in).
 * The sum is in double and rounded once, so any split over blocks gives the same bits. */
#include <stdint.h>

#include "../ffi/ops.h"

void cm_resample_forward(const cm_resample_params* p, const float* x, const float* kernels,
                         float* y) {
  for (int32_t r = 0; r < p->rows; r++) {
    const int64_t base = (int64_t)(p->row0 + r) * p->orig - p->width;
    float* out = y + (int64_t)r * p->ld;
    for (int32_t j = 0; j < p->cols; j++) {
      const float* k = kernels + (int64_t)j * p->taps;
      double acc = 0.0;
      if (base >= 0 && base + p->taps <= p->n_in) {
        for (int32_t t = 0; t < p->taps; t++) acc += (double)k[t] * (double)x[base + t];
      } else {
        for (int32_t t = 0; t < p->taps; t++) {
          const int64_t i = base + t;
          if (i >= 0 && i < p->n_in) acc += (double)k[t] * (double)x[i];
        }
      }
      out[j] = (float)acc;
    }
  }
}
