/* Batched matrix product C = op(A) op(B) (+ C) (+ bias) on the device (ffi/ops.ts "matmul",
 * MATMUL_PARAMS; the reference is wasm/matmul.c).
 *
 * A tiled float32 SIMT kernel: a 256-thread block computes a BM x BN tile of C, walking k in
 * BK-deep slices staged in shared memory (two buffers; the next slice is fetched into registers
 * while the current one is used, one barrier per slice); each thread owns TM x TN outputs held in
 * registers, read from shared memory as float4 groups spaced so a quarter-warp reads 128
 * contiguous bytes. Two shapes: 128 x 128 (8 x 8 per thread) when there are enough tiles to fill
 * the GPU, 64 x 64 (4 x 4 per thread) otherwise.
 *
 * Arithmetic, the same for both shapes and every launch: each C element starts from C (accumulate)
 * or 0, takes one fmaf per k in increasing order (the padded part of the last slice is skipped, not
 * added as zeros), and gets bias added last, as the Wasm kernel orders it (it loads C, adds the
 * products in order, then the bias). So results are deterministic and independent of the tile
 * shape; they differ from the Wasm kernel's bits only by the FMA (one rounding per step instead of
 * two). No atomics; cm_matmul splits a narrow product with a long k along k by a plan that
 * depends on the shape alone (split_k_plan, matmul.cuh). Any m, n, k (1 and non-multiples
 * included), any lda / ldb / ldc, batch strides (0: A or B shared by every batch; C must not be shared by several batches, which
 * no caller does). The 128 x 128 shape is capped at 128 registers (2 blocks per SM; ptxas reports
 * 8-24 bytes of spill): untimed, since this machine has no GPU; dropping the `2` of its
 * __launch_bounds__ gives 156 registers without spills, 1 block per SM.
 *
 * This kernel is matmul precision mode 0, the default and the reference path. Modes 1-3 (our bf16
 * tensor-core kernel, cuBLAS fp32 / bf16 loaded at run time) are chosen by the runtime's setting
 * (cm_cuda_set_matmul_precision) and fall back here when the machine lacks them; see
 * matmul.cuh, matmul_bf16.cu and cublas_loader.cu. */
#include "common.cuh"
#include "matmul.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kPad = 4; /* shared rows padded by 4 floats: conflict-free transposing stores */

