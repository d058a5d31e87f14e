/* Tile geometry and index maps of the bf16 tensor-core matmul (matmul_bf16.cu). Kept apart from
 * the kernel, __host__ __device__ and free of CUDA types, so a host program can replay the
 * kernel's index logic (the shared-memory tiles, ldmatrix lane addresses, mma fragments) against
 * a plain product without a GPU.
 *
 * The warp-level instruction is mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (PTX ISA,
 * "Matrix Fragments for mma.m16n8k16 with floating point type"), with groupID g = lane >> 2 and
 * threadID_in_group t = lane & 3:
 *   A (16 x 16, row): 4 x .b32, each two bf16 (lower index in the lower 16 bits):
 *     reg 0: (row g,     cols 2t, 2t+1)      reg 1: (row g + 8, cols 2t, 2t+1)
 *     reg 2: (row g,     cols 2t+8, 2t+9)    reg 3: (row g + 8, cols 2t+8, 2t+9)
 *   B (16 x 8, col): 2 x .b32: reg 0: (rows k = 2t, 2t+1, col g), reg 1: (rows 2t+8, 2t+9, col g)
 *   C, D (16 x 8, f32): c0, c1: (row g, cols 2t, 2t+1); c2, c3: (row g + 8, cols 2t, 2t+1).
 * Fragments come from shared memory by ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes
 * 8q .. 8q + 7 give the 8 row addresses (16 bytes each) of matrix q; result register q of lane l
 * holds row l >> 2, elements 2 (l & 3), 2 (l & 3) + 1 of matrix q, or with .trans the elements
 * (2 (l & 3), l >> 2) and (2 (l & 3) + 1, l >> 2), i.e. the same of the transposed matrix.
 *
 * Shared-memory tiles, in bf16 elements, one per operand and pipeline stage. An operand tile
 * covers R rows of its output side (R = BM rows of C for A, BN columns of C for B) by BK of k,
 * stored the way the operand runs in global memory, so global loads are coalesced and shared
 * stores are plain (no transposition in registers):
 *   k-contiguous (A not transposed: A is (M, K); B transposed: B is (N, K)):
 *     [R][BK + PAD], element (r, kk) at r (BK + PAD) + kk; read with ldmatrix (no .trans);
 *   row-contiguous (A transposed: (K, M); B not transposed: (K, N)):
 *     [BK][R + PAD], element (r, kk) at kk (R + PAD) + r; read with ldmatrix.trans.
 * PAD = 8 elements (16 bytes) keeps every ldmatrix row address 16-byte aligned and puts the 8
 * rows an 8x8 load reads in 8 different 16-byte bank groups (row strides of 80, 272 and 144
 * bytes are odd multiples of 16 bytes modulo 128), so ldmatrix is free of bank conflicts. */
#pragma once
#include "matmul.cuh"

namespace bf16mm {

constexpr int BK = 32; /* k per pipeline stage: two m16n8k16 steps */
constexpr int PAD = 8; /* bf16 elements of padding per shared row */

/* A block of WM x WN warps computes a BM x BN tile of C; each warp a (BM / WM) x (BN / WN) tile
 * made of MT x NT mma tiles (16 x 8 each). */
template <int BM_, int BN_, int WM_, int WN_, int MIN_BLOCKS_>
struct Config {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_;
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_; /* __launch_bounds__ blocks per SM */
  static constexpr int THREADS = 32 * WM * WN;
  static constexpr int WTM = BM / WM, WTN = BN / WN;
  static constexpr int MT = WTM / 16, NT = WTN / 8;
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tiles of whole 16 x 16 pairs");
  static_assert(BM % 4 == 0 && BN % 4 == 0, "4-element load groups");
  /* Load groups (4 consecutive elements along the operand's contiguous axis) per thread. */
  static constexpr int A_GROUPS = BM * BK / 4 / THREADS, B_GROUPS = BN * BK / 4 / THREADS;
  static_assert(A_GROUPS * THREADS * 4 == BM * BK && B_GROUPS * THREADS * 4 == BN * BK,
                "whole tile loads");
};

/* Elements of one operand tile (one stage) with R rows, k-contiguous or not. */
CM_HD constexpr int tile_elems(bool kc, int R) { return kc ? R * (BK + PAD) : BK * (R + PAD); }

/* Index of element (r, kk) in an operand tile. */
CM_HD inline int tile_index(bool kc, int R, int r, int kk) {
  return kc ? r * (BK + PAD) + kk : kk * (R + PAD) + r;
}

/* Load group e of an operand tile with R rows: its first element (r, kk); the group's 4
 * elements run along kk (k-contiguous) or along r. Consecutive e run along the contiguous axis,
 * so a warp reads whole 128-byte lines. */
CM_HD inline void load_group(bool kc, int R, int e, int& r, int& kk) {
  if (kc) {
    r = e / (BK / 4);
    kk = (e % (BK / 4)) * 4;
  } else {
    r = (e % (R / 4)) * 4;
    kk = e / (R / 4);
  }
}

/* ldmatrix.x4 lane address for the A fragment (16 rows of C x 16 of k) at tile offset (0, 0):
 * this lane's row address is element (r, kk) of the A tile. Matrix q = lane >> 3 of the x4
 * load becomes A register q: (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15),
 * (rows 8-15, k 8-15). k-contiguous: the 8 row addresses of a matrix are 8 rows at one k;
 * row-contiguous (.trans): 8 k at one row offset. */
CM_HD inline void a_frag_lane(bool kc, int lane, int& r, int& kk) {
  const int q = lane >> 3, i = lane & 7;
  if (kc) {
    r = i + (q & 1) * 8;
    kk = (q >> 1) * 8;
  } else {
    r = (q & 1) * 8;
    kk = i + (q >> 1) * 8;
  }
}

/* ldmatrix.x4 lane address for two adjacent B fragments (16 columns of C x 16 of k): matrix q
 * becomes, in order, B register 0 of the first n8 tile (cols 0-7, k 0-7), its register 1
 * (cols 0-7, k 8-15), register 0 of the second (cols 8-15, k 0-7) and its register 1. */
CM_HD inline void b_frag_lane(bool kc, int lane, int& r, int& kk) {
  const int q = lane >> 3, i = lane & 7;
  if (kc) {
    r = i + (q >> 1) * 8;
    kk = (q & 1) * 8;
  } else {
    r = (q >> 1) * 8;
    kk = i + (q & 1) * 8;
  }
}

/* Row and column, within its 16 x 8 mma tile, of accumulator element i (0-3) of `lane`. */
CM_HD inline void c_elem(int lane, int i, int& row, int& col) {
  row = (lane >> 2) + (i >> 1) * 8;
  col = (lane & 3) * 2 + (i & 1);
}

/* Origin of warp w's tile inside the block tile (warps laid out WM x WN, n fastest). */
template <class C>
CM_HD inline void warp_origin(int warp, int& m0, int& n0) {
  m0 = (warp / C::WN) * C::WTM;
  n0 = (warp % C::WN) * C::WTN;
}

}  // namespace bf16mm
