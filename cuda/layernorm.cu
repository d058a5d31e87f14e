/* LayerNorm over the last axis on the device (ffi/ops.ts "layernorm_forward", "layernorm_backward";
 * CONMAMBA_SPEC.md 4.16: biased variance, eps inside the root; the
 * reference is wasm/layernorm.c).
 *
 * Forward and backward: a row is handled by one warp (cols <= 1024) or one 256-thread block
 * (longer rows). Each thread sums the columns j = lane, lane + TPR, ... in order in float32 (as the
 * Wasm kernel, which sums in float32 too), a warp butterfly and, for a block, a fixed pairwise tree
 * of the warp sums combine them, and every thread uses the same broadcast value: the order depends
 * only on cols, so results are deterministic (a few ulp from the Wasm kernel's 4-lane order).
 * mean and rstd are two passes over the row, as in the Wasm kernel; rstd = 1 / sqrtf (IEEE).
 *
 * backward: one pass over x and dy writes dx and the parameter gradients' partial sums per chunk of
 * chunk_rows rows (layerNormBackward adds the chunks with sum_rows). A block of 8 warps takes one
 * chunk, warp g its group g (chunk_rows / 8 consecutive rows, in row order), keeping the row's
 * columns and its group sums in registers (cols <= 1024); the 8 group sums are then added from 0
 * in group order through shared memory. Terms rounded one by one (no FMA contraction): exactly the
 * order and the roundings of wasm/layernorm.c, so the partial sums are the Wasm kernel's bits for
 * the same x, dy, mean and rstd. Rows over 1024 columns take two kernels with the same bits for the
 * partials: the row kernel for dx and one thread per (column, group) for the sums. */
#include "common.cuh"
#include "dropout_hash.cuh"

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

/* The rest of row r's forward once each thread has summed its columns of xr (j = lane, lane +
 * TPR, ...) into `lane_sum`: the mean, the variance (a second pass over xr), rstd, and y (float32,
 * or packed bf16 at 16-bit index r ld + j when y16 is given). */
template <int TPR>
__device__ __forceinline__ void ln_row_finish(const float* xr, float lane_sum, int64_t r, int lane,
                                              int cols, int ld, float eps, const float* gamma,
                                              const float* beta, float* y, unsigned short* y16,
                                              float* mean, float* rstd, float* sh) {
  float mu = row_sum<TPR>(lane_sum, sh) / (float)cols;
  float q = 0.0f;
  for (int j = lane; j < cols; j += TPR) {
    float d = xr[j] - mu;
    q += d * d;
  }
  float rs = 1.0f / sqrtf(row_sum<TPR>(q, sh) / (float)cols + eps);
  if (lane == 0) mean[r] = mu, rstd[r] = rs;
  float* yr = y16 ? nullptr : y + r * ld;
  unsigned short* yr16 = y16 ? y16 + r * ld : nullptr;
  for (int j = lane; j < cols; j += TPR)
    cm_store_f32_or_bf16(yr, yr16, j, (xr[j] - mu) * rs * gamma[j] + beta[j]);
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    layernorm_forward_kernel(int rows, int cols, int ld, float eps, const float* x,
                             const float* gamma, const float* beta, float* y, unsigned short* y16,
                             float* mean, float* rstd) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float* xr = x + r * ld;
    float s = 0.0f;
    for (int j = lane; j < cols; j += TPR) s += xr[j];
    ln_row_finish<TPR>(xr, s, r, lane, cols, ld, eps, gamma, beta, y, y16, mean, rstd, sh);
  }
}

/* s = x + alpha dropout(y) (dropout_add's bits, mask index (row0 + r) cols + j), written, then
 * layernorm_forward_kernel on s: each thread sums the very values it wrote (the same columns in
 * the same order), then reads them back for the variance and the output (its own writes: no
 * barrier), so mean, rstd and ln are layernorm_forward's bits on s. */
template <int TPR>
__global__ void __launch_bounds__(kThreads)
    add_layernorm_kernel(int rows, int cols, int ld, float eps, const float* x, const float* y,
                         uint32_t key, int64_t row0, float p, float scale, float alpha,
                         const float* gamma, const float* beta, float* s, float* ln,
                         unsigned short* ln16, float* mean, float* rstd) {
  __shared__ float sh[kThreads / 32];
  ROW_LOOP(TPR, rows) {
    const float *xr = x + r * ld, *yr = y + r * ld;
    float* sr = s + r * ld;
    const uint32_t index0 = (uint32_t)((row0 + r) * cols);
    float sum = 0.0f;
    for (int j = lane; j < cols; j += TPR) {
      const float v = cm_dropout_add_value(xr[j], yr[j], key, index0 + (uint32_t)j, p, scale, alpha);
      sr[j] = v;
      sum += v;
    }
    ln_row_finish<TPR>(sr, sum, r, lane, cols, ld, eps, gamma, beta, ln, ln16, mean, rstd, sh);
  }
}

