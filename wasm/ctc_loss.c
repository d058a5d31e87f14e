/* CTC loss (CONMAMBA_SPEC.md 7.1) for one utterance per iteration: the log-space forward-backward
 * over the lattice l' = (blank, y1, blank, y2, ..., yS, blank) of L = 2 S + 1 states, in float64.
 *   alpha_t(s) = lse(alpha_(t-1)(s), alpha_(t-1)(s-1), [alpha_(t-1)(s-2) if l'_s != blank and
 *                l'_s != l'_(s-2)]) + lp_t(l'_s)
 *   beta_t(s)  = log P(frames t+1 .. T-1 | state s at t)      (emissions after t only)
 *   loss = -lse(alpha_(T-1)(L-1), alpha_(T-1)(L-2))
 *   d loss / d lp_t(k) = -sum_(s: l'_s = k) exp(alpha_t(s) + beta_t(s) + loss)
 * which is minus the state occupancy (the gradient for log_probs as free inputs). */
#include "../ffi/ops.h"
#include "mathf.h"

#define NEG_INF (-__builtin_inf())

static inline double lse2(double a, double b) {
  double m = a > b ? a : b;
  if (m == NEG_INF) return NEG_INF;
  return m + cm_log(cm_exp(a - m) + cm_exp(b - m));
}

void cm_ctc_loss(const cm_ctc_params* p, const float* log_probs, const float* targets,
                 const float* input_lengths, const float* target_lengths, float* loss,
                 float* grad, float* scratch) {
  int32_t T = p->time, V = p->vocab, LD = p->lattice;
  const double gs = p->grad_scale; /* the gradient's factor, before each term's rounding */
  for (int32_t b = 0; b < p->batch; b++) {
    const float* lp = log_probs + (int64_t)b * T * V;
    const float* y = targets + (int64_t)b * p->max_target;
    float* g = grad + (int64_t)b * T * V;
    double* alpha = (double*)(scratch + (int64_t)b * 4 * T * LD);
    double* beta = alpha + (int64_t)T * LD;
    int32_t tn = (int32_t)input_lengths[b], sn = (int32_t)target_lengths[b], L = 2 * sn + 1;
#define LABEL(s) ((s) % 2 ? (int32_t)y[((s) - 1) / 2] : p->blank)
#define SKIP_OK(s) ((s) >= 2 && LABEL(s) != p->blank && LABEL(s) != LABEL((s) - 2))
    for (int64_t i = 0; i < (int64_t)T * V; i++) g[i] = 0.0f;
    double loglik = NEG_INF;
    if (tn > 0) {
      for (int32_t s = 0; s < L; s++) alpha[s] = s < 2 ? lp[LABEL(s)] : NEG_INF;
      for (int32_t t = 1; t < tn; t++) {
        const double* prev = alpha + (int64_t)(t - 1) * LD;
        double* cur = alpha + (int64_t)t * LD;
        for (int32_t s = 0; s < L; s++) {
          double a = prev[s];
          if (s >= 1) a = lse2(a, prev[s - 1]);
          if (SKIP_OK(s)) a = lse2(a, prev[s - 2]);
          cur[s] = a == NEG_INF ? NEG_INF : a + lp[(int64_t)t * V + LABEL(s)];
        }
      }
      const double* last = alpha + (int64_t)(tn - 1) * LD;
      loglik = L >= 2 ? lse2(last[L - 1], last[L - 2]) : last[L - 1];
    } else if (sn == 0) {
      loglik = 0.0; /* no frames, no labels: the empty alignment */
    }
    if (loglik == NEG_INF) {
      loss[b] = p->zero_infinity ? 0.0f : __builtin_inff();
      continue; /* gradient stays 0 */
    }
    loss[b] = (float)-loglik;
    if (tn == 0) continue;
    double* bl = beta + (int64_t)(tn - 1) * LD;
    for (int32_t s = 0; s < L; s++) bl[s] = s >= L - 2 ? 0.0 : NEG_INF;
    for (int32_t t = tn - 2; t >= 0; t--) {
      const double* next = beta + (int64_t)(t + 1) * LD;
      const float* lpn = lp + (int64_t)(t + 1) * V;
      double* cur = beta + (int64_t)t * LD;
      for (int32_t s = 0; s < L; s++) {
        double v = next[s] + lpn[LABEL(s)];
        if (s + 1 < L) v = lse2(v, next[s + 1] + lpn[LABEL(s + 1)]);
        if (s + 2 < L && SKIP_OK(s + 2)) v = lse2(v, next[s + 2] + lpn[LABEL(s + 2)]);
        cur[s] = v;
      }
    }
    for (int32_t t = 0; t < tn; t++) {
      const double *a = alpha + (int64_t)t * LD, *be = beta + (int64_t)t * LD;
      for (int32_t s = 0; s < L; s++) {
        double e = a[s] + be[s] - loglik;
        if (e > -700.0) g[(int64_t)t * V + LABEL(s)] -= (float)(cm_exp(e) * gs);
      }
    }
#undef LABEL
#undef SKIP_OK
  }
}