template <int BM, int BN, int BK, int TM, int TN, bool TA, bool TB>
__global__ void __launch_bounds__(kThreads, (TM * TN > 16 ? 2 : 4))
    matmul_kernel(MatmulArgs p, const float* __restrict__ a, const float* __restrict__ b,
                  const float* __restrict__ bias, float* c) {
  static_assert((BM / TM) * (BN / TN) == kThreads, "one thread per TM x TN sub-tile");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "float4 groups");
  static_assert((BM * BK) % kThreads == 0 && (BN * BK) % kThreads == 0, "whole tile loads");
  constexpr int A_LOADS = BM * BK / kThreads, B_LOADS = BN * BK / kThreads;
  constexpr int TX = BN / TN;           /* threads along n */
  constexpr int TM4 = TM / 4, TN4 = TN / 4; /* float4 groups per thread */
  constexpr int ROW_GAP = BM / TM4, COL_GAP = BN / TN4; /* distance between a thread's groups */

  __shared__ __align__(16) float As[2][BK][BM + kPad];
  __shared__ __align__(16) float Bs[2][BK][BN + kPad];

  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  const int M = p.m, N = p.n, K = p.k;
  const int mtiles = (M + BM - 1) / BM;
  const int j0 = blockIdx.x * BN;

  for (int t = blockIdx.z; t < p.batch; t += gridDim.z) {
    const float* at = a + (int64_t)t * p.stride_a;
    const float* bt = b + (int64_t)t * p.stride_b;
    float* ct = c + (int64_t)t * p.stride_c;
    for (int ib = blockIdx.y; ib < mtiles; ib += gridDim.y) {
      const int i0 = ib * BM;

      /* op(A)[i0 + ii, k0 + kk] -> As[buf][kk][ii], op(B)[k0 + kk, j0 + jj] -> Bs[buf][kk][jj]; the
       * element each thread moves, by its linear index e, runs along the stored contiguous axis. */
      auto a_pos = [&](int e, int& ii, int& kk) {
        if (TA) ii = e % BM, kk = e / BM;
        else kk = e % BK, ii = e / BK;
      };
      auto b_pos = [&](int e, int& jj, int& kk) {
        if (TB) kk = e % BK, jj = e / BK;
        else jj = e % BN, kk = e / BN;
      };
      float ra[A_LOADS], rb[B_LOADS];
      auto fetch = [&](int k0) {
#pragma unroll
        for (int l = 0; l < A_LOADS; l++) {
          int ii, kk;
          a_pos(tid + l * kThreads, ii, kk);
          int gi = i0 + ii, gk = k0 + kk;
          float v = 0.0f;
          if (gi < M && gk < K)
            v = TA ? at[(int64_t)gk * p.lda + gi] : at[(int64_t)gi * p.lda + gk];
          ra[l] = v;
        }
#pragma unroll
        for (int l = 0; l < B_LOADS; l++) {
          int jj, kk;
          b_pos(tid + l * kThreads, jj, kk);
          int gj = j0 + jj, gk = k0 + kk;
          float v = 0.0f;
          if (gj < N && gk < K)
            v = TB ? bt[(int64_t)gj * p.ldb + gk] : bt[(int64_t)gk * p.ldb + gj];
          rb[l] = v;
        }
      };
      auto stash = [&](int buf) {
#pragma unroll
        for (int l = 0; l < A_LOADS; l++) {
          int ii, kk;
          a_pos(tid + l * kThreads, ii, kk);
          As[buf][kk][ii] = ra[l];
        }
#pragma unroll
        for (int l = 0; l < B_LOADS; l++) {
          int jj, kk;
          b_pos(tid + l * kThreads, jj, kk);
          Bs[buf][kk][jj] = rb[l];
        }
      };

      /* This thread's outputs: rows g * ROW_GAP + ty * 4 + r, columns g * COL_GAP + tx * 4 + s. */
      float acc[TM][TN];
#pragma unroll
      for (int i = 0; i < TM; i++) {
        int gi = i0 + (i / 4) * ROW_GAP + ty * 4 + (i % 4);
#pragma unroll
        for (int j = 0; j < TN; j++) {
          int gj = j0 + (j / 4) * COL_GAP + tx * 4 + (j % 4);
          acc[i][j] = (p.accumulate && gi < M && gj < N) ? ct[(int64_t)gi * p.ldc + gj] : 0.0f;
        }
      }

      if (K > 0) {
        fetch(0);
        stash(0);
        __syncthreads();
      }
      int buf = 0;
      for (int k0 = 0; k0 < K; k0 += BK) {
        const bool more = k0 + BK < K;
        if (more) fetch(k0 + BK); /* in flight while this slice is used */
        const int kmax = K - k0;  /* < BK only in the last slice */
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
          if (kk < kmax) {
            float fa[TM], fb[TN];
#pragma unroll
            for (int g = 0; g < TM4; g++) {
              float4 v = *reinterpret_cast<const float4*>(&As[buf][kk][g * ROW_GAP + ty * 4]);
              fa[g * 4 + 0] = v.x, fa[g * 4 + 1] = v.y, fa[g * 4 + 2] = v.z, fa[g * 4 + 3] = v.w;
            }
#pragma unroll
            for (int g = 0; g < TN4; g++) {
              float4 v = *reinterpret_cast<const float4*>(&Bs[buf][kk][g * COL_GAP + tx * 4]);
              fb[g * 4 + 0] = v.x, fb[g * 4 + 1] = v.y, fb[g * 4 + 2] = v.z, fb[g * 4 + 3] = v.w;
            }
#pragma unroll
            for (int i = 0; i < TM; i++) {
#pragma unroll
              for (int j = 0; j < TN; j++) acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
            }
          }
        }
        if (more) stash(buf ^ 1);
        __syncthreads(); /* the next buffer is written; this one is free for the slice after */
        buf ^= 1;
      }

#pragma unroll
      for (int i = 0; i < TM; i++) {
        int gi = i0 + (i / 4) * ROW_GAP + ty * 4 + (i % 4);
        if (gi >= M) continue;
#pragma unroll
        for (int j = 0; j < TN; j++) {
          int gj = j0 + (j / 4) * COL_GAP + tx * 4 + (j % 4);
          if (gj >= N) continue;
          float v = acc[i][j];
          if (bias) v += bias[gj];
          ct[(int64_t)gi * p.ldc + gj] = v;
        }
      }
    }
  }
}

template <int BM, int BN, int BK, int TM, int TN>
void launch(const MatmulArgs& q, const float* a, const float* b, const float* bias, float* c) {
  int64_t ntiles = (q.n + BN - 1) / BN, mtiles = (q.m + BM - 1) / BM;
  dim3 grid((unsigned)ntiles, (unsigned)(mtiles < 65535 ? mtiles : 65535),
            (unsigned)(q.batch < 65535 ? q.batch : 65535));
  if (q.trans_a && q.trans_b)
    matmul_kernel<BM, BN, BK, TM, TN, true, true><<<grid, kThreads, 0, cm_stream()>>>(q, a, b, bias, c);
  else if (q.trans_a)
    matmul_kernel<BM, BN, BK, TM, TN, true, false><<<grid, kThreads, 0, cm_stream()>>>(q, a, b, bias, c);
  else if (q.trans_b)
    matmul_kernel<BM, BN, BK, TM, TN, false, true><<<grid, kThreads, 0, cm_stream()>>>(q, a, b, bias, c);
  else
    matmul_kernel<BM, BN, BK, TM, TN, false, false><<<grid, kThreads, 0, cm_stream()>>>(q, a, b, bias, c);
}

