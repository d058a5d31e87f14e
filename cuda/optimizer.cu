/* Adam / AdamW and the per-block sums of squares of gradient-norm clipping on the device (ffi/ops.ts
 * "adam_step", "sum_squares_blocks"; CONMAMBA_SPEC.md 8.1, 8.3; the reference is
 * wasm/optimizer.c).
 *
 * adam_step: one thread per element, every operation written as its separately rounded float32
 * intrinsic in the Wasm kernel's order (no FMA contraction; sqrt and division IEEE), so the
 * updated param, m and v are the same bits as the Wasm kernel's.
 * sum_squares_blocks: one 256-thread CUDA block per block of x; each thread adds x^2 (exact in
 * float64) over its strided elements in order in float64, then a warp butterfly and a fixed
 * pairwise tree of the eight warp sums, rounded to float32 once. The Wasm kernel sums the block
 * sequentially in float64: both are within float64 rounding of the exact sum, so the float32
 * partials agree (bar a rare double rounding at a float32 midpoint). No atomics. */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFull = 0xffffffffu;

struct AdamArgs {
  int n, decoupled;
  float beta1, beta2, eps, weight_decay, decay_factor, step_size, bc2_sqrt, grad_scale;
};

__global__ void __launch_bounds__(kThreads)
    adam_step_kernel(AdamArgs a, float* param, const float* grad, float* m, float* v) {
  const float one_m_b1 = __fsub_rn(1.0f, a.beta1), one_m_b2 = __fsub_rn(1.0f, a.beta2);
  CM_FOR(i, a.n) {
    float g = __fmul_rn(grad[i], a.grad_scale);
    float pi = param[i];
    if (a.decoupled) {
      pi = __fmul_rn(pi, a.decay_factor); /* param.mul_(1 - lr wd) */
    } else if (a.weight_decay != 0.0f) {
      g = __fadd_rn(g, __fmul_rn(a.weight_decay, pi)); /* grad.add(param, alpha=wd) */
    }
    float mi = m[i], vi = v[i];
    mi = __fadd_rn(mi, __fmul_rn(one_m_b1, __fsub_rn(g, mi))); /* exp_avg.lerp_(g, 1 - beta1) */
    /* mul_(beta2).addcmul_(g, g, 1 - beta2) */
    vi = __fadd_rn(__fmul_rn(vi, a.beta2), __fmul_rn(__fmul_rn(one_m_b2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), a.bc2_sqrt), a.eps);
    pi = __fadd_rn(pi, __fmul_rn(-a.step_size, __fdiv_rn(mi, denom))); /* addcdiv_(m, denom, -lr') */
    m[i] = mi;
    v[i] = vi;
    param[i] = pi;
  }
}

__global__ void __launch_bounds__(kThreads)
    sum_squares_blocks_kernel(int blocks, int block, int n, int first_block, const float* x,
                              float* partial) {
  __shared__ double sh[kThreads / 32];
  for (int j = blockIdx.x; j < blocks; j += gridDim.x) {
    int64_t start = (int64_t)(first_block + j) * block, end = start + block;
    if (end > n) end = n;
    int64_t count = end - start; /* <= 0 past the end: partial 0, as the Wasm loop */
    const float* xb = x + (int64_t)j * block; /* x is already moved to this call's blocks */
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < count; i += kThreads) {
      double e = xb[i];
      s += e * e;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(kFull, s, o);
    __syncthreads(); /* the previous block's readers of sh are done */
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
      double t[kThreads / 32];
#pragma unroll
      for (int w = 0; w < kThreads / 32; w++) t[w] = sh[w];
#pragma unroll
      for (int w = kThreads / 64; w > 0; w >>= 1) {
#pragma unroll
        for (int u = 0; u < w; u++) t[u] = t[u] + t[u + w];
      }
      partial[j] = (float)t[0];
    }
  }
}

}  // namespace

void cm_adam_step(const cm_adam_params* p, float* param, const float* grad, float* m, float* v) {
  if (p->n <= 0) return;
  AdamArgs a{p->n,         p->decoupled,    p->beta1,     p->beta2,    p->eps,
             p->weight_decay, p->decay_factor, p->step_size, p->bc2_sqrt, p->grad_scale};
  unsigned grid = cm_blocks(p->n, kThreads);
  if (grid > 65536u) grid = 65536u;
  adam_step_kernel<<<grid, kThreads, 0, cm_stream()>>>(a, param, grad, m, v);
  CM_CHECK_LAUNCH("adam_step");
}

void cm_sum_squares_blocks(const cm_blocks_params* p, const float* x, float* partial) {
  if (p->blocks <= 0) return;
  unsigned grid = (unsigned)(p->blocks < 65536 ? p->blocks : 65536);
  sum_squares_blocks_kernel<<<grid, kThreads, 0, cm_stream()>>>(p->blocks, p->block, p->n,
                                                                p->first_block, x, partial);
  CM_CHECK_LAUNCH("sum_squares_blocks");
}
