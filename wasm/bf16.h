/* bf16 rounding shared by the matmul's bf16 mode (matmul.c) and the saved-operand packing
 * (bf16.c): round to nearest, ties to even, as the CUDA kernels' __float2bfloat16_rn; NaN stays a
 * (quiet) NaN, overflow rounds to infinity. */
#ifndef CM_BF16_H
#define CM_BF16_H

#include <stdint.h>

static inline uint32_t cm_f32_bits(float x) {
  union { float f; uint32_t u; } v = {.f = x};
  return v.u;
}

static inline float cm_bits_f32(uint32_t u) {
  union { uint32_t u; float f; } v = {.u = u};
  return v.f;
}

/* The upper 16 bits of x rounded to bf16. */
static inline uint16_t cm_bf16_bits(float x) {
  uint32_t u = cm_f32_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* Stores out[i] = v (nearest even) or, when out16 is given, its bf16 at 16-bit index i: how the
 * ops with a y_bf16 option write y (one of the two pointers is the output, the other NULL). */
static inline void cm_store_f32_or_bf16(float* out, uint16_t* out16, int64_t i, float v) {
  if (out16) out16[i] = cm_bf16_bits(v);
  else out[i] = v;
}

/* out[j] = v[j]'s bf16 for j < n: a float32 row stored packed. */
static inline void cm_bf16_row(uint16_t* out, const float* v, int64_t n) {
  for (int64_t j = 0; j < n; j++) out[j] = cm_bf16_bits(v[j]);
}

/* x rounded to the nearest bf16, as a float. */
static inline float cm_bf16_round(float x) { return cm_bits_f32((uint32_t)cm_bf16_bits(x) << 16); }

#endif
