/* The dropout mask's counter-based draw (wasm/dropout_hash.h), shared by cuda/dropout.cu and the
 * fused GELU + dropout of cuda/activation.cu: element i keeps its value when
 * hash(seed, stream, index0 + i) / 2^32 >= p, the hash being the murmur3 finaliser fmix32 applied
 * to the index and keyed by fmix32(fmix32(seed ^ 0x243f6a88) ^ stream), all in 32-bit wrap-around
 * integer arithmetic; draw = (h >> 8) 2^-24 is exact in float32, so the comparison is exact. */
#ifndef CM_DROPOUT_HASH_CUH
#define CM_DROPOUT_HASH_CUH

#include <cstdint>

__host__ __device__ inline uint32_t cm_fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

__host__ __device__ inline uint32_t cm_dropout_key(int32_t seed, int32_t stream) {
  return cm_fmix32(cm_fmix32((uint32_t)seed ^ 0x243f6a88u) ^ (uint32_t)stream);
}

__device__ __forceinline__ bool cm_dropout_keep(uint32_t key, uint32_t index, float p) {
  uint32_t h = cm_fmix32(key ^ cm_fmix32(index));
  return (float)(h >> 8) * 0x1p-24f >= p; /* uniform on [0, 1) in steps of 2^-24 */
}

/* x + alpha dropout(y) of element `index` (scale = 1 / (1 - p) in float32): dropout's product,
 * alpha times it, the sum, each one IEEE operation (no FMA contraction): the bits of dropout,
 * scale and add in sequence (cuda/dropout.cu's dropout_add, layernorm.cu's residual + LayerNorm). */
__device__ __forceinline__ float cm_dropout_add_value(float x, float y, uint32_t key,
                                                      uint32_t index, float p, float scale,
                                                      float alpha) {
  const float d = cm_dropout_keep(key, index, p) ? __fmul_rn(y, scale) : 0.0f;
  return __fadd_rn(x, __fmul_rn(d, alpha));
}

#endif
