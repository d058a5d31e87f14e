/* Dropout on the GPU (wasm/dropout.c) with the same counter-based draw, bit for bit: element i
 * keeps its value when hash(seed, stream, index0 + i) / 2^32 >= p, the hash being the murmur3
 * finaliser fmix32 applied to the index and keyed by fmix32(fmix32(seed ^ 0x243f6a88) ^ stream),
 * all in 32-bit wrap-around integer arithmetic. draw = (h >> 8) 2^-24 is exact in float32, the
 * comparison with p is exact, scale = 1 / (1 - p) is rounded once in float32 on the host as the
 * Wasm kernel does, and a kept element is x * scale (one IEEE product; no FTZ in this build), a
 * dropped one +0. So the same (seed, stream, index0) gives the same mask and the same bits on both
 * backends. The backward is this op on dy with the same seed and stream. One thread per element;
 * y may alias x. */
#include "chunk_sums.cuh"
#include "common.cuh"
#include "dropout_hash.cuh"

namespace {

/* y16: y as packed bf16 instead (y_bf16; y is then null) */
__global__ void dropout_kernel(int64_t n, uint32_t key, uint32_t index0, float p, float scale,
                               const float* x, float* y, unsigned short* y16) {
  CM_FOR(i, n) {
    cm_store_f32_or_bf16(y, y16, i,
                         cm_dropout_keep(key, index0 + (uint32_t)i, p) ? __fmul_rn(x[i], scale) : 0.0f);
  }
}

}  // namespace

void cm_dropout(const cm_dropout_params* p, const float* x, float* y) {
  int64_t n = p->n;
  if (n <= 0) return;
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p); /* float32 roundings, as the Wasm kernel */
  dropout_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(
      n, key, (uint32_t)p->index0, p->p, scale, x, p->y_bf16 ? nullptr : y,
      p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr);
  CM_CHECK_LAUNCH("dropout");
}

namespace {

/* s = x + alpha dropout(y): dropout's product, alpha times it, the sum, each one IEEE operation
 * (no FMA contraction), the bits of dropout, scale, add in sequence on both backends. */
__global__ void dropout_add_kernel(int64_t n, uint32_t key, uint32_t index0, float p, float scale,
                                   float alpha, const float* x, const float* y, float* s) {
  CM_FOR(i, n) s[i] = cm_dropout_add_value(x[i], y[i], key, index0 + (uint32_t)i, p, scale, alpha);
}

/* y = dropout(alpha x) of element o (mask index `index`): the bits of scale then dropout. */
struct ScaleDropout {
  uint32_t key;
  float p, scale, alpha;
  int cols;
  const float* x;
  __device__ float operator()(int64_t r, int j, int64_t row) const {
    const uint32_t index = (uint32_t)(row * cols + j); /* of the whole call */
    const float v = x[r * cols + j];
    return cm_dropout_keep(key, index, p) ? __fmul_rn(__fmul_rn(v, alpha), scale) : 0.0f;
  }
};

}  // namespace

void cm_dropout_add(const cm_dropout_add_params* p, const float* x, const float* y, float* s) {
  int64_t n = p->n;
  if (n <= 0) return;
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p);
  dropout_add_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(
      n, key, (uint32_t)p->index0, p->p, scale, p->alpha, x, y, s);
  CM_CHECK_LAUNCH("dropout_add");
}

void cm_scale_dropout(const cm_dropout_rows_params* p, const float* x, float* y, float* part) {
  const float scale = 1.0f / (1.0f - p->p);
  const ScaleDropout f{cm_dropout_key(p->seed, p->stream), p->p, scale, p->alpha, p->cols, x};
  rows_with_sums(p->rows, p->cols, p->chunk_rows, p->chunks, p->chunk0, f, y, p->out_bf16, part,
                 "scale_dropout (chunk_rows must be a multiple of 8)");
}
