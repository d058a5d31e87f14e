/* The selective scan (Mamba recurrence, CONMAMBA_SPEC.md 4.7), forward and backward, per channel c
 * of one sequence:
 *
 *   d_t = softplus(delta_t + delta_bias)                (identity above 20; no softplus if off)
 *   h_t[n] = exp(d_t A[c, n]) h_(t-1)[n] + d_t B_t[n] u_t        h_(-1) = 0
 *   y_t = sum_n C_t[n] h_t[n] + D u_t,   out_t = y_t silu(z_t)
 *
 * The forward saves h at the start of every chunk of `chunk` steps; the backward walks the chunks
 * from the last, recomputes the chunk's states from the saved one, then runs the reverse
 * recurrence dh_(t-1) = exp(d_t A) dh_t inside it (the recomputation scheme of the Mamba kernels).
 * The state vector (dstate <= CM_SCAN_MAX_STATE) is processed four lanes at a time; the vector exp
 * gives the scalar cm_expf's bits, and every sum runs in a fixed order, so results do not depend
 * on how channels or sequences are split across threads. */
#include "../ffi/ops.h"
#include "mathf_simd.h"

#define CM_SCAN_MAX_STATE 64
#define CM_SCAN_MAX_CHUNK 64

static inline float scan_delta_pre(const float* delta_bias, float d, int32_t c) {
  return delta_bias ? d + delta_bias[c] : d;
}

static inline float scan_delta(const cm_scan_params* p, float pre) {
  return p->delta_softplus ? cm_softplusf(pre) : pre;
}

/* One step of channel c: h = exp(d a) h + du b (ea receives exp(d a) when not NULL); returns
 * sum_n cv[n] h[n], four lane sums combined as cm_hsum then the tail in order. */
static inline float scan_step(int32_t ns, const float* a, const float* b, const float* cv, float d,
                              float du, float* h, float* ea) {
  v128_t acc = wasm_f32x4_splat(0.0f), vd = wasm_f32x4_splat(d), vdu = wasm_f32x4_splat(du);
  int32_t n = 0;
  for (; n + 4 <= ns; n += 4) {
    v128_t e = cm_expf_v(wasm_f32x4_mul(vd, wasm_v128_load(a + n)));
    v128_t hn = wasm_f32x4_add(wasm_f32x4_mul(e, wasm_v128_load(h + n)),
                               wasm_f32x4_mul(vdu, wasm_v128_load(b + n)));
    wasm_v128_store(h + n, hn);
    if (ea) wasm_v128_store(ea + n, e);
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(cv + n), hn));
  }
  float y = cm_hsum(acc);
  for (; n < ns; n++) {
    float e = cm_expf(d * a[n]);
    h[n] = e * h[n] + du * b[n]; /* the scalar line of the loop above */
    if (ea) ea[n] = e;
    y += cv[n] * h[n];
  }
  return y;
}

void cm_selective_scan_forward(const cm_scan_params* p, const float* u, const float* delta,
                               const float* A, const float* B, const float* C, const float* D,
                               const float* z, const float* delta_bias, float* out,
                               float* states) {
  int32_t T = p->seqlen, ns = p->dstate;
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t c = 0; c < p->channels; c++) {
      float h[CM_SCAN_MAX_STATE] = {0};
      const float* a = A + (int64_t)c * ns;
      for (int32_t t = 0; t < T; t++) {
        if (t % p->chunk == 0) {
          float* s = states + ((int64_t)b * p->nchunks + t / p->chunk) * p->ld_state + (int64_t)c * ns;
          for (int32_t n = 0; n < ns; n++) s[n] = h[n];
        }
        int64_t i = ((int64_t)b * T + t) * p->ld_u + c, ibc = ((int64_t)b * T + t) * p->ld_bc;
        float ut = u[i], d = scan_delta(p, scan_delta_pre(delta_bias, delta[i], c));
        float y = scan_step(ns, a, B + ibc, C + ibc, d, d * ut, h, 0);
        if (D) y += D[c] * ut;
        if (z) {
          float zt = z[((int64_t)b * T + t) * p->ld_z + c];
          y *= zt * cm_sigmoidf(zt); /* silu(z) */
        }
        out[i] = y;
      }
    }
  }
}