/* The fp32 SIMT kernel: 128 x 128 tiles once there are enough to give every SM one. */
void fp32_tiles(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                float* c) {
  int64_t big_tiles = (int64_t)((q.m + 127) / 128) * ((q.n + 127) / 128) * q.batch;
  if (big_tiles >= matmul_sm_count())
    launch<128, 128, 8, 8, 8>(q, a, b, bias, c);
  else
    launch<64, 64, 8, 4, 4>(q, a, b, bias, c);
  CM_CHECK_LAUNCH("matmul");
}

/* The bf16 tensor-core kernel (only chosen on sm_80+, where it always runs). */
void bf16_tiles(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                float* c) {
  matmul_bf16_tc(q, a, b, bias, c);
}

}  // namespace

int matmul_sm_count() {
  static int sms = 0;
  if (sms <= 0) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess && v > 0)
      sms = v;
    else
      sms = 108;
  }
  return sms;
}

int matmul_cc_major() {
  static int major = -1;
  if (major < 0) {
    int dev = 0, v = 0;
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess)
      major = v;
    else
      major = 0;
  }
  return major;
}

/* The epilogue as its own pass over C (the paths that do not fold it into their tiles: our fp32
 * kernel, cuBLAS, split-K): gelu_dropout_forward itself on C, so the bits are the same. */
static void epilogue_pass(const MatmulArgs& q, const float* c) {
  const cm_dropout_params dp{q.m * q.n, q.prob, q.seed, q.stream, q.row0 * q.n, q.y_bf16};
  cm_gelu_dropout_forward(&dp, c, q.y);
}

void cm_matmul(const cm_matmul_params* p, const float* a, const float* b, const float* bias,
               float* c, float* y) {
  if (p->batch <= 0 || p->m <= 0 || p->n <= 0) return;
  MatmulArgs q{p->batch,    p->m,        p->n,        p->k,       p->lda,
               p->ldb,      p->ldc,      p->stride_a, p->stride_b, p->stride_c,
               p->trans_a,  p->trans_b,  p->accumulate, p->a_bf16, p->b_bf16,
               p->epilogue == 1 && y ? 1 : 0, p->p, p->seed, p->stream, p->row0, p->y_bf16, y};
  if (q.epilogue && (q.batch != 1 || q.ldc != q.n)) {
    cm_note_failure("matmul: the GELU + dropout epilogue needs batch 1 and ldc = n");
    return;
  }
  /* The runtime's precision mode (cm_cuda_set_matmul_precision; 0 unless a caller opts in):
   * 2 / 3 cuBLAS fp32 / bf16 when it loaded and takes the arguments, 1 / 3 our bf16 tensor-core
   * kernel on sm_80+, else (and always in mode 0) the fp32 SIMT kernel below, the reference.
   * A call's bf16_inputs (the Wasm backend's bf16 mode, set per call) turns 0 / 2 into 1 / 3. */
  const int mode = cm_matmul_precision() | (p->bf16_inputs ? 1 : 0);
  /* Packed bf16 operands (autograd's saved activations in bf16 mode) are read by the bf16
   * paths only: cuBLAS bf16 and our tensor-core kernel. */
  const bool packed = q.a_bf16 || q.b_bf16;
  if (packed && mode != 1 && mode != 3) {
    cm_note_failure("matmul: packed bf16 operands (a_bf16 / b_bf16) need bf16 matmul mode");
    return;
  }
  if ((mode == 2 || mode == 3) && cublas_matmul(q, a, b, bias, c, mode == 3)) {
    if (q.epilogue) epilogue_pass(q, c);
    return;
  }
  /* Our kernels: the bf16 tensor-core one in modes 1 / 3 on sm_80+, else the fp32 SIMT one; a
   * narrow product with a long k is split along k first (split_k_plan, matmul.cuh). */
  const bool tc = (mode == 1 || mode == 3) && matmul_cc_major() >= 8;
  if (packed && !tc) {
    cm_note_failure("matmul: packed bf16 operands need the tensor-core kernel (sm_80+)");
    return;
  }
  const auto tiles = tc ? bf16_tiles : fp32_tiles;
  if (matmul_split_k(q, a, b, bias, c, tiles)) { /* its chunks run without the epilogue */
    if (q.epilogue) epilogue_pass(q, c);
    return;
  }
  tiles(q, a, b, bias, c);
  if (q.epilogue && !tc) epilogue_pass(q, c); /* the tensor-core kernel folds it into its tiles */
}
