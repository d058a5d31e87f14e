/* Host-side checks of cuda/matmul.cuh's index plans, the parts of the CUDA matmul that decide
 * which memory a kernel reads and writes (compiled by clang as plain C++ and run by
 * tests/cuda/matmul_plan_test.ts; no GPU, no CUDA headers):
 *   - split_k_plan / split_k_chunks / split_k_rest: the chunks' products, summed in order, give
 *     the whole product (every k index used once, the strides land on the right elements);
 *   - cublas_map: our row-major C = op(A) op(B) read as cuBLAS's column-major GEMM gives C.
 * Each is emulated with a scalar reference of the documented semantics (double accumulation)
 * on random operands with padded leading dimensions, every transpose, batches, shared operands,
 * accumulate and bias. Prints one line per failure and "ok" when all pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../cuda/matmul.cuh"

static unsigned long long g_rng = 0x9e3779b97f4a7c15ULL;
static float urand() { /* xorshift64*, uniform in [-1, 1) */
  g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
  return (float)((g_rng * 2685821657736338717ULL) >> 40) / (float)(1 << 23) - 1.0f;
}
static int irand(int lo, int hi) { return lo + (int)((urand() + 1.0f) * 0.5f * (hi - lo + 1)) % (hi - lo + 1); }

static int g_failures = 0;
#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) {                        \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                \
      printf("\n");                       \
      g_failures++;                       \
    }                                     \
  } while (0)

/* Our semantics (ffi/ops.ts MATMUL_PARAMS), scalar: C_t = (C_t or 0) + op(A_t) op(B_t) + bias. */
static void ref_matmul(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                       float* c) {
  for (int t = 0; t < q.batch; t++) {
    const float* at = a + (long long)t * q.stride_a;
    const float* bt = b + (long long)t * q.stride_b;
    float* ct = c + (long long)t * q.stride_c;
    for (int i = 0; i < q.m; i++)
      for (int j = 0; j < q.n; j++) {
        double s = q.accumulate ? ct[(long long)i * q.ldc + j] : 0.0;
        for (int k = 0; k < q.k; k++) {
          const float x = q.trans_a ? at[(long long)k * q.lda + i] : at[(long long)i * q.lda + k];
          const float y = q.trans_b ? bt[(long long)j * q.ldb + k] : bt[(long long)k * q.ldb + j];
          s += (double)x * y;
        }
        if (bias) s += bias[j];
        ct[(long long)i * q.ldc + j] = (float)s;
      }
  }
}

/* cuBLAS's column-major GEMM as documented: C'_t = alpha op(A'_t) op(B'_t) + beta C'_t, element
 * (i, j) of a column-major matrix at ptr[i + j ld]; alpha = 1. */
static void ref_gemm_colmajor(const CublasGemm& g, const float* a, const float* b, float* c) {
  for (int t = 0; t < g.batch; t++) {
    const float* at = a + t * g.stride_a;
    const float* bt = b + t * g.stride_b;
    float* ct = c + t * g.stride_c;
    for (int i = 0; i < g.m; i++)
      for (int j = 0; j < g.n; j++) {
        double s = 0;
        for (int k = 0; k < g.k; k++) {
          const float x = g.transa ? at[k + (long long)i * g.lda] : at[i + (long long)k * g.lda];
          const float y = g.transb ? bt[j + (long long)k * g.ldb] : bt[k + (long long)j * g.ldb];
          s += (double)x * y;
        }
        float* d = ct + i + (long long)j * g.ldc;
        *d = (float)(s + (g.beta != 0.0f ? (double)g.beta * *d : 0.0));
      }
  }
}

struct Problem {
  MatmulArgs q;
  float *a, *b, *bias, *c0; /* c0: C's initial content (read when accumulating) */
  long long na, nb, nc;
};

static float* randoms(long long n) {
  float* p = (float*)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (long long i = 0; i < n; i++) p[i] = urand();
  return p;
}

/* A random problem of the given shape: leading dimensions padded by 0-3, batch strides padded,
 * A or B shared (stride 0) when asked. */
