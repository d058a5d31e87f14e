/* cm_expf on four lanes: the same operations in the same order as the scalar cm_expf in mathf.h,
 * so a lane gives the same bits as the scalar function (the selective scan mixes both). */
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

#endif /* CM_MATHF_SIMD_H */
