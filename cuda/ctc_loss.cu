/* CTC loss (CONMAMBA_SPEC.md 7.1), the CUDA twin of wasm/ctc_loss.c: the log-space
 * forward-backward over the lattice l' = (blank, y1, blank, y2, ..., yS, blank) of L = 2 S + 1
 * states, in float64, one thread block per utterance.
 *   alpha_t(s) = lse(alpha_(t-1)(s), alpha_(t-1)(s-1), [alpha_(t-1)(s-2) if l'_s != blank and
 *                l'_s != l'_(s-2)]) + lp_t(l'_s)
 *   beta_t(s)  = log P(frames t+1 .. T-1 | state s at t)      (emissions after t only)
 *   loss = -lse(alpha_(T-1)(L-1), alpha_(T-1)(L-2))
 *   d loss / d lp_t(k) = -sum_(s: l'_s = k) exp(alpha_t(s) + beta_t(s) + loss)
 *
 * Parallel shape: within a block the states s of one time step are computed by separate threads
 * (each alpha_t(s) reads only row t - 1), with a barrier between time steps; the gradient is
 * accumulated by one thread per frame t, over s in increasing order exactly as the Wasm loop does,
 * so no two threads ever add into one value (no atomics) and every value is computed by the same
 * float64 operations in the same order as the reference. exp and log are the reference's own
 * range-reduction + series functions (wasm/mathf.h), with products written as __dmul_rn so that
 * nvcc cannot contract them into FMAs (the Wasm build is -ffp-contract=off). Every operation is
 * then an IEEE double operation of the reference in the reference's order, so the two backends
 * are expected to agree bit for bit (tests/cuda/parity_test.ts allows a few float32 ulp). */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ double neg_inf() { return -__longlong_as_double(0x7ff0000000000000ll); }

/* exp(x) in float64 as wasm/mathf.h cm_exp: x = n ln2 + r, Taylor series to r^14; |x| < 700. */
__device__ double ctc_exp(double x) {
  if (x < -700.0) return 0.0;
  const double LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
  double n = floor(__dmul_rn(x, 1.44269504088896340736) + 0.5);
  double r = (x - __dmul_rn(n, LN2_HI)) - __dmul_rn(n, LN2_LO);
  double p = 1.0, term = 1.0;
  for (int i = 1; i <= 14; i++) {
    term = __dmul_rn(term, r / i);
    p += term;
  }
  return __dmul_rn(p, __longlong_as_double((long long)((int64_t)n + 1023) << 52));
}

