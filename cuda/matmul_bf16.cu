/* The bf16 tensor-core matrix product (matmul precision mode 1; see matmul.cuh):
 * C = op(A) op(B) (+ C when accumulate) (+ bias), with A and B rounded to bf16 (round to nearest
 * even) as their tiles are loaded into shared memory, products on tensor cores by
 * mma.sync.m16n8k16 (bf16 x bf16, fp32 accumulation), C and bias in fp32. Needs sm_80+ (A100,
 * H100/H200); matmul_bf16_tc reports false below that and cm_matmul runs the fp32 kernel.
 *
 * Layout (tile geometry and every index map are in matmul_bf16.cuh): a block of 8 warps
 * computes a 128 x 128 tile of C (each warp 64 x 32: 4 x 4 mma tiles, 64 fp32 accumulators per
 * thread), or, when that leaves SMs idle, a block of 4 warps a 64 x 64 tile (each warp 32 x 32).
 * k advances in stages of 32: the next stage's inputs are loaded from global memory into
 * registers (4 elements per load where the operand's pointer, leading dimension and batch stride
 * allow it) while the current stage's two k16 steps run, then rounded to bf16 and stored into the
 * other of two shared buffers; one barrier per stage. An operand may be stored as packed bf16
 * (the op's a_bf16 / b_bf16: half the bytes read); it is widened as loaded and the rounding
 * gives back its bits, so C is the same as from its fp32 widening. Fragments are read with ldmatrix (.trans for an
 * operand whose tile is stored row-contiguous).
 *
 * Edges: any m, n, k, lda, ldb, ldc, batch strides (0: shared) and transposes. Elements outside
 * the matrices are loaded as zeros (guarded scalar loads where a 4-group straddles an edge), and
 * a k16 step lying wholly past k is skipped; outputs outside C are neither read nor written.
 *
 * Arithmetic: each C element's accumulator starts at C (accumulate) or 0 and takes one mma per
 * k16 step, in increasing k, always in the same lanes and registers, whatever the tile shape,
 * grid or batch; bias is added last. The kernel never splits k (cm_matmul may, by a plan that
 * depends on the shape alone: split_k_plan, matmul.cuh); no atomics: results are bitwise repeatable and
 * independent of the launch configuration. They differ from the fp32 kernel by the bf16 rounding
 * of the inputs (2^-9 relative each) and the tensor core's internal summation within a k16
 * step; tests/cuda/parity_test.ts's bf16 bounds (CONMAMBA_PARITY_PRECISION=bf16) cover it.
 *
 * Epilogue (the op's epilogue 1, the FFN's first Linear): once a tile's C is stored, the block
 * reads it back (just written: from L2, not HBM) and writes y = dropout(gelu(C)) through
 * gelu_dropout_forward's own device function (gelu_dropout.cuh), so y has that kernel's bits on
 * C while the separate pass's HBM read of C goes. */
#include <cuda_bf16.h>

#include "common.cuh"
#include "gelu_dropout.cuh"
#include "matmul_bf16.cuh"

namespace {

using namespace bf16mm;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800

/* Two floats -> bf16x2 (round to nearest even), `lo` in the lower 16 bits (the lower address). */
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) |
         ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
}

template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&d)[4], const uint16_t* p) {
  const unsigned addr = (unsigned)__cvta_generic_to_shared(p);
  if (TRANS)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(addr)
                 : "memory");
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                 : "r"(addr)
                 : "memory");
}

/* d += a b on one 16 x 8 x 16 tile (fp32 accumulators in place). */
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* One element of an operand stored as fp32, or as packed bf16 (widened exactly). */
__device__ __forceinline__ float operand_at(const void* base, bool packed, int64_t e) {
  return packed ? __bfloat162float(__ushort_as_bfloat16(__ldg(static_cast<const unsigned short*>(base) + e)))
                : __ldg(static_cast<const float*>(base) + e);
}

/* Four consecutive elements from e, one vector load (16 bytes of fp32, 8 of bf16). */
__device__ __forceinline__ void operand_at4(float (&v)[4], const void* base, bool packed,
                                            int64_t e) {
  if (packed) {
    const uint2 w = __ldg(reinterpret_cast<const uint2*>(static_cast<const unsigned short*>(base) + e));
    v[0] = __uint_as_float(w.x << 16), v[1] = __uint_as_float(w.x & 0xffff0000u);
    v[2] = __uint_as_float(w.y << 16), v[3] = __uint_as_float(w.y & 0xffff0000u);
  } else {
    const float4 f = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(base) + e));
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  }
}

