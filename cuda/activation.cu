/* Activations on the device (ffi/ops.ts "gelu_forward" .. "glu_backward"; the reference is
 * wasm/activation.c; CONMAMBA_SPEC.md 4.2, 4.5-4.7).
 *
 * GELU is the exact, erf-based one, evaluated in float64 as the Wasm kernel does (x Phi(x) with
 * Phi from CUDA's double normcdf, phi = exp(-x^2 / 2) / sqrt(2 pi)), then rounded to float32 once:
 * both sides are within about an ulp of the correctly rounded value. SiLU, exp and the sigmoid of
 * GLU are float32 with CUDA's expf (max 2 ulp; the Wasm cm_expf flushes results below FLT_MIN to
 * 0, CUDA's expf returns the subnormal there). LeakyReLU is the same single float32 product, so
 * its bits equal the Wasm kernel's. One thread per element, except the optional column sums of
 * gelu_dropout_backward's and glu_backward's dx, which follow the op table's chunk order
 * (chunk_sums.cuh; no atomics). */
#include "chunk_sums.cuh"
#include "common.cuh"
#include "dropout_hash.cuh"
#include "gelu_dropout.cuh"

namespace {

constexpr int kThreads = 256;
/* 1 / sqrt(2 pi) */
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

inline unsigned grid_for(int64_t items) {
  unsigned g = cm_blocks(items, kThreads);
  return g > 65536u ? 65536u : g;
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* y16: y as packed bf16 instead (y_bf16; y is then null), for this kernel and silu's */
__global__ void __launch_bounds__(kThreads)
    gelu_forward_kernel(int64_t n, const float* x, float* y, unsigned short* y16) {
  CM_FOR(i, n) {
    double v = x[i];
    cm_store_f32_or_bf16(y, y16, i, (float)(v * normcdf(v))); /* x Phi(x) */
  }
}

__global__ void __launch_bounds__(kThreads)
    gelu_backward_kernel(int64_t n, const float* x, const float* dy, float* dx) {
  CM_FOR(i, n) {
    double v = x[i];
    double pdf = kInvSqrt2Pi * exp(-0.5 * (v * v));
    dx[i] = (float)((double)dy[i] * (normcdf(v) + v * pdf)); /* dy (Phi(x) + x phi(x)) */
  }
}

/* The FFN's inner GELU and dropout in one pass (wasm/activation.c): gelu_forward_kernel's float32
 * value, then dropout's mask and single product, so the bits equal the two ops in sequence. */
__global__ void __launch_bounds__(kThreads)
    gelu_dropout_forward_kernel(int64_t n, uint32_t key, uint32_t index0, float p, float scale,
                                const float* x, float* y, unsigned short* y16) {
  CM_FOR(i, n) cm_store_f32_or_bf16(y, y16, i, cm_gelu_dropout(x[i], key, index0 + (uint32_t)i, p, scale));
}

/* dx = GELU'(x) dropout(dy) of element o (mask index `index`): dropout's float32 value of dy,
 * then gelu_backward_kernel's float64 expression on it. */
struct GeluDropoutGrad {
  uint32_t key;
  float p, scale;
  int cols;
  const float *x, *dy;
  __device__ float operator()(int64_t r, int j, int64_t row) const {
    const int64_t o = r * cols + j;
    const uint32_t index = (uint32_t)(row * cols + j); /* of the whole call */
    const float g = cm_dropout_keep(key, index, p) ? __fmul_rn(dy[o], scale) : 0.0f;
    const double v = x[o];
    const double pdf = kInvSqrt2Pi * exp(-0.5 * (v * v));
    return (float)((double)g * (normcdf(v) + v * pdf));
  }
};

/* The front end's LeakyReLU then dropout, one pass each way: leaky_relu_forward_kernel's value,
 * then dropout's mask and single product (forward); dropout's value of dy, then the slope
 * (backward): the bits of the two ops in sequence. */
__global__ void __launch_bounds__(kThreads)
    leaky_relu_dropout_forward_kernel(int64_t n, uint32_t key, uint32_t index0, float p,
                                      float scale, float alpha, const float* x, float* y) {
  CM_FOR(i, n) {
    const float v = x[i], l = v > 0.0f ? v : __fmul_rn(alpha, v);
    y[i] = cm_dropout_keep(key, index0 + (uint32_t)i, p) ? __fmul_rn(l, scale) : 0.0f;
  }
}

__global__ void __launch_bounds__(kThreads)
    leaky_relu_dropout_backward_kernel(int64_t n, uint32_t key, uint32_t index0, float p,
                                       float scale, float alpha, const float* x, const float* dy,
                                       float* dx) {
  CM_FOR(i, n) {
    const float g = cm_dropout_keep(key, index0 + (uint32_t)i, p) ? __fmul_rn(dy[i], scale) : 0.0f;
    dx[i] = x[i] > 0.0f ? g : __fmul_rn(alpha, g);
  }
}

__global__ void __launch_bounds__(kThreads)
    silu_forward_kernel(int64_t n, const float* x, float* y, unsigned short* y16) {
  CM_FOR(i, n) {
    float v = x[i];
    cm_store_f32_or_bf16(y, y16, i, v * sigmoidf(v));
  }
}

__global__ void __launch_bounds__(kThreads)
    silu_backward_kernel(int64_t n, const float* x, const float* dy, float* dx) {
  CM_FOR(i, n) {
    float v = x[i], s = sigmoidf(v);
    dx[i] = dy[i] * (s * (1.0f + v * (1.0f - s))); /* dy s (1 + x (1 - s)) */
  }
}

__global__ void __launch_bounds__(kThreads) exp_forward_kernel(int64_t n, const float* x, float* y) {
  CM_FOR(i, n) y[i] = expf(x[i]);
}

__global__ void __launch_bounds__(kThreads)
    leaky_relu_forward_kernel(int64_t n, float alpha, const float* x, float* y) {
  CM_FOR(i, n) {
    float v = x[i];
    y[i] = v > 0.0f ? v : __fmul_rn(alpha, v);
  }
}

__global__ void __launch_bounds__(kThreads)
    leaky_relu_backward_kernel(int64_t n, float alpha, const float* x, const float* dy, float* dx) {
  CM_FOR(i, n) {
    float g = dy[i];
    dx[i] = x[i] > 0.0f ? g : __fmul_rn(alpha, g);
  }
}

/* GLU rows: x (rows, 2 cols) contiguous, y / dy (rows, cols) contiguous (the Wasm kernel's strides;
 * the rows params' ld is not used). blockIdx.x covers columns, blockIdx.y strides over rows. */
__global__ void __launch_bounds__(kThreads)
    glu_forward_kernel(int rows, int cols, const float* x, float* y) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const float* xr = x + r * 2 * cols;
    y[r * cols + j] = xr[j] * sigmoidf(xr[cols + j]);
  }
}

