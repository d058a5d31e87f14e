/* Attention pieces on the GPU (wasm/attention.c): the masked, scaled softmax over keys (causal,
 * key lengths, an additive key mask) with its backward, and RelPosMHAXL's relative shift
 * (CONMAMBA_SPEC.md 4.10-4.11).
 *
 * Softmax: one warp per score row; row r of the call is global row row0 + r of
 * (batch, heads, tq), so b = g / (heads tq), query i = g % tq. Key j is masked when j >= the
 * row's end (key length: truncated float, clamped to [0, S], NaN meaning S; causal: j > i) or when
 * scale x + key_mask is -inf; masked keys get 0 and a row with every key masked is zeros. The
 * max and the sums are lane partials (keys j = lane + 32 m in order) combined by a butterfly, a
 * fixed order: deterministic, though not the Wasm kernel's sequential order. expf is CUDA's.
 * Rel shift: one thread per written element, exact copies. */
#include "common.cuh"

namespace {

constexpr int WARPS = 8; /* rows per block of the softmax kernels */

__device__ inline float warp_max(float m) {
#pragma unroll
  for (int o = 16; o >= 1; o >>= 1) {
    float v = __shfl_xor_sync(0xffffffffu, m, o);
    m = v > m ? v : m;
  }
  return m;
}

/* Butterfly sum: every lane ends with the same bits (a + b == b + a). */
__device__ inline float warp_sum(float s) {
#pragma unroll
  for (int o = 16; o >= 1; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

/* scale x[j] + key_mask[j], rounded the same way in both passes (explicit intrinsics) */
__device__ inline float score(float scale, const float* xr, const float* km, int32_t j) {
  return km ? __fmaf_rn(scale, xr[j], km[j]) : __fmul_rn(scale, xr[j]);
}

__global__ void __launch_bounds__(32 * WARPS)
    attn_softmax_forward_kernel(cm_attn_params p, const float* __restrict__ x,
                                const float* __restrict__ lengths,
                                const float* __restrict__ key_mask, float* __restrict__ y) {
  int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.y;
  if (r >= p.rows) return; /* whole warps leave together */
  int lane = threadIdx.x;
  int32_t S = p.cols;
  int64_t g = p.row0 + r;
  int64_t b = g / ((int64_t)p.heads * p.tq);
  int32_t i = (int32_t)(g % p.tq);
  int32_t end = S;
  if (lengths) {
    float len = lengths[b];
    end = len < (float)S ? (len > 0.0f ? (int32_t)len : 0) : S;
  }
  if (p.causal && i + 1 < end) end = i + 1; /* keys j <= i */
  const float* xr = x + r * S;
  const float* km = key_mask ? key_mask + b * S : nullptr;
  float* yr = y + r * S;
  float m = -INFINITY;
  for (int32_t j = lane; j < end; j += 32) {
    float v = score(p.scale, xr, km, j);
    m = v > m ? v : m;
  }
  m = warp_max(m);
  if (m == -INFINITY) { /* every key masked */
    for (int32_t j = lane; j < S; j += 32) yr[j] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int32_t j = lane; j < S; j += 32) {
    float e = 0.0f;
    if (j < end) {
      float v = score(p.scale, xr, km, j);
      e = v == -INFINITY ? 0.0f : expf(v - m);
    }
    yr[j] = e;
    sum += e;
  }
  sum = warp_sum(sum);
  for (int32_t j = lane; j < S; j += 32) yr[j] = yr[j] / sum;
}

__global__ void __launch_bounds__(32 * WARPS)
    attn_softmax_backward_kernel(int64_t rows, int32_t S, float scale, const float* __restrict__ y,
                                 const float* __restrict__ dy, float* __restrict__ dx) {
  int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.y;
  if (r >= rows) return;
  int lane = threadIdx.x;
  const float *yr = y + r * S, *gr = dy + r * S;
  float* dxr = dx + r * S;
  float s = 0.0f; /* sum_j dy[j] y[j] */
  for (int32_t j = lane; j < S; j += 32) s += gr[j] * yr[j];
  s = warp_sum(s);
  for (int32_t j = lane; j < S; j += 32) dxr[j] = scale * (yr[j] * (gr[j] - s));
}

/* y[n, i, j] = x[n, i, S - 1 - i + j] */
__global__ void rel_shift_forward_kernel(int64_t total, int64_t S, int64_t W,
                                         const float* __restrict__ x, float* __restrict__ y) {
  CM_FOR(e, total) {
    int64_t j = e % S, ni = e / S, i = ni % S;
    y[e] = x[ni * W + (S - 1 - i) + j];
  }
}

/* dx[n, i, S - 1 - i + j] = dy[n, i, j], 0 elsewhere */
__global__ void rel_shift_backward_kernel(int64_t total, int64_t S, int64_t W,
                                          const float* __restrict__ dy, float* __restrict__ dx) {
  CM_FOR(e, total) {
    int64_t c = e % W, ni = e / W, i = ni % S;
    int64_t j = c - (S - 1 - i);
    dx[e] = j >= 0 && j < S ? dy[ni * S + j] : 0.0f;
  }
}

}  // namespace

void cm_attn_softmax_forward(const cm_attn_params* p, const float* x, const float* key_lengths,
                             const float* key_mask, float* y) {
  if (p->rows <= 0 || p->cols <= 0) return;
  if (p->tq <= 0 || p->heads <= 0) {
    cm_note_error(cudaErrorInvalidValue, "attn_softmax_forward: tq and heads must be positive");
    return;
  }
  unsigned blocks = cm_blocks(p->rows, WARPS);
  attn_softmax_forward_kernel<<<blocks, dim3(32, WARPS), 0, cm_stream()>>>(*p, x, key_lengths,
                                                                          key_mask, y);
  CM_CHECK_LAUNCH("attn_softmax_forward");
}

void cm_attn_softmax_backward(const cm_attn_params* p, const float* y, const float* dy, float* dx) {
  if (p->rows <= 0 || p->cols <= 0) return;
  unsigned blocks = cm_blocks(p->rows, WARPS);
  attn_softmax_backward_kernel<<<blocks, dim3(32, WARPS), 0, cm_stream()>>>(p->rows, p->cols,
                                                                           p->scale, y, dy, dx);
  CM_CHECK_LAUNCH("attn_softmax_backward");
}

void cm_rel_shift_forward(const cm_seq_params* p, const float* x, float* y) {
  int64_t S = p->seqlen, total = (int64_t)p->batch * S * S;
  if (p->batch <= 0 || S <= 0) return;
  rel_shift_forward_kernel<<<cm_blocks(total, 256), 256, 0, cm_stream()>>>(total, S, p->width, x, y);
  CM_CHECK_LAUNCH("rel_shift_forward");
}

void cm_rel_shift_backward(const cm_seq_params* p, const float* dy, float* dx) {
  int64_t S = p->seqlen, W = p->width, total = (int64_t)p->batch * S * W;
  if (p->batch <= 0 || S <= 0 || W <= 0) return;
  rel_shift_backward_kernel<<<cm_blocks(total, 256), 256, 0, cm_stream()>>>(total, S, W, dy, dx);
  CM_CHECK_LAUNCH("rel_shift_backward");
}
