/* The matrix product's internal interface, shared by its three implementations (all behind the
 * one exported cm_matmul of matmul.cu, which picks one by the runtime's matmul precision mode):
 *   mode 0  fp32 SIMT kernel (matmul.cu; the default and the parity reference path),
 *   mode 1  bf16 tensor-core kernel, mma.sync m16n8k16 with fp32 accumulation (matmul_bf16.cu),
 *   mode 2  cuBLAS fp32 (cublasSgemmStridedBatched, loaded at run time: cublas_loader.cu),
 *   mode 3  cuBLAS with bf16 inputs and fp32 accumulation (cublasGemmStridedBatchedEx).
 * Nothing here is exported with C linkage (the library's C exports are exactly the op table and
 * the cm_cuda_* runtime; tests/cuda/export_test.ts checks it).
 *
 * Plain C++ only (no CUDA types), so a host program can include it: the mapping of our row-major
 * product onto cuBLAS's column-major GEMM (cublas_map below) is checked on the host that way. */
#pragma once
#include <stdint.h>

#ifdef __CUDACC__
#define CM_HD __host__ __device__
#else
#define CM_HD
#endif

/* cm_matmul_params as the kernels take it (ffi/ops.ts MATMUL_PARAMS, by value). */
struct MatmulArgs {
  int batch, m, n, k, lda, ldb, ldc, stride_a, stride_b, stride_c, trans_a, trans_b, accumulate;
  int a_bf16, b_bf16; /* A / B stored as packed bf16: 2 bytes per element (bf16 modes only) */
  /* The GELU + dropout epilogue (the op's epilogue 1; batch 1, ldc = n): y = dropout(gelu(C)),
   * element (i, j) at mask index (row0 + i) n + j; y packed bf16 when y_bf16. 0 / null: none. */
  int epilogue;
  float prob;
  int seed, stream, row0, y_bf16;
  float* y;
};

/* x advanced by `elems` elements of an operand stored as fp32, or as packed bf16 (2 bytes each). */
inline const float* matmul_advance(const float* x, int packed, long long elems) {
  return packed ? (const float*)((const unsigned short*)x + elems) : x + elems;
}

/* Streaming multiprocessors of the current device (cached; 108 when the query fails). */
int matmul_sm_count();

/* Compute capability major of the current device (cached; 0 when the query fails). */
int matmul_cc_major();

/* The bf16 tensor-core product (mode 1). False (nothing queued) when it cannot run: a device
 * below sm_80. Same contract as cm_matmul: C = op(A) op(B) (+ C when accumulate) (+ bias). */
bool matmul_bf16_tc(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                    float* c);

/* The product through cuBLAS (modes 2 and 3, bf16 inputs when `bf16`). False (nothing of C
 * touched) when cuBLAS is not loaded or refuses the arguments: the caller then falls back. */
bool cublas_matmul(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                   float* c, bool bf16);

/* Loads libcublas (dlopen) and creates the handle on the library's stream, once; true when
 * cuBLAS is usable. Defined in cublas_loader.cu. */
bool cublas_load();