/* dx of the GLU, element (r, j) of (rows, 2 cols): j < cols: dy s; else dy a s (1 - s), with
 * a = x[r, j - cols], s = sigmoid(x[r, cols + (j mod cols)]) (each element its own sigmoid). */
struct GluGrad {
  int cols;
  const float *x, *dy;
  __device__ float operator()(int64_t r, int j, int64_t) const {
    const int k = j < cols ? j : j - cols;
    const float* xr = x + r * 2 * cols;
    const float g = dy[r * cols + k], s = sigmoidf(xr[cols + k]);
    return j < cols ? g * s                    /* d/da = s */
                    : g * xr[k] * (s * (1.0f - s)); /* d/dg = a s (1 - s) */
  }
};

inline dim3 glu_grid(int rows, int cols) {
  unsigned gy = (unsigned)(rows < 65535 ? rows : 65535);
  return dim3(cm_blocks(cols, kThreads), gy);
}

}  // namespace

void cm_gelu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  gelu_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(
      p->n, x, p->y_bf16 ? nullptr : y, p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr);
  CM_CHECK_LAUNCH("gelu_forward");
}

void cm_gelu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  if (p->n <= 0) return;
  gelu_backward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(p->n, x, dy, dx);
  CM_CHECK_LAUNCH("gelu_backward");
}

