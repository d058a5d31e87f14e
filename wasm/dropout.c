/* Dropout with a counter-based draw (dropout_hash.h): the mask is a pure function of (seed,
 * stream, global index): the same for any thread split, and the backward (this op on dy) sees the
 * same mask without storing it. */
#include "../ffi/ops.h"
#include "bf16_simd.h"
#include "chunk_sums.h"
#include "dropout_hash.h"

void cm_dropout(const cm_dropout_params* p, const float* x, float* y) {
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p);
  v128_t vscale = wasm_f32x4_splat(scale);
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: y rounded to packed bf16 */
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    cm_store_lanes(y, y16, i, wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(x + i), vscale), keep), 4);
  }
  for (; i < p->n; i++) {
    float v = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)i, p->p) ? x[i] * scale : 0.0f;
    cm_store_f32_or_bf16(y, y16, i, v);
  }
}

/* s = x + alpha dropout(y): the mask and product, alpha times it, the sum: three roundings in the
 * order of dropout, scale, add (the residual around the macaron FFN's dropped-out output). */
void cm_dropout_add(const cm_dropout_add_params* p, const float* x, const float* y, float* s) {
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p);
  v128_t vscale = wasm_f32x4_splat(scale), valpha = wasm_f32x4_splat(p->alpha);
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    v128_t d = wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(y + i), vscale), keep);
    wasm_v128_store(s + i, wasm_f32x4_add(wasm_v128_load(x + i), wasm_f32x4_mul(d, valpha)));
  }
  for (; i < p->n; i++) {
    float d = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)i, p->p) ? y[i] * scale : 0.0f;
    s[i] = x[i] + d * p->alpha;
  }
}

/* y = dropout(alpha x) over n elements whose mask indices start at index0: the bits of scale then
 * dropout (dropout_add's backward for its branch). */
static void scale_dropout_run(uint32_t key, float p, float alpha, uint32_t index0, int32_t n,
                              const float* x, float* y) {
  float scale = 1.0f / (1.0f - p);
  v128_t vscale = wasm_f32x4_splat(scale), valpha = wasm_f32x4_splat(alpha);
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, index0 + (uint32_t)i, p);
    v128_t kept = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(x + i), valpha), vscale);
    wasm_v128_store(y + i, wasm_v128_and(kept, keep));
  }
  for (; i < n; i++) y[i] = cm_dropout_keep(key, index0 + (uint32_t)i, p) ? (x[i] * alpha) * scale : 0.0f;
}

typedef struct {
  uint32_t key;
  float p, alpha;
  int32_t cols;
  const float* x;
} scale_dropout_rows;

static void scale_dropout_row(const void* ctx, int64_t first, int64_t r, float* row) {
  const scale_dropout_rows* q = ctx;
  const int64_t o = r * q->cols;
  scale_dropout_run(q->key, q->p, q->alpha, (uint32_t)((first + r) * q->cols), q->cols, q->x + o,
                    row);
}

/* Row by row over this call's chunks (element (r, j) takes the mask at index r cols + j of the
 * whole call); with part, each chunk's column sums of y in the op table's order. */
void cm_scale_dropout(const cm_dropout_rows_params* p, const float* x, float* y, float* part) {
  const scale_dropout_rows q = {cm_dropout_key(p->seed, p->stream), p->p, p->alpha, p->cols, x};
  cm_out_rows_with_sums(p->rows, p->cols, p->chunk_rows, p->chunks, p->chunk0, part, y,
                        p->out_bf16, scale_dropout_row, &q);
}
