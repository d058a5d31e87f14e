/* Reductions over an axis on the device (ffi/ops.ts "sum_rows", "sum_axis", "broadcast_axis",
 * "max_last"; the reference is wasm/reduce.c).
 *
 * sum_rows and sum_axis: one thread per output element adds its column in order (rows, or i of the
 * reduced axis), starting from 0 (or y when sum_rows accumulates), float32 adds, then the one
 * division; exactly the Wasm kernel's arithmetic, so the bits are the same; loads are batched
 * sixteen rows ahead to overlap memory latency (LayerNorm's chunk partials: ~200 rows). sum_rows
 * over 1024 rows or more (a bias gradient over a batch's frames) uses the chunked plan of
 * column_sums.cuh instead: fixed order, all SMs busy, a few ulp from the Wasm sum.
 * broadcast_axis: one thread per output element, x / divisor (IEEE division; as the Wasm kernel it
 * divides even by 1). max_last: a warp (cols <= 1024) or a 256-thread block per row; each thread
 * keeps the first maximum of its columns, ties resolved to the smaller index in a fixed tree, so
 * the result is the Wasm kernel's: the value and first index of the maximum, NaNs after x[0]
 * skipped, and (NaN, 0) when x[0] is NaN (the sequential `x[j] > m` never replaces a NaN m). */
#include "column_sums.cuh"
#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;
constexpr int kAhead = 16; /* loads in flight per thread: the walks are latency-bound */

/* Column sums with few outputs use 32-thread blocks so the work spreads over many SMs. */
inline int col_threads(int64_t outputs) { return outputs >= 132 * kThreads ? kThreads : 32; }

/* y[j] = (accumulate ? y[j] : 0) + x[0, j] + x[1, j] + ..., rows in order. */
__global__ void sum_rows_kernel(int rows, int cols, int ld, int accumulate, const float* x, float* y) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cols) return;
  float s = accumulate ? y[j] : 0.0f;
  int r = 0;
  for (; r + kAhead <= rows; r += kAhead) {
    float v[kAhead];
#pragma unroll
    for (int u = 0; u < kAhead; u++) v[u] = x[(int64_t)(r + u) * ld + j];
#pragma unroll
    for (int u = 0; u < kAhead; u++) s = __fadd_rn(s, v[u]);
  }
  for (; r < rows; r++) s = __fadd_rn(s, x[(int64_t)r * ld + j]);
  y[j] = s;
}

/* y[o, k] = (sum_i x[o, i, k], i in order) / divisor (no division when divisor is 1). */
__global__ void sum_axis_kernel(int64_t outputs, int n, int inner, float divisor, const float* x,
                                float* y) {
  CM_FOR(q, outputs) {
    int64_t o = q / inner, k = q - o * inner;
    const float* xo = x + o * n * inner + k;
    float s = 0.0f;
    int i = 0;
    for (; i + kAhead <= n; i += kAhead) {
      float v[kAhead];
#pragma unroll
      for (int u = 0; u < kAhead; u++) v[u] = xo[(int64_t)(i + u) * inner];
#pragma unroll
      for (int u = 0; u < kAhead; u++) s = __fadd_rn(s, v[u]);
    }
    for (; i < n; i++) s = __fadd_rn(s, xo[(int64_t)i * inner]);
    if (divisor != 1.0f) s = __fdiv_rn(s, divisor);
    y[q] = s;
  }
}

/* y[o, i, k] = x[o, k] / divisor over the flat index q = (o n + i) inner + k. */
template <class Index>
__global__ void __launch_bounds__(kThreads)
    broadcast_axis_kernel(Index total, Index n, Index inner, float divisor, const float* x, float* y) {
  for (Index q = (Index)blockIdx.x * blockDim.x + threadIdx.x; q < total;
       q += (Index)gridDim.x * blockDim.x) {
    Index row = q / inner, k = q - row * inner, o = row / n;
    y[q] = __fdiv_rn(x[o * inner + k], divisor);
  }
}

/* The better of two (value, index) candidates: a real one over none (index < 0), then the larger
 * value, then the smaller index. Symmetric, so a butterfly leaves every lane with the same pair. */