/* dx of rows >= r0 (cols > 1024: a block per row); the partials come from ln_param_chunks. */
template <int TPR>
__global__ void __launch_bounds__(kThreads)
    layernorm_dx_kernel(int rows, int cols, int ld, int accumulate, const float* x,
                        const float* gamma, const float* mean, const float* rstd, const float* dy,
                        float* dx) {
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

constexpr int kGroups = 8; /* groups per chunk (the op table's contract): a warp each */

/* dx and the chunk partials in one pass, cols <= 32 NJ. Grid: one block per chunk. */
template <int NJ>
__global__ void __launch_bounds__(kGroups * 32)
    layernorm_backward_fused_kernel(int64_t rows, int cols, int ld, int accumulate, int chunk_rows,
                                    const float* __restrict__ x, const float* __restrict__ gamma,
                                    const float* __restrict__ mean,
                                    const float* __restrict__ rstd, const float* __restrict__ dy,
                                    float* dx, float* __restrict__ part) {
  __shared__ float sh[1];         /* row_sum<32> does not use it */
  __shared__ float tot[2][32 * NJ]; /* the chunk's sums: dy xhat, dy */
  const int lane = threadIdx.x & 31, g = threadIdx.x >> 5;
  const int64_t c = blockIdx.x, group = chunk_rows / kGroups;
  const int64_t r0 = c * chunk_rows + g * group, r1 = r0 + group < rows ? r0 + group : rows;
  float gam[NJ], sg[NJ], sb[NJ];
#pragma unroll
  for (int i = 0; i < NJ; i++) {
    const int j = lane + 32 * i;
    gam[i] = j < cols ? gamma[j] : 0.0f;
    sg[i] = sb[i] = 0.0f;
  }
  for (int64_t r = r0; r < r1; r++) {
    const float *xr = x + r * ld, *gr = dy + r * ld;
    float* dxr = dx + r * ld;
    const float mu = mean[r], rs = rstd[r];
    float xv[NJ], dv[NJ];
#pragma unroll
    for (int i = 0; i < NJ; i++) {
      const int j = lane + 32 * i;
      xv[i] = j < cols ? xr[j] : 0.0f;
      dv[i] = j < cols ? gr[j] : 0.0f;
    }
    /* a = mean_j g[j], b = mean_j g[j] xhat[j], g = dy gamma: the row kernel's arithmetic */
    float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
    for (int i = 0; i < NJ; i++) {
      if (lane + 32 * i < cols) {
        const float gg = dv[i] * gam[i];
        s1 += gg;
        s2 += gg * ((xv[i] - mu) * rs);
      }
    }
    const float a = row_sum<32>(s1, sh) / (float)cols, b = row_sum<32>(s2, sh) / (float)cols;
#pragma unroll
    for (int i = 0; i < NJ; i++) {
      const int j = lane + 32 * i;
      if (j < cols) {
        const float xhat = __fmul_rn(__fsub_rn(xv[i], mu), rs);
        const float v = rs * (dv[i] * gam[i] - a - xhat * b);
        dxr[j] = accumulate ? dxr[j] + v : v;
        sg[i] = __fadd_rn(sg[i], __fmul_rn(dv[i], xhat)); /* dy xhat */
        sb[i] = __fadd_rn(sb[i], dv[i]);                  /* dy */
      }
    }
  }
  for (int k = threadIdx.x; k < 32 * NJ; k += blockDim.x) tot[0][k] = tot[1][k] = 0.0f;
  for (int w = 0; w < kGroups; w++) { /* group sums added in group order */
    __syncthreads();
    if (g == w) {
#pragma unroll
      for (int i = 0; i < NJ; i++) {
        const int j = lane + 32 * i;
        tot[0][j] = __fadd_rn(tot[0][j], sg[i]);
        tot[1][j] = __fadd_rn(tot[1][j], sb[i]);
      }
    }
  }
  __syncthreads();
  float* pc = part + c * 2 * cols;
  for (int k = threadIdx.x; k < cols; k += blockDim.x) pc[k] = tot[0][k], pc[cols + k] = tot[1][k];
}

/* The chunk partials alone (cols > 1024): thread (tx, g) sums column j over group g of chunk
 * blockIdx.x; the groups are then added from 0 in order. Grid (chunks, ceil(cols / 32)). */
__global__ void __launch_bounds__(32 * kGroups)
    ln_param_chunks_kernel(int64_t rows, int cols, int ld, int chunk_rows, const float* x,
                           const float* mean, const float* rstd, const float* dy, float* part) {
  __shared__ float sh[2][kGroups][32];
  const int tx = threadIdx.x, g = threadIdx.y;
  const int j = blockIdx.y * 32 + tx;
  const int64_t c = blockIdx.x, group = chunk_rows / kGroups;
  const int64_t r0 = c * chunk_rows + g * group, r1 = r0 + group < rows ? r0 + group : rows;
  float s0 = 0.0f, s1 = 0.0f;
  if (j < cols) {
    for (int64_t r = r0; r < r1; r++) {
      const float d = dy[r * ld + j];
      s0 = __fadd_rn(s0, __fmul_rn(d, __fmul_rn(__fsub_rn(x[r * ld + j], mean[r]), rstd[r])));
      s1 = __fadd_rn(s1, d);
    }
  }
  sh[0][g][tx] = s0, sh[1][g][tx] = s1;
  __syncthreads();
  if (g == 0 && j < cols) {
    float t0 = 0.0f, t1 = 0.0f;
    for (int k = 0; k < kGroups; k++) t0 = __fadd_rn(t0, sh[0][k][tx]), t1 = __fadd_rn(t1, sh[1][k][tx]);
    part[c * 2 * cols + j] = t0;
    part[c * 2 * cols + cols + j] = t1;
  }
}

inline unsigned row_grid(int rows, int tpr) {
  unsigned g = cm_blocks(rows, kThreads / tpr);
  return g > (1u << 20) ? (1u << 20) : g;
}

}  // namespace

