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
 *
 * Four channels run at once, one per lane (the last group zero-padded): every per-channel value
 * (d, the states, y, the sums over n in order of n) is computed lane by lane, so it does not
 * depend on which group or thread a channel falls in, and the backward recomputes the forward's
 * states bit for bit. The vector log, softplus and sigmoid give the bits of the scalar functions
 * of mathf.h; the decay factors use a shorter exp (decay_exp_v). Only dB and dC sum over
 * channels: per group, the four lanes as (l0 + l2) + (l1 + l3), then the groups in order; the
 * backward is split by sequence, never by channel, so that order is fixed too. */
#include "../ffi/ops.h"
#include "bf16_simd.h"
#include "mathf_simd.h"

#define CM_SCAN_MAX_STATE 64
#define CM_SCAN_MAX_CHUNK 64

static inline v128_t splat(float x) { return wasm_f32x4_splat(x); }

/* exp(x) for the decay factors exp(d A), 16 per step and channel: cm_expf_v's reduction
 * x = n ln2 + r with n = round(x / ln2) by adding 1.5 2^23 (the sum's low bits are n, shifted into
 * an exponent for 2^n), and a degree-6 minimax polynomial for exp(r) (relative error 2e-9 on
 * |r| <= ln2 / 2; about 1.6 U once evaluated in float32). Valid for x in [-87.33654, 88], where
 * 2^n is normal; a lane outside (rare: in the models d > 0 and A < 0, and d A < -87 needs a large
 * step) gets cm_expf_v's value (0 below, +inf above 88.72, NaN for NaN), chosen per lane so that
 * no lane depends on its neighbours. */