/* This thread's G load groups of one operand's stage (tile origin r0 along its rows, k0 along
 * k), as fp32 (a packed bf16 operand widened: the stash's rounding then gives back its bits),
 * zeros outside the matrix (rlim rows, K along k). `vec`: the 4-group loads are aligned. */
template <int G, int R, int THREADS, bool KC>
__device__ __forceinline__ void fetch_tile(float (&v)[G][4], const void* __restrict__ base,
                                           bool packed, int ld, int r0, int rlim, int k0, int K,
                                           bool vec, int tid) {
#pragma unroll
  for (int g = 0; g < G; g++) {
    int r, kk;
    load_group(KC, R, tid + g * THREADS, r, kk);
    const int gr = r0 + r, gk = k0 + kk;
    if (KC) { /* elements (gr, gk + x) */
      const int64_t e = (int64_t)gr * ld + gk;
      if (vec && gr < rlim && gk + 3 < K) {
        operand_at4(v[g], base, packed, e);
      } else {
#pragma unroll
        for (int x = 0; x < 4; x++)
          v[g][x] = (gr < rlim && gk + x < K) ? operand_at(base, packed, e + x) : 0.0f;
      }
    } else { /* elements (gr + x, gk) */
      const int64_t e = (int64_t)gk * ld + gr;
      if (vec && gk < K && gr + 3 < rlim) {
        operand_at4(v[g], base, packed, e);
      } else {
#pragma unroll
        for (int x = 0; x < 4; x++)
          v[g][x] = (gk < K && gr + x < rlim) ? operand_at(base, packed, e + x) : 0.0f;
      }
    }
  }
}

/* Rounds the fetched groups to bf16 and stores them into an operand tile (8 bytes each: the 4
 * elements of a group are adjacent in the tile whichever way it is stored). */
template <int G, int R, int THREADS, bool KC>
__device__ __forceinline__ void stash_tile(const float (&v)[G][4], uint16_t* tile, int tid) {
#pragma unroll
  for (int g = 0; g < G; g++) {
    int r, kk;
    load_group(KC, R, tid + g * THREADS, r, kk);
    uint2 w;
    w.x = pack_bf16x2(v[g][0], v[g][1]);
    w.y = pack_bf16x2(v[g][2], v[g][3]);
    *reinterpret_cast<uint2*>(tile + tile_index(KC, R, r, kk)) = w;
  }
}

#endif  // __CUDA_ARCH__ >= 800

struct Vec {
  int a, b, c; /* 4-element loads of A / of B, float2 loads and stores of C allowed */
  int pa, pb;  /* A / B stored as packed bf16 (the op's a_bf16 / b_bf16) */
};

/* Operand x of batch t: t stride elements on, 2 bytes each when packed. */
__device__ __forceinline__ const void* batch_ptr(const float* x, bool packed, int64_t elems) {
  return packed ? (const void*)((const unsigned short*)x + elems) : (const void*)(x + elems);
}

/* PK: some operand is packed bf16 (vec.pa / vec.pb say which); the fp32-only instantiations
 * carry none of its code (and keep their register counts). */
