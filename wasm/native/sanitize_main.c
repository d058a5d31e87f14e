/* Native driver for `make sanitize`: the kernel sources of wasm/ built for the host with ASan and
 * UBSan, run on awkward shapes (sizes not multiples of 4 or 8, K and N across block edges) and
 * checked against naive double loops and libm. Out-of-bounds reads or writes abort under ASan;
 * a wrong value exits 1. The precise per-op checks live in tests/ops (against the f64 reference). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../ffi/ops.h"
#include "../bf16.h"

static int failures = 0;
static unsigned seed = 12345;

static float randf(void) { /* uniform in [-2, 2), never 0 */
  seed = seed * 1103515245u + 12345u;
  float v = ((seed >> 8) & 0xffff) / 16384.0f - 2.0f;
  return v == 0.0f ? 0.25f : v;
}

/* Exactly-sized heap buffers so ASan catches any access past the end. */
static float* rand_buf(size_t n) {
  float* p = malloc((n ? n : 1) * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = randf();
  return p;
}

static void check(const char* what, double got, double want, double allowed) {
  if (!(fabs(got - want) <= allowed)) {
    fprintf(stderr, "FAIL %s: got %.9g, want %.9g (allowed %.3g)\n", what, got, want, allowed);
    failures++;
  }
}

/* An exactly-sized packed bf16 buffer for n elements (ceil(n / 2) float32 slots). */
static uint16_t* bf16_buf(size_t n) { return malloc(((n + 1) / 2 ? (n + 1) / 2 : 1) * sizeof(float)); }

/* y16 must hold y rounded to bf16, element by element. */
static void check_bf16(const char* what, const uint16_t* y16, const float* y, size_t n) {
  for (size_t i = 0; i < n; i++) check(what, y16[i], cm_bf16_bits(y[i]), 0);
}

/* part[c * ld_part + j] must be column j of y (rows, cols) summed over chunk c of chunk_rows rows
 * in the op table's order (8 groups of chunk_rows / 8 consecutive rows, each summed from 0 in
 * row order, then added from 0 in group order), bit for bit. */
static void check_chunk_sums(const char* what, const float* y, int rows, int cols, int chunk_rows,
                             const float* part, int ld_part) {
  const int group = chunk_rows / 8;
  for (int c = 0; c * chunk_rows < rows; c++) {
    for (int j = 0; j < cols; j++) {
      float want = 0.0f;
      for (int g = 0; g < 8; g++) {
        float gs = 0.0f;
        const int r0 = c * chunk_rows + g * group;
        for (int r = r0; r < r0 + group && r < rows; r++) gs += y[(size_t)r * cols + j];
        want += gs;
      }
      check(what, part[(size_t)c * ld_part + j], want, 0);
    }
  }
}

static void test_matmul(int batch, int m, int n, int k, int ta, int tb, int acc, int with_bias) {
  float *a = rand_buf((size_t)batch * m * k), *b = rand_buf((size_t)batch * k * n);
  float *bias = with_bias ? rand_buf(n) : NULL, *c = rand_buf((size_t)batch * m * n);
  float* c0 = malloc(sizeof(float) * batch * m * n);
  for (int i = 0; i < batch * m * n; i++) c0[i] = c[i];
  cm_matmul_params p = {batch, m, n, k, ta ? m : k, tb ? k : n, n, m * k, k * n, m * n, ta, tb, acc, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  cm_matmul(&p, a, b, bias, c, NULL);
  for (int t = 0; t < batch; t++)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) {
        double s = acc ? c0[(t * m + i) * n + j] : 0, mag = fabs(s);
        for (int q = 0; q < k; q++) {
          double x = ta ? a[t * m * k + q * m + i] : a[t * m * k + i * k + q];
          double y = tb ? b[t * k * n + j * k + q] : b[t * k * n + q * n + j];
          s += x * y, mag += fabs(x * y);
        }
        if (bias) s += bias[j], mag += fabs(bias[j]);
        check("matmul", c[(t * m + i) * n + j], s, (k + 3) * 0x1p-24 * mag + 1e-30);
      }
  free(a), free(b), free(bias), free(c), free(c0);
}

/* bf16 rounding, independently of the kernels' bit trick: keep 8 significant bits (7 stored),
 * ties to even (nearbyint), the exponent clamped at float32's smallest normal. */
static double bf16_ref(double x) {
  if (x == 0 || isinf(x) || isnan(x)) return x;
  int e = ilogb(x) < -126 ? -126 : ilogb(x);
  double r = ldexp(nearbyint(ldexp(x, 7 - e)), e - 7);
  return fabs(r) > 0x1.fe0p127 ? copysign(INFINITY, x) : r;
}

static void test_bf16(int pairs) {
  float* x = rand_buf(2 * (size_t)pairs);
  float specials[] = {0x1.01p0f, 0x1.03p0f, 0x1.00fp0f, -0x1.018p0f, 0x1p-130f, 3e38f, INFINITY, -0.0f};
  for (int i = 0; i < 2 * pairs && i < 8; i++) x[i] = specials[i];
  float* packed = malloc(sizeof(float) * (size_t)(pairs ? pairs : 1));
  float* y = malloc(sizeof(float) * 2 * (size_t)(pairs ? pairs : 1));
  cm_bf16_params p = {pairs};
  cm_bf16_pack(&p, x, packed);
  cm_bf16_unpack(&p, packed, y);
  for (int i = 0; i < 2 * pairs; i++) {
    if (y[i] != bf16_ref(x[i]) || signbit(y[i]) != signbit(x[i])) {
      fprintf(stderr, "FAIL bf16_pack/unpack: %a -> %a, want %a\n", x[i], y[i], bf16_ref(x[i]));
      failures++;
    }
  }
  free(x), free(packed), free(y);
  /* The matmul's bf16 mode: the product of the rounded inputs, summed in fp32. */
  int m = 5, n = 11, k = 300;
  float *a = rand_buf((size_t)m * k), *b = rand_buf((size_t)k * n), *c = rand_buf((size_t)m * n);
  cm_matmul_params q = {1, m, n, k, k, n, n, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  cm_matmul(&q, a, b, NULL, c, NULL);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0, mag = 0;
      for (int t = 0; t < k; t++) {
        double v = bf16_ref(a[i * k + t]) * bf16_ref(b[t * n + j]);
        s += v, mag += fabs(v);
      }
      check("matmul bf16_inputs", c[i * n + j], s, (k + 3) * 0x1p-24 * mag + 1e-30);
    }
  free(a), free(b), free(c);
}

static void test_elementwise(int n) {
  float *a = rand_buf(n), *b = rand_buf(n), *y = rand_buf(n);
  cm_elementwise_params p = {n, 0.5f, 0};
  cm_add(&p, a, b, y);
  for (int i = 0; i < n; i++) check("add", y[i], (double)a[i] + b[i], 0x1p-24 * fabs(a[i] + b[i]));
  cm_mul(&p, a, b, y);
  for (int i = 0; i < n; i++) check("mul", y[i], (double)a[i] * b[i], 0x1p-24 * fabs(a[i] * b[i]));
  cm_scale(&p, a, y);
  for (int i = 0; i < n; i++) check("scale", y[i], 0.5 * a[i], 0);
  /* Phi in float64 lanes to < 1e-9 relative, one rounding to float32: within U (+0.02 U) of
   * libm's value; 2 U leaves room for erfc's own error. */
  cm_gelu_forward(&p, a, y);
  for (int i = 0; i < n; i++) {
    double g = 0.5 * a[i] * erfc(-a[i] / sqrt(2.0));
    check("gelu", y[i], g, 2 * 0x1p-24 * fabs(g));
  }
  { /* the tails, where x Phi(x) is tiny (relative accuracy kept down to normal results) or x */
    float xt[12] = {-13.0f, -11.5f, -9.25f, -5.0f, -0.75f, -1e-30f, 0.0f, 1e-30f, 3.0f, 9.0f, 40.0f, -40.0f};
    float yt[12];
    cm_elementwise_params pt = {12, 0.0f, 0};
    cm_gelu_forward(&pt, xt, yt);
    for (int i = 0; i < 12; i++) {
      double g = 0.5 * xt[i] * erfc(-xt[i] / sqrt(2.0));
      check("gelu tail", yt[i], g, fabs(g) < 0x1p-126 ? 0x1p-149 : 2 * 0x1p-24 * fabs(g));
    }
  }
  cm_gelu_backward(&p, a, b, y);
  for (int i = 0; i < n; i++) {
    double d = 0.5 * erfc(-a[i] / sqrt(2.0)) + a[i] * exp(-0.5 * a[i] * a[i]) / sqrt(2 * M_PI);
    check("gelu'", y[i], b[i] * d, 1e-6 * fabs(b[i]));
  }
  cm_silu_forward(&p, a, y);
  for (int i = 0; i < n; i++) check("silu", y[i], a[i] / (1 + exp(-a[i])), 1e-6 * fabs(a[i]));
  cm_silu_backward(&p, a, b, y);
  for (int i = 0; i < n; i++) {
    double s = 1 / (1 + exp(-a[i]));
    check("silu'", y[i], b[i] * s * (1 + a[i] * (1 - s)), 2e-6 * fabs(b[i]) * (1 + fabs(a[i])));
  }
  free(a), free(b), free(y);
}

static void test_rows(int rows, int cols) {
  size_t n = (size_t)rows * cols;
  float *x = rand_buf(n), *g = rand_buf(cols), *be = rand_buf(cols), *y = rand_buf(n);
  float *dy = rand_buf(n), *dx = rand_buf(n), *mean = rand_buf(rows), *rstd = rand_buf(rows);
  float *dg = rand_buf(cols), *db = rand_buf(cols), *s = rand_buf(cols);
  cm_rows_params p = {rows, cols, cols, 0, 1e-5f, 0};
  {
    /* the residual sum and the LayerNorm in one kernel: the bits of dropout_add then
     * layernorm_forward, rows from row0 2 (a thread's part), exactly sized outputs */
    float *ys = rand_buf(n), *s1 = rand_buf(n), *ln1 = rand_buf(n), *m1 = rand_buf(rows);
    float *r1 = rand_buf(rows), *s2 = rand_buf(n), *ln2 = rand_buf(n);
    cm_add_ln_params ap = {rows, cols, cols, 1e-5f, 0.25f, 0.5f, 7, 3, 2, 0};
    cm_dropout_add_layernorm(&ap, x, ys, g, be, s1, ln1, m1, r1);
    cm_dropout_add_params dap = {(int32_t)n, 0.25f, 0.5f, 7, 3, 2 * cols};
    cm_dropout_add(&dap, x, ys, s2);
    cm_layernorm_forward(&p, s2, g, be, ln2, mean, rstd);
    for (size_t i = 0; i < n; i++) check("dropout_add_layernorm s", s1[i], s2[i], 0);
    for (size_t i = 0; i < n; i++) check("dropout_add_layernorm ln", ln1[i], ln2[i], 0);
    for (int r = 0; r < rows; r++) check("dropout_add_layernorm rstd", r1[r], rstd[r], 0);
    free(ys), free(s1), free(ln1), free(m1), free(r1), free(s2), free(ln2);
  }
  cm_layernorm_forward(&p, x, g, be, y, mean, rstd);
  for (int r = 0; r < rows; r++) {
    double mu = 0, v = 0;
    for (int j = 0; j < cols; j++) mu += x[r * cols + j] / (double)cols;
    for (int j = 0; j < cols; j++) v += pow(x[r * cols + j] - mu, 2) / cols;
    for (int j = 0; j < cols; j++) {
      double want = (x[r * cols + j] - mu) / sqrt(v + 1e-5) * g[j] + be[j];
      check("layernorm", y[r * cols + j], want, (cols + 10) * 0x1p-24 * 8 * (fabs(g[j]) + 1));
    }
  }
  /* chunks of 16 rows (groups of 2): the last chunk and its groups cut short on most shapes */
  const int chunk_rows = 16, chunks = (rows + chunk_rows - 1) / chunk_rows;
  float* part = rand_buf((size_t)chunks * 2 * cols);
  cm_ln_backward_params lp = {rows, cols, cols, 0, chunk_rows, chunks, 0};
  cm_layernorm_backward(&lp, x, g, mean, rstd, dy, dx, part);
  /* dbeta's partials: the column sums of dy in the documented order, exactly */
  check_chunk_sums("layernorm_backward dbeta partial", dy, rows, cols, chunk_rows, part + cols,
                   2 * cols);
  cm_rows_params pp = {chunks, cols, 2 * cols, 0, 0.0f, 0};
  cm_sum_rows(&pp, part, dg);
  cm_sum_rows(&pp, part + cols, db);
  cm_sum_rows(&p, dy, s);
  for (int j = 0; j < cols; j++) check("dbeta ~ sum_rows", db[j], s[j], (rows + 8) * 0x1p-24 * 4 * rows);
  free(part);
  cm_softmax_forward(&p, x, y);
  for (int r = 0; r < rows; r++) {
    double sum = 0;
    for (int j = 0; j < cols; j++) sum += y[r * cols + j];
    check("softmax sums to 1", sum, 1.0, (cols + 8) * 0x1p-24);
  }
  cm_softmax_backward(&p, y, dy, dx);
  cm_log_softmax_forward(&p, x, y);
  for (int r = 0; r < rows; r++) {
    double sum = 0;
    for (int j = 0; j < cols; j++) sum += exp(y[r * cols + j]);
    check("log_softmax normalised", sum, 1.0, (cols + 16) * 0x1p-24 * 4);
  }
  cm_log_softmax_backward(&p, y, dy, dx);
  free(x), free(g), free(be), free(y), free(dy), free(dx), free(mean), free(rstd);
  free(dg), free(db), free(s);
}

/* The model kernels (issue 3) on awkward sizes: exact-size buffers catch any overrun; a few exact
 * identities catch wrong indexing (the value checks live in tests/ops). */
static void test_model_ops(int B, int T, int C, int N) {
  size_t n = (size_t)B * T * C;
  float *x = rand_buf(n), *y = rand_buf(n), *y2 = rand_buf(n), *dy = rand_buf(n);
  cm_seq_params sp = {B, T, C};
  cm_flip_time(&sp, x, y);
  cm_flip_time(&sp, y, y2);
  for (size_t i = 0; i < n; i++) check("flip twice", y2[i], x[i], 0);
  float* lens = rand_buf(B);
  for (int b = 0; b < B; b++) lens[b] = (float)((b * 7) % (T + 2)); /* 0, past T, in between */
  cm_mask_params mp = {B, T, C, -3.0f};
  cm_masked_fill_time(&mp, x, lens, y);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++)
      for (int c = 0; c < C; c++) {
        size_t i = ((size_t)b * T + t) * C + c;
        check("masked fill", y[i], t < lens[b] ? x[i] : -3.0f, 0);
      }
  free(lens);
  cm_elementwise_params ep = {(int32_t)n, 0.01f, 0};
  cm_exp_forward(&ep, x, y);
  for (size_t i = 0; i < n; i++) check("exp", y[i], exp(x[i]), 8 * 0x1p-24 * exp(x[i]));
  cm_leaky_relu_forward(&ep, x, y);
  cm_leaky_relu_backward(&ep, x, dy, y2);
  cm_dropout_params dp = {(int32_t)n, 0.25f, 7, 3, 0, 0};
  cm_dropout(&dp, x, y);
  for (size_t i = 0; i < n; i++) {
    if (y[i] != 0) check("dropout scale", y[i], x[i] / 0.75, 2 * 0x1p-24 * fabs(x[i]));
  }
  /* The fused GELU + dropout: exactly the two ops in sequence, both ways. */
  cm_gelu_dropout_forward(&dp, x, y);
  cm_gelu_forward(&ep, x, y2);
  cm_dropout(&dp, y2, y2);
  for (size_t i = 0; i < n; i++) check("gelu_dropout_forward", y[i], y2[i], 0);
  /* rows of C elements in chunks of 16 (groups of 2): the same bits as the flat ops, and the
   * column sums of dx per chunk in the documented order */
  const int rows = B * T, chunks = (rows + 15) / 16;
  float* sums = rand_buf((size_t)chunks * C);
  cm_dropout_rows_params dr = {rows, C, 0.25f, 0.5f, 7, 3, 16, chunks, 0, 0};
  /* out_bf16 runs write into exactly sized packed buffers (ASan); values and sums checked */
  uint16_t* d16 = bf16_buf(n);
  float* s16 = rand_buf((size_t)chunks * C);
  cm_gelu_dropout_backward(&dr, x, dy, y, sums);
  cm_dropout(&dp, dy, y2);
  cm_gelu_backward(&ep, x, y2, y2);
  for (size_t i = 0; i < n; i++) check("gelu_dropout_backward", y[i], y2[i], 0);
  check_chunk_sums("gelu_dropout_backward column sums", y, rows, C, 16, sums, C);
  cm_gelu_dropout_backward(&dr, x, dy, y2, NULL); /* part is optional */
  for (size_t i = 0; i < n; i++) check("gelu_dropout_backward without part", y2[i], y[i], 0);
  dr.out_bf16 = 1;
  cm_gelu_dropout_backward(&dr, x, dy, (float*)d16, s16);
  check_bf16("gelu_dropout_backward out_bf16", d16, y, n);
  for (int i = 0; i < chunks * C; i++) check("gelu_dropout_backward out_bf16 sums", s16[i], sums[i], 0);
  dr.out_bf16 = 0;
  /* The residual around a dropped-out branch and its backward: the ops in sequence, bitwise. */
  cm_dropout_add_params dap = {(int32_t)n, 0.25f, 0.5f, 7, 3, 0};
  cm_elementwise_params half = {(int32_t)n, 0.5f, 0};
  cm_dropout_add(&dap, x, dy, y);
  cm_dropout(&dp, dy, y2);
  cm_scale(&half, y2, y2);
  cm_add(&ep, x, y2, y2);
  for (size_t i = 0; i < n; i++) check("dropout_add", y[i], y2[i], 0);
  /* LeakyReLU + dropout (slope in alpha): the two ops in sequence, both ways */
  cm_dropout_add_params lrp = {(int32_t)n, 0.25f, 0.01f, 7, 3, 0};
  cm_elementwise_params slope = {(int32_t)n, 0.01f, 0};
  cm_leaky_relu_dropout_forward(&lrp, x, y);
  cm_leaky_relu_forward(&slope, x, y2);
  cm_dropout(&dp, y2, y2);
  for (size_t i = 0; i < n; i++) check("leaky_relu_dropout_forward", y[i], y2[i], 0);
  cm_leaky_relu_dropout_backward(&lrp, x, dy, y);
  cm_dropout(&dp, dy, y2);
  cm_leaky_relu_backward(&slope, x, y2, y2);
  for (size_t i = 0; i < n; i++) check("leaky_relu_dropout_backward", y[i], y2[i], 0);
  cm_scale_dropout(&dr, dy, y, sums); /* alpha 0.5, over rows, with its column sums */
  cm_scale(&half, dy, y2);
  cm_dropout(&dp, y2, y2);
  for (size_t i = 0; i < n; i++) check("scale_dropout", y[i], y2[i], 0);
  check_chunk_sums("scale_dropout column sums", y, rows, C, 16, sums, C);
  dr.out_bf16 = 1;
  cm_scale_dropout(&dr, dy, (float*)d16, s16);
  check_bf16("scale_dropout out_bf16", d16, y, n);
  for (int i = 0; i < chunks * C; i++) check("scale_dropout out_bf16 sums", s16[i], sums[i], 0);
  dr.out_bf16 = 0;
  free(sums);
  if (C % 2 == 0) {
    cm_rows_params rp = {B * T, C / 2, C, 0, 0, 0};
    float* g = rand_buf(n / 2);
    cm_glu_forward(&rp, x, g);
    /* over rows in chunks of 16, with dx's column sums (2 (C / 2) wide) */
    float* gs = rand_buf((size_t)chunks * C);
    cm_chunked_rows_params gp = {B * T, C / 2, 16, chunks, 0, 0};
    cm_glu_backward(&gp, x, g, y, gs);
    check_chunk_sums("glu_backward column sums", y, B * T, C, 16, gs, C);
    gp.out_bf16 = 1;
    cm_glu_backward(&gp, x, g, (float*)d16, s16);
    check_bf16("glu_backward out_bf16", d16, y, n);
    for (int i = 0; i < chunks * C; i++) check("glu_backward out_bf16 sums", s16[i], gs[i], 0);
    free(g), free(gs);
  }
  free(d16), free(s16);
  /* conv1d: causal K 4 with SiLU, x strided in a (B, T, 2C) buffer */
  float *xz = rand_buf(2 * n), *w = rand_buf((size_t)C * 4), *bias = rand_buf(C);
  float *dpre = rand_buf(n), *dxz = rand_buf(2 * n), *dw = rand_buf((size_t)C * 4), *db = rand_buf(C);
  cm_conv1d_params cp = {B, T, C, 4, 3, 2 * C, C, 1, 0, 0};
  cm_conv1d_depthwise_forward(&cp, xz, w, bias, y);
  cm_conv1d_depthwise_backward(&cp, xz, w, bias, dy, dpre, dxz, dw, db);
  /* selective scan, z the second half of xz, B and C columns of a (B, T, 2N + 3) buffer */
  int W = 2 * N + 3, chunk = 4, nch = (T + chunk - 1) / chunk;
  float *A = rand_buf((size_t)C * N), *bc = rand_buf((size_t)B * T * W), *D = rand_buf(C);
  float *dbias = rand_buf(C), *states = rand_buf((size_t)B * nch * C * N);
  for (int i = 0; i < C * N; i++) A[i] = -fabsf(A[i]);
  cm_scan_params sc = {B, T, C, N, C, W, 2 * C, 1, chunk, nch, C * N, 0, 0, 0, 0};
  cm_selective_scan_forward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, y2, states, NULL);
  for (size_t i = 0; i < n; i++) check("scan finite", isfinite(y2[i]), 1, 0);
  float *du = rand_buf(n), *ddelta = rand_buf(n), *dA = rand_buf((size_t)B * C * N);
  float *dbc = rand_buf((size_t)B * T * W), *dD = rand_buf((size_t)B * C), *ddb = rand_buf((size_t)B * C);
  cm_selective_scan_backward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, states, dy, du,
                             ddelta, dA, dbc + 3, dbc + 3 + N, dD, dxz + C, ddb);
  /* the same in reverse time (BiMamba's backward direction): rows T-1-t, in bounds too; and
   * adding dx, dz to what is there */
  cp.reverse = 1, sc.reverse = 1, cp.accumulate_dx = 1, sc.accumulate_dz = 1;
  cm_conv1d_depthwise_forward(&cp, xz, w, bias, y);
  cm_conv1d_depthwise_backward(&cp, xz, w, bias, dy, dpre, dxz, dw, db);
  cm_selective_scan_forward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, y2, states, NULL);
  for (size_t i = 0; i < n; i++) check("scan reverse finite", isfinite(y2[i]), 1, 0);
  /* BiMamba's halves: 0.5 y plus another direction's half, the bits of 0.5 y + o */
  float* y3 = rand_buf(n);
  sc.half = 1;
  cm_selective_scan_forward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, y3, states, dy);
  for (size_t i = 0; i < n; i++) check("scan half + other", y3[i], dy[i] + y2[i] * 0.5f, 0);
  /* out_bf16: the same values rounded, into an exactly sized packed buffer */
  uint16_t* y16 = bf16_buf(n);
  sc.out_bf16 = 1;
  cm_selective_scan_forward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, (float*)y16, states, dy);
  check_bf16("scan out_bf16", y16, y3, n);
  sc.out_bf16 = 0;
  free(y3), free(y16);
  cm_selective_scan_backward(&sc, y, x, A, bc + 3, bc + 3 + N, D, xz + C, dbias, states, dy, du,
                             ddelta, dA, dbc + 3, dbc + 3 + N, dD, dxz + C, ddb);
  /* im2col / col2im are adjoint: <cols, im2col(img)> = <col2im(cols), img> */
  int t2 = T < 2 ? 2 : T, f2 = 5, to = (t2 - 1) / 2 + 1, fo = (f2 - 1) / 2 + 1;
  size_t ni = (size_t)B * t2 * f2 * 2, nc = (size_t)B * to * fo * 2 * 9;
  float *img = rand_buf(ni), *cols = rand_buf(nc), *cols2 = rand_buf(nc), *img2 = rand_buf(ni);
  cm_im2col_params ip = {B, t2, f2, 2, to, fo, 3, 2, 1};
  cm_im2col_reflect(&ip, img, cols2);
  cm_col2im_reflect(&ip, cols, img2);
  double s1 = 0, s2 = 0, m = 0;
  for (size_t i = 0; i < nc; i++) s1 += (double)cols[i] * cols2[i], m += fabs(cols[i] * cols2[i]);
  for (size_t i = 0; i < ni; i++) s2 += (double)img2[i] * img[i];
  check("im2col adjoint", s1, s2, 1e-5 * m);
  /* CTC (T frames, 2 labels, V = C) and the smoothed NLL */
  float tg[2] = {1, (float)(C > 2 ? 2 : 1)}, il = (float)T, tl = 2, loss, *sc2 = rand_buf((size_t)4 * T * 5);
  cm_ctc_params cc = {1, T, C, 2, 5, 0, 1, 1.0f};
  if (C >= 3) { /* labels must be ids < V other than the blank */
    cm_ctc_loss(&cc, x, tg, &il, &tl, &loss, y, sc2);
    check("ctc finite", isfinite(loss) || T < 2, 1, 0);
  }
  float tgt[1] = {0}, wt[1] = {1}, nl;
  cm_loss_params lp = {1, C, C > 1 ? 0.1f : 0.0f, 1.0f};
  cm_smoothed_nll(&lp, x, tgt, wt, &nl, y);
  /* Adam on n elements; sums of squares in blocks of 7 */
  float *m1 = rand_buf(n), *v1 = rand_buf(n);
  for (size_t i = 0; i < n; i++) v1[i] = fabsf(v1[i]);
  cm_adam_params ap = {(int32_t)n, 0.9f, 0.98f, 1e-9f, 0.01f, 1, 0.99999f, 1e-3f, 0.1f, 0.5f};
  cm_adam_step(&ap, y, dy, m1, v1);
  int nb = (int)((n + 6) / 7);
  float* part = rand_buf(nb);
  cm_blocks_params bp = {nb, 7, (int32_t)n, 0};
  cm_sum_squares_blocks(&bp, x, part);
  double ss = 0, sp2 = 0;
  for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  for (int j = 0; j < nb; j++) sp2 += part[j];
  check("sum of squares", sp2, ss, 1e-6 * ss);
  free(x), free(y), free(y2), free(dy), free(xz), free(w), free(bias), free(dpre), free(dxz);
  free(dw), free(db), free(A), free(bc), free(D), free(dbias), free(states), free(du), free(ddelta);
  free(dA), free(dbc), free(dD), free(ddb), free(img), free(cols), free(cols2), free(img2), free(sc2);
  free(m1), free(v1), free(part);
}

