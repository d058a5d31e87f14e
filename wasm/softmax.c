/* Softmax and log-softmax over the last axis, forward and backward, one row at a time. */
#include "../ffi/ops.h"
#include "mathf.h"

static float row_max(const float* x, int32_t n) {
  float m = x[0];
  for (int32_t j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

void cm_softmax_forward(const cm_rows_params* p, const float* x, float* y) {
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * p->ld;
    float* yr = y + (int64_t)r * p->ld;
    float m = row_max(xr, p->cols), s = 0.0f;
    for (int32_t j = 0; j < p->cols; j++) s += (yr[j] = cm_expf(xr[j] - m));
    for (int32_t j = 0; j < p->cols; j++) yr[j] /= s;
  }
}

void cm_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx) {
  for (int32_t r = 0; r < p->rows; r++) {
    const float *yr = y + (int64_t)r * p->ld, *gr = dy + (int64_t)r * p->ld;
    float* dxr = dx + (int64_t)r * p->ld;
    float s = 0.0f; /* sum_j dy[j] y[j] */
    for (int32_t j = 0; j < p->cols; j++) s += gr[j] * yr[j];
    for (int32_t j = 0; j < p->cols; j++) dxr[j] = yr[j] * (gr[j] - s);
  }
}

void cm_log_softmax_forward(const cm_rows_params* p, const float* x, float* y) {
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * p->ld;
    float* yr = y + (int64_t)r * p->ld;
    float m = row_max(xr, p->cols), s = 0.0f;
    for (int32_t j = 0; j < p->cols; j++) s += cm_expf(xr[j] - m);
    float log_s = cm_logf(s); /* s >= 1: the max term contributes exp(0) */
    for (int32_t j = 0; j < p->cols; j++) yr[j] = (xr[j] - m) - log_s;
  }
}

void cm_log_softmax_backward(const cm_rows_params* p, const float* y, const float* dy,
                             float* dx) {
  for (int32_t r = 0; r < p->rows; r++) {
    const float *yr = y + (int64_t)r * p->ld, *gr = dy + (int64_t)r * p->ld;
    float* dxr = dx + (int64_t)r * p->ld;
    float s = 0.0f; /* sum_j dy[j] */
    for (int32_t j = 0; j < p->cols; j++) s += gr[j];
    for (int32_t j = 0; j < p->cols; j++) dxr[j] = gr[j] - cm_expf(yr[j]) * s;
  }
}