static Problem make(int batch, int m, int n, int k, int ta, int tb, int acc, bool bias,
                    bool share_a, bool share_b) {
  Problem p;
  MatmulArgs& q = p.q;
  q = MatmulArgs{};
  q.batch = batch, q.m = m, q.n = n, q.k = k, q.trans_a = ta, q.trans_b = tb, q.accumulate = acc;
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  q.lda = ac + irand(0, 3), q.ldb = bc + irand(0, 3), q.ldc = n + irand(0, 3);
  q.stride_a = share_a ? 0 : ar * q.lda + irand(0, 5);
  q.stride_b = share_b ? 0 : br * q.ldb + irand(0, 5);
  q.stride_c = m * q.ldc + irand(0, 5);
  p.na = (long long)(share_a ? 1 : batch) * (ar * q.lda + 5);
  p.nb = (long long)(share_b ? 1 : batch) * (br * q.ldb + 5);
  p.nc = (long long)batch * (m * q.ldc + 5);
  p.a = randoms(p.na), p.b = randoms(p.nb), p.c0 = randoms(p.nc);
  p.bias = bias ? randoms(n) : nullptr;
  return p;
}

static void release(Problem& p) { free(p.a), free(p.b), free(p.bias), free(p.c0); }

/* Largest |x - y| / (1 + |y|) over C's elements (padding included: it must be untouched). */
static double max_err(const float* x, const float* y, long long n) {
  double e = 0;
  for (long long i = 0; i < n; i++) {
    const double d = fabs((double)x[i] - y[i]) / (1.0 + fabs((double)y[i]));
    if (!(d <= e)) e = d; /* NaN counts as an error */
  }
  return e;
}

/* The split-K path as matmul_split_k runs it, with the reference product as its tile kernel. */
static bool emulate_split(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                          float* c) {
  const SplitK s = split_k_plan(q);
  if (s.parts < 2) return false;
  const long long mn = (long long)q.m * q.n;
  float* w = (float*)malloc((size_t)(s.parts * mn) * sizeof(float));
  for (long long i = 0; i < s.parts * mn; i++) w[i] = NAN; /* every slot must be written */
  ref_matmul(split_k_chunks(q, s), a, b, nullptr, w);
  if (s.kr > 0)
    ref_matmul(split_k_rest(q, s), a + s.full * s.step_a, b + s.full * s.step_b, nullptr,
               w + s.full * mn);
  for (long long e = 0; e < mn; e++) {
    const long long i = e / q.n, j = e % q.n;
    float* d = c + i * q.ldc + j;
    float v = q.accumulate ? *d : 0.0f;
    for (int p = 0; p < s.parts; p++) v += w[p * mn + e];
    if (bias) v += bias[j];
    *d = v;
  }
  free(w);
  return true;
}

static void check_plan_invariants(const MatmulArgs& q) {
  const SplitK s = split_k_plan(q);
  if (s.parts == 1) return;
  CHECK(q.batch == 1, "split of a batched product");
  CHECK(s.kc % 32 == 0, "chunk %d not a multiple of 32", s.kc);
  CHECK(s.full >= 1 && (long long)s.full * s.kc + s.kr == q.k, "chunks %d x %d + %d != k %d",
        s.full, s.kc, s.kr, q.k);
  CHECK(s.kr >= 0 && s.kr < s.kc, "remainder %d of chunk %d", s.kr, s.kc);
  CHECK(s.parts == s.full + (s.kr > 0), "parts %d", s.parts);
  CHECK(s.parts <= kSplitMaxParts, "parts %d > %d", s.parts, kSplitMaxParts);
  CHECK(s.kc >= kSplitMinK / 2, "chunk %d too short", s.kc);
}

static void check_split(int m, int n, int k, int ta, int tb, int acc, bool bias, bool expect) {
  Problem p = make(1, m, n, k, ta, tb, acc, bias, false, false);
  check_plan_invariants(p.q);
  float* want = (float*)malloc((size_t)p.nc * sizeof(float));
  float* got = (float*)malloc((size_t)p.nc * sizeof(float));
  memcpy(want, p.c0, (size_t)p.nc * sizeof(float));
  memcpy(got, p.c0, (size_t)p.nc * sizeof(float));
  ref_matmul(p.q, p.a, p.b, p.bias, want);
  const bool split = emulate_split(p.q, p.a, p.b, p.bias, got);
  CHECK(split == expect, "%dx%dx%d: split %d, expected %d", m, n, k, split, expect);
  /* Chunked fp32 sums of doubles: differences ~1e-7 relative; a wrong index is O(1). */
  const double e = split ? max_err(got, want, p.nc) : 0;
  CHECK(e < 1e-5, "split %dx%dx%d ta %d tb %d acc %d bias %d: error %g (parts %d)", m, n, k, ta,
        tb, acc, bias, e, split_k_plan(p.q).parts);
  free(want), free(got), release(p);
}