void cm_gelu_dropout_forward(const cm_dropout_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  float scale = 1.0f / (1.0f - p->p); /* float32 roundings, as the Wasm kernel */
  /* y_bf16: y is packed bf16 (2 bytes per element, the same indices) */
  gelu_dropout_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(
      p->n, cm_dropout_key(p->seed, p->stream), (uint32_t)p->index0, p->p, scale, x,
      p->y_bf16 ? nullptr : y, p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr);
  CM_CHECK_LAUNCH("gelu_dropout_forward");
}

void cm_gelu_dropout_backward(const cm_dropout_rows_params* p, const float* x, const float* dy,
                              float* dx, float* part) {
  const float scale = 1.0f / (1.0f - p->p); /* float32 roundings, as the Wasm kernel */
  const GeluDropoutGrad f{cm_dropout_key(p->seed, p->stream), p->p, scale, p->cols, x, dy};
  rows_with_sums(p->rows, p->cols, p->chunk_rows, p->chunks, p->chunk0, f, dx, p->out_bf16, part,
                 "gelu_dropout_backward (chunk_rows must be a multiple of 8)");
}

void cm_leaky_relu_dropout_forward(const cm_dropout_add_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  const float scale = 1.0f / (1.0f - p->p); /* float32 roundings, as the Wasm kernel */
  leaky_relu_dropout_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(
      p->n, cm_dropout_key(p->seed, p->stream), (uint32_t)p->index0, p->p, scale, p->alpha, x, y);
  CM_CHECK_LAUNCH("leaky_relu_dropout_forward");
}

void cm_leaky_relu_dropout_backward(const cm_dropout_add_params* p, const float* x,
                                    const float* dy, float* dx) {
  if (p->n <= 0) return;
  const float scale = 1.0f / (1.0f - p->p);
  leaky_relu_dropout_backward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(
      p->n, cm_dropout_key(p->seed, p->stream), (uint32_t)p->index0, p->p, scale, p->alpha, x, dy,
      dx);
  CM_CHECK_LAUNCH("leaky_relu_dropout_backward");
}

void cm_silu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  silu_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(
      p->n, x, p->y_bf16 ? nullptr : y, p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr);
  CM_CHECK_LAUNCH("silu_forward");
}

void cm_silu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  if (p->n <= 0) return;
  silu_backward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(p->n, x, dy, dx);
  CM_CHECK_LAUNCH("silu_backward");
}

void cm_exp_forward(const cm_elementwise_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  exp_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(p->n, x, y);
  CM_CHECK_LAUNCH("exp_forward");
}

void cm_leaky_relu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  if (p->n <= 0) return;
  leaky_relu_forward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(p->n, p->alpha, x, y);
  CM_CHECK_LAUNCH("leaky_relu_forward");
}

void cm_leaky_relu_backward(const cm_elementwise_params* p, const float* x, const float* dy,
                            float* dx) {
  if (p->n <= 0) return;
  leaky_relu_backward_kernel<<<grid_for(p->n), kThreads, 0, cm_stream()>>>(p->n, p->alpha, x, dy, dx);
  CM_CHECK_LAUNCH("leaky_relu_backward");
}

void cm_glu_forward(const cm_rows_params* p, const float* x, float* y) {
  if (p->rows <= 0 || p->cols <= 0) return;
  glu_forward_kernel<<<glu_grid(p->rows, p->cols), kThreads, 0, cm_stream()>>>(p->rows, p->cols, x, y);
  CM_CHECK_LAUNCH("glu_forward");
}

void cm_glu_backward(const cm_chunked_rows_params* p, const float* x, const float* dy, float* dx,
                     float* part) {
  rows_with_sums(p->rows, 2 * p->cols, p->chunk_rows, p->chunks, p->chunk0, GluGrad{p->cols, x, dy},
                 dx, p->out_bf16, part, "glu_backward (chunk_rows must be a multiple of 8)");
}