static inline v128_t decay_exp_v(v128_t x) {
  const v128_t SHIFT = splat(0x1.8p23f);
  v128_t k = wasm_f32x4_add(wasm_f32x4_mul(x, splat(1.44269504088896341f)), SHIFT);
  v128_t n = wasm_f32x4_sub(k, SHIFT);
  v128_t r = wasm_f32x4_sub(wasm_f32x4_sub(x, wasm_f32x4_mul(n, splat(0.693145751953125f))),
                            wasm_f32x4_mul(n, splat(1.4286068203094173e-06f)));
  v128_t q = wasm_f32x4_add(splat(8.374168538e-03f), wasm_f32x4_mul(r, splat(1.384362346e-03f)));
  q = wasm_f32x4_add(splat(4.166800156e-02f), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(splat(1.666643173e-01f), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(splat(4.999999404e-01f), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(splat(1.0f), wasm_f32x4_mul(r, q));
  q = wasm_f32x4_add(splat(1.0f), wasm_f32x4_mul(r, q));
  v128_t y = wasm_f32x4_mul(q, wasm_i32x4_add(wasm_i32x4_shl(k, 23), wasm_i32x4_splat(0x3f800000)));
  v128_t ok = wasm_v128_and(wasm_f32x4_ge(x, splat(-87.33654f)), wasm_f32x4_le(x, splat(88.0f)));
  if (!wasm_i32x4_all_true(ok)) y = wasm_v128_bitselect(y, cm_expf_v(x), ok);
  return y;
}

/* ---- lanes of one channel group ---- */

/* p[0 .. lanes), the other lanes `pad` */
static inline v128_t load_lanes(const float* p, int32_t lanes, float pad) {
  if (lanes == 4) return wasm_v128_load(p);
  float t[4] = {pad, pad, pad, pad};
  for (int32_t l = 0; l < lanes; l++) t[l] = p[l];
  return wasm_v128_load(t);
}

static inline void store_lanes(float* p, v128_t v, int32_t lanes) {
  if (lanes == 4) {
    wasm_v128_store(p, v);
    return;
  }
  float t[4];
  wasm_v128_store(t, v);
  for (int32_t l = 0; l < lanes; l++) p[l] = t[l];
}

/* Lane l of the result = the sum of v_l's lanes as (0 + 2) + (1 + 3). */
static inline v128_t lane_sums(v128_t v0, v128_t v1, v128_t v2, v128_t v3) {
  v128_t s01 = wasm_f32x4_add(wasm_i32x4_shuffle(v0, v1, 0, 4, 1, 5),
                              wasm_i32x4_shuffle(v0, v1, 2, 6, 3, 7));
  v128_t s23 = wasm_f32x4_add(wasm_i32x4_shuffle(v2, v3, 0, 4, 1, 5),
                              wasm_i32x4_shuffle(v2, v3, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5),
                        wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/* The per-group constants: A transposed (at[n] lane l = A[c0 + l, n]; padding -1), D, delta_bias. */
typedef struct {
  int32_t lanes;
  v128_t at[CM_SCAN_MAX_STATE], D, bias;
} scan_group;

static void group_init(scan_group* g, const float* A, const float* D, const float* delta_bias,
                       int32_t c0, int32_t lanes, int32_t ns) {
  g->lanes = lanes;
  for (int32_t n = 0; n < ns; n++) {
    float t[4] = {-1.0f, -1.0f, -1.0f, -1.0f};
    for (int32_t l = 0; l < lanes; l++) t[l] = A[(int64_t)(c0 + l) * ns + n];
    g->at[n] = wasm_v128_load(t);
  }
  g->D = D ? load_lanes(D + c0, lanes, 0.0f) : splat(0.0f);
  g->bias = delta_bias ? load_lanes(delta_bias + c0, lanes, 0.0f) : splat(0.0f);
}

static inline v128_t scan_delta(const cm_scan_params* p, v128_t pre) {
  return p->delta_softplus ? cm_softplusf_v(pre) : pre;
}

/* One step of the group: h = exp(d a) h + du b; returns sum_n c[n] h[n] in order of n (hp and ea,
 * when not NULL, receive h before the step and exp(d a)). */
static inline v128_t scan_step(const scan_group* g, int32_t ns, const float* b, const float* c,
                               v128_t d, v128_t du, v128_t* h, v128_t* hp, v128_t* ea) {
  v128_t y = splat(0.0f);
  for (int32_t n = 0; n < ns; n++) {
    v128_t e = decay_exp_v(wasm_f32x4_mul(d, g->at[n]));
    if (hp) hp[n] = h[n], ea[n] = e;
    h[n] = wasm_f32x4_add(wasm_f32x4_mul(e, h[n]), wasm_f32x4_mul(du, wasm_v128_load32_splat(b + n)));
    y = wasm_f32x4_add(y, wasm_f32x4_mul(wasm_v128_load32_splat(c + n), h[n]));
  }
  return y;
}

/* states[n] of the group's channels <-> h[n] (lane l: channel c0 + l; row stride ns) */
static void save_states(float* s, const v128_t* h, int32_t lanes, int32_t ns) {
  for (int32_t n = 0; n < ns; n++) {
    float t[4];
    wasm_v128_store(t, h[n]);
    for (int32_t l = 0; l < lanes; l++) s[(int64_t)l * ns + n] = t[l];
  }
}

static void load_states(const float* s, v128_t* h, int32_t lanes, int32_t ns) {
  for (int32_t n = 0; n < ns; n++) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int32_t l = 0; l < lanes; l++) t[l] = s[(int64_t)l * ns + n];
    h[n] = wasm_v128_load(t);
  }
}

/* The row of step t of sequence b: t itself, or T-1-t in reverse (BiMamba's backward direction
 * scanned in place: every operation as on the flipped sequence, the same bits as flip, scan,
 * flip). */
static inline int64_t scan_row(const cm_scan_params* p, int32_t b, int32_t t) {
  return (int64_t)b * p->seqlen + (p->reverse ? p->seqlen - 1 - t : t);
}

void cm_selective_scan_forward(const cm_scan_params* p, const float* u, const float* delta,
                               const float* A, const float* B, const float* C, const float* D,
                               const float* z, const float* delta_bias, float* out,
                               float* states, const float* other) {
  int32_t T = p->seqlen, ns = p->dstate;
  scan_group g;
  v128_t h[CM_SCAN_MAX_STATE];
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t c0 = 0; c0 < p->channels; c0 += 4) {
      int32_t lanes = p->channels - c0 < 4 ? p->channels - c0 : 4;
      group_init(&g, A, D, delta_bias, c0, lanes, ns);
      for (int32_t n = 0; n < ns; n++) h[n] = splat(0.0f);
      for (int32_t t = 0; t < T; t++) {
        if (t % p->chunk == 0) {
          float* s = states + ((int64_t)b * p->nchunks + t / p->chunk) * p->ld_state + (int64_t)c0 * ns;
          save_states(s, h, lanes, ns);
        }
        int64_t row = scan_row(p, b, t), i = row * p->ld_u + c0, ibc = row * p->ld_bc;
        v128_t ut = load_lanes(u + i, lanes, 0.0f);
        v128_t d = scan_delta(p, wasm_f32x4_add(load_lanes(delta + i, lanes, 0.0f), g.bias));
        v128_t y = scan_step(&g, ns, B + ibc, C + ibc, d, wasm_f32x4_mul(d, ut), h, 0, 0);
        if (D) y = wasm_f32x4_add(y, wasm_f32x4_mul(g.D, ut));
        if (z) {
          v128_t zt = load_lanes(z + row * p->ld_z + c0, lanes, 0.0f);
          y = wasm_f32x4_mul(y, wasm_f32x4_mul(zt, cm_sigmoidf_v(zt))); /* silu(z) */
        }
        if (p->half) y = wasm_f32x4_mul(y, splat(0.5f)); /* exact */
        if (other) y = wasm_f32x4_add(load_lanes(other + i, lanes, 0.0f), y);
        cm_store_lanes(p->out_bf16 ? 0 : out, p->out_bf16 ? (uint16_t*)out : 0, i, y, lanes);
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
  int32_t ns4 = (ns + 3) & ~3; /* the per-step gradient rows, padded for lane_sums */
  scan_group g;
  v128_t h[CM_SCAN_MAX_STATE], dh[CM_SCAN_MAX_STATE], dA_sum[CM_SCAN_MAX_STATE];
  v128_t gB[CM_SCAN_MAX_STATE], gC[CM_SCAN_MAX_STATE];
  /* per step of the chunk: h before the step, exp(d A), y before the gate, and d */
  v128_t h_prev[CM_SCAN_MAX_CHUNK * CM_SCAN_MAX_STATE], ea[CM_SCAN_MAX_CHUNK * CM_SCAN_MAX_STATE];
  v128_t y_pre[CM_SCAN_MAX_CHUNK], d_at[CM_SCAN_MAX_CHUNK];
  for (int32_t n = ns; n < ns4; n++) gB[n] = gC[n] = splat(0.0f);
  for (int32_t b = 0; b < p->batch; b++) {
    for (int32_t t = 0; t < T; t++) {
      int64_t ibc = scan_row(p, b, t) * p->ld_bc;
      for (int32_t n = 0; n < ns; n++) dB[ibc + n] = dC[ibc + n] = 0.0f;
    }
    for (int32_t c0 = 0; c0 < p->channels; c0 += 4) {
      int32_t lanes = p->channels - c0 < 4 ? p->channels - c0 : 4;
      group_init(&g, A, D, delta_bias, c0, lanes, ns);
      for (int32_t n = 0; n < ns; n++) dh[n] = dA_sum[n] = splat(0.0f);
      v128_t dD_sum = splat(0.0f), ddb_sum = splat(0.0f);
      for (int32_t k = p->nchunks - 1; k >= 0; k--) {
        int32_t t0 = k * p->chunk, t1 = t0 + p->chunk < T ? t0 + p->chunk : T;
        load_states(states + ((int64_t)b * p->nchunks + k) * p->ld_state + (int64_t)c0 * ns, h,
                    lanes, ns);
        for (int32_t t = t0; t < t1; t++) { /* recompute the chunk as the forward did */
          int64_t row = scan_row(p, b, t), i = row * p->ld_u + c0, ibc = row * p->ld_bc;
          v128_t ut = load_lanes(u + i, lanes, 0.0f);
          v128_t d = scan_delta(p, wasm_f32x4_add(load_lanes(delta + i, lanes, 0.0f), g.bias));
          int32_t r = (t - t0) * ns;
          d_at[t - t0] = d;
          v128_t y = scan_step(&g, ns, B + ibc, C + ibc, d, wasm_f32x4_mul(d, ut), h, h_prev + r,
                               ea + r);
          y_pre[t - t0] = D ? wasm_f32x4_add(y, wasm_f32x4_mul(g.D, ut)) : y;
        }
        for (int32_t t = t1 - 1; t >= t0; t--) {
          int64_t row = scan_row(p, b, t), i = row * p->ld_u + c0, ibc = row * p->ld_bc;
          const float *bt = B + ibc, *ct = C + ibc;
          const v128_t *hp = h_prev + (t - t0) * ns, *e = ea + (t - t0) * ns;
          v128_t ut = load_lanes(u + i, lanes, 0.0f);
          v128_t pre = wasm_f32x4_add(load_lanes(delta + i, lanes, 0.0f), g.bias);
          v128_t d = d_at[t - t0];
          v128_t dy = load_lanes(dout + i, lanes, 0.0f); /* padding 0: no share of dB, dC */
          if (p->half) dy = wasm_f32x4_mul(dy, splat(0.5f)); /* the output was halved: exact */
          if (z) {
            int64_t iz = row * p->ld_z + c0;
            v128_t zt = load_lanes(z + iz, lanes, 0.0f), sg = cm_sigmoidf_v(zt);
            if (dz) { /* silu'(z) = s (1 + z (1 - s)) */
              v128_t ds = wasm_f32x4_mul(
                  sg, wasm_f32x4_add(splat(1.0f),
                                     wasm_f32x4_mul(zt, wasm_f32x4_sub(splat(1.0f), sg))));
              v128_t g = wasm_f32x4_mul(wasm_f32x4_mul(dy, y_pre[t - t0]), ds);
              if (p->accumulate_dz) g = wasm_f32x4_add(load_lanes(dz + iz, lanes, 0.0f), g);
              store_lanes(dz + iz, g, lanes);
            }
            dy = wasm_f32x4_mul(dy, wasm_f32x4_mul(zt, sg));
          }
          v128_t du_t = splat(0.0f), dd = splat(0.0f), dut = wasm_f32x4_mul(d, ut);
          if (D) {
            dD_sum = wasm_f32x4_add(dD_sum, wasm_f32x4_mul(dy, ut));
            du_t = wasm_f32x4_mul(dy, g.D);
          }
          for (int32_t n = 0; n < ns; n++) {
            v128_t bn = wasm_v128_load32_splat(bt + n), eh = wasm_f32x4_mul(e[n], hp[n]);
            v128_t hn = wasm_f32x4_add(eh, wasm_f32x4_mul(dut, bn)); /* h_t, as the forward */
            gC[n] = wasm_f32x4_mul(dy, hn);
            dh[n] = wasm_f32x4_add(dh[n], wasm_f32x4_mul(dy, wasm_v128_load32_splat(ct + n)));
            dd = wasm_f32x4_add(
                dd, wasm_f32x4_mul(dh[n], wasm_f32x4_add(wasm_f32x4_mul(g.at[n], eh),
                                                         wasm_f32x4_mul(bn, ut))));
            dA_sum[n] = wasm_f32x4_add(dA_sum[n], wasm_f32x4_mul(dh[n], wasm_f32x4_mul(d, eh)));
            gB[n] = wasm_f32x4_mul(dh[n], dut);
            du_t = wasm_f32x4_add(du_t, wasm_f32x4_mul(dh[n], wasm_f32x4_mul(d, bn)));
            dh[n] = wasm_f32x4_mul(dh[n], e[n]); /* dh_(t-1) */
          }
          for (int32_t n = 0; n < ns4; n += 4) { /* the group's share of dB[t], dC[t] */
            v128_t sb = lane_sums(gB[n], gB[n + 1], gB[n + 2], gB[n + 3]);
            v128_t sc = lane_sums(gC[n], gC[n + 1], gC[n + 2], gC[n + 3]);
            int32_t m = ns - n < 4 ? ns - n : 4;
            if (m == 4) {
              wasm_v128_store(dB + ibc + n, wasm_f32x4_add(wasm_v128_load(dB + ibc + n), sb));
              wasm_v128_store(dC + ibc + n, wasm_f32x4_add(wasm_v128_load(dC + ibc + n), sc));
            } else {
              float tb[4], tc[4];
              wasm_v128_store(tb, sb);
              wasm_v128_store(tc, sc);
              for (int32_t j = 0; j < m; j++) dB[ibc + n + j] += tb[j], dC[ibc + n + j] += tc[j];
            }
          }
          if (p->delta_softplus) { /* softplus' = sigmoid, below the threshold 20 */
            dd = wasm_v128_bitselect(wasm_f32x4_mul(dd, cm_sigmoidf_v(pre)), dd,
                                     wasm_f32x4_le(pre, splat(20.0f)));
          }
          store_lanes(ddelta + i, dd, lanes);
          ddb_sum = wasm_f32x4_add(ddb_sum, dd);
          store_lanes(du + i, du_t, lanes);
        }
      }
      save_states(dA + ((int64_t)b * p->channels + c0) * ns, dA_sum, lanes, ns);
      if (dD) store_lanes(dD + (int64_t)b * p->channels + c0, dD_sum, lanes);
      if (ddelta_bias) store_lanes(ddelta_bias + (int64_t)b * p->channels + c0, ddb_sum, lanes);
    }
  }
}
