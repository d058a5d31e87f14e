/* GELU (exact, erf-based: the encoder's activation, CONMAMBA_SPEC.md 4.5-4.6) and SiLU (Swish,
 * the Mamba gate and the Conformer convolution module), forward and backward. GELU runs on four
 * lanes at a time in float64 (two f64x2 halves); the rest is scalar float32. */
#include "../ffi/ops.h"
#include "bf16_simd.h"
#include "chunk_sums.h"
#include "dropout_hash.h"
#include "mathf.h"
#include "simd.h"

/* 1 / sqrt(2 pi) */
#define CM_INV_SQRT_2PI 0.39894228040143267794

/* g(a) = Phi(-a) exp(a^2 / 2) = erfcx(a / sqrt 2) / 2 for a >= 0, as t P(t) with t = 4 / (4 + a):
 * g is smooth and ~ 1 / (a sqrt(2 pi)) for large a, so g / t is a tame function of t in (0, 1].
 * P: degree 11, a weighted least-squares (Lawson) fit of g / t on a in [0, 40], relative error
 * below 6e-10 (0.01 float32 ulp) against mpmath there. */
#define GELU_T_SCALE 4.0
static const double GELU_P[12] = {
    0.099735558951132286,  0.099735739080624303, 0.093505032074138711, 0.080939086085294237,
    0.064578674776563677,  0.036539628847475539, 0.049631905213191073, -0.059905006933347202,
    0.10910745969095773,   -0.12373043344987303, 0.06103493585007809,  -0.011172580470108374};
/* Beyond |x| = 37, exp(-x^2 / 2) < 1e-297: Phi is 0 or 1 to float64 and the exp is skipped. */
#define GELU_A_MAX 37.0

/* exp(v) on two float64 lanes for v in [-700, 0]: v = n ln2 + r, |r| <= ~ln2 / 2 (fdlibm's split
 * of ln2: n LN2_HI is exact), exp(r) by its Taylor series to r^8 (the next term is < 2.1e-10
 * relative, 0.004 float32 ulp), 2^n from the exponent bits. n = round(v / ln2) by adding
 * 1.5 2^52: the sum's low mantissa bits are n in two's complement, shifted into the exponent. */
static inline v128_t exp_pd(v128_t v) {
  const double LN2_HI = 6.93147180369123816490e-01, LN2_LO = 1.90821492927058770002e-10;
  const double SHIFTER = 0x1.8p52;
  v128_t k = wasm_f64x2_add(wasm_f64x2_mul(v, wasm_f64x2_splat(1.44269504088896340736)),
                            wasm_f64x2_splat(SHIFTER));
  v128_t n = wasm_f64x2_sub(k, wasm_f64x2_splat(SHIFTER));
  v128_t r = wasm_f64x2_sub(wasm_f64x2_sub(v, wasm_f64x2_mul(n, wasm_f64x2_splat(LN2_HI))),
                            wasm_f64x2_mul(n, wasm_f64x2_splat(LN2_LO)));
  static const double INV_FACT[8] = {1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24,
                                     1.0 / 6,    0.5,       1.0,       1.0};
  v128_t p = wasm_f64x2_splat(1.0 / 40320);
  for (int j = 0; j < 8; j++) p = wasm_f64x2_add(wasm_f64x2_splat(INV_FACT[j]), wasm_f64x2_mul(r, p));
  v128_t scale = wasm_i64x2_add(wasm_i64x2_shl(k, 52), wasm_i64x2_splat((int64_t)1023 << 52));
  return wasm_f64x2_mul(p, scale);
}

/* Phi(x) on two float64 lanes, and phi(x) sqrt(2 pi) = exp(-x^2 / 2) in *e. Phi(-|x|) = e g(|x|)
 * keeps full relative accuracy in the negative tail (no 1 - erf cancels); Phi(|x|) = 1 - that.
 * x^2 is exact in float64 (x is a float32), so the tail's exp(-x^2 / 2), whose relative
 * sensitivity to its argument is x^2 / 2, loses nothing: Phi to ~1e-9 relative, a rounding to
 * float32 after it. NaN propagates through the caller's product with x. */
