/* bf16 packing of saved matmul operands on the GPU (wasm/bf16.c): two values per float32 slot,
 * element 2i in the low half, rounded to nearest even by __float2bfloat16_rn (NaN stays NaN);
 * unpacking widens exactly. One thread per slot (grid-stride). The bits equal the Wasm kernels'
 * except a NaN's payload. */
#include <cuda_bf16.h>

#include "common.cuh"

namespace {

__global__ void bf16_pack_kernel(int64_t pairs, const float2* __restrict__ x,
                                 uint32_t* __restrict__ y) {
  CM_FOR(i, pairs) {
    const float2 v = x[i];
    y[i] = (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v.x)) |
           ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v.y)) << 16);
  }
}

__global__ void bf16_unpack_kernel(int64_t pairs, const uint32_t* __restrict__ x,
                                   float2* __restrict__ y) {
  CM_FOR(i, pairs) {
    const uint32_t u = x[i];
    y[i] = make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
  }
}

}  // namespace

/* x and y are float32 arrays from the allocator (256-byte aligned), so float2 access is aligned. */
void cm_bf16_pack(const cm_bf16_params* p, const float* x, float* y) {
  if (p->pairs <= 0) return;
  bf16_pack_kernel<<<cm_blocks(p->pairs, 256), 256, 0, cm_stream()>>>(
      p->pairs, reinterpret_cast<const float2*>(x), reinterpret_cast<uint32_t*>(y));
  CM_CHECK_LAUNCH("bf16_pack");
}

void cm_bf16_unpack(const cm_bf16_params* p, const float* x, float* y) {
  if (p->pairs <= 0) return;
  bf16_unpack_kernel<<<cm_blocks(p->pairs, 256), 256, 0, cm_stream()>>>(
      p->pairs, reinterpret_cast<const uint32_t*>(x), reinterpret_cast<float2*>(y));
  CM_CHECK_LAUNCH("bf16_unpack");
}
