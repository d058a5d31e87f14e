/* Masked fill along time: frames at and after an utterance's length take a constant (the
 * Conformer zeroes its conv-module output at padded frames, CONMAMBA_SPEC.md 4.6 and 4.14). Its
 * backward is the same op with value 0 on the upstream gradient. */
#include "../ffi/ops.h"

void cm_masked_fill_time(const cm_mask_params* p, const float* x, const float* lengths, float* y) {
  int32_t T = p->seqlen, w = p->width;
  for (int32_t b = 0; b < p->batch; b++) {
    float len = lengths[b];
    int32_t valid = len < (float)T ? (len > 0.0f ? (int32_t)len : 0) : T;
    const float* src = x + (int64_t)b * T * w;
    float* dst = y + (int64_t)b * T * w;
    for (int64_t i = 0; i < (int64_t)valid * w; i++) dst[i] = src[i];
    for (int64_t i = (int64_t)valid * w; i < (int64_t)T * w; i++) dst[i] = p->value;
  }
}
