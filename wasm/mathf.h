/* Elementary functions for the kernels. WebAssembly has no libm here (no libc at all), so exp, log
 * and the normal CDF are written out: range reduction plus a short series, each accurate to a few
 * float32 ulp (the f64 ones to ~1e-15 relative), checked by the op tests against Math.* in f64. */
#ifndef CM_MATHF_H
#define CM_MATHF_H

#include <stdint.h>

/* 2^n for an integer n in [-126, 127], built from the exponent bits. */
static inline float cm_pow2f(int32_t n) {
  union { uint32_t u; float f; } v = {(uint32_t)(n + 127) << 23};
  return v.f;
}

/* exp(x) in float32. x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n*LN2_HI is exact), then
 * exp(r) by its Taylor series to r^7 (the r^8 term is < 6e-9 of the result). */
static inline float cm_expf(float x) {
  if (x > 88.72283f) return __builtin_inff();
  if (x < -87.33654f) return 0.0f; /* below FLT_MIN: flushed to zero */
  const float LN2_HI = 0.693145751953125f, LN2_LO = 1.4286068203094173e-06f;
  float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = (x - n * LN2_HI) - n * LN2_LO;
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
            r * (1.0f / 720 + r * (1.0f / 5040)))))));
  int32_t ni = (int32_t)n, half = ni / 2; /* two factors keep 2^n normal at n = 128 and -126 */
  return p * cm_pow2f(half) * cm_pow2f(ni - half);
}

/* log(x) for finite x >= FLT_MIN. x = 2^e m with m in [sqrt(1/2), sqrt(2)), then
 * log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| < 0.172, by its odd series to s^9. */
static inline float cm_logf(float x) {
  union { float f; uint32_t u; } v = {x};
  int32_t e = (int32_t)(v.u >> 23) - 127;
  v.u = (v.u & 0x007fffffu) | 0x3f800000u; /* m in [1, 2) */
  float m = v.f;
  if (m > 1.41421356f) {
    m *= 0.5f;
    e += 1;
  }
  float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  float atanh = s * (1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9)))));
  return (float)e * 0.693147180559945309f + 2.0f * atanh;
}

/* exp(x) in float64, same scheme as cm_expf with the series to r^14; for |x| < 700. */
static inline double cm_exp(double x) {
  if (x < -700.0) return 0.0;
  const double LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
  double n = __builtin_floor(x * 1.44269504088896340736 + 0.5);
  double r = (x - n * LN2_HI) - n * LN2_LO;
  double p = 1.0, term = 1.0;
  for (int i = 1; i <= 14; i++) {
    term *= r / i;
    p += term;
  }
  union { uint64_t u; double d; } s = {(uint64_t)((int64_t)n + 1023) << 52};
  return p * s.d;
}

/* Phi(x) = P(N(0,1) <= x) = erfc(-x / sqrt 2) / 2, in float64 with ~1e-13 relative error.
 * With z = |x| / sqrt 2: for z < 3 the Taylor series of erf (terms fall below 1e-17 of the sum
 * after ~40 terms); beyond, the continued fraction of erfc, evaluated bottom-up at a fixed depth,
 * so that the negative tail (where 1 + erf cancels) keeps full relative accuracy. */
static inline double cm_normal_cdf(double x) {
  const double INV_SQRT2 = 0.70710678118654752440, INV_SQRT_PI = 0.56418958354775628695;
  double z = x < 0 ? -x * INV_SQRT2 : x * INV_SQRT2;
  double erfc_z;
  if (z < 3.0) {
    /* erf z = 2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1)) */
    double z2 = z * z, power = z, sum = z;
    for (int n = 1; n < 60; n++) {
      power *= -z2 / n;
      double term = power / (2 * n + 1);
      sum += term;
      if (__builtin_fabs(term) < 1e-17 * __builtin_fabs(sum)) break;
    }
    erfc_z = 1.0 - 2.0 * INV_SQRT_PI * sum;
  } else {
    /* erfc z = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...))))) */
    double f = z;
    for (int k = 40; k >= 1; k--) f = z + (0.5 * k) / f;
    erfc_z = cm_exp(-z * z) * INV_SQRT_PI / f;
  }
  return x < 0 ? 0.5 * erfc_z : 1.0 - 0.5 * erfc_z;
}

/* log(x) in float64 for finite x > 0 (normal): the scheme of cm_logf with the atanh series to
 * s^23 (|s| < 0.172: the next term is below 1e-18 of the sum). */
static inline double cm_log(double x) {
  union { double d; uint64_t u; } v = {x};
  int32_t e = (int32_t)(v.u >> 52) - 1023;
  v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
  double m = v.d;
  if (m > 1.41421356237309504880) {
    m *= 0.5;
    e += 1;
  }
  double s = (m - 1.0) / (m + 1.0), s2 = s * s, sum = 0.0;
  for (int k = 11; k >= 0; k--) sum = 1.0 / (2 * k + 1) + s2 * sum;
  return (double)e * 0.69314718055994530942 + 2.0 * s * sum;
}

/* log(1 + x) in float32 without losing x when it is tiny: u = 1 + x rounds, and log(u) x / (u - 1)
 * corrects for that rounding (Goldberg's trick). */
static inline float cm_log1pf(float x) {
  float u = 1.0f + x;
  if (u == 1.0f) return x;
  return cm_logf(u) * (x / (u - 1.0f));
}

/* softplus(x) = log(1 + e^x), and the identity above 20 as PyTorch (CONMAMBA_SPEC.md 13 G30). */
static inline float cm_softplusf(float x) { return x > 20.0f ? x : cm_log1pf(cm_expf(x)); }

static inline float cm_sigmoidf(float x) { return 1.0f / (1.0f + cm_expf(-x)); }

#endif /* CM_MATHF_H */
