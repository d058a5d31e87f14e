/* Deterministic column sums over many rows on the device, for sum_rows (reduce.cu; LayerNorm's
 * parameter gradients have their own chunk order, fixed by the op table: layernorm.cu).
 *
 * One thread per column walking every row (the Wasm kernels' sequential order, bit for bit) leaves
 * the GPU nearly idle on a training step's shapes: a bias gradient of conmamba_large sums 12,480
 * rows over 512 columns, 512 threads each waiting on 12,480 dependent loads. From kColSplitRows
 * rows on, the rows are cut into chunks of kColChunk (a plan from the shape alone): a block of
 * 32 columns x kColGroups row groups sums one chunk, group g taking rows g, g + kColGroups, ... of
 * the chunk in order and the groups then added in order of g; a second pass adds the chunks'
 * partial sums in chunk order (after y's old value when accumulating). A fixed order with no
 * atomics: the same bits on every run and every card, a few ulp from the Wasm kernels' sequential
 * sums (the parity suite's SUMS bound). Below kColSplitRows the sequential kernels run, so small
 * sums keep the Wasm bits. */
#pragma once
#include "common.cuh"

constexpr int kColSplitRows = 1024; /* rows from which the chunked plan is used */
constexpr int kColChunk = 256;      /* rows per chunk */
constexpr int kColGroups = 8;       /* row groups per chunk (block: 32 x kColGroups threads) */

inline int col_chunks(int rows) { return (rows + kColChunk - 1) / kColChunk; }

/* Pass 1 of NOUT column sums of f(r, j) over rows: part[(c * NOUT + o) * cols + j] = the sum of
 * output o over chunk c (groups in order). Grid (ceil(cols / 32), chunks), block (32, kColGroups). */
template <int NOUT, class F>
__global__ void __launch_bounds__(32 * kColGroups)
    col_chunk_kernel(int rows, int cols, F f, float* __restrict__ part) {
  __shared__ float sh[NOUT][kColGroups][32];
  const int tx = threadIdx.x, g = threadIdx.y;
  const int j = blockIdx.x * 32 + tx, c = blockIdx.y;
  const int r0 = c * kColChunk, r1 = r0 + kColChunk < rows ? r0 + kColChunk : rows;
  float s[NOUT];
#pragma unroll
  for (int o = 0; o < NOUT; o++) s[o] = 0.0f;
  if (j < cols) {
    for (int r = r0 + g; r < r1; r += kColGroups) {
      float v[NOUT];
      f(r, j, v);
#pragma unroll
      for (int o = 0; o < NOUT; o++) s[o] = __fadd_rn(s[o], v[o]);
    }
  }
#pragma unroll
  for (int o = 0; o < NOUT; o++) sh[o][g][tx] = s[o];
  __syncthreads();
  if (g == 0 && j < cols) {
#pragma unroll
    for (int o = 0; o < NOUT; o++) {
      float t = sh[o][0][tx];
      for (int k = 1; k < kColGroups; k++) t = __fadd_rn(t, sh[o][k][tx]);
      part[((int64_t)c * NOUT + o) * cols + j] = t;
    }
  }
}

/* Pass 2: out[o][j] = (accumulate ? out[o][j] : 0) + the chunks' partials in chunk order. */
template <int NOUT>
__global__ void col_finish_kernel(int chunks, int cols, int accumulate,
                                  const float* __restrict__ part, float* out0, float* out1) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
#pragma unroll
  for (int o = 0; o < NOUT; o++) {
    float* out = o == 0 ? out0 : out1;
    float s = accumulate ? out[j] : 0.0f;
    for (int c = 0; c < chunks; c++) s = __fadd_rn(s, part[((int64_t)c * NOUT + o) * cols + j]);
    out[j] = s;
  }
}

/* Both passes on the library's stream (workspace from the caching allocator; false: out of
 * memory, noted as an error like any other, nothing written). */
template <int NOUT, class F>
bool col_sums_chunked(int rows, int cols, int accumulate, F f, float* out0, float* out1,
                      const char* what) {
  const int chunks = col_chunks(rows);
  const uint64_t block = cm_cuda_malloc((uint64_t)chunks * NOUT * cols * sizeof(float));
  if (!block) {
    cm_note_failure(what);
    return false;
  }
  float* part = (float*)(uintptr_t)block;
  col_chunk_kernel<NOUT><<<dim3((unsigned)((cols + 31) / 32), (unsigned)chunks),
                           dim3(32, kColGroups), 0, cm_stream()>>>(rows, cols, f, part);
  CM_CHECK_LAUNCH(what);
  col_finish_kernel<NOUT><<<cm_blocks(cols, 128), 128, 0, cm_stream()>>>(chunks, cols, accumulate,
                                                                       part, out0, out1);
  CM_CHECK_LAUNCH(what);
  cm_cuda_free(block); /* stream order keeps it until the second pass has run */
  return true;
}
