/* The attention loss per target position (CONMAMBA_SPEC.md 7.2, 13 G17), the CUDA twin of
 * wasm/smoothed_nll.c: the KL divergence from a label-smoothed target q (1 - eps at the target id,
 * eps / (V - 1) at every other id) to the predicted distribution, entropy term included; eps = 0
 * is the NLL. Positions are weighted by `weights`.
 *
 * One block per row r. The gradient -w q(k) is written by one thread per k; the row's loss is a
 * float64 sum over k: each thread sums its strided k in increasing order, then a fixed binary tree
 * over the threads' partials (no atomics, so every run gives the same bits). The Wasm kernel sums
 * k sequentially; both are float64 sums of V terms of one sign pattern, rounded once to float32,
 * so they differ by at most an ulp or so of the float32 result. log is wasm/mathf.h's cm_log
 * (products as __dmul_rn: no FMA contraction, as the -ffp-contract=off Wasm build). */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

/* log(x) in float64 as wasm/mathf.h cm_log: 2^e m, atanh series to s^23; finite x > 0. */
__device__ double nll_log(double x) {
  unsigned long long u = (unsigned long long)__double_as_longlong(x);
  int32_t e = (int32_t)(u >> 52) - 1023;
  u = (u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
  double m = __longlong_as_double((long long)u);
  if (m > 1.41421356237309504880) {
    m = __dmul_rn(m, 0.5);
    e += 1;
  }
  double s = (m - 1.0) / (m + 1.0), s2 = __dmul_rn(s, s), sum = 0.0;
  for (int k = 11; k >= 0; k--) sum = 1.0 / (2 * k + 1) + __dmul_rn(s2, sum);
  return __dmul_rn((double)e, 0.69314718055994530942) + __dmul_rn(__dmul_rn(2.0, s), sum);
}

__global__ void smoothed_nll_kernel(cm_loss_params p, const float* __restrict__ log_probs,
                                    const float* __restrict__ targets,
                                    const float* __restrict__ weights, float* __restrict__ loss,
                                    float* __restrict__ grad) {
  __shared__ double partial[kThreads];
  const int32_t r = blockIdx.x, tid = threadIdx.x, V = p.vocab;
  const double eps = p.smoothing, q_hit = 1.0 - eps, q_off = eps / (V - 1);
  const double ent_hit = q_hit > 0 ? __dmul_rn(q_hit, nll_log(q_hit)) : 0.0;
  const double log_off = q_off > 0 ? nll_log(q_off) : 0.0;
  const float* lp = log_probs + (int64_t)r * V; /* (V) */
  float* g = grad + (int64_t)r * V;             /* (V) */
  const double w = weights[r];
  const int32_t y = (int32_t)targets[r];
  double sum = 0.0; /* sum_k q(k) (log q(k) - lp[k]) over this thread's k */
  for (int32_t k = tid; k < V; k += kThreads) {
    const double q = k == y ? q_hit : q_off;
    if (q > 0) {
      sum += k == y ? ent_hit - __dmul_rn(q, (double)lp[k])
                    : __dmul_rn(q, log_off - (double)lp[k]);
    }
    g[k] = (float)__dmul_rn(__dmul_rn(-w, q), (double)p.grad_scale);
  }
  partial[tid] = sum;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (tid < half) partial[tid] += partial[tid + half];
    __syncthreads();
  }
  if (tid == 0) loss[r] = (float)__dmul_rn(w, partial[0]);
}

}  // namespace

extern "C" void cm_smoothed_nll(const cm_loss_params* p, const float* log_probs,
                                const float* targets, const float* weights, float* loss,
                                float* grad) {
  if (p->rows <= 0) return;
  smoothed_nll_kernel<<<(unsigned)p->rows, kThreads, 0, cm_stream()>>>(*p, log_probs, targets,
                                                                        weights, loss, grad);
  CM_CHECK_LAUNCH("cm_smoothed_nll");
}
