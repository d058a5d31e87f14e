/* LayerNorm over the last axis on the device (ffi/ops.ts "layernorm_forward", "layernorm_backward",
 * "layernorm_backward_params"; CONMAMBA_SPEC.md 4.16: biased variance, eps inside the root; the
 * reference is wasm/layernorm.c).
 *
 * Forward and backward: a row is handled by one warp (cols <= 1024) or one 256-thread block
 * (longer rows). Each thread sums the columns j = lane, lane + TPR, ... in order in float32 (as the
 * Wasm kernel, which sums in float32 too), a warp butterfly and, for a block, a fixed pairwise tree
 * of the warp sums combine them, and every thread uses the same broadcast value: the order depends
 * only on cols, so results are deterministic (a few ulp from the Wasm kernel's 4-lane order).
 * mean and rstd are two passes over the row, as in the Wasm kernel; rstd = 1 / sqrtf (IEEE).
 *
 * backward_params: below 1024 rows one thread per column walks the rows in order with separately
 * rounded float32 products and sums (no FMA contraction), exactly the Wasm kernel's arithmetic, so
 * dgamma and dbeta are the same bits (loads batched eight rows ahead). From 1024 rows (every
 * LayerNorm of a training step) the chunked plan of column_sums.cuh: the same element terms, summed
 * in a fixed chunked order over all SMs, a few ulp from the Wasm sums. */
#include "column_sums.cuh"
#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

inline int threads_per_row(int cols) { return cols <= 1024 ? 32 : kThreads; }

/* The sum of v over the TPR threads of a row, the same value in every one of them. */
template <int TPR>
__device__ __forceinline__ float row_sum(float v, float* sh) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
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
      for (int i = 0; i < w; i++) t[i] = t[i] + t[i + w];
    }
    return t[0];
  }
}

#define ROW_LOOP(TPR, rows)                                                       \
  constexpr int RPB = kThreads / (TPR);                                           \
  const int lane = threadIdx.x % (TPR);                                           \
  for (int64_t r = (int64_t)blockIdx.x * RPB + threadIdx.x / (TPR); r < (rows); \
       r += (int64_t)gridDim.x * RPB)

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    layernorm_forward_kernel(int rows, int cols, int ld, float eps, const float* x,
                             const float* gamma, const float* beta, float* y, float* mean,
                             float* rstd) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float* xr = x + r * ld;
    float* yr = y + r * ld;
    float s = 0.0f;
    for (int j = lane; j < cols; j += TPR) s += xr[j];
    float mu = row_sum<TPR>(s, sh) / (float)cols;
    float q = 0.0f;
    for (int j = lane; j < cols; j += TPR) {
      float d = xr[j] - mu;
      q += d * d;
    }
    float rs = 1.0f / sqrtf(row_sum<TPR>(q, sh) / (float)cols + eps);
    if (lane == 0) mean[r] = mu, rstd[r] = rs;
    for (int j = lane; j < cols; j += TPR) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
  }
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    layernorm_backward_kernel(int rows, int cols, int ld, int accumulate, const float* x,
                              const float* gamma, const float* mean, const float* rstd,
                              const float* dy, float* dx) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float *xr = x + r * ld, *gr = dy + r * ld;
    float* dxr = dx + r * ld;
    float mu = mean[r], rs = rstd[r];
    /* a = mean_j g[j], b = mean_j g[j] xhat[j], with g = dy * gamma */
    float sg = 0.0f, sgx = 0.0f;
    for (int j = lane; j < cols; j += TPR) {
      float g = gr[j] * gamma[j];
      sg += g;
      sgx += g * ((xr[j] - mu) * rs);
    }
    float a = row_sum<TPR>(sg, sh) / (float)cols;
    float b = row_sum<TPR>(sgx, sh) / (float)cols;
    for (int j = lane; j < cols; j += TPR) {
      float v = rs * (gr[j] * gamma[j] - a - ((xr[j] - mu) * rs) * b);
      dxr[j] = accumulate ? dxr[j] + v : v;
    }
  }
}

constexpr int kColThreads = 32; /* small blocks spread the few columns over many SMs */
constexpr int kAhead = 8;

