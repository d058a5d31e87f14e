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

/* Integer lanes for the dropout hash: 32-bit wrap-around products, logical shifts, bit masks. */
static inline v128_t wasm_i32x4_make(int32_t a, int32_t b, int32_t c, int32_t d) {
  return (v128_t)(cm_i32x4){a, b, c, d};
}
static inline v128_t wasm_i32x4_mul(v128_t a, v128_t b) {
  return (v128_t)((cm_u32x4)a * (cm_u32x4)b);
}
static inline v128_t wasm_v128_xor(v128_t a, v128_t b) {
  return (v128_t)((cm_i32x4)a ^ (cm_i32x4)b);
}
static inline v128_t wasm_v128_and(v128_t a, v128_t b) {
  return (v128_t)((cm_i32x4)a & (cm_i32x4)b);
}
static inline v128_t wasm_f32x4_convert_i32x4(v128_t a) { /* exact for |lanes| < 2^24 */
  cm_i32x4 i = (cm_i32x4)a;
  return (v128_t){(float)i[0], (float)i[1], (float)i[2], (float)i[3]};
}
static inline v128_t wasm_f32x4_ge(v128_t a, v128_t b) { return (v128_t)(a >= b); }
static inline v128_t wasm_f32x4_le(v128_t a, v128_t b) { return (v128_t)(a <= b); }
static inline v128_t wasm_f32x4_eq(v128_t a, v128_t b) { return (v128_t)(a == b); }
static inline v128_t wasm_f32x4_neg(v128_t a) { return -a; }
static inline int wasm_i32x4_all_true(v128_t a) {
  cm_i32x4 i = (cm_i32x4)a;
  return i[0] && i[1] && i[2] && i[3];
}
static inline v128_t wasm_v128_or(v128_t a, v128_t b) {
  return (v128_t)((cm_i32x4)a | (cm_i32x4)b);
}
static inline v128_t wasm_f32x4_div(v128_t a, v128_t b) { return a / b; }
static inline v128_t wasm_f32x4_sqrt(v128_t a) {
  return (v128_t){__builtin_sqrtf(a[0]), __builtin_sqrtf(a[1]), __builtin_sqrtf(a[2]),
                  __builtin_sqrtf(a[3])};
}
#define wasm_i32x4_shuffle(a, b, c0, c1, c2, c3) \
  ((v128_t)__builtin_shufflevector((cm_i32x4)(a), (cm_i32x4)(b), c0, c1, c2, c3))

/* float64 lanes (the GELU's normal CDF): two doubles in the 16 bytes. */
typedef double cm_f64x2 __attribute__((vector_size(16)));
typedef int64_t cm_i64x2 __attribute__((vector_size(16)));
static inline v128_t wasm_f64x2_splat(double x) { return (v128_t)(cm_f64x2){x, x}; }
static inline v128_t wasm_f64x2_add(v128_t a, v128_t b) {
  return (v128_t)((cm_f64x2)a + (cm_f64x2)b);
}
static inline v128_t wasm_f64x2_sub(v128_t a, v128_t b) {
  return (v128_t)((cm_f64x2)a - (cm_f64x2)b);
}
static inline v128_t wasm_f64x2_mul(v128_t a, v128_t b) {
  return (v128_t)((cm_f64x2)a * (cm_f64x2)b);
}
static inline v128_t wasm_f64x2_div(v128_t a, v128_t b) {
  return (v128_t)((cm_f64x2)a / (cm_f64x2)b);
}
static inline v128_t wasm_f64x2_abs(v128_t a) {
  cm_f64x2 d = (cm_f64x2)a;
  return (v128_t)(cm_f64x2){__builtin_fabs(d[0]), __builtin_fabs(d[1])};
}
static inline v128_t wasm_f64x2_floor(v128_t a) {
  cm_f64x2 d = (cm_f64x2)a;
  return (v128_t)(cm_f64x2){__builtin_floor(d[0]), __builtin_floor(d[1])};
}
static inline v128_t wasm_f64x2_lt(v128_t a, v128_t b) { return (v128_t)((cm_f64x2)a < (cm_f64x2)b); }
static inline v128_t wasm_f64x2_promote_low_f32x4(v128_t a) {
  return (v128_t)(cm_f64x2){(double)a[0], (double)a[1]};
}
static inline v128_t wasm_f32x4_demote_f64x2_zero(v128_t a) {
  cm_f64x2 d = (cm_f64x2)a;
  return (v128_t){(float)d[0], (float)d[1], 0.0f, 0.0f};
}
static inline int32_t cm_trunc_sat_f64(double d) { /* as wasm: NaN 0, out of range saturates */
  return d != d ? 0 : d <= -2147483648.0 ? INT32_MIN : d >= 2147483647.0 ? INT32_MAX : (int32_t)d;
}
static inline v128_t wasm_i32x4_trunc_sat_f64x2_zero(v128_t a) {
  cm_f64x2 d = (cm_f64x2)a;
  return (v128_t)(cm_i32x4){cm_trunc_sat_f64(d[0]), cm_trunc_sat_f64(d[1]), 0, 0};
}
static inline v128_t wasm_i64x2_extend_low_i32x4(v128_t a) {
  cm_i32x4 i = (cm_i32x4)a;
  return (v128_t)(cm_i64x2){i[0], i[1]};
}
static inline v128_t wasm_i64x2_splat(int64_t x) { return (v128_t)(cm_i64x2){x, x}; }
static inline v128_t wasm_i64x2_add(v128_t a, v128_t b) {
  return (v128_t)((cm_i64x2)a + (cm_i64x2)b);
}
static inline v128_t wasm_i64x2_shl(v128_t a, int s) { return (v128_t)((cm_i64x2)a << s); }
#endif

/* Sum of the four lanes in a fixed order ((l0 + l1) + (l2 + l3)): the same bits everywhere. */
static inline float cm_hsum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

#endif /* CM_SIMD_H */
