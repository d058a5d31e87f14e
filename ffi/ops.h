/* Generated from ffi/ops.ts by ffi/gen_header.ts: edit the table there, then regenerate. */
#ifndef CM_OPS_H
#define CM_OPS_H

#include <stdint.h>

#if defined(__wasm__)
#define CM_API __attribute__((visibility("default")))
#else
#define CM_API
#endif

#define CM_OP_COUNT 17

typedef struct cm_matmul_params {
  int32_t batch; /* number of independent products */
  int32_t m; /* rows of C */
  int32_t n; /* columns of C */
  int32_t k; /* inner dimension */
  int32_t lda; /* row stride of A as stored ((M, K), or (K, M) when trans_a) */
  int32_t ldb; /* row stride of B as stored ((K, N), or (N, K) when trans_b) */
  int32_t ldc; /* row stride of C */
  int32_t stride_a; /* elements between batches of A (0: shared) */
  int32_t stride_b; /* elements between batches of B (0: shared, e.g. a weight) */
  int32_t stride_c; /* elements between batches of C */
  int32_t trans_a; /* 1: A is stored (K, M) */
  int32_t trans_b; /* 1: B is stored (N, K) */
  int32_t accumulate; /* 1: C += op(A) op(B); 0: C = op(A) op(B) */
} cm_matmul_params;

typedef struct cm_elementwise_params {
  int32_t n; /* number of elements */
  float alpha; /* scalar operand (scale) */
} cm_elementwise_params;

typedef struct cm_rows_params {
  int32_t rows; /* number of rows handled by this call */
  int32_t cols; /* length of the last axis handled by this call */
  int32_t ld; /* row stride in elements (>= cols) */
  int32_t accumulate; /* 1: outputs are added to, 0: overwritten */
  float eps; /* LayerNorm epsilon */
} cm_rows_params;

typedef struct cm_fbank_params {
  int32_t rows; /* frames computed by this call */
  int32_t cols; /* mel filters (80) */
  int32_t ld; /* row stride of the output */
  int32_t row0; /* index of this call's first frame in the utterance */
  int32_t n_samples; /* samples of the waveform */
  int32_t n_fft; /* FFT length (even, n_fft/2 a product of 2, 3, 5; <= 1024) */
  int32_t hop; /* samples between frames (160) */
} cm_fbank_params;

/* C = op(A) op(B) (+ C when accumulate) (+ bias per column). Each C element is a sequential float32 sum over k in order, whatever the blocking or thread split.
 *   a: (batch, m, k) or (batch, k, m)
 *   b: (batch, k, n) or (batch, n, k)
 *   bias: (n), may be NULL
 *   c: (batch, m, n) */
CM_API void cm_matmul(const cm_matmul_params* p, const float* a, const float* b, const float* bias, float* c);

/* y[j] (+)= sum over rows of x[r, j], rows in order (bias and LayerNorm beta gradients).
 *   x: (rows, ld)
 *   y: (cols) */
CM_API void cm_sum_rows(const cm_rows_params* p, const float* x, float* y);

/* y = a + b; y may alias a or b.
 *   a: (n)
 *   b: (n)
 *   y: (n) */
CM_API void cm_add(const cm_elementwise_params* p, const float* a, const float* b, float* y);

/* y = a * b; y may alias a or b.
 *   a: (n)
 *   b: (n)
 *   y: (n) */
CM_API void cm_mul(const cm_elementwise_params* p, const float* a, const float* b, float* y);

/* y = alpha * x; y may alias x.
 *   x: (n)
 *   y: (n) */
CM_API void cm_scale(const cm_elementwise_params* p, const float* x, float* y);

/* y = x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (exact, erf-based GELU).
 *   x: (n)
 *   y: (n) */
CM_API void cm_gelu_forward(const cm_elementwise_params* p, const float* x, float* y);

/* dx = dy * (Phi(x) + x phi(x)).
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_gelu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx);

/* y = x * sigmoid(x) (Swish).
 *   x: (n)
 *   y: (n) */
CM_API void cm_silu_forward(const cm_elementwise_params* p, const float* x, float* y);

/* dx = dy * s (1 + x (1 - s)), s = sigmoid(x).
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_silu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx);

/* LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16): y = (x - mean) rstd gamma + beta, rstd = 1 / sqrt(biased var + eps); saves mean and rstd for the backward.
 *   x: (rows, ld)
 *   gamma: (cols)
 *   beta: (cols)
 *   y: (rows, ld)
 *   mean: (rows)
 *   rstd: (rows) */
CM_API void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd);

/* dx (+)= rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma; per row.
 *   x: (rows, ld)
 *   gamma: (cols)
 *   mean: (rows)
 *   rstd: (rows)
 *   dy: (rows, ld)
 *   dx: (rows, ld) */
CM_API void cm_layernorm_backward(const cm_rows_params* p, const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy, float* dx);

/* dgamma (+)= sum_r dy xhat, dbeta (+)= sum_r dy; rows in order, so a split over columns gives the same bits for any thread count.
 *   x: (rows, ld)
 *   mean: (rows)
 *   rstd: (rows)
 *   dy: (rows, ld)
 *   dgamma: (cols)
 *   dbeta: (cols) */
CM_API void cm_layernorm_backward_params(const cm_rows_params* p, const float* x, const float* mean, const float* rstd, const float* dy, float* dgamma, float* dbeta);

/* y = exp(x - max) / sum exp(x - max), per row.
 *   x: (rows, ld)
 *   y: (rows, ld) */
CM_API void cm_softmax_forward(const cm_rows_params* p, const float* x, float* y);

/* dx = y (dy - sum(dy y)), per row.
 *   y: (rows, ld)
 *   dy: (rows, ld)
 *   dx: (rows, ld) */
CM_API void cm_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx);

/* y = (x - max) - log sum exp(x - max), per row.
 *   x: (rows, ld)
 *   y: (rows, ld) */
CM_API void cm_log_softmax_forward(const cm_rows_params* p, const float* x, float* y);

/* dx = dy - exp(y) sum(dy), per row.
 *   y: (rows, ld)
 *   dy: (rows, ld)
 *   dx: (rows, ld) */
CM_API void cm_log_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx);

/* Log-mel dB of frames row0 .. row0+rows-1 (CONMAMBA_SPEC.md 3.2-3.5, before the per-utterance top_db clamp), computed in double: centred zero-padded frames, window, |FFT|^2, triangular mel filters, 10 log10(max(E, 1e-10)).
 *   wav: (n_samples)
 *   window: (n_fft)
 *   twiddle_hi: (n_fft, 2)
 *   twiddle_lo: (n_fft, 2)
 *   mel: (packed: per filter first_bin, count, count weights)
 *   out: (rows, ld) */
CM_API void cm_fbank_forward(const cm_fbank_params* p, const float* wav, const float* window, const float* twiddle_hi, const float* twiddle_lo, const float* mel, float* out);

#endif /* CM_OPS_H */