/* log(x) in float64 as wasm/mathf.h cm_log: 2^e m, atanh series to s^23; finite x > 0. */
__device__ double ctc_log(double x) {
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

__device__ __forceinline__ double lse2(double a, double b) {
  double m = a > b ? a : b;
  if (m == neg_inf()) return neg_inf();
  return m + ctc_log(ctc_exp(a - m) + ctc_exp(b - m));
}

/* One block per utterance b. */
__global__ void ctc_loss_kernel(cm_ctc_params p, const float* __restrict__ log_probs,
                                const float* __restrict__ targets,
                                const float* __restrict__ input_lengths,
                                const float* __restrict__ target_lengths, float* __restrict__ loss,
                                float* __restrict__ grad, float* __restrict__ scratch) {
  const int32_t b = blockIdx.x, tid = threadIdx.x, nt = blockDim.x;
  const int32_t T = p.time, V = p.vocab, LD = p.lattice;
  const float* lp = log_probs + (int64_t)b * T * V;      /* (T, V) */
  const float* y = targets + (int64_t)b * p.max_target;  /* (S) */
  float* g = grad + (int64_t)b * T * V;                  /* (T, V) */
  double* alpha = (double*)(scratch + (int64_t)b * 4 * T * LD); /* (T, LD) */
  double* beta = alpha + (int64_t)T * LD;                       /* (T, LD) */
  const int32_t tn = (int32_t)input_lengths[b], sn = (int32_t)target_lengths[b], L = 2 * sn + 1;
  const int32_t blank = p.blank;
#define LABEL(s) ((s) % 2 ? (int32_t)y[((s) - 1) / 2] : blank)
#define SKIP_OK(s) ((s) >= 2 && LABEL(s) != blank && LABEL(s) != LABEL((s) - 2))
  for (int64_t i = tid; i < (int64_t)T * V; i += nt) g[i] = 0.0f;
  double loglik = neg_inf();
  if (tn > 0) {
    for (int32_t s = tid; s < L; s += nt) alpha[s] = s < 2 ? (double)lp[LABEL(s)] : neg_inf();
    __syncthreads();
    for (int32_t t = 1; t < tn; t++) {
      const double* prev = alpha + (int64_t)(t - 1) * LD;
      double* cur = alpha + (int64_t)t * LD;
      for (int32_t s = tid; s < L; s += nt) {
        double a = prev[s];
        if (s >= 1) a = lse2(a, prev[s - 1]);
        if (SKIP_OK(s)) a = lse2(a, prev[s - 2]);
        cur[s] = a == neg_inf() ? neg_inf() : a + (double)lp[(int64_t)t * V + LABEL(s)];
      }
      __syncthreads();
    }
    const double* last = alpha + (int64_t)(tn - 1) * LD;
    loglik = L >= 2 ? lse2(last[L - 1], last[L - 2]) : last[L - 1];
  } else if (sn == 0) {
    loglik = 0.0; /* no frames, no labels: the empty alignment */
  }
  /* loglik is the same in every thread: the branches below are block-uniform. */
  if (loglik == neg_inf()) {
    if (tid == 0) loss[b] = p.zero_infinity ? 0.0f : __int_as_float(0x7f800000);
    return; /* gradient stays 0 */
  }
  if (tid == 0) loss[b] = (float)-loglik;
  if (tn == 0) return;
  double* bl = beta + (int64_t)(tn - 1) * LD;
  for (int32_t s = tid; s < L; s += nt) bl[s] = s >= L - 2 ? 0.0 : neg_inf();
  __syncthreads();
  for (int32_t t = tn - 2; t >= 0; t--) {
    const double* next = beta + (int64_t)(t + 1) * LD;
    const float* lpn = lp + (int64_t)(t + 1) * V;
    double* cur = beta + (int64_t)t * LD;
    for (int32_t s = tid; s < L; s += nt) {
      double v = next[s] + (double)lpn[LABEL(s)];
      if (s + 1 < L) v = lse2(v, next[s + 1] + (double)lpn[LABEL(s + 1)]);
      if (s + 2 < L && SKIP_OK(s + 2)) v = lse2(v, next[s + 2] + (double)lpn[LABEL(s + 2)]);
      cur[s] = v;
    }
    __syncthreads();
  }
  /* One thread per frame: the states of frame t add into row t of g in increasing s (the barrier
   * after alpha's first row already ordered these writes after g = 0). */
  for (int32_t t = tid; t < tn; t += nt) {
    const double *a = alpha + (int64_t)t * LD, *be = beta + (int64_t)t * LD;
    float* gt = g + (int64_t)t * V;
    for (int32_t s = 0; s < L; s++) {
      double e = a[s] + be[s] - loglik;
      if (e > -700.0) gt[LABEL(s)] -= (float)__dmul_rn(ctc_exp(e), (double)p.grad_scale);
    }
  }
#undef LABEL
#undef SKIP_OK
}

}  // namespace

extern "C" void cm_ctc_loss(const cm_ctc_params* p, const float* log_probs, const float* targets,
                            const float* input_lengths, const float* target_lengths, float* loss,
                            float* grad, float* scratch) {
  if (p->batch <= 0) return;
  ctc_loss_kernel<<<(unsigned)p->batch, kThreads, 0, cm_stream()>>>(
      *p, log_probs, targets, input_lengths, target_lengths, loss, grad, scratch);
  CM_CHECK_LAUNCH("cm_ctc_loss");
}
