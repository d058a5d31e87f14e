/* bf16 packing of saved matmul operands (bf16 matmul mode: the backward's products round their
 * inputs to bf16 anyway, so keeping the bf16 values loses nothing and halves the memory). Two
 * values per float32 slot, element 2i in the low half (little endian: the lower address). */
#include "../ffi/ops.h"
#include "bf16.h"

void cm_bf16_pack(const cm_bf16_params* p, const float* x, float* y) {
  uint32_t* out = (uint32_t*)y;
  for (int32_t i = 0; i < p->pairs; i++) {
    out[i] = (uint32_t)cm_bf16_bits(x[2 * i]) | ((uint32_t)cm_bf16_bits(x[2 * i + 1]) << 16);
  }
}

void cm_bf16_unpack(const cm_bf16_params* p, const float* x, float* y) {
  const uint32_t* in = (const uint32_t*)x;
  for (int32_t i = 0; i < p->pairs; i++) {
    y[2 * i] = cm_bits_f32(in[i] << 16);
    y[2 * i + 1] = cm_bits_f32(in[i] & 0xffff0000u);
  }
}
