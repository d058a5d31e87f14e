/* Row-by-row ops that also write column sums per chunk of rows (ffi/ops.ts "layernorm_backward",
 * "gelu_dropout_backward", "scale_dropout", "glu_backward"; src/tensor/chunk_sums.ts), in the op
 * table's order: per chunk, 8 groups of chunk_rows / 8 consecutive rows, each group summed from 0
 * in row order, then the groups added from 0 in group order. */
#pragma once
#include <stdint.h>

#include "bf16.h"

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

/* The ops whose column sums are those of their own output (gelu_dropout_backward, scale_dropout,
 * glu_backward): `fn` computes row r's float32 values into `row`; the loop below stores them to
 * the output, float32 or packed bf16 (the op's out_bf16), and adds them to the group sums, so the
 * sums are of the float32 values either way. */
typedef void (*cm_out_row_fn)(const void* ctx, int64_t first, int64_t r, float* row);

typedef struct {
  cm_out_row_fn fn;
  const void* ctx;
  float* out;     /* float32 output, or NULL */
  uint16_t* out16; /* packed bf16 output, or NULL */
  int32_t width;
} cm_out_rows;

static void cm_out_row(const void* ctx, int64_t first, int64_t r, float* gsum) {
  const cm_out_rows* q = ctx;
  float scratch[q->out16 ? q->width : 1];
  float* row = q->out16 ? scratch : q->out + r * q->width;
  q->fn(q->ctx, first, r, row);
  if (gsum) cm_add_row(gsum, row, q->width);
  if (q->out16) cm_bf16_row(q->out16 + r * q->width, row, q->width);
}

/* cm_rows_with_sums for such an op: out (rows, width) written as float32 or, with out_bf16, as
 * packed bf16. */
static inline void cm_out_rows_with_sums(int32_t rows, int32_t width, int32_t chunk_rows,
                                         int32_t chunks, int32_t chunk0, float* part, float* out,
                                         int32_t out_bf16, cm_out_row_fn fn, const void* ctx) {
  const cm_out_rows q = {fn, ctx, out_bf16 ? 0 : out, out_bf16 ? (uint16_t*)out : 0, width};
  cm_rows_with_sums(rows, width, chunk_rows, chunks, chunk0, part, cm_out_row, &q);
}