template <class C, bool TA, bool TB, bool PK>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS)
    matmul_bf16_kernel(MatmulArgs p, const float* __restrict__ a, const float* __restrict__ b,
                       const float* __restrict__ bias, float* c, Vec vec) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  constexpr bool KA = !TA, KB = TB; /* tile stored k-contiguous? */
  constexpr int BM = C::BM, BN = C::BN, MT = C::MT, NT = C::NT, T = C::THREADS;
  constexpr int A_EL = tile_elems(KA, BM), B_EL = tile_elems(KB, BN), STAGE = A_EL + B_EL;
  static_assert((A_EL * 2) % 16 == 0 && (STAGE * 2) % 16 == 0, "16-byte aligned tiles");
  __shared__ __align__(16) uint16_t smem[2 * STAGE];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const bool pa = PK && vec.pa, pb = PK && vec.pb;
  int wm0, wn0;
  warp_origin<C>(warp, wm0, wn0);
  const int M = p.m, N = p.n, K = p.k;
  const int mtiles = (M + BM - 1) / BM;
  const int j0 = blockIdx.x * BN;

  /* This lane's ldmatrix row addresses, relative to a fragment's origin. */
  int ar, ak, br, bk;
  a_frag_lane(KA, lane, ar, ak);
  b_frag_lane(KB, lane, br, bk);

  for (int t = blockIdx.z; t < p.batch; t += gridDim.z) {
    const void* at = batch_ptr(a, pa, (int64_t)t * p.stride_a);
    const void* bt = batch_ptr(b, pb, (int64_t)t * p.stride_b);
    float* ct = c + (int64_t)t * p.stride_c;
    for (int ib = blockIdx.y; ib < mtiles; ib += gridDim.y) {
      const int i0 = ib * BM;

      float acc[MT][NT][4];
#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
#pragma unroll
          for (int h = 0; h < 2; h++) { /* elements 2h, 2h + 1: one row, adjacent columns */
            int rr, cc;
            c_elem(lane, 2 * h, rr, cc);
            const int gi = i0 + wm0 + mt * 16 + rr, gj = j0 + wn0 + nt * 8 + cc;
            float v0 = 0.0f, v1 = 0.0f;
            if (p.accumulate && gi < M) {
              const float* src = ct + (int64_t)gi * p.ldc + gj;
              if (vec.c && gj + 1 < N) {
                const float2 f = *reinterpret_cast<const float2*>(src);
                v0 = f.x, v1 = f.y;
              } else {
                if (gj < N) v0 = src[0];
                if (gj + 1 < N) v1 = src[1];
              }
            }
            acc[mt][nt][2 * h] = v0;
            acc[mt][nt][2 * h + 1] = v1;
          }
        }
      }

      float ra[C::A_GROUPS][4], rb[C::B_GROUPS][4];
      if (K > 0) {
        fetch_tile<C::A_GROUPS, BM, T, KA>(ra, at, pa, p.lda, i0, M, 0, K, vec.a, tid);
        fetch_tile<C::B_GROUPS, BN, T, KB>(rb, bt, pb, p.ldb, j0, N, 0, K, vec.b, tid);
        stash_tile<C::A_GROUPS, BM, T, KA>(ra, smem, tid);
        stash_tile<C::B_GROUPS, BN, T, KB>(rb, smem + A_EL, tid);
        __syncthreads();
      }
      int buf = 0;
      for (int k0 = 0; k0 < K; k0 += BK) {
        const bool more = k0 + BK < K;
        if (more) { /* in flight while this stage is used */
          fetch_tile<C::A_GROUPS, BM, T, KA>(ra, at, pa, p.lda, i0, M, k0 + BK, K, vec.a, tid);
          fetch_tile<C::B_GROUPS, BN, T, KB>(rb, bt, pb, p.ldb, j0, N, k0 + BK, K, vec.b, tid);
        }
        const uint16_t* As = smem + buf * STAGE;
        const uint16_t* Bs = As + A_EL;
#pragma unroll
        for (int ks = 0; ks < BK / 16; ks++) {
          if (k0 + ks * 16 < K) { /* uniform: a step wholly past k is skipped */
            uint32_t af[MT][4], bf[NT][2];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
              ldmatrix_x4<!KA>(af[mt], As + tile_index(KA, BM, wm0 + mt * 16 + ar, ks * 16 + ak));
#pragma unroll
            for (int np = 0; np < NT / 2; np++) {
              uint32_t q[4];
              ldmatrix_x4<!KB>(q, Bs + tile_index(KB, BN, wn0 + np * 16 + br, ks * 16 + bk));
              bf[2 * np][0] = q[0], bf[2 * np][1] = q[1];
              bf[2 * np + 1][0] = q[2], bf[2 * np + 1][1] = q[3];
            }
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
#pragma unroll
              for (int nt = 0; nt < NT; nt++) mma_bf16(acc[mt][nt], af[mt], bf[nt]);
            }
          }
        }
        if (more) {
          uint16_t* next = smem + (buf ^ 1) * STAGE;
          stash_tile<C::A_GROUPS, BM, T, KA>(ra, next, tid);
          stash_tile<C::B_GROUPS, BN, T, KB>(rb, next + A_EL, tid);
        }
        __syncthreads(); /* the next buffer is written; this one is free for the stage after */
        buf ^= 1;
      }

#pragma unroll
      for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
