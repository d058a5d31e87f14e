/* The attention loss per target position (CONMAMBA_SPEC.md 7.2, 13 G17): the KL divergence from a
 * label-smoothed target q (1 - eps at the target id, eps / (V - 1) at every other id, blank/pad,
 * bos and eos included) to the predicted distribution, entropy term included; eps = 0 is the
 * NLL. Positions are weighted by `weights` (0 for padding: value 0 with smoothing, beyond the
 * length without). Summed in float64 per row. */
#include "../ffi/ops.h"
#include "mathf.h"

void cm_smoothed_nll(const cm_loss_params* p, const float* log_probs, const float* targets,
                     const float* weights, float* loss, float* grad) {
  int32_t V = p->vocab;
  const double gs = p->grad_scale; /* the gradient's factor, before its rounding */
  double eps = p->smoothing, q_hit = 1.0 - eps, q_off = eps / (V - 1);
  double ent_hit = q_hit > 0 ? q_hit * cm_log(q_hit) : 0.0;
  double log_off = q_off > 0 ? cm_log(q_off) : 0.0;
  for (int32_t r = 0; r < p->rows; r++) {
    const float* lp = log_probs + (int64_t)r * V;
    float* g = grad + (int64_t)r * V;
    double w = weights[r];
    int32_t y = (int32_t)targets[r];
    double sum = 0.0; /* sum_k q(k) (log q(k) - lp[k]) */
    for (int32_t k = 0; k < V; k++) {
      double q = k == y ? q_hit : q_off;
      if (q > 0) sum += k == y ? ent_hit - q * lp[k] : q * (log_off - lp[k]);
      g[k] = (float)(-w * q * gs);
    }
    loss[r] = (float)(w * sum);
  }
}
