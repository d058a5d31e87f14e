/* Batched matrix product C = op(A) op(B) (+ C) (+ bias), Goto-style: B is packed in KC x NC blocks
 * of NR-wide panels, A in MC x KC blocks of MR-high panels, and a 4 x 8 register tile does the work.
 *
 * Every element of C is a plain sequential float32 sum over k in increasing order (a later K block
 * starts from the stored partial sum, bias is added last), and edge tiles run the same micro-kernel
 * on zero-padded panels. So the bits of C[i, j] depend on neither the blocking nor on which rows a
 * thread was given: results are identical for any thread count. */
#include "../ffi/ops.h"
#include "simd.h"
#include "bf16.h"

#define MR 4   /* rows of the register tile */
#define NR 8   /* columns of the register tile (two f32x4) */
#define KC 256 /* depth of a packed block: an A panel (4 KiB) and B panel (8 KiB) stay in L1 */
#define MC 64  /* rows of a packed A block (64 KiB) */
#define NC 256 /* columns of a packed B block (256 KiB) */

/* c (MR x NR, row stride ldc) = (load ? c : 0) + ap (kc x MR) . bp (kc x NR) (+ bias (NR)) */
static inline void micro_4x8(int32_t kc, const float* ap, const float* bp, float* c, int32_t ldc,
                             int load, const float* bias) {
  v128_t c00, c01, c10, c11, c20, c21, c30, c31;
  if (load) {
    c00 = wasm_v128_load(c + 0 * ldc), c01 = wasm_v128_load(c + 0 * ldc + 4);
    c10 = wasm_v128_load(c + 1 * ldc), c11 = wasm_v128_load(c + 1 * ldc + 4);
    c20 = wasm_v128_load(c + 2 * ldc), c21 = wasm_v128_load(c + 2 * ldc + 4);
    c30 = wasm_v128_load(c + 3 * ldc), c31 = wasm_v128_load(c + 3 * ldc + 4);
  } else {
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = wasm_f32x4_splat(0.0f);
  }
  for (int32_t p = 0; p < kc; p++, ap += MR, bp += NR) {
    /* c[i][j] += a[i] * b[j] for i < 4, j < 8 */
    v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
    v128_t a0 = wasm_v128_load32_splat(ap + 0), a1 = wasm_v128_load32_splat(ap + 1);
    v128_t a2 = wasm_v128_load32_splat(ap + 2), a3 = wasm_v128_load32_splat(ap + 3);
    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0)), c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));
    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0)), c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));
    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0)), c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));
    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0)), c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));
  }
  if (bias) {
    /* c[i][j] += bias[j] */
    v128_t bias0 = wasm_v128_load(bias), bias1 = wasm_v128_load(bias + 4);
    c00 = wasm_f32x4_add(c00, bias0), c01 = wasm_f32x4_add(c01, bias1);
    c10 = wasm_f32x4_add(c10, bias0), c11 = wasm_f32x4_add(c11, bias1);
    c20 = wasm_f32x4_add(c20, bias0), c21 = wasm_f32x4_add(c21, bias1);
    c30 = wasm_f32x4_add(c30, bias0), c31 = wasm_f32x4_add(c31, bias1);
  }
  wasm_v128_store(c + 0 * ldc, c00), wasm_v128_store(c + 0 * ldc + 4, c01);
  wasm_v128_store(c + 1 * ldc, c10), wasm_v128_store(c + 1 * ldc + 4, c11);
  wasm_v128_store(c + 2 * ldc, c20), wasm_v128_store(c + 2 * ldc + 4, c21);
  wasm_v128_store(c + 3 * ldc, c30), wasm_v128_store(c + 3 * ldc + 4, c31);
}

/* Element idx of an operand stored as float32, or as packed bf16 (bf16_pack's layout: element idx
 * at 16-bit index idx, which on little-endian Wasm is the low half of slot idx / 2 when even). */
static inline float operand_at(const float* x, int packed, int64_t idx) {
  return packed ? cm_bits_f32((uint32_t)((const uint16_t*)x)[idx] << 16) : x[idx];
}

/* Packs rows [i0, i0 + mc) and depth [p0, p0 + kc) of op(A) into MR-high panels:
 * ap[panel][p][r] = op(A)[i0 + panel*MR + r, p0 + p], zero past row m. */
static void pack_a(const cm_matmul_params* q, const float* a, int32_t i0, int32_t mc, int32_t p0,
                   int32_t kc, float* ap) {
  for (int32_t ib = 0; ib < mc; ib += MR) {
    for (int32_t p = 0; p < kc; p++) {
      for (int32_t r = 0; r < MR; r++) {
        int32_t i = i0 + ib + r, k = p0 + p;
        float v = 0.0f;
        if (ib + r < mc)
          v = operand_at(a, q->a_bf16, q->trans_a ? (int64_t)k * q->lda + i : (int64_t)i * q->lda + k);
        *ap++ = q->bf16_inputs ? cm_bf16_round(v) : v;
      }
    }
  }
}

/* Packs depth [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) into NR-wide panels:
 * bp[panel][p][c] = op(B)[p0 + p, j0 + panel*NR + c], zero past column n. */
