/* Row-by-row ops that also write column sums per chunk of rows (ffi/ops.ts "layernorm_backward",
 * "gelu_dropout_backward", "scale_dropout", "glu_backward"; src/tensor/chunk_sums.ts), in the op
 * table's order: per chunk, 8 groups of chunk_rows / 8 consecutive rows, each group summed from 0
 * in row order, then the groups added from 0 in group order. */
#pragma once
#include <stdint.h>

/* Computes row `row` (the call's local row index; `first + row` in the whole call) and, when gsum
 * is not NULL, adds the row's `width` summed terms to gsum in column order. */
typedef void (*cm_row_fn)(const void* ctx, int64_t first, int64_t row, float* gsum);

/* gsum[j] += v[j] for j < n: an output row as its own column-sum terms. */
static inline void cm_add_row(float* gsum, const float* v, int32_t n) {
  for (int32_t j = 0; j < n; j++) gsum[j] += v[j];
}

/* Runs fn over this call's rows (its chunks; the last cut at the whole call's `rows`) and, when
 * part (chunks, width) is given, writes each chunk's sums of the rows' terms. */
static inline void cm_rows_with_sums(int32_t rows, int32_t width, int32_t chunk_rows,
                                     int32_t chunks, int32_t chunk0, float* part, cm_row_fn fn,
                                     const void* ctx) {
  if (chunk_rows < 8 || chunk_rows % 8 != 0) __builtin_trap(); /* the ops' contract */
  if (width <= 0 || chunks <= 0) return;
  const int64_t first = (int64_t)chunk0 * chunk_rows, left = (int64_t)rows - first;
  const int64_t all = (int64_t)chunks * chunk_rows, n = all < left ? all : left;
  const int32_t group = chunk_rows / 8;
  float gsum[width]; /* one group's column sums */
  for (int32_t c = 0; c < chunks; c++) {
    float* pc = part ? part + (int64_t)c * width : 0;
    if (pc) {
      for (int32_t j = 0; j < width; j++) pc[j] = 0.0f;
    }
    for (int32_t g = 0; g < 8; g++) {
      const int64_t r0 = (int64_t)c * chunk_rows + (int64_t)g * group;
      for (int32_t j = 0; j < width; j++) gsum[j] = 0.0f;
      for (int64_t r = r0; r < r0 + group && r < n; r++) fn(ctx, first, r, pc ? gsum : 0);
      if (pc) cm_add_row(pc, gsum, width);
    }
  }
}