__global__ void __launch_bounds__(kColThreads)
    layernorm_backward_params_kernel(int rows, int cols, int ld, int accumulate, const float* x,
                                     const float* mean, const float* rstd, const float* dy,
                                     float* dgamma, float* dbeta) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float sg = accumulate ? dgamma[j] : 0.0f, sb = accumulate ? dbeta[j] : 0.0f;
  int r = 0;
  for (; r + kAhead <= rows; r += kAhead) {
    float xv[kAhead], gv[kAhead], mv[kAhead], rv[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; u++) {
      int64_t o = (int64_t)(r + u) * ld + j;
      xv[u] = x[o], gv[u] = dy[o], mv[u] = mean[r + u], rv[u] = rstd[r + u];
    }
#pragma unroll
    for (int u = 0; u < kAhead; u++) {
      sg = __fadd_rn(sg, __fmul_rn(gv[u], __fmul_rn(__fsub_rn(xv[u], mv[u]), rv[u])));
      sb = __fadd_rn(sb, gv[u]);
    }
  }
  for (; r < rows; r++) {
    int64_t o = (int64_t)r * ld + j;
    float g = dy[o];
    sg = __fadd_rn(sg, __fmul_rn(g, __fmul_rn(__fsub_rn(x[o], mean[r]), rstd[r]))); /* dy xhat */
    sb = __fadd_rn(sb, g);                                                         /* dy */
  }
  dgamma[j] = sg;
  dbeta[j] = sb;
}

inline unsigned row_grid(int rows, int tpr) {
  unsigned g = cm_blocks(rows, kThreads / tpr);
  return g > (1u << 20) ? (1u << 20) : g;
}

}  // namespace

void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma,
                          const float* beta, float* y, float* mean, float* rstd) {
  if (p->rows <= 0 || p->cols <= 0) return;
  if (threads_per_row(p->cols) == 32)
    layernorm_forward_kernel<32><<<row_grid(p->rows, 32), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, gamma, beta, y, mean, rstd);
  else
    layernorm_forward_kernel<kThreads><<<row_grid(p->rows, kThreads), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, gamma, beta, y, mean, rstd);
  CM_CHECK_LAUNCH("layernorm_forward");
}

void cm_layernorm_backward(const cm_rows_params* p, const float* x, const float* gamma,
                           const float* mean, const float* rstd, const float* dy, float* dx) {
  if (p->rows <= 0 || p->cols <= 0) return;
  if (threads_per_row(p->cols) == 32)
    layernorm_backward_kernel<32><<<row_grid(p->rows, 32), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->accumulate, x, gamma, mean, rstd, dy, dx);
  else
    layernorm_backward_kernel<kThreads><<<row_grid(p->rows, kThreads), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->accumulate, x, gamma, mean, rstd, dy, dx);
  CM_CHECK_LAUNCH("layernorm_backward");
}

/* (dy xhat, dy) of element (r, j), the sequential kernel's roundings (column_sums.cuh). */
struct LnParamTerms {
  const float *x, *mean, *rstd, *dy;
  int64_t ld;
  __device__ void operator()(int r, int j, float* v) const {
    const int64_t o = (int64_t)r * ld + j;
    const float g = dy[o];
    v[0] = __fmul_rn(g, __fmul_rn(__fsub_rn(x[o], mean[r]), rstd[r]));
    v[1] = g;
  }
};

void cm_layernorm_backward_params(const cm_rows_params* p, const float* x, const float* mean,
                                  const float* rstd, const float* dy, float* dgamma,
                                  float* dbeta) {
  if (p->cols <= 0) return;
  if (p->rows >= kColSplitRows) {
    col_sums_chunked<2>(p->rows, p->cols, p->accumulate, LnParamTerms{x, mean, rstd, dy, p->ld},
                        dgamma, dbeta,
                        "layernorm_backward_params (chunked: out of device memory for the partial sums)");
    return;
  }
  /* rows == 0 still runs: it zeroes dgamma and dbeta unless accumulating, as the Wasm kernel. */
  layernorm_backward_params_kernel<<<cm_blocks(p->cols, kColThreads), kColThreads, 0, cm_stream()>>>(
      p->rows < 0 ? 0 : p->rows, p->cols, p->ld, p->accumulate, x, mean, rstd, dy, dgamma, dbeta);
  CM_CHECK_LAUNCH("layernorm_backward_params");
}
