/* dropout(gelu(x)) of one element, shared by gelu_dropout_forward (activation.cu) and the matmul's
 * epilogue (matmul_bf16.cu): gelu_forward's float32 value (x Phi(x) in float64 with CUDA's normcdf,
 * rounded once), then dropout's mask at `index` and its single product, so both give the bits of
 * the two ops in sequence (wasm/activation.c is the reference). */
#pragma once
#include "dropout_hash.cuh"

__device__ __forceinline__ float cm_gelu_dropout(float x, uint32_t key, uint32_t index, float p,
                                                 float scale) {
  const double v = x;
  const float g = (float)(v * normcdf(v));
  return cm_dropout_keep(key, index, p) ? __fmul_rn(g, scale) : 0.0f;
}