static inline v128_t normal_cdf_pd(v128_t x, v128_t* e) {
  v128_t a = wasm_f64x2_abs(x);
  v128_t in = wasm_f64x2_lt(a, wasm_f64x2_splat(GELU_A_MAX));
  a = wasm_v128_bitselect(a, wasm_f64x2_splat(GELU_A_MAX), in);
  v128_t ex = exp_pd(wasm_f64x2_mul(wasm_f64x2_splat(-0.5), wasm_f64x2_mul(a, a)));
  ex = wasm_v128_and(ex, in); /* 0 beyond GELU_A_MAX */
  v128_t t = wasm_f64x2_div(wasm_f64x2_splat(GELU_T_SCALE),
                            wasm_f64x2_add(wasm_f64x2_splat(GELU_T_SCALE), a));
  v128_t p = wasm_f64x2_splat(GELU_P[11]);
  for (int k = 10; k >= 0; k--) p = wasm_f64x2_add(wasm_f64x2_splat(GELU_P[k]), wasm_f64x2_mul(t, p));
  v128_t lower = wasm_f64x2_mul(ex, wasm_f64x2_mul(t, p)); /* Phi(-|x|) */
  *e = ex;
  return wasm_v128_bitselect(lower, wasm_f64x2_sub(wasm_f64x2_splat(1.0), lower),
                             wasm_f64x2_lt(x, wasm_f64x2_splat(0.0)));
}

/* float32 lanes 0-1 and 2-3 as float64 pairs, and back */
static inline v128_t lo_pd(v128_t v) { return wasm_f64x2_promote_low_f32x4(v); }
static inline v128_t hi_pd(v128_t v) {
  return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 2, 3));
}
static inline v128_t join_ps(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0,
                            1, 4, 5);
}

static inline v128_t gelu_pd(v128_t x) { /* x Phi(x) */
  v128_t e;
  return wasm_f64x2_mul(x, normal_cdf_pd(x, &e));
}

static inline v128_t gelu_grad_pd(v128_t x, v128_t dy) { /* dy (Phi(x) + x phi(x)) */
  v128_t e, cdf = normal_cdf_pd(x, &e);
  v128_t pdf = wasm_f64x2_mul(e, wasm_f64x2_splat(CM_INV_SQRT_2PI));
  return wasm_f64x2_mul(dy, wasm_f64x2_add(cdf, wasm_f64x2_mul(x, pdf)));
}

/* Every lane is computed alike, so the tail (through a zero-padded vector) and any thread split
 * give the same bits per element. */
void cm_gelu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: y rounded to packed bf16 */
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    cm_store_lanes(y, y16, i, join_ps(gelu_pd(lo_pd(v)), gelu_pd(hi_pd(v))), 4);
  }
  if (i < p->n) {
    float xt[4] = {0}, yt[4];
    for (int32_t j = i; j < p->n; j++) xt[j - i] = x[j];
    v128_t v = wasm_v128_load(xt);
    wasm_v128_store(yt, join_ps(gelu_pd(lo_pd(v)), gelu_pd(hi_pd(v))));
    for (int32_t j = i; j < p->n; j++) cm_store_f32_or_bf16(y, y16, j, yt[j - i]);
  }
}

void cm_gelu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t v = wasm_v128_load(x + i), g = wasm_v128_load(dy + i);
    wasm_v128_store(dx + i, join_ps(gelu_grad_pd(lo_pd(v), lo_pd(g)),
                                    gelu_grad_pd(hi_pd(v), hi_pd(g))));
  }
  if (i < p->n) {
    float xt[4] = {0}, gt[4] = {0}, dt[4];
    for (int32_t j = i; j < p->n; j++) xt[j - i] = x[j], gt[j - i] = dy[j];
    v128_t v = wasm_v128_load(xt), g = wasm_v128_load(gt);
    wasm_v128_store(dt, join_ps(gelu_grad_pd(lo_pd(v), lo_pd(g)),
                                gelu_grad_pd(hi_pd(v), hi_pd(g))));
    for (int32_t j = i; j < p->n; j++) dx[j] = dt[j - i];
  }
}

/* The FFN's inner GELU and dropout in one pass (no GELU output in memory): per element the
 * float32 GELU of cm_gelu_forward, then cm_dropout's mask and product, so the bits equal the two
 * ops in sequence; the tail goes through zero-padded vectors for GELU and the scalar mask. */
void cm_gelu_dropout_forward(const cm_dropout_params* p, const float* x, float* y) {
  uint32_t key = cm_dropout_key(p->seed, p->stream);
  float scale = 1.0f / (1.0f - p->p);
  v128_t vscale = wasm_f32x4_splat(scale);
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: the values rounded to packed bf16 */
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t g = join_ps(gelu_pd(lo_pd(v)), gelu_pd(hi_pd(v)));
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    cm_store_lanes(y, y16, i, wasm_v128_and(wasm_f32x4_mul(g, vscale), keep), 4);
  }
  if (i < p->n) {
    float xt[4] = {0}, gt[4];
    for (int32_t j = i; j < p->n; j++) xt[j - i] = x[j];
    v128_t v = wasm_v128_load(xt);
    wasm_v128_store(gt, join_ps(gelu_pd(lo_pd(v)), gelu_pd(hi_pd(v))));
    for (int32_t j = i; j < p->n; j++) {
      float out = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)j, p->p) ? gt[j - i] * scale
                                                                                : 0.0f;
      cm_store_f32_or_bf16(y, y16, j, out);
    }
  }
}

