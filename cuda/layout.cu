/* Data movement on the GPU (wasm/layout.c): copies of time ranges (slice, concat), fill, and
 * swapping two adjacent axes (heads in and out of the feature axis, transposes). Exact: no
 * arithmetic, so the bits equal the Wasm kernels'. One thread per written element; swap_axes with
 * inner 1 (a plain transpose of the last two axes) goes through a 32 x 32 shared-memory tile so
 * that both the reads and the writes are coalesced. */
#include "common.cuh"

namespace {

/* y[b, y_t0 + t, k] = x[b, x_t0 + t, k] for t < len */
__global__ void copy_time_kernel(int64_t n, int64_t len, int64_t W, int64_t x_seqlen, int64_t x_t0,
                                 int64_t y_seqlen, int64_t y_t0, const float* __restrict__ x,
                                 float* __restrict__ y) {
  CM_FOR(i, n) {
    int64_t k = i % W, bt = i / W;
    int64_t t = bt % len, b = bt / len;
    y[(b * y_seqlen + y_t0 + t) * W + k] = x[(b * x_seqlen + x_t0 + t) * W + k];
  }
}

__global__ void fill_kernel(int64_t n, float alpha, float* __restrict__ y) {
  CM_FOR(i, n) y[i] = alpha;
}

/* y[nb, j, i, k] = x[nb, i, j, k], one thread per y element; y16: y as packed bf16 instead */
__global__ void swap_axes_kernel(int64_t n, int64_t d1, int64_t d2, int64_t in,
                                 const float* __restrict__ x, float* __restrict__ y,
                                 unsigned short* __restrict__ y16) {
  CM_FOR(e, n) {
    int64_t k = e % in, r = e / in;
    int64_t i = r % d1;
    r /= d1;
    int64_t j = r % d2, nb = r / d2;
    cm_store_f32_or_bf16(y, y16, e, x[((nb * d1 + i) * d2 + j) * in + k]);
  }
}

/* inner 1: per (batch, 32 x 32 tile) block of 32 x 8 threads; x (d1, d2) -> y (d2, d1). */
__global__ void transpose_kernel(int64_t d1, int64_t d2, int64_t tiles1, int64_t tiles2,
                                 const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float tile[32][33];
  int64_t blk = blockIdx.x;
  int64_t t2 = blk % tiles2, t1 = (blk / tiles2) % tiles1, nb = blk / (tiles2 * tiles1);
  const float* xb = x + nb * d1 * d2;
  float* yb = y + nb * d1 * d2;
  int64_t i0 = t1 * 32, j0 = t2 * 32;
  for (int r = threadIdx.y; r < 32; r += 8) { /* rows i of x, columns j contiguous */
    int64_t i = i0 + r, j = j0 + threadIdx.x;
    if (i < d1 && j < d2) tile[r][threadIdx.x] = xb[i * d2 + j];
  }
  __syncthreads();
  for (int r = threadIdx.y; r < 32; r += 8) { /* rows j of y, columns i contiguous */
    int64_t j = j0 + r, i = i0 + threadIdx.x;
    if (i < d1 && j < d2) yb[j * d1 + i] = tile[threadIdx.x][r];
  }
}

}  // namespace

void cm_copy_time(const cm_time_copy_params* p, const float* x, float* y) {
  int64_t W = p->width, len = p->len, n = (int64_t)p->batch * len * W;
  if (p->batch <= 0 || len <= 0 || W <= 0) return;
  copy_time_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, len, W, p->x_seqlen, p->x_t0,
                                                               p->y_seqlen, p->y_t0, x, y);
  CM_CHECK_LAUNCH("copy_time");
}

void cm_fill(const cm_elementwise_params* p, float* y) {
  int64_t n = p->n;
  if (n <= 0) return;
  fill_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, p->alpha, y);
  CM_CHECK_LAUNCH("fill");
}

void cm_swap_axes(const cm_swap_params* p, const float* x, float* y) {
  int64_t d1 = p->d1, d2 = p->d2, in = p->inner, n = (int64_t)p->batch * d1 * d2 * in;
  if (p->batch <= 0 || d1 <= 0 || d2 <= 0 || in <= 0) return;
  int64_t tiles1 = (d1 + 31) / 32, tiles2 = (d2 + 31) / 32, blocks = p->batch * tiles1 * tiles2;
  if (in == 1 && blocks <= 2147483647 && !p->y_bf16) {
    transpose_kernel<<<(unsigned)blocks, dim3(32, 8), 0, cm_stream()>>>(d1, d2, tiles1, tiles2, x, y);
  } else { /* y_bf16 (attention's heads: inner dh) always here */
    swap_axes_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(
        n, d1, d2, in, x, p->y_bf16 ? nullptr : y,
        p->y_bf16 ? reinterpret_cast<unsigned short*>(y) : nullptr);
  }
  CM_CHECK_LAUNCH("swap_axes");
}
