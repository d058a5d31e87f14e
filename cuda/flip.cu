/* Time reversal of (batch, seqlen, width) on the GPU (wasm/flip.c): y[b, t] = x[b, T - 1 - t],
 * BiMamba's backward direction (CONMAMBA_SPEC.md 4.9); its own backward. One thread per output
 * element (grid-stride); a pure copy, so the bits equal the Wasm kernel's. y must not alias x. */
#include "common.cuh"

namespace {

__global__ void flip_time_kernel(int64_t n, int64_t T, int64_t W, const float* __restrict__ x,
                                 float* __restrict__ y) {
  CM_FOR(i, n) {
    int64_t w = i % W, bt = i / W;
    int64_t t = bt % T, b = bt / T;
    y[(b * T + (T - 1 - t)) * W + w] = x[i];
  }
}

}  // namespace

void cm_flip_time(const cm_seq_params* p, const float* x, float* y) {
  int64_t T = p->seqlen, W = p->width, n = (int64_t)p->batch * T * W;
  if (p->batch <= 0 || T <= 0 || W <= 0) return;
  flip_time_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, T, W, x, y);
  CM_CHECK_LAUNCH("flip_time");
}