/* ---- row-major C = op(A) op(B) as a column-major cuBLAS GEMM ---------------------------------
 *
 * cuBLAS computes, per batch t, C_t = alpha opA(A_t) opB(B_t) + beta C_t with every matrix
 * COLUMN-major: element (i, j) of a matrix with leading dimension ld is at ptr[i + j ld].
 * Ours are ROW-major: element (i, j) is at ptr[i ld + j]. The same memory read column-major with
 * the same ld is the TRANSPOSE: a row-major (r x c) buffer is a column-major (c x r) buffer.
 *
 * So our C (m x n, row-major, ldc) is, to cuBLAS, the column-major (n x m) matrix C^T, and
 *     C = op(A) op(B)   <=>   C^T = op(B)^T op(A)^T.
 * cuBLAS is asked for C^T (m' = n rows, n' = m columns, k' = k) with its first operand built
 * from our B and its second from our A:
 *   - first operand, must be op(B)^T (n x k):
 *       trans_b = 0: B is stored (k x n) row-major = (n x k) column-major = B^T = op(B)^T
 *                    already: CUBLAS_OP_N, lda' = ldb;
 *       trans_b = 1: B is stored (n x k) row-major = (k x n) column-major = op(B), whose
 *                    transpose is wanted: CUBLAS_OP_T, lda' = ldb.
 *   - second operand, must be op(A)^T (k x m):
 *       trans_a = 0: A stored (m x k) row-major = (k x m) column-major = A^T: CUBLAS_OP_N,
 *                    ldb' = lda;
 *       trans_a = 1: A stored (k x m) row-major = (m x k) column-major = op(A): CUBLAS_OP_T.
 *   - C^T: ldc' = ldc; batch strides carry over unchanged (stride_b -> strideA',
 *     stride_a -> strideB', stride_c -> strideC'; 0 = one matrix shared by every batch).
 * cuBLAS requires each leading dimension to be at least the stored row count of its column-major
 * view: lda' >= (OP_N ? n : k), ldb' >= (OP_N ? k : m), ldc' >= n, which is our row-major
 * requirement (ld >= the stored column count); cublas_map says when it does not hold (a caller
 * passing a smaller ld for a single row, say) and the product falls back to our kernel.
 * accumulate: beta = 1 (C's current content, read by cuBLAS), else beta = 0 (C not read, so
 * NaN garbage in C cannot leak in); alpha = 1. The bias is added after, by a small kernel, as
 * the fp32 kernel adds it last. */
struct CublasGemm {
  int transa, transb; /* 0 = CUBLAS_OP_N, 1 = CUBLAS_OP_T (cublasOperation_t values) */
  int m, n, k;        /* cuBLAS's m', n', k' */
  int lda, ldb, ldc;
  long long stride_a, stride_b, stride_c;
  int batch;
  float beta;
  bool first_is_b; /* always true: cuBLAS's A' is our B, its B' our A (kept for the check) */
};

/* Stored rows and columns of A and B as laid out in memory (row-major), for bounds and the
 * bf16 packing of the cuBLAS path. */
CM_HD inline void matmul_stored_a(const MatmulArgs& q, int& rows, int& cols) {
  rows = q.trans_a ? q.k : q.m;
  cols = q.trans_a ? q.m : q.k;
}
CM_HD inline void matmul_stored_b(const MatmulArgs& q, int& rows, int& cols) {
  rows = q.trans_b ? q.n : q.k;
  cols = q.trans_b ? q.k : q.n;
}

/* Fills `g` from `q` (the mapping above); false when cuBLAS would reject the leading dimensions
 * or strides (then our kernels run instead). */
inline bool cublas_map(const MatmulArgs& q, CublasGemm& g) {
  int ar, ac, br, bc;
  matmul_stored_a(q, ar, ac);
  matmul_stored_b(q, br, bc);
  (void)ar;
  (void)br;
  if (q.lda < (ac > 1 ? ac : 1) || q.ldb < (bc > 1 ? bc : 1) || q.ldc < (q.n > 1 ? q.n : 1))
    return false;
  if (q.stride_a < 0 || q.stride_b < 0 || q.stride_c < 0) return false;
  if (q.batch > 1 && q.stride_c == 0) return false; /* C shared by batches: not a GEMM */
  g.transa = q.trans_b ? 1 : 0;
  g.transb = q.trans_a ? 1 : 0;
  g.m = q.n;
  g.n = q.m;
  g.k = q.k;
  g.lda = q.ldb;
  g.ldb = q.lda;
  g.ldc = q.ldc;
  g.stride_a = q.stride_b;
  g.stride_b = q.stride_a;
  g.stride_c = q.stride_c;
  g.batch = q.batch;
  g.beta = q.accumulate ? 1.0f : 0.0f;
  g.first_is_b = true;
  return true;
}