__device__ __forceinline__ void better(float& v, int& i, float v2, int i2) {
  bool take;
  if (i2 < 0) take = false;
  else if (i < 0) take = true;
  else if (v2 > v) take = true;
  else if (v > v2) take = false;
  else take = i2 < i;
  if (take) v = v2, i = i2;
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    max_last_kernel(int rows, int cols, int ld, const float* x, float* y, float* index) {
  __shared__ float sh_v[kThreads / 32];
  __shared__ int sh_i[kThreads / 32];
  constexpr int RPB = kThreads / TPR;
  const int lane = threadIdx.x % TPR;
  for (int64_t r = (int64_t)blockIdx.x * RPB + threadIdx.x / TPR; r < rows;
       r += (int64_t)gridDim.x * RPB) {
    const float* xr = x + r * ld;
    float bv = 0.0f;
    int bi = -1;
    for (int j = lane; j < cols; j += TPR) {
      float v = xr[j];
      if (!isnan(v) && (bi < 0 || v > bv)) bv = v, bi = j;
    }
    for (int o = 16; o > 0; o >>= 1) {
      float v2 = __shfl_xor_sync(kFull, bv, o);
      int i2 = __shfl_xor_sync(kFull, bi, o);
      better(bv, bi, v2, i2);
    }
    if constexpr (TPR > 32) {
      constexpr int NW = TPR / 32;
      __syncthreads(); /* the previous row's readers of sh_* are done */
      if ((threadIdx.x & 31) == 0) sh_v[threadIdx.x >> 5] = bv, sh_i[threadIdx.x >> 5] = bi;
      __syncthreads();
      float tv[NW];
      int ti[NW];
#pragma unroll
      for (int w = 0; w < NW; w++) tv[w] = sh_v[w], ti[w] = sh_i[w];
#pragma unroll
      for (int w = NW / 2; w > 0; w >>= 1) {
#pragma unroll
        for (int u = 0; u < w; u++) better(tv[u], ti[u], tv[u + w], ti[u + w]);
      }
      bv = tv[0], bi = ti[0];
    }
    if (lane == 0) {
      float x0 = xr[0];
      if (isnan(x0) || bi < 0) bv = x0, bi = 0; /* a NaN first element is never replaced */
      y[r] = bv;
      index[r] = (float)bi;
    }
  }
}

inline unsigned capped(unsigned g, unsigned cap) { return g > cap ? cap : g; }

}  // namespace

/* x[r, j] as the chunked column sum's element (column_sums.cuh). */
struct RowsOf {
  const float* x;
  int64_t ld;
  __device__ void operator()(int r, int j, float* v) const { v[0] = x[(int64_t)r * ld + j]; }
};

void cm_sum_rows(const cm_rows_params* p, float const* x, float* y) {
  if (p->cols <= 0) return;
  if (p->rows >= kColSplitRows) { /* many rows: chunked, in a fixed order (column_sums.cuh) */
    col_sums_chunked<1>(p->rows, p->cols, p->accumulate, RowsOf{x, p->ld}, y, nullptr,
                        "sum_rows (chunked: out of device memory for the partial sums)");
    return;
  }
  /* rows == 0 still runs: y becomes 0 unless accumulating, as in the Wasm kernel. */
  int t = col_threads(p->cols);
  sum_rows_kernel<<<cm_blocks(p->cols, t), t, 0, cm_stream()>>>(p->rows < 0 ? 0 : p->rows, p->cols,
                                                                  p->ld, p->accumulate, x, y);
  CM_CHECK_LAUNCH("sum_rows");
}

void cm_sum_axis(const cm_axis_params* p, const float* x, float* y) {
  int64_t outputs = (int64_t)p->outer * p->inner;
  if (p->outer <= 0 || p->inner <= 0) return;
  int t = col_threads(outputs);
  sum_axis_kernel<<<capped(cm_blocks(outputs, t), 1u << 20), t, 0, cm_stream()>>>(
      outputs, p->n < 0 ? 0 : p->n, p->inner, p->divisor, x, y);
  CM_CHECK_LAUNCH("sum_axis");
}

void cm_broadcast_axis(const cm_axis_params* p, const float* x, float* y) {
  if (p->outer <= 0 || p->n <= 0 || p->inner <= 0) return;
  int64_t total = (int64_t)p->outer * p->n * p->inner;
  unsigned grid = capped(cm_blocks(total, kThreads), 65536u);
  if (total < ((int64_t)1 << 31) - (int64_t)grid * kThreads)
    broadcast_axis_kernel<uint32_t><<<grid, kThreads, 0, cm_stream()>>>(
        (uint32_t)total, (uint32_t)p->n, (uint32_t)p->inner, p->divisor, x, y);
  else
    broadcast_axis_kernel<int64_t><<<grid, kThreads, 0, cm_stream()>>>(total, p->n, p->inner,
                                                                        p->divisor, x, y);
  CM_CHECK_LAUNCH("broadcast_axis");
}

void cm_max_last(const cm_rows_params* p, const float* x, float* y, float* index) {
  if (p->rows <= 0 || p->cols <= 0) return;
  if (p->cols <= 1024)
    max_last_kernel<32><<<capped(cm_blocks(p->rows, kThreads / 32), 1u << 20), kThreads, 0,
                          cm_stream()>>>(p->rows, p->cols, p->ld, x, y, index);
  else
    max_last_kernel<kThreads><<<capped(cm_blocks(p->rows, 1), 1u << 20), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, x, y, index);
  CM_CHECK_LAUNCH("max_last");
}
