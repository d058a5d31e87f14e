/* Masked fill along time on the GPU (wasm/mask.c): y[b, t] = x[b, t] for t < lengths[b], else
 * `value` (the Conformer's conv-module output at padded frames, CONMAMBA_SPEC.md 4.6, 4.14); the
 * backward is this op on dy with value 0. The valid length is derived from the float length
 * exactly as the Wasm kernel does (truncation, clamped to [0, T], NaN meaning T). One thread per
 * element; y may alias x (each element is read, then written, by one thread). */
#include "common.cuh"

namespace {

__global__ void masked_fill_time_kernel(int64_t n, int32_t T, int64_t W, const float* x,
                                        const float* __restrict__ lengths, float value, float* y) {
  CM_FOR(i, n) {
    int64_t bt = i / W;
    int32_t t = (int32_t)(bt % T);
    int64_t b = bt / T;
    float len = lengths[b];
    int32_t valid = len < (float)T ? (len > 0.0f ? (int32_t)len : 0) : T;
    y[i] = t < valid ? x[i] : value;
  }
}

}  // namespace

void cm_masked_fill_time(const cm_mask_params* p, const float* x, const float* lengths, float* y) {
  int64_t W = p->width, n = (int64_t)p->batch * p->seqlen * W;
  if (p->batch <= 0 || p->seqlen <= 0 || W <= 0) return;
  masked_fill_time_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, p->seqlen, W, x, lengths,
                                                                      p->value, y);
  CM_CHECK_LAUNCH("masked_fill_time");
}
