/* Row-by-row ops that also write their output's column sums per chunk of rows (ffi/ops.ts
 * "gelu_dropout_backward", "scale_dropout"; src/tensor/chunk_sums.ts): the op table's order, as
 * layernorm_backward's partials: per chunk, 8 groups of chunk_rows / 8 consecutive rows, each group
 * summed from 0 in row order, then the groups added from 0 in group order. */
#pragma once
#include <stdint.h>

/* Writes row `row` (the call's local row index; `first + row` in the whole call) of the output. */
typedef void (*cm_row_fn)(const void* ctx, int64_t first, int64_t row);

/* Runs fn over this call's rows (its chunks; the last cut at the whole call's `rows`), and when
 * part (chunks, cols) is given, the column sums of out (rows, cols) per chunk. */
static inline void cm_rows_with_sums(int32_t rows, int32_t cols, int32_t chunk_rows,
                                     int32_t chunks, int32_t chunk0, const float* out,
                                     float* part, cm_row_fn fn, const void* ctx) {
  if (chunk_rows < 8 || chunk_rows % 8 != 0) __builtin_trap(); /* the ops' contract */
  if (cols <= 0 || chunks <= 0) return;
  const int64_t first = (int64_t)chunk0 * chunk_rows, left = (int64_t)rows - first;
  const int64_t all = (int64_t)chunks * chunk_rows, n = all < left ? all : left;
  const int32_t group = chunk_rows / 8;
  float gsum[cols]; /* one group's column sums */
  for (int32_t c = 0; c < chunks; c++) {
    float* pc = part ? part + (int64_t)c * cols : 0;
    if (pc) {
      for (int32_t j = 0; j < cols; j++) pc[j] = 0.0f;
    }
    for (int32_t g = 0; g < 8; g++) {
      const int64_t r0 = (int64_t)c * chunk_rows + (int64_t)g * group;
      for (int32_t j = 0; j < cols; j++) gsum[j] = 0.0f;
      for (int64_t r = r0; r < r0 + group && r < n; r++) {
        fn(ctx, first, r);
        if (pc) {
          const float* o = out + r * cols;
          for (int32_t j = 0; j < cols; j++) gsum[j] += o[j];
        }
      }
      if (pc) {
        for (int32_t j = 0; j < cols; j++) pc[j] += gsum[j];
      }
    }
  }
}
