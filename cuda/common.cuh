/* Shared by every CUDA kernel file: the op table's C declarations (ffi/ops.h, generated from
 * ffi/ops.ts), the library's one stream, launch helpers and the sticky error the host reads at its
 * next synchronising call (no host synchronisation per op). Kernels follow the Wasm kernels'
 * semantics exactly (the wasm/ C files are the reference); reductions use fixed orders, never atomics, so a
 * training step is bitwise repeatable. */
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "../ffi/ops.h"
}

/* The stream every op is launched on (created by cm_cuda_init). */
cudaStream_t cm_stream();

/* Device scratch from the library's caching allocator (runtime.cu); free it right after queuing
 * the kernels that use it: the one stream orders any later reuse after them. */
extern "C" uint64_t cm_cuda_malloc(uint64_t bytes);
extern "C" void cm_cuda_free(uint64_t ptr);

/* Records the first launch error (read and cleared by cm_cuda_last_error). */
void cm_note_error(cudaError_t e, const char* where);

/* After a launch: note a launch-configuration error without synchronising. */
#define CM_CHECK_LAUNCH(name) cm_note_error(cudaGetLastError(), name)

/* Blocks of `threads` covering n items (at least 1 block so empty calls stay valid launches). */
static inline unsigned cm_blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 2147483647) b = 2147483647;
  return (unsigned)b;
}

/* Grid-stride loop over [0, n). */
#define CM_FOR(i, n) \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
       i += (int64_t)gridDim.x * blockDim.x)

/* The matmul precision mode cm_matmul uses now (runtime.cu; cm_cuda_set_matmul_precision sets
 * it): 0 fp32 SIMT (default), 1 bf16 tensor cores (ours), 2 cuBLAS fp32, 3 cuBLAS bf16; modes
 * 2 / 3 read as 0 / 1 when cuBLAS did not load, and 1 as 0 below sm_80. */
int cm_matmul_precision();

/* Records the first error (as cm_note_error) from a message: failures that are not CUDA error
 * codes, e.g. a cuBLAS status. */
void cm_note_failure(const char* what);

#ifdef __CUDACC__
/* x rounded to bf16 (nearest even; NaN stays a quiet NaN), the upper 16 bits: wasm/bf16.h's
 * cm_bf16_bits to the bit, NaN payloads included. */
__device__ __forceinline__ unsigned short cm_bf16_bits(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}

/* out[i] = v, or v's bf16 at 16-bit index i when out16 is given: how the ops with a y_bf16
 * option write y (one of the two pointers is the output, the other null). */
__device__ __forceinline__ void cm_store_f32_or_bf16(float* out, unsigned short* out16, int64_t i,
                                                     float v) {
  if (out16) out16[i] = cm_bf16_bits(v);
  else out[i] = v;
}
#endif