/* dx = GELU'(x) dropout(dy) over n elements whose mask indices start at index0: cm_dropout on dy
 * (float32), then cm_gelu_backward's float64 expression on it, so the bits equal the two ops in
 * sequence. */
static void gelu_dropout_backward_run(uint32_t key, float p, uint32_t index0, int32_t n,
                                      const float* x, const float* dy, float* dx) {
  float scale = 1.0f / (1.0f - p);
  v128_t vscale = wasm_f32x4_splat(scale);
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, index0 + (uint32_t)i, p);
    v128_t g = wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(dy + i), vscale), keep);
    v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(dx + i, join_ps(gelu_grad_pd(lo_pd(v), lo_pd(g)),
                                    gelu_grad_pd(hi_pd(v), hi_pd(g))));
  }
  if (i < n) {
    float xt[4] = {0}, gt[4] = {0}, dt[4];
    for (int32_t j = i; j < n; j++) {
      xt[j - i] = x[j];
      gt[j - i] = cm_dropout_keep(key, index0 + (uint32_t)j, p) ? dy[j] * scale : 0.0f;
    }
    v128_t v = wasm_v128_load(xt), g = wasm_v128_load(gt);
    wasm_v128_store(dt, join_ps(gelu_grad_pd(lo_pd(v), lo_pd(g)),
                                gelu_grad_pd(hi_pd(v), hi_pd(g))));
    for (int32_t j = i; j < n; j++) dx[j] = dt[j - i];
  }
}

typedef struct {
  uint32_t key;
  float p;
  int32_t cols;
  const float *x, *dy;
} gelu_dropout_rows;

static void gelu_dropout_backward_row(const void* ctx, int64_t first, int64_t r, float* row) {
  const gelu_dropout_rows* q = ctx;
  const int64_t o = r * q->cols;
  gelu_dropout_backward_run(q->key, q->p, (uint32_t)((first + r) * q->cols), q->cols, q->x + o,
                            q->dy + o, row);
}

/* Row by row over this call's chunks (element (r, j) takes the mask at index r cols + j of the
 * whole call); with part, each chunk's column sums of dx in the op table's order. */
void cm_gelu_dropout_backward(const cm_dropout_rows_params* p, const float* x, const float* dy,
                              float* dx, float* part) {
  const gelu_dropout_rows q = {cm_dropout_key(p->seed, p->stream), p->p, p->cols, x, dy};
  cm_out_rows_with_sums(p->rows, p->cols, p->chunk_rows, p->chunks, p->chunk0, part, dx,
                        p->out_bf16, gelu_dropout_backward_row, &q);
}

void cm_silu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  uint16_t* y16 = p->y_bf16 ? (uint16_t*)y : 0; /* y_bf16: y rounded to packed bf16 */
  for (int32_t i = 0; i < p->n; i++) {
    float s = 1.0f / (1.0f + cm_expf(-x[i])); /* sigmoid */
    cm_store_f32_or_bf16(y, y16, i, x[i] * s);
  }
}

void cm_silu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx) {
  for (int32_t i = 0; i < p->n; i++) {
    float s = 1.0f / (1.0f + cm_expf(-x[i]));
    dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
  }
}

void cm_exp_forward(const cm_elementwise_params* p, const float* x, float* y) {
  for (int32_t i = 0; i < p->n; i++) y[i] = cm_expf(x[i]);
}

/* LeakyReLU of the CNN front end (CONMAMBA_SPEC.md 4.2): slope alpha (0.01) below zero. Four
 * lanes at a time with a select, the scalar expression's bits (NaN and -0 included). */
void cm_leaky_relu_forward(const cm_elementwise_params* p, const float* x, float* y) {
  int32_t n = p->n, i = 0;
  float alpha = p->alpha;
  v128_t va = wasm_f32x4_splat(alpha), zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(y + i, wasm_v128_bitselect(v, wasm_f32x4_mul(va, v), wasm_f32x4_gt(v, zero)));
  }
  for (; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
}