/* Embedding, time copies, axis swaps, attention pieces and reductions (issue 3): round trips and
 * adjoint identities that catch wrong indexing; ASan catches overruns. */
static void test_attention_ops(int B, int T, int D) {
  int V = 5, n = B * T;
  float *table = rand_buf((size_t)V * D), *ids = rand_buf(n), *y = rand_buf((size_t)n * D);
  float *dtable = rand_buf((size_t)V * D);
  for (int i = 0; i < n; i++) ids[i] = (float)(i % V);
  cm_gather_params gp = {n, D, D, V};
  cm_embedding_forward(&gp, table, ids, y);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < D; k++) check("embedding", y[i * D + k], table[(i % V) * D + k], 0);
  cm_embedding_backward(&gp, ids, y, dtable);
  for (int v = 0; v < V && v < n; v++) {
    int count = (n - v + V - 1) / V;
    for (int k = 0; k < D; k++)
      check("embedding'", dtable[v * D + k], count * (double)table[v * D + k], 1e-5 * count * 2);
  }
  /* concat along time [x; x], then swap (B, 2T, D) twice */
  float *cat = rand_buf((size_t)2 * n * D), *sw = rand_buf((size_t)2 * n * D), *back = rand_buf((size_t)2 * n * D);
  cm_time_copy_params tp = {B, T, D, T, 0, 2 * T, 0};
  cm_copy_time(&tp, y, cat);
  tp.y_t0 = T;
  cm_copy_time(&tp, y, cat);
  cm_swap_params sp = {B, 2 * T, D, 1, 0};
  cm_swap_axes(&sp, cat, sw);
  cm_swap_params sp2 = {B, D, 2 * T, 1, 0};
  cm_swap_axes(&sp2, sw, back);
  for (int i = 0; i < 2 * n * D; i++) check("swap twice", back[i], cat[i], 0);
  /* masked softmax rows sum to 1 (or 0 when fully masked); the backward runs */
  float lens[64];
  for (int b = 0; b < B; b++) lens[b] = (float)(b % 2 ? T / 2 : T);
  cm_attn_params ap = {B * T, T, T, 1, 1, 0, 0.5f};
  float *pr = rand_buf((size_t)B * T * T), *dpr = rand_buf((size_t)B * T * T);
  cm_attn_softmax_forward(&ap, cat, lens, NULL, pr);
  for (int r = 0; r < B * T; r++) {
    double s = 0;
    for (int j = 0; j < T; j++) s += pr[r * T + j];
    check("attn softmax row sum", s, (r / T) % 2 && T / 2 == 0 ? 0.0 : 1.0, (T + 8) * 0x1p-24);
  }
  cm_attn_softmax_backward(&ap, pr, cat, dpr);
  /* rel shift and its backward are adjoint */
  int W = 2 * T - 1;
  float *bd = rand_buf((size_t)B * T * W), *dbd = rand_buf((size_t)B * T * W);
  cm_seq_params rp = {B, T, W};
  cm_rel_shift_forward(&rp, bd, pr);
  cm_rel_shift_backward(&rp, dpr, dbd);
  double s1 = 0, s2 = 0, m = 0;
  for (int i = 0; i < B * T * T; i++) s1 += (double)pr[i] * dpr[i], m += fabs(pr[i] * dpr[i]);
  for (int i = 0; i < B * T * W; i++) s2 += (double)bd[i] * dbd[i];
  check("rel shift adjoint", s1, s2, 1e-6 * m + 1e-30);
  /* sum over time, broadcast back, max over the last axis */
  float *sm = rand_buf((size_t)B * D), *bc = rand_buf((size_t)n * D), *mx = rand_buf(n), *ix = rand_buf(n);
  cm_axis_params xp = {B, T, D, (float)T};
  cm_sum_axis(&xp, y, sm);
  cm_broadcast_axis(&xp, sm, bc);
  cm_rows_params mp = {n, D, D, 0, 0, 0};
  cm_max_last(&mp, y, mx, ix);
  for (int r = 0; r < n; r++) check("max", mx[r], y[r * D + (int)ix[r]], 0);
  free(table), free(ids), free(y), free(dtable), free(cat), free(sw), free(back), free(pr), free(dpr);
  free(bd), free(dbd), free(sm), free(bc), free(mx), free(ix);
}