void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma,
                          const float* beta, float* y, float* mean, float* rstd) {
  if (p->rows <= 0 || p->cols <= 0) return;
  /* y_bf16: y is packed bf16 (2 bytes per element, the same indices) */
  float* y32 = p->y_bf16 ? nullptr : y;
  unsigned short* y16 = p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr;
  if (threads_per_row(p->cols) == 32)
    layernorm_forward_kernel<32><<<row_grid(p->rows, 32), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, gamma, beta, y32, y16, mean, rstd);
  else
    layernorm_forward_kernel<kThreads><<<row_grid(p->rows, kThreads), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, gamma, beta, y32, y16, mean, rstd);
  CM_CHECK_LAUNCH("layernorm_forward");
}

void cm_dropout_add_layernorm(const cm_add_ln_params* p, const float* x, const float* y,
                              const float* gamma, const float* beta, float* s, float* ln,
                              float* mean, float* rstd) {
  if (p->rows <= 0 || p->cols <= 0) return;
  const float scale = 1.0f / (1.0f - p->p); /* float32 roundings, as the Wasm kernel */
  const uint32_t key = cm_dropout_key(p->seed, p->stream);
  float* l32 = p->y_bf16 ? nullptr : ln;
  unsigned short* l16 = p->y_bf16 ? reinterpret_cast<unsigned short*>(ln) : nullptr;
  if (threads_per_row(p->cols) == 32)
    add_layernorm_kernel<32><<<row_grid(p->rows, 32), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, y, key, p->row0, p->p, scale, p->alpha, gamma, beta,
        s, l32, l16, mean, rstd);
  else
    add_layernorm_kernel<kThreads><<<row_grid(p->rows, kThreads), kThreads, 0, cm_stream()>>>(
        p->rows, p->cols, p->ld, p->eps, x, y, key, p->row0, p->p, scale, p->alpha, gamma, beta,
        s, l32, l16, mean, rstd);
  CM_CHECK_LAUNCH("dropout_add_layernorm");
}

void cm_layernorm_backward(const cm_ln_backward_params* p, const float* x, const float* gamma,
                           const float* mean, const float* rstd, const float* dy, float* dx,
                           float* part) {
  if (p->chunk_rows < kGroups || p->chunk_rows % kGroups != 0) {
    cm_note_failure("layernorm_backward: chunk_rows must be a positive multiple of 8");
    return;
  }
  if (p->cols <= 0 || p->chunks <= 0) return;
  /* rows of this call: its chunks, the last one cut at the whole call's end */
  const int64_t left = (int64_t)p->rows - (int64_t)p->chunk0 * p->chunk_rows;
  const int64_t all = (int64_t)p->chunks * p->chunk_rows;
  const int64_t rows = all < left ? all : left;
  const unsigned grid = (unsigned)p->chunks;
#define CM_LN_FUSED(NJ)                                                                     \
  layernorm_backward_fused_kernel<NJ><<<grid, kGroups * 32, 0, cm_stream()>>>(               \
      rows, p->cols, p->ld, p->accumulate, p->chunk_rows, x, gamma, mean, rstd, dy, dx, part)
  if (p->cols <= 128) CM_LN_FUSED(4);
  else if (p->cols <= 256) CM_LN_FUSED(8);
  else if (p->cols <= 512) CM_LN_FUSED(16);
  else if (p->cols <= 1024) CM_LN_FUSED(32);
  else {
    if (rows > 0)
      layernorm_dx_kernel<kThreads><<<row_grid((int)rows, kThreads), kThreads, 0, cm_stream()>>>(
          (int)rows, p->cols, p->ld, p->accumulate, x, gamma, mean, rstd, dy, dx);
    CM_CHECK_LAUNCH("layernorm_backward (dx)");
    ln_param_chunks_kernel<<<dim3(grid, (unsigned)((p->cols + 31) / 32)), dim3(32, kGroups), 0,
                             cm_stream()>>>(rows, p->cols, p->ld, p->chunk_rows, x, mean, rstd,
                                            dy, part);
  }
#undef CM_LN_FUSED
  CM_CHECK_LAUNCH("layernorm_backward");
}
