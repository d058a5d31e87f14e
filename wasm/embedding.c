/* Embedding lookup (CONMAMBA_SPEC.md 4.13) and its backward, a scatter-add without atomics: each
 * call owns a range of columns of every table row and walks the ids in order. */
#include "../ffi/ops.h"

/* The row of an id stored as a float, or -1 when it is not an integer in [0, vocab). */
static inline int32_t row_of(float id, int32_t vocab) {
  if (!(id >= 0.0f && id < (float)vocab)) return -1; /* also rejects NaN */
  int32_t v = (int32_t)id;
  return (float)v == id ? v : -1;
}

void cm_embedding_forward(const cm_gather_params* p, const float* table, const float* ids,
                          float* y) {
  for (int32_t r = 0; r < p->rows; r++) {
    int32_t v = row_of(ids[r], p->vocab);
    float* yr = y + (int64_t)r * p->ld;
    const float* src = table + (int64_t)(v < 0 ? 0 : v) * p->ld;
    for (int32_t j = 0; j < p->cols; j++) yr[j] = v < 0 ? 0.0f : src[j];
  }
}

void cm_embedding_backward(const cm_gather_params* p, const float* ids, const float* dy,
                           float* dtable) {
  for (int32_t v = 0; v < p->vocab; v++) {
    float* row = dtable + (int64_t)v * p->ld;
    for (int32_t j = 0; j < p->cols; j++) row[j] = 0.0f;
  }
  for (int32_t r = 0; r < p->rows; r++) { /* ids in order: repeated ids add up the same way */
    int32_t v = row_of(ids[r], p->vocab);
    if (v < 0) continue;
    float* row = dtable + (int64_t)v * p->ld;
    const float* g = dy + (int64_t)r * p->ld;
    for (int32_t j = 0; j < p->cols; j++) row[j] += g[j];
  }
}
