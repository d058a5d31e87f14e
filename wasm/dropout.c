/* Dropout with a counter-based draw: element i of a call keeps its value when
 * hash(seed, stream, index0 + i) / 2^32 >= p, so the mask is a pure function of (seed, stream,
 * global index): the same for any thread split, and the backward (this op on dy) sees the same
 * mask without storing it. The hash is the murmur3 finaliser, a bijection of 32 bits with full
 * avalanche, applied to the index keyed by the seed and the stream. */
#include "../ffi/ops.h"
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

void cm_dropout(const cm_dropout_params* p, const float* x, float* y) {
  uint32_t key = fmix32(fmix32((uint32_t)p->seed ^ 0x243f6a88u) ^ (uint32_t)p->stream);
  float scale = 1.0f / (1.0f - p->p);
  /* Four elements at a time; draw >= p is compared exactly as the scalar line below: h >> 8 < 2^24
   * converts to float32 exactly and the product by 2^-24 is exact. */
  v128_t vkey = wasm_i32x4_splat((int32_t)key), vp = wasm_f32x4_splat(p->p);
  v128_t vscale = wasm_f32x4_splat(scale), lane = wasm_i32x4_make(0, 1, 2, 3);
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t idx = wasm_i32x4_add(wasm_i32x4_splat((int32_t)((uint32_t)p->index0 + (uint32_t)i)), lane);
    v128_t h = fmix32_v(wasm_v128_xor(vkey, fmix32_v(idx)));
    v128_t draw = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_shr(h, 8)),
                                 wasm_f32x4_splat(0x1p-24f));
    v128_t kept = wasm_f32x4_mul(wasm_v128_load(x + i), vscale);
    wasm_v128_store(y + i, wasm_v128_and(kept, wasm_f32x4_ge(draw, vp)));
  }
  for (; i < p->n; i++) {
    uint32_t h = fmix32(key ^ fmix32((uint32_t)p->index0 + (uint32_t)i));
    float draw = (float)(h >> 8) * 0x1p-24f; /* uniform on [0, 1) in steps of 2^-24 */
    y[i] = draw >= p->p ? x[i] * scale : 0.0f;
  }
}