static void pack_b(const cm_matmul_params* q, const float* b, int32_t p0, int32_t kc, int32_t j0,
                   int32_t nc, float* bp) {
  for (int32_t jb = 0; jb < nc; jb += NR) {
    for (int32_t p = 0; p < kc; p++) {
      int32_t k = p0 + p;
      if (!q->trans_b && !q->bf16_inputs && !q->b_bf16 && jb + NR <= nc) {
        const float* row = b + (int64_t)k * q->ldb + j0 + jb;
        wasm_v128_store(bp, wasm_v128_load(row)), wasm_v128_store(bp + 4, wasm_v128_load(row + 4));
        bp += NR;
        continue;
      }
      for (int32_t c = 0; c < NR; c++) {
        int32_t j = j0 + jb + c;
        float v = 0.0f;
        if (jb + c < nc)
          v = operand_at(b, q->b_bf16, q->trans_b ? (int64_t)j * q->ldb + k : (int64_t)k * q->ldb + j);
        *bp++ = q->bf16_inputs ? cm_bf16_round(v) : v;
      }
    }
  }
}

/* One tile of C at (i, j) with mr x nr valid elements; partial tiles go through a padded copy. */
static void tile(int32_t kc, const float* ap, const float* bp, float* c, int32_t ldc, int32_t mr,
                 int32_t nr, int load, const float* bias) {
  if (mr == MR && nr == NR) {
    micro_4x8(kc, ap, bp, c, ldc, load, bias);
    return;
  }
  float t[MR * NR], tb[NR];
  for (int32_t r = 0; r < MR; r++) {
    for (int32_t s = 0; s < NR; s++) t[r * NR + s] = (load && r < mr && s < nr) ? c[r * ldc + s] : 0.0f;
  }
  for (int32_t s = 0; s < NR; s++) tb[s] = (bias && s < nr) ? bias[s] : 0.0f;
  micro_4x8(kc, ap, bp, t, NR, load, bias ? tb : 0);
  for (int32_t r = 0; r < mr; r++) {
    for (int32_t s = 0; s < nr; s++) c[r * ldc + s] = t[r * NR + s];
  }
}

static void matmul_one(const cm_matmul_params* q, const float* a, const float* b, const float* bias,
                       float* c) {
  float bp[KC * NC] __attribute__((aligned(16)));
  float ap[MC * KC] __attribute__((aligned(16)));
  int32_t m = q->m, n = q->n, k = q->k;
  if (k == 0) { /* no products: C = (C or 0) + bias */
    for (int32_t i = 0; i < m; i++) {
      for (int32_t j = 0; j < n; j++) {
        float v = q->accumulate ? c[(int64_t)i * q->ldc + j] : 0.0f;
        c[(int64_t)i * q->ldc + j] = bias ? v + bias[j] : v;
      }
    }
    return;
  }
  for (int32_t j0 = 0; j0 < n; j0 += NC) {
    int32_t nc = n - j0 < NC ? n - j0 : NC;
    for (int32_t p0 = 0; p0 < k; p0 += KC) {
      int32_t kc = k - p0 < KC ? k - p0 : KC;
      int load = q->accumulate || p0 > 0, last = p0 + kc == k;
      pack_b(q, b, p0, kc, j0, nc, bp);
      for (int32_t i0 = 0; i0 < m; i0 += MC) {
        int32_t mc = m - i0 < MC ? m - i0 : MC;
        pack_a(q, a, i0, mc, p0, kc, ap);
        for (int32_t jb = 0; jb < nc; jb += NR) {
          for (int32_t ib = 0; ib < mc; ib += MR) {
            int32_t mr = mc - ib < MR ? mc - ib : MR, nr = nc - jb < NR ? nc - jb : NR;
            float* ct = c + (int64_t)(i0 + ib) * q->ldc + j0 + jb;
            tile(kc, ap + ib * kc, bp + jb * kc, ct, q->ldc, mr, nr, load,
                 (bias && last) ? bias + j0 + jb : 0);
          }
        }
      }
    }
  }
}

/* x advanced by `elems` elements of its storage type (2 bytes each when packed bf16). */
static inline const float* advance(const float* x, int packed, int64_t elems) {
  return packed ? (const float*)((const uint16_t*)x + elems) : x + elems;
}

void cm_matmul(const cm_matmul_params* p, const float* a, const float* b, const float* bias,
               float* c, float* y) {
  for (int32_t t = 0; t < p->batch; t++) {
    matmul_one(p, advance(a, p->a_bf16, (int64_t)t * p->stride_a),
               advance(b, p->b_bf16, (int64_t)t * p->stride_b), bias, c + (int64_t)t * p->stride_c);
  }
  if (p->epilogue == 1 && y) {
    /* y = dropout(gelu(C)) over this call's rows (batch 1, ldc = n): the GELU + dropout kernel
     * itself on C, element (i, j) at mask index (row0 + i) n + j, so the bits are its bits. Here
     * a second pass over rows the product just wrote (the CUDA kernel folds it into its tiles). */
    const cm_dropout_params dp = {p->m * p->n, p->p, p->seed, p->stream, p->row0 * p->n, p->y_bf16};
    cm_gelu_dropout_forward(&dp, c, y);
  }
}