static void check_cublas(int batch, int m, int n, int k, int ta, int tb, int acc, bool bias,
                         bool share_a, bool share_b) {
  Problem p = make(batch, m, n, k, ta, tb, acc, bias, share_a, share_b);
  CublasGemm g;
  if (!cublas_map(p.q, g)) {
    CHECK(false, "cublas_map refused a valid problem %dx%dx%d", m, n, k);
    release(p);
    return;
  }
  float* want = (float*)malloc((size_t)p.nc * sizeof(float));
  float* got = (float*)malloc((size_t)p.nc * sizeof(float));
  memcpy(want, p.c0, (size_t)p.nc * sizeof(float));
  memcpy(got, p.c0, (size_t)p.nc * sizeof(float));
  ref_matmul(p.q, p.a, p.b, p.bias, want);
  /* cuBLAS's first operand is our B, its second our A (matmul.cuh); the bias comes after. */
  ref_gemm_colmajor(g, g.first_is_b ? p.b : p.a, g.first_is_b ? p.a : p.b, got);
  if (p.bias)
    for (int t = 0; t < batch; t++)
      for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) got[(long long)t * p.q.stride_c + (long long)i * p.q.ldc + j] += p.bias[j];
  const double e = max_err(got, want, p.nc);
  CHECK(e < 1e-5, "cublas_map b%d %dx%dx%d ta %d tb %d acc %d: error %g", batch, m, n, k, ta, tb,
        acc, e);
  free(want), free(got), release(p);
}

int main() {
  /* No split: short k, wide enough (256 tiles of 64 x 64), or batched. */
  check_split(64, 64, 2047, 0, 0, 0, false, false);
  {
    const MatmulArgs wide{1, 1024, 1024, 100000, 100000, 1024, 1024, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0, 0, nullptr};
    CHECK(split_k_plan(wide).parts == 1, "a product of 256 tiles was split");
    const MatmulArgs batched{2, 8, 8, 100000, 100000, 8, 8, 800000, 0, 64, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0, 0, nullptr};
    CHECK(split_k_plan(batched).parts == 1, "a batched product was split");
    const MatmulArgs narrow{1, 512, 600, 4096, 4096, 600, 600, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0, 0, nullptr};
    CHECK(split_k_plan(narrow).parts == 4, "80 tiles, k 4096: %d parts, expected 4 (k / 1024)",
          split_k_plan(narrow).parts);
  }
  /* Splits: every transpose, accumulate and bias, remainders and exact multiples; the model's
   * weight gradients are (out x in) = dY^T X (trans_a) over B T rows. */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int acc = 0; acc < 2; acc++) {
        check_split(33, 70, 5000 + 7 * ta + 3 * tb, ta, tb, acc, acc == 1, true);
        check_split(64, 64, 4096, ta, tb, acc, acc == 0, true); /* k a multiple of the chunk */
        check_split(1, 3, 2048, ta, tb, acc, true, true);
      }
  check_split(64, 96, 12345, 1, 0, 0, true, true);  /* x_proj-like: few tiles, long k */
  check_split(96, 16, 9001, 1, 0, 1, false, true);  /* dt_proj-like, accumulating */
  {
    /* conmamba_large's x_proj weight gradient: (64 x 1024) over 32 x 1560 frames. */
    MatmulArgs q{1, 64, 1024, 49920, 64, 1024, 1024, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0.0f, 0, 0, 0, 0, nullptr};
    check_plan_invariants(q);
    const SplitK s = split_k_plan(q);
    CHECK(s.parts >= 8, "x_proj gradient split into %d parts only", s.parts);
    printf("plan x_proj dW 64 x 1024, k 49920: %d parts (%d x %d + %d)\n", s.parts, s.full, s.kc,
           s.kr);
  }
  /* cublas_map on every transpose, with batches, shared operands, accumulate and bias. */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int acc = 0; acc < 2; acc++) {
        check_cublas(1, 7, 9, 5, ta, tb, acc, acc == 0, false, false);
        check_cublas(3, 12, 5, 17, ta, tb, acc, true, false, true);
        check_cublas(4, 6, 11, 8, ta, tb, acc, false, true, false);
      }
  if (g_failures) {
    printf("%d failures\n", g_failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
