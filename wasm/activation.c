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