/* fbank_forward: frames of a random signal (edges included) against a direct DFT in double, with
 * a small packed filter bank; resample_forward against its formula, blocks past the input end. */
static void test_audio_ops(int n_samples, int n_fft) {
  const int hop = 160, T = 1 + n_samples / hop, bins = n_fft / 2 + 1, n_mels = 3;
  float* wav = rand_buf((size_t)n_samples);
  float* window = rand_buf((size_t)n_fft);
  float* hi = malloc(sizeof(float) * 2 * n_fft);
  float* lo = malloc(sizeof(float) * 2 * n_fft);
  for (int j = 0; j < n_fft; j++) {
    double a = -2.0 * M_PI * j / n_fft, c = cos(a), s = sin(a);
    hi[2 * j] = (float)c, lo[2 * j] = (float)(c - (float)c);
    hi[2 * j + 1] = (float)s, lo[2 * j + 1] = (float)(s - (float)s);
  }
  /* filters: bins [1, 4), [bins/2, bins/2 + 5), [bins - 3, bins): weights 0.5 */
  int first[3] = {1, bins / 2, bins - 3}, count[3] = {3, 5, 3};
  size_t mel_len = 0;
  for (int i = 0; i < n_mels; i++) mel_len += 2 + (size_t)count[i];
  float* mel = malloc(sizeof(float) * mel_len);
  for (int i = 0, o = 0; i < n_mels; i++) {
    mel[o++] = (float)first[i], mel[o++] = (float)count[i];
    for (int k = 0; k < count[i]; k++) mel[o++] = 0.5f;
  }
  float* out = malloc(sizeof(float) * (size_t)T * n_mels);
  cm_fbank_params p = {T, n_mels, n_mels, 0, n_samples, n_fft, hop};
  cm_fbank_forward(&p, wav, window, hi, lo, mel, out);
  for (int t = 0; t < T; t += T > 4 ? T / 4 : 1) {
    for (int i = 0; i < n_mels; i++) {
      double e = 0.0;
      for (int k = first[i]; k < first[i] + count[i] && k < bins; k++) {
        double re = 0.0, im = 0.0;
        for (int n = 0; n < n_fft; n++) {
          long idx = (long)t * hop - n_fft / 2 + n;
          double x = (idx >= 0 && idx < n_samples) ? (double)wav[idx] * window[n] : 0.0;
          re += x * cos(-2.0 * M_PI * ((long)k * n % n_fft) / n_fft);
          im += x * sin(-2.0 * M_PI * ((long)k * n % n_fft) / n_fft);
        }
        e += 0.5 * (re * re + im * im);
      }
      check("fbank_forward", out[t * n_mels + i], 10.0 * log10(e > 1e-10 ? e : 1e-10), 1e-3);
    }
  }
  /* resample: 3 phases of 8 taps, blocks of 4 input samples, width 2 */
  const int orig = 4, cols = 3, taps = 8, width = 2, rows = n_samples / orig + 1;
  float* kern = rand_buf((size_t)cols * taps);
  float* y = malloc(sizeof(float) * (size_t)rows * cols);
  cm_resample_params rp = {rows, cols, cols, 0, n_samples, taps, orig, width};
  cm_resample_forward(&rp, wav, kern, y);
  for (int b = 0; b < rows; b += rows > 5 ? rows / 5 : 1) {
    for (int j = 0; j < cols; j++) {
      double want = 0.0;
      for (int t = 0; t < taps; t++) {
        long i = (long)b * orig + t - width;
        if (i >= 0 && i < n_samples) want += (double)kern[j * taps + t] * wav[i];
      }
      check("resample_forward", y[b * cols + j], want, 1e-5 * (1.0 + fabs(want)));
    }
  }
  free(wav), free(window), free(hi), free(lo), free(mel), free(out), free(kern), free(y);
}

