/* Dropout with a counter-based draw (dropout_hash.h): the mask is a pure function of (seed,
 * stream, global index): the same for any thread split, and the backward (this op on dy) sees the
 * same mask without storing it. */
#include "../ffi/ops.h"
#include "dropout_hash.h"

void cm_dropout(const cm_dropout_params* p, const float* x, float* y) {
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p);
  v128_t vscale = wasm_f32x4_splat(scale);
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    v128_t kept = wasm_f32x4_mul(wasm_v128_load(x + i), vscale);
    wasm_v128_store(y + i, wasm_v128_and(kept, keep));
  }
  for (; i < p->n; i++) {
    y[i] = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)i, p->p) ? x[i] * scale : 0.0f;
  }
}