#pragma unroll
          for (int h = 0; h < 2; h++) {
            int rr, cc;
            c_elem(lane, 2 * h, rr, cc);
            const int gi = i0 + wm0 + mt * 16 + rr, gj = j0 + wn0 + nt * 8 + cc;
            if (gi >= M || gj >= N) continue;
            float v0 = acc[mt][nt][2 * h], v1 = acc[mt][nt][2 * h + 1];
            float* dst = ct + (int64_t)gi * p.ldc + gj;
            if (gj + 1 < N) {
              if (bias) v0 += bias[gj], v1 += bias[gj + 1];
              if (vec.c) {
                *reinterpret_cast<float2*>(dst) = make_float2(v0, v1);
              } else {
                dst[0] = v0;
                dst[1] = v1;
              }
            } else {
              if (bias) v0 += bias[gj];
              dst[0] = v0;
            }
          }
        }
      }
      if (p.epilogue) { /* uniform: y = dropout(gelu(C)) of this tile (batch 1, ldc = N) */
        __syncthreads(); /* the tile's C, just written by the whole block, read back from L2 */
        const uint32_t key = cm_dropout_key(p.seed, p.stream);
        const float scale = 1.0f / (1.0f - p.prob); /* float32 roundings, as the Wasm kernel */
        unsigned short* y16 = p.y_bf16 ? reinterpret_cast<unsigned short*>(p.y) : nullptr;
        for (int e = tid; e < BM * BN; e += T) {
          const int gi = i0 + e / BN, gj = j0 + e % BN;
          if (gi >= M || gj >= N) continue;
          const int64_t o = (int64_t)gi * N + gj;
          const float v = cm_gelu_dropout(ct[o], key, (uint32_t)((int64_t)(p.row0 + gi) * N + gj),
                                          p.prob, scale);
          cm_store_f32_or_bf16(y16 ? nullptr : p.y, y16, o, v);
        }
      }
    }
  }
#else
  /* Only sm_80+ is built (Makefile CUDA_ARCH) and the host never launches this below sm_80. */
  (void)p, (void)a, (void)b, (void)bias, (void)c, (void)vec;
#endif
}

bool aligned(const void* ptr, unsigned bytes) { return ((uintptr_t)ptr % bytes) == 0; }

template <class C, bool PK>
void launch_trans(const MatmulArgs& q, dim3 grid, const float* a, const float* b,
                  const float* bias, float* c, Vec vec) {
  cudaStream_t s = cm_stream();
  if (q.trans_a && q.trans_b)
    matmul_bf16_kernel<C, true, true, PK><<<grid, C::THREADS, 0, s>>>(q, a, b, bias, c, vec);
  else if (q.trans_a)
    matmul_bf16_kernel<C, true, false, PK><<<grid, C::THREADS, 0, s>>>(q, a, b, bias, c, vec);
  else if (q.trans_b)
    matmul_bf16_kernel<C, false, true, PK><<<grid, C::THREADS, 0, s>>>(q, a, b, bias, c, vec);
  else
    matmul_bf16_kernel<C, false, false, PK><<<grid, C::THREADS, 0, s>>>(q, a, b, bias, c, vec);
}

template <class C>
void launch(const MatmulArgs& q, const float* a, const float* b, const float* bias, float* c) {
  int64_t ntiles = (q.n + C::BN - 1) / C::BN, mtiles = (q.m + C::BM - 1) / C::BM;
  dim3 grid((unsigned)ntiles, (unsigned)(mtiles < 65535 ? mtiles : 65535),
            (unsigned)(q.batch < 65535 ? q.batch : 65535));
  const bool batched = q.batch > 1;
  Vec vec;
  vec.pa = q.a_bf16 != 0, vec.pb = q.b_bf16 != 0;
  vec.a = aligned(a, q.a_bf16 ? 8 : 16) && q.lda % 4 == 0 && (!batched || q.stride_a % 4 == 0);
  vec.b = aligned(b, q.b_bf16 ? 8 : 16) && q.ldb % 4 == 0 && (!batched || q.stride_b % 4 == 0);
  vec.c = aligned(c, 8) && q.ldc % 2 == 0 && (!batched || q.stride_c % 2 == 0);
  if (vec.pa || vec.pb)
    launch_trans<C, true>(q, grid, a, b, bias, c, vec);
  else
    launch_trans<C, false>(q, grid, a, b, bias, c, vec);
}

using Big = Config<128, 128, 2, 4, 1>; /* 8 warps, 64 x 32 each */
using Small = Config<64, 64, 2, 2, 2>; /* 4 warps, 32 x 32 each */

}  // namespace

bool matmul_bf16_tc(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                    float* c) {
  if (matmul_cc_major() < 8) return false;
  /* The tile shape does not change any result bit (see the header comment), only the speed:
   * 128 x 128 tiles once there are enough of them to give every SM one. */
  int64_t big_tiles = (int64_t)((q.m + 127) / 128) * ((q.n + 127) / 128) * q.batch;
  if (big_tiles >= matmul_sm_count())
    launch<Big>(q, a, b, bias, c);
  else
    launch<Small>(q, a, b, bias, c);
  CM_CHECK_LAUNCH("matmul (bf16 tensor cores)");
  return true;
}
