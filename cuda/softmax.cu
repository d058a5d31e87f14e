/* Softmax and log-softmax over the last axis, forward and backward, on the device (ffi/ops.ts
 * "softmax_forward" .. "log_softmax_backward"; the reference is wasm/softmax.c). Rows have stride
 * ld; only the first cols elements of a row are read or written.
 *
 * A row is handled by one warp (cols <= 1024) or one 256-thread block (longer rows, e.g. the
 * vocabulary): each thread walks the columns j = lane, lane + TPR, ... in order, then a butterfly
 * over the warp (and, for a block, the eight warp sums added in a fixed pairwise tree) combines the
 * partials and every thread uses the same broadcast value. The shape depends only on cols, so a
 * row's bits depend on neither rows nor the launch. The Wasm kernel sums a row sequentially in
 * float32; here the partial sums are float32 too, in this fixed tree order (results agree to a few
 * ulp). exp/log are CUDA's expf/logf (max 2 / 1 ulp). Every element is read and written by the
 * same thread, so y may alias x (and dx may alias dy or y) as in the Wasm kernels. */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

/* Threads per row: a warp for short rows, the whole block for long ones. */
inline int threads_per_row(int cols) { return cols <= 1024 ? 32 : kThreads; }

struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/* The reduction of v over the TPR threads of a row, the same value in every one of them. */
template <int TPR, class Op>
__device__ __forceinline__ float row_reduce(float v, float* sh, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFull, v, o));
  v = __shfl_sync(kFull, v, 0);
  if constexpr (TPR == 32) {
    return v;
  } else {
    constexpr int NW = TPR / 32;
    __syncthreads(); /* earlier readers of sh are done */
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float t[NW];
#pragma unroll
    for (int i = 0; i < NW; i++) t[i] = sh[i];
#pragma unroll
    for (int w = NW / 2; w > 0; w >>= 1) {
#pragma unroll
      for (int i = 0; i < w; i++) t[i] = op(t[i], t[i + w]);
    }
    return t[0];
  }
}

/* Row loop shared by the kernels: r runs over this thread's rows, lane is its index in the row. */
#define ROW_LOOP(TPR, rows)                                                       \
  constexpr int RPB = kThreads / (TPR);                                           \
  const int lane = threadIdx.x % (TPR);                                           \
  for (int64_t r = (int64_t)blockIdx.x * RPB + threadIdx.x / (TPR); r < (rows); \
       r += (int64_t)gridDim.x * RPB)

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    softmax_forward_kernel(int rows, int cols, int ld, const float* x, float* y) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float* xr = x + r * ld;
    float* yr = y + r * ld;
    float m = -INFINITY;
    for (int j = lane; j < cols; j += TPR) m = fmaxf(m, xr[j]);
    m = row_reduce<TPR>(m, sh, MaxOp());
    float s = 0.0f;
    for (int j = lane; j < cols; j += TPR) s += expf(xr[j] - m);
    s = row_reduce<TPR>(s, sh, SumOp());
    for (int j = lane; j < cols; j += TPR) yr[j] = expf(xr[j] - m) / s;
  }
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    log_softmax_forward_kernel(int rows, int cols, int ld, const float* x, float* y) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float* xr = x + r * ld;
    float* yr = y + r * ld;
    float m = -INFINITY;
    for (int j = lane; j < cols; j += TPR) m = fmaxf(m, xr[j]);
    m = row_reduce<TPR>(m, sh, MaxOp());
    float s = 0.0f;
    for (int j = lane; j < cols; j += TPR) s += expf(xr[j] - m);
    s = row_reduce<TPR>(s, sh, SumOp());
    float log_s = logf(s); /* s >= 1: the max term contributes exp(0) */
    for (int j = lane; j < cols; j += TPR) yr[j] = (xr[j] - m) - log_s;
  }
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_kernel(int rows, int cols, int ld, const float* y, const float* dy, float* dx) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float *yr = y + r * ld, *gr = dy + r * ld;
    float* dxr = dx + r * ld;
    float s = 0.0f; /* sum_j dy[j] y[j] */
    for (int j = lane; j < cols; j += TPR) s += gr[j] * yr[j];
    s = row_reduce<TPR>(s, sh, SumOp());
    for (int j = lane; j < cols; j += TPR) dxr[j] = yr[j] * (gr[j] - s);
  }
}

template <int TPR>
__global__ void __launch_bounds__(kThreads) log_softmax_backward_kernel(int rows, int cols, int ld,
                                                                        const float* y,
                                                                        const float* dy, float* dx) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float *yr = y + r * ld, *gr = dy + r * ld;
    float* dxr = dx + r * ld;
    float s = 0.0f; /* sum_j dy[j] */
    for (int j = lane; j < cols; j += TPR) s += gr[j];
    s = row_reduce<TPR>(s, sh, SumOp());
    for (int j = lane; j < cols; j += TPR) dxr[j] = gr[j] - expf(yr[j]) * s;
  }
}

inline unsigned row_grid(int rows, int tpr) {
  unsigned g = cm_blocks(rows, kThreads / tpr);
  return g > (1u << 20) ? (1u << 20) : g;
}

/* Launches kernel<32> or kernel<256> by the row length. */
#define LAUNCH_ROWS(kernel, name, p, ...)                                                        \
  do {                                                                                           \
    if ((p)->rows <= 0 || (p)->cols <= 0) return;                                                \
    int tpr = threads_per_row((p)->cols);                                                        \
    if (tpr == 32)                                                                               \
      kernel<32><<<row_grid((p)->rows, 32), kThreads, 0, cm_stream()>>>((p)->rows, (p)->cols,   \
                                                                         (p)->ld, __VA_ARGS__); \
    else                                                                                         \
      kernel<kThreads><<<row_grid((p)->rows, kThreads), kThreads, 0, cm_stream()>>>(            \
          (p)->rows, (p)->cols, (p)->ld, __VA_ARGS__);                                           \
    CM_CHECK_LAUNCH(name);                                                                       \
  } while (0)

}  // namespace

void cm_softmax_forward(const cm_rows_params* p, const float* x, float* y) {
  LAUNCH_ROWS(softmax_forward_kernel, "softmax_forward", p, x, y);
}

void cm_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx) {
  LAUNCH_ROWS(softmax_backward_kernel, "softmax_backward", p, y, dy, dx);
}

void cm_log_softmax_forward(const cm_rows_params* p, const float* x, float* y) {
  LAUNCH_ROWS(log_softmax_forward_kernel, "log_softmax_forward", p, x, y);
}

void cm_log_softmax_backward(const cm_rows_params* p, const float* y, const float* dy,
                             float* dx) {
  LAUNCH_ROWS(log_softmax_backward_kernel, "log_softmax_backward", p, y, dy, dx);
}