void cm_leaky_relu_backward(const cm_elementwise_params* p, const float* x, const float* dy,
                            float* dx) {
  int32_t n = p->n, i = 0;
  float alpha = p->alpha;
  v128_t va = wasm_f32x4_splat(alpha), zero = wasm_f32x4_splat(0.0f);
  for (; i + 4 <= n; i += 4) {
    v128_t g = wasm_v128_load(dy + i);
    wasm_v128_store(dx + i, wasm_v128_bitselect(g, wasm_f32x4_mul(va, g),
                                                wasm_f32x4_gt(wasm_v128_load(x + i), zero)));
  }
  for (; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
}

/* The CNN front end's LeakyReLU and dropout in one pass: per element leaky_relu_forward's value,
 * then cm_dropout's mask and product (the bits of the two ops in sequence). */
void cm_leaky_relu_dropout_forward(const cm_dropout_add_params* p, const float* x, float* y) {
  const uint32_t key = cm_dropout_key(p->seed, p->stream);
  const float scale = 1.0f / (1.0f - p->p), alpha = p->alpha;
  v128_t va = wasm_f32x4_splat(alpha), vs = wasm_f32x4_splat(scale), zero = wasm_f32x4_splat(0.0f);
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t v = wasm_v128_load(x + i);
    v128_t l = wasm_v128_bitselect(v, wasm_f32x4_mul(va, v), wasm_f32x4_gt(v, zero));
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    wasm_v128_store(y + i, wasm_v128_and(wasm_f32x4_mul(l, vs), keep));
  }
  for (; i < p->n; i++) {
    float l = x[i] > 0.0f ? x[i] : alpha * x[i];
    y[i] = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)i, p->p) ? l * scale : 0.0f;
  }
}

/* dx = leaky_relu_backward(x, dropout(dy)): cm_dropout on dy, then the slope (the bits of the two
 * ops in sequence). */
void cm_leaky_relu_dropout_backward(const cm_dropout_add_params* p, const float* x,
                                    const float* dy, float* dx) {
  const uint32_t key = cm_dropout_key(p->seed, p->stream);
  const float scale = 1.0f / (1.0f - p->p), alpha = p->alpha;
  v128_t va = wasm_f32x4_splat(alpha), vs = wasm_f32x4_splat(scale), zero = wasm_f32x4_splat(0.0f);
  int32_t i = 0;
  for (; i + 4 <= p->n; i += 4) {
    v128_t keep = cm_dropout_keep_v(key, (uint32_t)p->index0 + (uint32_t)i, p->p);
    v128_t g = wasm_v128_and(wasm_f32x4_mul(wasm_v128_load(dy + i), vs), keep);
    wasm_v128_store(dx + i, wasm_v128_bitselect(g, wasm_f32x4_mul(va, g),
                                                wasm_f32x4_gt(wasm_v128_load(x + i), zero)));
  }
  for (; i < p->n; i++) {
    float g = cm_dropout_keep(key, (uint32_t)p->index0 + (uint32_t)i, p->p) ? dy[i] * scale : 0.0f;
    dx[i] = x[i] > 0.0f ? g : alpha * g;
  }
}

/* GLU over channels (CONMAMBA_SPEC.md 4.6): the first half of each row gated by the second. */
void cm_glu_forward(const cm_rows_params* p, const float* x, float* y) {
  int32_t d = p->cols;
  for (int32_t r = 0; r < p->rows; r++) {
    const float* xr = x + (int64_t)r * 2 * d;
    float* yr = y + (int64_t)r * d;
    for (int32_t j = 0; j < d; j++) yr[j] = xr[j] * cm_sigmoidf(xr[d + j]);
  }
}

typedef struct {
  int32_t cols;
  const float *x, *dy;
} glu_rows;

static void glu_backward_row(const void* ctx, int64_t first, int64_t r, float* dxr) {
  (void)first;
  const glu_rows* q = ctx;
  const int32_t d = q->cols;
  const float *xr = q->x + r * 2 * d, *gr = q->dy + r * d;
  for (int32_t j = 0; j < d; j++) {
    float s = cm_sigmoidf(xr[d + j]);
    dxr[j] = gr[j] * s;                            /* d/da = s */
    dxr[d + j] = gr[j] * xr[j] * (s * (1.0f - s)); /* d/dg = a s (1 - s) */
  }
}

/* Row by row over this call's chunks; with part, each chunk's column sums of dx (2 cols wide) in
 * the op table's order. */
void cm_glu_backward(const cm_chunked_rows_params* p, const float* x, const float* dy, float* dx,
                     float* part) {
  const glu_rows q = {p->cols, x, dy};
  cm_out_rows_with_sums(p->rows, 2 * p->cols, p->chunk_rows, p->chunks, p->chunk0, part, dx,
                        p->out_bf16, glu_backward_row, &q);
}
