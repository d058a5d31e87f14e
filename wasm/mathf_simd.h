/* cm_expf, cm_logf, cm_softplusf and cm_sigmoidf on four lanes: the same operations in the same
 * order as the scalar functions of mathf.h, so a lane gives the scalar function's bits. */
#ifndef CM_MATHF_SIMD_H
#define CM_MATHF_SIMD_H

#include "mathf.h"
#include "simd.h"

static inline v128_t cm_pow2f_v(v128_t n) { /* n: i32 lanes in [-126, 127] */
  return wasm_i32x4_shl(wasm_i32x4_add(n, wasm_i32x4_splat(127)), 23);
}

static inline v128_t cm_expf_v(v128_t x) {
  const v128_t LN2_HI = wasm_f32x4_splat(0.693145751953125f);
  const v128_t LN2_LO = wasm_f32x4_splat(1.4286068203094173e-06f);
  v128_t n = wasm_f32x4_floor(
      wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)),
                     wasm_f32x4_splat(0.5f)));
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(n, LN2_HI)), wasm_f32x4_mul(n, LN2_LO));
  /* p = 1 + r (1 + r (1/2 + r (1/6 + r (1/24 + r (1/120 + r (1/720 + r / 5040)))))) */
  v128_t p = wasm_f32x4_splat(1.0f / 5040);
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 720), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 120), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 24), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 6), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(0.5f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(r, p));
  p = wasm_f32x4_add(wasm_f32x4_splat(1.0f), wasm_f32x4_mul(r, p));
  /* clamp first so that lanes selected away below stay in integer range */
  v128_t nc = wasm_v128_bitselect(wasm_f32x4_splat(0.0f), n,
                                  wasm_f32x4_gt(wasm_f32x4_mul(n, n), wasm_f32x4_splat(40000.0f)));
  v128_t ni = wasm_i32x4_trunc_sat_f32x4(nc);
  v128_t half = wasm_i32x4_shr(wasm_i32x4_add(ni, wasm_u32x4_shr(ni, 31)), 1); /* ni / 2, toward 0 */
  v128_t y = wasm_f32x4_mul(wasm_f32x4_mul(p, cm_pow2f_v(half)),
                            cm_pow2f_v(wasm_i32x4_sub(ni, half)));
  y = wasm_v128_bitselect(wasm_f32x4_splat(__builtin_inff()), y,
                          wasm_f32x4_gt(x, wasm_f32x4_splat(88.72283f)));
  return wasm_v128_bitselect(wasm_f32x4_splat(0.0f), y,
                             wasm_f32x4_lt(x, wasm_f32x4_splat(-87.33654f)));
}

/* cm_logf on four lanes (finite x >= FLT_MIN), the same operations: the same bits. */
static inline v128_t cm_logf_v(v128_t x) {
  v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(x, 23), wasm_i32x4_splat(127));
  v128_t m = wasm_v128_or(wasm_v128_and(x, wasm_i32x4_splat(0x007fffff)),
                          wasm_i32x4_splat(0x3f800000)); /* in [1, 2) */
  v128_t big = wasm_f32x4_gt(m, wasm_f32x4_splat(1.41421356f));
  m = wasm_v128_bitselect(wasm_f32x4_mul(m, wasm_f32x4_splat(0.5f)), m, big);
  e = wasm_i32x4_sub(e, big); /* big lanes are -1: e + 1 */
  v128_t one = wasm_f32x4_splat(1.0f);
  v128_t s = wasm_f32x4_div(wasm_f32x4_sub(m, one), wasm_f32x4_add(m, one));
  v128_t s2 = wasm_f32x4_mul(s, s);
  v128_t q = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 7), wasm_f32x4_mul(s2, wasm_f32x4_splat(1.0f / 9)));
  q = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 5), wasm_f32x4_mul(s2, q));
  q = wasm_f32x4_add(wasm_f32x4_splat(1.0f / 3), wasm_f32x4_mul(s2, q));
  q = wasm_f32x4_add(one, wasm_f32x4_mul(s2, q));
  return wasm_f32x4_add(
      wasm_f32x4_mul(wasm_f32x4_convert_i32x4(e), wasm_f32x4_splat(0.693147180559945309f)),
      wasm_f32x4_mul(wasm_f32x4_splat(2.0f), wasm_f32x4_mul(s, q)));
}

/* cm_softplusf on four lanes: log1p(exp(x)) with Goldberg's correction, x itself above 20. */
static inline v128_t cm_softplusf_v(v128_t x) {
  v128_t one = wasm_f32x4_splat(1.0f), u = cm_expf_v(x), w = wasm_f32x4_add(one, u);
  v128_t l = wasm_f32x4_mul(cm_logf_v(w), wasm_f32x4_div(u, wasm_f32x4_sub(w, one)));
  v128_t log1p = wasm_v128_bitselect(u, l, wasm_f32x4_eq(w, one));
  return wasm_v128_bitselect(x, log1p, wasm_f32x4_gt(x, wasm_f32x4_splat(20.0f)));
}

/* cm_sigmoidf on four lanes. */
static inline v128_t cm_sigmoidf_v(v128_t x) {
  v128_t one = wasm_f32x4_splat(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, cm_expf_v(wasm_f32x4_neg(x))));
}

#endif /* CM_MATHF_SIMD_H */
