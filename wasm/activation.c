/* GELU (exact, erf-based: the encoder's activation, CONMAMBA_SPEC.md 4.5-4.6) and SiLU (Swish,
 * the Mamba gate and the Conformer convolution module), forward and backward. Scalar: the
 * transcendental parts dominate; a SIMD exp is future work. */
#include "../ffi/ops.h"
#include "mathf.h"

/* 1 / sqrt(2 pi) */
#define CM_INV_SQRT_2PI 0.39894228040143267794

void cm_gelu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  for (int32_t i = 0; i < p->n; i++) {
    double xi = x[i];
    y[i] = (float)(xi * cm_normal_cdf(xi)); /* x Phi(x) */
  }
}

void cm_gelu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  for (int32_t i = 0; i < p->n; i++) {
    double xi = x[i];
    double pdf = CM_INV_SQRT_2PI * cm_exp(-0.5 * xi * xi);
    dx[i] = (float)(dy[i] * (cm_normal_cdf(xi) + xi * pdf)); /* dy (Phi(x) + x phi(x)) */
  }
}

void cm_silu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  for (int32_t i = 0; i < p->n; i++) {
    float s = 1.0f / (1.0f + cm_expf(-x[i])); /* sigmoid */
    y[i] = x[i] * s;
  }
}

void cm_silu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  for (int32_t i = 0; i < p->n; i++) {
    float s = 1.0f / (1.0f + cm_expf(-x[i]));
    dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
  }
}

void cm_exp_forward(const cm_elementwise_params* p, const float* x, float* y) {
  for (int32_t i = 0; i < p->n; i++) y[i] = cm_expf(x[i]);
}

/* LeakyReLU of the CNN front end (CONMAMBA_SPEC.md 4.2): slope alpha (0.01) below zero. */
void cm_leaky_relu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  for (int32_t i = 0; i < p->n; i++) y[i] = x[i] > 0.0f ? x[i] : p->alpha * x[i];
}

void cm_leaky_relu_backward(const cm_elementwise_params* p, const float* x, const float* dy,
                            float* dx) {
  for (int32_t i = 0; i < p->n; i++) dx[i] = x[i] > 0.0f ? dy[i] : p->alpha * dy[i];
}

/* GLU over channels (CONMAMBA_SPEC.md 4.6): the first half of each row gated by the second. */
void cm_glu_forward(const cm_rows_params* p, const float* x, float* y) {
  int32_t d = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * 2 * d;
    float* yr = y + (int64_t)r * d;
    for (int32_t j = 0; j < d; j++) yr[j] = xr[j] * cm_sigmoidf(xr[d + j]);
  }
}

void cm_glu_backward(const cm_rows_params* p, const float* x, const float* dy, float* dx) {
  int32_t d = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    const float *xr = x + (int64_t)r * 2 * d, *gr = dy + (int64_t)r * d;
    float* dxr = dx + (int64_t)r * 2 * d;
    for (int32_t j = 0; j < d; j++) {
      float s = cm_sigmoidf(xr[d + j]);
      dxr[j] = gr[j] * s;                         /* d/da = s */
      dxr[d + j] = gr[j] * xr[j] * (s * (1.0f - s)); /* d/dg = a s (1 - s) */
    }
  }
}
