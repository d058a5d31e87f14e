/* Native driver for `make sanitize`: the kernel sources of wasm/ built for the host with ASan and
 * UBSan, run on awkward shapes (sizes not multiples of 4 or 8, K and N across block edges) and
 * checked against naive double loops and libm. Out-of-bounds reads or writes abort under ASan;
 * a wrong value exits 1. The precise per-op checks live in tests/ops (against the f64 reference). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../ffi/ops.h"

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

static void test_matmul(int batch, int m, int n, int k, int ta, int tb, int acc, int with_bias) {
  float *a = rand_buf((size_t)batch * m * k), *b = rand_buf((size_t)batch * k * n);
  float *bias = with_bias ? rand_buf(n) : NULL, *c = rand_buf((size_t)batch * m * n);
  float* c0 = malloc(sizeof(float) * batch * m * n);
  for (int i = 0; i < batch * m * n; i++) c0[i] = c[i];
  cm_matmul_params p = {batch, m, n, k, ta ? m : k, tb ? k : n, n, m * k, k * n, m * n, ta, tb, acc};
  cm_matmul(&p, a, b, bias, c);
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

static void test_elementwise(int n) {
  float *a = rand_buf(n), *b = rand_buf(n), *y = rand_buf(n);
  cm_elementwise_params p = {n, 0.5f};
  cm_add(&p, a, b, y);
  for (int i = 0; i < n; i++) check("add", y[i], (double)a[i] + b[i], 0x1p-24 * fabs(a[i] + b[i]));
  cm_mul(&p, a, b, y);
  for (int i = 0; i < n; i++) check("mul", y[i], (double)a[i] * b[i], 0x1p-24 * fabs(a[i] * b[i]));
  cm_scale(&p, a, y);
  for (int i = 0; i < n; i++) check("scale", y[i], 0.5 * a[i], 0);
  cm_gelu_forward(&p, a, y);
  for (int i = 0; i < n; i++) {
    double g = 0.5 * a[i] * erfc(-a[i] / sqrt(2.0));
    check("gelu", y[i], g, 2 * 0x1p-24 * fabs(g));
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
  cm_rows_params p = {rows, cols, cols, 0, 1e-5f};
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
  cm_layernorm_backward(&p, x, g, mean, rstd, dy, dx);
  cm_layernorm_backward_params(&p, x, mean, rstd, dy, dg, db);
  cm_sum_rows(&p, dy, s);
  for (int j = 0; j < cols; j++) check("dbeta = sum_rows", db[j], s[j], 0);
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

int main(void) {
  int shapes[][3] = {{1, 1, 1}, {5, 7, 3}, {13, 9, 300}, {4, 8, 8}, {66, 270, 17}, {3, 11, 513}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++)
        test_matmul(s % 2 ? 2 : 1, shapes[s][0], shapes[s][1], shapes[s][2], ta, tb, (int)(s % 3 == 1),
                    (int)(s % 2 == 0));
  int lens[] = {1, 3, 4, 7, 8, 1001};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) test_elementwise(lens[i]);
  int rc[][2] = {{1, 1}, {3, 5}, {2, 144}, {4, 7}};
  for (size_t i = 0; i < sizeof rc / sizeof rc[0]; i++) test_rows(rc[i][0], rc[i][1]);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("sanitize: all %d ops ran clean under ASan/UBSan and matched naive loops\n", CM_OP_COUNT);
  return 0;
}
