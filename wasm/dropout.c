/* Dropout with a counter-based draw: element i of a call keeps its value when
 * hash(seed, stream, index0 + i) / 2^32 >= p, so the mask is a pure function of (seed, stream,
 * global index): the same for any thread split, and the backward (this op on dy) sees the same
 * mask without storing it. The hash is the murmur3 finaliser, a bijection of 32 bits with full
 * avalanche, applied to the index keyed by the seed and the stream. */
#include "../ffi/ops.h"

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

void cm_dropout(const cm_dropout_params* p, const float* x, float* y) {
  uint32_t key = fmix32(fmix32((uint32_t)p->seed ^ 0x243f6a88u) ^ (uint32_t)p->stream);
  float scale = 1.0f / (1.0f - p->p);
  for (int32_t i = 0; i < p->n; i++) {
    uint32_t h = fmix32(key ^ fmix32((uint32_t)(p->index0 + i)));
    float draw = (float)(h >> 8) * 0x1p-24f; /* uniform on [0, 1) in steps of 2^-24 */
    y[i] = draw >= p->p ? x[i] * scale : 0.0f;
  }
}
