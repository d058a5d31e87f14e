/* 128-bit SIMD for the kernels: wasm_simd128.h on WebAssembly; natively (for the sanitizer build)
 * the same few intrinsics written with clang vector extensions, so one C source serves both. */
#ifndef CM_SIMD_H
#define CM_SIMD_H

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#else
#include <stdint.h>
#include <string.h>

typedef float v128_t __attribute__((vector_size(16)));

static inline v128_t wasm_v128_load(const void* p) {
  v128_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void wasm_v128_store(void* p, v128_t v) { memcpy(p, &v, sizeof v); }
static inline v128_t wasm_f32x4_splat(float x) { return (v128_t){x, x, x, x}; }
static inline v128_t wasm_v128_load32_splat(const void* p) {
  float x;
  memcpy(&x, p, sizeof x);
  return wasm_f32x4_splat(x);
}
static inline v128_t wasm_f32x4_add(v128_t a, v128_t b) { return a + b; }
static inline v128_t wasm_f32x4_sub(v128_t a, v128_t b) { return a - b; }
static inline v128_t wasm_f32x4_mul(v128_t a, v128_t b) { return a * b; }
static inline v128_t wasm_f32x4_max(v128_t a, v128_t b) {
  return (v128_t){a[0] > b[0] ? a[0] : b[0], a[1] > b[1] ? a[1] : b[1], a[2] > b[2] ? a[2] : b[2],
                  a[3] > b[3] ? a[3] : b[3]};
}
#define wasm_f32x4_extract_lane(v, i) ((v)[i])

/* Integer lanes for the vector exp (cm_expf_v): bit casts between same-size vectors. */
typedef int32_t cm_i32x4 __attribute__((vector_size(16)));
typedef uint32_t cm_u32x4 __attribute__((vector_size(16)));
static inline v128_t wasm_f32x4_floor(v128_t a) {
  return (v128_t){__builtin_floorf(a[0]), __builtin_floorf(a[1]), __builtin_floorf(a[2]),
                  __builtin_floorf(a[3])};
}
static inline v128_t wasm_i32x4_trunc_sat_f32x4(v128_t a) {
  cm_i32x4 r = {(int32_t)a[0], (int32_t)a[1], (int32_t)a[2], (int32_t)a[3]};
  return (v128_t)r;
}
static inline v128_t wasm_i32x4_splat(int32_t x) { return (v128_t)(cm_i32x4){x, x, x, x}; }
static inline v128_t wasm_i32x4_add(v128_t a, v128_t b) {
  return (v128_t)((cm_i32x4)a + (cm_i32x4)b);
}
static inline v128_t wasm_i32x4_sub(v128_t a, v128_t b) {
  return (v128_t)((cm_i32x4)a - (cm_i32x4)b);
}
static inline v128_t wasm_i32x4_shl(v128_t a, int s) { return (v128_t)((cm_i32x4)a << s); }
static inline v128_t wasm_i32x4_shr(v128_t a, int s) { return (v128_t)((cm_i32x4)a >> s); }
static inline v128_t wasm_u32x4_shr(v128_t a, int s) { return (v128_t)((cm_u32x4)a >> s); }
static inline v128_t wasm_f32x4_gt(v128_t a, v128_t b) { return (v128_t)(a > b); }
static inline v128_t wasm_f32x4_lt(v128_t a, v128_t b) { return (v128_t)(a < b); }
static inline v128_t wasm_v128_bitselect(v128_t a, v128_t b, v128_t m) {
  return (v128_t)(((cm_i32x4)a & (cm_i32x4)m) | ((cm_i32x4)b & ~(cm_i32x4)m));
}
#endif

/* Sum of the four lanes in a fixed order ((l0 + l1) + (l2 + l3)): the same bits everywhere. */
static inline float cm_hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

#endif /* CM_SIMD_H */
