/* The dropout mask's counter-based draw, shared by dropout.c and the fused GELU + dropout of
 * activation.c: element i keeps its value when hash(seed, stream, index0 + i) / 2^32 >= p, the
 * hash being the murmur3 finaliser (a bijection of 32 bits with full avalanche) applied to the
 * index keyed by the seed and the stream. */
#ifndef CM_DROPOUT_HASH_H
#define CM_DROPOUT_HASH_H

#include "simd.h"

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* fmix32 on four lanes: the same 32-bit wrap-around operations, so the same bits. */
static inline v128_t fmix32_v(v128_t h) {
  h = wasm_v128_xor(h, wasm_u32x4_shr(h, 16));
  h = wasm_i32x4_mul(h, wasm_i32x4_splat((int32_t)0x85ebca6bu));
  h = wasm_v128_xor(h, wasm_u32x4_shr(h, 13));
  h = wasm_i32x4_mul(h, wasm_i32x4_splat((int32_t)0xc2b2ae35u));
  return wasm_v128_xor(h, wasm_u32x4_shr(h, 16));
}

static inline uint32_t cm_dropout_key(int32_t seed, int32_t stream) {
  return fmix32(fmix32((uint32_t)seed ^ 0x243f6a88u) ^ (uint32_t)stream);
}

/* Whether global element `index` is kept. draw = (h >> 8) 2^-24 is exact in float32 (h >> 8 <
 * 2^24), so the comparison with p is exact. */
static inline int cm_dropout_keep(uint32_t key, uint32_t index, float p) {
  uint32_t h = fmix32(key ^ fmix32(index));
  return (float)(h >> 8) * 0x1p-24f >= p; /* uniform on [0, 1) in steps of 2^-24 */
}

/* All-ones lanes for the kept elements index0 + i .. + 3, the same test on four lanes. */
static inline v128_t cm_dropout_keep_v(uint32_t key, uint32_t index0, float p) {
  v128_t idx = wasm_i32x4_add(wasm_i32x4_splat((int32_t)index0), wasm_i32x4_make(0, 1, 2, 3));
  v128_t h = fmix32_v(wasm_v128_xor(wasm_i32x4_splat((int32_t)key), fmix32_v(idx)));
  v128_t draw = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_shr(h, 8)),
                               wasm_f32x4_splat(0x1p-24f));
  return wasm_f32x4_ge(draw, wasm_f32x4_splat(p));
}

#endif
