/* Four-lane stores for the ops with a y_bf16 / out_bf16 option (their output float32, or packed
 * bf16 rounded to nearest even: bf16.h). */
#ifndef CM_BF16_SIMD_H
#define CM_BF16_SIMD_H

#include "bf16.h"
#include "simd.h"

/* The first `lanes` lanes of v to elements i.. of y, or, when y16 is given, their bf16 to 16-bit
 * indices i.. of y16 (one of the two pointers is the output, the other NULL). */
static inline void cm_store_lanes(float* y, uint16_t* y16, int64_t i, v128_t v, int32_t lanes) {
  if (!y16 && lanes == 4) {
    wasm_v128_store(y + i, v);
    return;
  }
  float t[4];
  wasm_v128_store(t, v);
  for (int32_t l = 0; l < lanes; l++) cm_store_f32_or_bf16(y, y16, i + l, t[l]);
}

#endif