/* ---- deterministic split-K for our kernels (modes 0 and 1) ----------------------------------
 *
 * A product with few output tiles and a long k (a weight gradient over every frame of a batch:
 * C (out x in) = dY^T X with k = B T, e.g. x_proj's 64 x 1024 over 49 920 frames, 16 tiles of
 * 64 x 64 for 132 SMs) would leave most of the GPU idle. It is cut along k into `full` chunks of
 * `kc` (a multiple of 32, the bf16 kernel's stage) plus a remainder of `kr`, computed as one
 * batched product into a workspace (parts x m x n, chunk s at A + s step_a, B + s step_b, the
 * remainder as a second call) and summed by a small kernel in chunk order: C = (C or 0) + W_0 +
 * W_1 + ... + bias. No atomics; the plan depends only on the shape (never on the device), so a
 * step's bits are the same on every card, run after run. The partial sums differ from the
 * one-chunk product by the order of fp32 additions only (parity bounds grow with k already). */
struct SplitK {
  int parts;   /* 1: no split */
  int full;    /* chunks of kc */
  int kc, kr;  /* chunk length, remainder (0: none) */
  long long step_a, step_b; /* elements between chunks of A and of B */
};

/* Tiles of 64 x 64 below which a product counts as narrow, the shortest chunk worth a pass over
 * the workspace, and the most chunks. */
constexpr int kSplitTiles = 256, kSplitMinK = 1024, kSplitMaxParts = 64;

inline SplitK split_k_plan(const MatmulArgs& q) {
  SplitK s{1, 1, q.k, 0, 0, 0};
  if (q.batch != 1 || q.m <= 0 || q.n <= 0 || q.k < 2 * kSplitMinK) return s;
  const long long tiles = (long long)((q.m + 63) / 64) * ((q.n + 63) / 64);
  if (tiles >= kSplitTiles) return s;
  long long parts = (kSplitTiles + tiles - 1) / tiles;
  if (parts > q.k / kSplitMinK) parts = q.k / kSplitMinK;
  if (parts > kSplitMaxParts) parts = kSplitMaxParts;
  if (parts < 2) return s;
  int kc = (int)((q.k + parts - 1) / parts);
  kc = (kc + 31) / 32 * 32;
  const int full = q.k / kc, kr = q.k - full * kc;
  const long long step_a = q.trans_a ? (long long)kc * q.lda : kc;
  const long long step_b = q.trans_b ? kc : (long long)kc * q.ldb;
  /* Batch strides are int in MatmulArgs; a workspace past 1 GiB is not worth it. */
  if (step_a * full > 2147483647LL || step_b * full > 2147483647LL) return s;
  if ((long long)(full + (kr > 0)) * q.m * q.n > (1LL << 28)) return s;
  s.parts = full + (kr > 0);
  s.full = full;
  s.kc = kc;
  s.kr = kr;
  s.step_a = step_a;
  s.step_b = step_b;
  return s;
}

/* The batched product of the full chunks into the workspace W (parts x m x n, ldc = n). */
inline MatmulArgs split_k_chunks(const MatmulArgs& q, const SplitK& s) {
  return MatmulArgs{s.full,          q.m,          q.n,     s.kc,    q.lda,  q.ldb,
                    q.n,             (int)s.step_a, (int)s.step_b, q.m * q.n, q.trans_a, q.trans_b,
                    0,               q.a_bf16,     q.b_bf16, 0, 0.0f, 0, 0, 0, 0, nullptr};
}

/* The remainder's product (A and B advanced by full chunks, into W's last slice). */
inline MatmulArgs split_k_rest(const MatmulArgs& q, const SplitK& s) {
  return MatmulArgs{1,         q.m,       q.n, s.kr,     q.lda,    q.ldb, q.n, 0, 0, 0,
                    q.trans_a, q.trans_b, 0,   q.a_bf16, q.b_bf16, 0, 0.0f, 0, 0, 0, 0, nullptr};
}

/* Runs the split product when the plan splits (false: nothing queued, run the plain kernel).
 * `tiles` runs one of our kernels (fp32 SIMT or bf16 tensor cores) on given args. Defined in
 * matmul_split_k.cu. */
bool matmul_split_k(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                    float* c,
                    void (*tiles)(const MatmulArgs&, const float*, const float*, const float*,
                                  float*));
