/* Polyphase windowed-sinc resampling (torchaudio's Resample, CONMAMBA_SPEC.md 8.7), the CUDA twin
 * of wasm/resample.c: output block b (one input stride of `orig` samples) holds `cols` phases,
 *   y[b, j] = sum_t k[j, t] x[(row0 + b) orig + t - width],  x = 0 outside [0, n_in).
 * One thread per output sample (b, j); the sum runs over t in increasing order in double and is
 * rounded once, exactly as the reference (products as __dmul_rn: nvcc may not contract them into
 * FMAs, which the -ffp-contract=off Wasm build does not do either), so both give the same bits.
 * row0 is honoured as in the reference (a CUDA call is never split, so the caller's row0 is used
 * as given). */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

__global__ void resample_kernel(cm_resample_params p, const float* __restrict__ x,
                                const float* __restrict__ kernels, float* __restrict__ y) {
  CM_FOR(i, (int64_t)p.rows * p.cols) {
    const int32_t r = (int32_t)(i / p.cols), j = (int32_t)(i % p.cols);
    const int64_t base = (int64_t)(p.row0 + r) * p.orig - p.width;
    const float* k = kernels + (int64_t)j * p.taps; /* (taps) */
    double acc = 0.0;
    for (int32_t t = 0; t < p.taps; t++) {
      const int64_t at = base + t;
      if (at >= 0 && at < p.n_in) acc += __dmul_rn((double)k[t], (double)x[at]);
    }
    y[(int64_t)r * p.ld + j] = (float)acc;
  }
}

}  // namespace

extern "C" void cm_resample_forward(const cm_resample_params* p, const float* x,
                                    const float* kernels, float* y) {
  const int64_t n = (int64_t)p->rows * p->cols;
  if (n <= 0) return;
  resample_kernel<<<cm_blocks(n, kThreads), kThreads, 0, cm_stream()>>>(*p, x, kernels, y);
  CM_CHECK_LAUNCH("cm_resample_forward");
}