void cm_selective_scan_backward(const cm_scan_params* p, const float* u, const float* delta,
                                const float* A, const float* B, const float* C, const float* D,
                                const float* z, const float* delta_bias, const float* states,
                                const float* dout, float* du, float* ddelta, float* dA, float* dB,
                                float* dC, float* dD, float* dz, float* ddelta_bias) {
  int32_t T = p->seqlen, ns = p->dstate;
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      int64_t ibc = ((int64_t)b * T + t) * p->ld_bc;
      for (int32_t n = 0; n < ns; n++) dB[ibc + n] = dC[ibc + n] = 0.0f;
    }
    for (int32_t c = 0; c < p->channels; c++) {
      const float* a = A + (int64_t)c * ns;
      float dh[CM_SCAN_MAX_STATE] = {0}, dA_sum[CM_SCAN_MAX_STATE] = {0};
      float dD_sum = 0.0f, ddb_sum = 0.0f;
      /* per step of the chunk: h before the step, exp(d A), and y before the gate */
      float h_prev[CM_SCAN_MAX_CHUNK][CM_SCAN_MAX_STATE], ea[CM_SCAN_MAX_CHUNK][CM_SCAN_MAX_STATE];
      float y_pre[CM_SCAN_MAX_CHUNK];
      for (int32_t k = p->nchunks - 1; k >= 0; k--) {
        int32_t t0 = k * p->chunk, t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
        float h[CM_SCAN_MAX_STATE];
        const float* s = states + ((int64_t)b * p->nchunks + k) * p->ld_state + (int64_t)c * ns;
        for (int32_t n = 0; n < ns; n++) h[n] = s[n];
        for (int32_t t = t0; t < t1; t++) { /* recompute the chunk as the forward did */
          int64_t i = ((int64_t)b * T + t) * p->ld_u + c, ibc = ((int64_t)b * T + t) * p->ld_bc;
          float ut = u[i], d = scan_delta(p, scan_delta_pre(delta_bias, delta[i], c));
          for (int32_t n = 0; n < ns; n++) h_prev[t - t0][n] = h[n];
          float y = scan_step(ns, a, B + ibc, C + ibc, d, d * ut, h, ea[t - t0]);
          y_pre[t - t0] = D ? y + D[c] * ut : y;
        }
        for (int32_t t = t1 - 1; t >= t0; t--) {
          int64_t i = ((int64_t)b * T + t) * p->ld_u + c, ibc = ((int64_t)b * T + t) * p->ld_bc;
          const float *bt = B + ibc, *ct = C + ibc, *hp = h_prev[t - t0], *e = ea[t - t0];
          float ut = u[i], pre = scan_delta_pre(delta_bias, delta[i], c), d = scan_delta(p, pre);
          float dy = dout[i];
          if (z) {
            int64_t iz = ((int64_t)b * T + t) * p->ld_z + c;
            float zt = z[iz], sg = cm_sigmoidf(zt);
            if (dz) dz[iz] = dy * y_pre[t - t0] * (sg * (1.0f + zt * (1.0f - sg))); /* silu' */
            dy *= zt * sg;
          }
          float du_t = 0.0f, dd = 0.0f;
          if (D) {
            dD_sum += dy * ut;
            du_t = dy * D[c];
          }
          for (int32_t n = 0; n < ns; n++) {
            float hn = e[n] * hp[n] + (d * ut) * bt[n]; /* h_t, bit for bit as in the forward */
            dC[ibc + n] += dy * hn;
            dh[n] += dy * ct[n];
            dd += dh[n] * (a[n] * e[n] * hp[n] + bt[n] * ut);
            dA_sum[n] += dh[n] * (d * e[n] * hp[n]);
            dB[ibc + n] += dh[n] * (d * ut);
            du_t += dh[n] * (d * bt[n]);
            dh[n] *= e[n]; /* dh_(t-1) */
          }
          if (p->delta_softplus && pre <= 20.0f) dd *= cm_sigmoidf(pre); /* softplus' */
          ddelta[i] = dd;
          ddb_sum += dd;
          du[i] = du_t;
        }
      }
      float* dAc = dA + ((int64_t)b * p->channels + c) * ns;
      for (int32_t n = 0; n < ns; n++) dAc[n] = dA_sum[n];
      if (dD) dD[(int64_t)b * p->channels + c] = dD_sum;
      if (ddelta_bias) ddelta_bias[(int64_t)b * p->channels + c] = ddb_sum;
    }
  }
}
