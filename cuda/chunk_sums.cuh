/* Row-by-row ops that also write their output's column sums per chunk of rows (ffi/ops.ts
 * "gelu_dropout_backward", "scale_dropout", "glu_backward"; src/tensor/chunk_sums.ts; the reference is
 * wasm/chunk_sums.h). The op table's order: per chunk, 8 groups of chunk_rows / 8 consecutive
 * rows, each summed from 0 in row order, then the groups added from 0 in group order; float32 adds
 * rounded one by one, so the sums are the Wasm kernels' bits for the same outputs.
 *
 * Grid (chunks, ceil(cols / 32)), block (32, kSumGroups): thread (tx, g) walks column j through
 * group g's rows in order (a warp reads 32 consecutive columns of a row), computing each output
 * element with f(row in this call, column, row in the whole call). */
#pragma once
#include "common.cuh"

constexpr int kSumGroups = 8; /* groups per chunk (the op table's contract) */

template <class F>
__global__ void __launch_bounds__(32 * kSumGroups)
    rows_with_sums_kernel(int64_t rows, int cols, int chunk_rows, int64_t first_row, F f,
                          float* __restrict__ out, unsigned short* __restrict__ out16,
                          float* __restrict__ part) {
  __shared__ float sh[kSumGroups][32];
  const int tx = threadIdx.x, g = threadIdx.y, j = blockIdx.y * 32 + tx;
  const int64_t c = blockIdx.x, group = chunk_rows / kSumGroups;
  const int64_t r0 = c * chunk_rows + g * group, r1 = r0 + group < rows ? r0 + group : rows;
  float s = 0.0f;
  if (j < cols) {
    for (int64_t r = r0; r < r1; r++) {
      const float v = f(r, j, first_row + r);
      cm_store_f32_or_bf16(out, out16, r * cols + j, v); /* the sums: the float32 value */
      s = __fadd_rn(s, v);
    }
  }
  if (part == nullptr) return; /* the same for the whole grid */
  sh[g][tx] = s;
  __syncthreads();
  if (g == 0 && j < cols) {
    float t = 0.0f;
    for (int k = 0; k < kSumGroups; k++) t = __fadd_rn(t, sh[k][tx]);
    part[c * cols + j] = t;
  }
}

/* Launches f over the call's rows (rows of the whole call; this call's chunks from chunk0), out
 * (rows, cols), packed bf16 when out_bf16 (the op's flag: the sums still of the float32 values);
 * false when chunk_rows breaks the contract (noted as an error). */
template <class F>
bool rows_with_sums(int rows, int cols, int chunk_rows, int chunks, int chunk0, F f, float* out,
                    int out_bf16, float* part, const char* what) {
  if (chunk_rows < kSumGroups || chunk_rows % kSumGroups != 0) {
    cm_note_failure(what); /* chunk_rows must be a positive multiple of 8 */
    return false;
  }
  if (cols <= 0 || chunks <= 0) return true;
  const int64_t first = (int64_t)chunk0 * chunk_rows; /* this call's first row */
  const int64_t left = (int64_t)rows - first, all = (int64_t)chunks * chunk_rows;
  rows_with_sums_kernel<<<dim3((unsigned)chunks, (unsigned)((cols + 31) / 32)),
                          dim3(32, kSumGroups), 0, cm_stream()>>>(
      all < left ? all : left, cols, chunk_rows, first, f, out_bf16 ? nullptr : out,
      out_bf16 ? reinterpret_cast<unsigned short*>(out) : nullptr, part);
  CM_CHECK_LAUNCH(what);
  return true;
}