/* The y_bf16 / out_bf16 outputs write n bf16 values into exactly sized buffers (ASan), each the
 * rounding of the float32 output; the matmul reads packed operands of exact size and gives the
 * product of their widenings. rows x cols with odd sizes. */
static void test_bf16_outputs(int rows, int cols) {
  size_t n = (size_t)rows * cols;
  float *x = rand_buf(n), *g = rand_buf(cols), *be = rand_buf(cols), *y = rand_buf(n);
  float *mean = rand_buf(rows), *rstd = rand_buf(rows);
  uint16_t* y16 = bf16_buf(n);
  cm_rows_params rp = {rows, cols, cols, 0, 1e-5f, 0};
  cm_layernorm_forward(&rp, x, g, be, y, mean, rstd);
  rp.y_bf16 = 1;
  cm_layernorm_forward(&rp, x, g, be, (float*)y16, mean, rstd);
  check_bf16("layernorm y_bf16", y16, y, n);
  cm_elementwise_params ep = {(int32_t)n, 0, 0};
  cm_gelu_forward(&ep, x, y);
  ep.y_bf16 = 1;
  cm_gelu_forward(&ep, x, (float*)y16);
  check_bf16("gelu y_bf16", y16, y, n);
  ep.y_bf16 = 0;
  cm_silu_forward(&ep, x, y);
  ep.y_bf16 = 1;
  cm_silu_forward(&ep, x, (float*)y16);
  check_bf16("silu y_bf16", y16, y, n);
  cm_dropout_params dp = {(int32_t)n, 0.25f, 7, 3, 0, 0};
  cm_gelu_dropout_forward(&dp, x, y);
  dp.y_bf16 = 1;
  cm_gelu_dropout_forward(&dp, x, (float*)y16);
  check_bf16("gelu_dropout y_bf16", y16, y, n);
  dp.y_bf16 = 0;
  cm_dropout(&dp, x, y);
  dp.y_bf16 = 1;
  cm_dropout(&dp, x, (float*)y16);
  check_bf16("dropout y_bf16", y16, y, n);
  cm_swap_params sp = {1, rows, cols, 1, 0}; /* a transpose (rows, cols) -> (cols, rows) */
  cm_swap_axes(&sp, x, y);
  sp.y_bf16 = 1;
  cm_swap_axes(&sp, x, (float*)y16);
  check_bf16("swap_axes y_bf16", y16, y, n);
  /* matmul: A (rows, cols) and B (cols, rows + 2) packed, against their widenings */
  int m = rows, k = cols, nn = rows + 2;
  float *b = rand_buf((size_t)k * nn), *c = rand_buf((size_t)m * nn), *c2 = rand_buf((size_t)m * nn);
  uint16_t *a16 = bf16_buf(n), *b16 = bf16_buf((size_t)k * nn);
  float *aw = rand_buf(n), *bw = rand_buf((size_t)k * nn);
  for (size_t i = 0; i < n; i++) a16[i] = cm_bf16_bits(x[i]), aw[i] = cm_bits_f32((uint32_t)a16[i] << 16);
  for (size_t i = 0; i < (size_t)k * nn; i++)
    b16[i] = cm_bf16_bits(b[i]), bw[i] = cm_bits_f32((uint32_t)b16[i] << 16);
  cm_matmul_params mp = {1, m, nn, k, k, nn, nn, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  cm_matmul(&mp, aw, bw, NULL, c, NULL);
  mp.a_bf16 = 1, mp.b_bf16 = 1;
  cm_matmul(&mp, (const float*)a16, (const float*)b16, NULL, c2, NULL);
  for (size_t i = 0; i < (size_t)m * nn; i++) check("matmul packed operands", c2[i], c[i], 0);
  /* the GELU + dropout epilogue: gelu_dropout_forward's bits on C, y float32 then packed, rows
   * from row0 3 (a thread's part) */
  float* ye = rand_buf((size_t)m * nn);
  uint16_t* ye16 = bf16_buf((size_t)m * nn);
  mp.epilogue = 1, mp.p = 0.25f, mp.seed = 7, mp.stream = 3, mp.row0 = 3;
  cm_matmul(&mp, (const float*)a16, (const float*)b16, NULL, c2, ye);
  cm_dropout_params ed = {m * nn, 0.25f, 7, 3, 3 * nn, 0};
  cm_gelu_dropout_forward(&ed, c2, c);
  for (size_t i = 0; i < (size_t)m * nn; i++) check("matmul epilogue", ye[i], c[i], 0);
  mp.y_bf16 = 1;
  cm_matmul(&mp, (const float*)a16, (const float*)b16, NULL, c2, (float*)ye16);
  check_bf16("matmul epilogue y_bf16", ye16, c, (size_t)m * nn);
  free(ye), free(ye16);
  free(x), free(g), free(be), free(y), free(mean), free(rstd), free(y16), free(b), free(c);
  free(c2), free(a16), free(b16), free(aw), free(bw);
}

int main(void) {
  int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 9, 300}, {4, 8, 8}, {66, 270, 17}, {3, 11, 513}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        test_matmul(s % 2 ? 2 : 1, shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, (int)(s % 3 == 1),
                    (int)(s % 2 == 0));
  int pairs[] = {0, 1, 4, 517};
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) test_bf16(pairs[i]);
  int lens[] = {1, 3, 4, 7, 8, 1001};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) test_elementwise(lens[i]);
  int rc[][2] = {{1, 1}, {3, 5}, {2, 144}, {4, 7}};
  for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) test_rows(rc[i][0], rc[i][1]);
  int bo[][2] = {{1, 1}, {3, 5}, {2, 144}, {7, 13}};
  for (size_t i = 0; i < sizeof bo / sizeof bo[0]; i++) test_bf16_outputs(bo[i][0], bo[i][1]);
  int mo[][4] = {{1, 1, 1, 1}, {2, 9, 6, 16}, {3, 5, 7, 5}};
  for (size_t i = 0; i < sizeof mo / sizeof mo[0]; i++) test_model_ops(mo[i][0], mo[i][1], mo[i][2], mo[i][3]);
  int ao[][3] = {{1, 1, 1}, {3, 7, 5}, {2, 9, 16}};
  for (size_t i = 0; i < sizeof ao / sizeof ao[0]; i++) test_attention_ops(ao[i][0], ao[i][1], ao[i][2]);
  int audio[][2] = {{1, 400}, {1000, 400}, {3201, 512}};
  for (size_t i = 0; i < sizeof audio / sizeof audio[0]; i++) test_audio_ops(audio[i][0], audio[i][1]);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("sanitize: all %d ops ran clean under ASan/UBSan and matched naive loops\n", CM_OP_COUNT);
  return 0;
}
