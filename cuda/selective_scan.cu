/* The selective scan (Mamba recurrence, CONMAMBA_SPEC.md 4.7) on the GPU (wasm/selective_scan.c),
 * per channel c of one sequence:
 *
 *   d_t = softplus(delta_t + delta_bias)                (identity above 20; no softplus if off)
 *   h_t[n] = exp(d_t A[c, n]) h_(t-1)[n] + d_t B_t[n] u_t        h_(-1) = 0
 *   y_t = sum_n C_t[n] h_t[n] + D u_t,   out_t = y_t silu(z_t)
 *
 * One thread per (sequence, channel) carries the Ns states in registers (templated on an upper
 * bound of Ns: 16, 32 or 64; the models use 16). D, z and delta_bias may be NULL (no skip, no gate,
 * no bias). The forward saves h at the start of every chunk (states[b, k] at row stride ld_state,
 * channel c at c Ns). Every rounding of the recurrence is pinned with explicit intrinsics
 * (__fmaf_rn, __fmul_rn, __fadd_rn) and one shared step function, so the backward's recomputed
 * states are the forward's bit for bit. The decay factors use the Wasm kernel's short exp
 * (decay_exp_v: the same reduction and degree-6 polynomial, here with fused multiply-adds) and
 * CUDA's expf outside its range; softplus is log1pf(expf(.)), sigmoid 1 / (1 + expf(-.)).
 *
 * Backward: one warp per (sequence, 32 channels); each lane walks its channel's chunks from the
 * last, recomputes the chunk from the saved state (first pass: the states at every SUB = 8 steps;
 * then, sub-chunk by sub-chunk from the last, the SUB steps' states and decay factors kept in
 * per-thread memory), and runs the reverse recurrence dh_(t-1) = exp(d_t A) dh_t inside it, as the
 * Wasm kernel. du, ddelta (and dz) are per (t, c), written by their lane. dA, dD and ddelta_bias
 * are per-sequence partial sums (time in reverse order, as the Wasm kernel), written once per
 * (b, c). dB[t] and dC[t] sum over channels: each step the warp reduces its 32 lanes' 2 Ns values
 * with a fixed transpose-and-add butterfly (lane l ends with value l), writes them to a scratch
 * (batch, warps, T, 2 Ns) block, and a second kernel adds the warps' partials in order of the warp
 * into dB and dC (overwritten, only their first Ns columns, as the Wasm kernel zeroes then adds).
 * No atomics: bitwise repeatable, though the channel sum's order is not the Wasm kernel's. The
 * scratch comes from the library's allocator and is returned at once (stream order keeps it alive
 * for the kernels queued before). */
#include <stdio.h>

#include "common.cuh"


namespace {

constexpr int SCAN_MAX_STATE = 64; /* as wasm/selective_scan.c */
constexpr int SCAN_MAX_CHUNK = 64;
constexpr int SUB = 8;                            /* steps kept per thread in the backward */
constexpr int MAX_SUBS = SCAN_MAX_CHUNK / SUB;    /* sub-chunk starts per chunk */
constexpr int FWD_THREADS = 64;

struct Scan {
  int32_t batch, T, channels, ns, softplus, chunk, nchunks, rev, acc_dz, half, out_bf16;
  int64_t ld_u, ld_bc, ld_z, ld_state;
};

Scan scan_of(const cm_scan_params* p) {
  return Scan{p->batch,  p->seqlen,  p->channels, p->dstate,
              p->delta_softplus, p->chunk, p->nchunks, p->reverse ? 1 : 0, p->accumulate_dz ? 1 : 0,
              p->half ? 1 : 0, p->out_bf16 ? 1 : 0,
              p->ld_u,   p->ld_bc,   p->ld_z,     p->ld_state};
}

/* The row of step t of sequence b: b T + t, or b T + T-1-t in reverse (the bits of flip, scan,
 * flip: the recurrence runs over the flipped sequence in its order). */
__device__ __forceinline__ int64_t scan_row(const Scan& p, int64_t b, int32_t t) {
  return b * p.T + (p.rev ? p.T - 1 - t : t);
}

/* exp(x) for the decay factors: x = n ln2 + r, n = round(x / ln2) by adding 1.5 2^23 (the low
 * bits of the sum are n, shifted into an exponent for 2^n), exp(r) by a degree-6 minimax
 * polynomial (wasm/selective_scan.c decay_exp_v's coefficients). Valid for x in
 * [-87.33654, 88], where 2^n is normal; outside (d A > 0 or tiny) CUDA's expf. */
__device__ __forceinline__ float decay_exp(float x) {
  const float SHIFT = 0x1.8p23f;
  float k = __fmaf_rn(x, 1.44269504088896341f, SHIFT);
  float n = __fsub_rn(k, SHIFT);
  float r = __fmaf_rn(n, -0.693145751953125f, x);
  r = __fmaf_rn(n, -1.4286068203094173e-06f, r);
  float q = __fmaf_rn(r, 1.384362346e-03f, 8.374168538e-03f);
  q = __fmaf_rn(r, q, 4.166800156e-02f);
  q = __fmaf_rn(r, q, 1.666643173e-01f);
  q = __fmaf_rn(r, q, 4.999999404e-01f);
  q = __fmaf_rn(r, q, 1.0f);
  q = __fmaf_rn(r, q, 1.0f);
  float two_n = __uint_as_float((__float_as_uint(k) << 23) + 0x3f800000u);
  float y = __fmul_rn(q, two_n);
  return x >= -87.33654f && x <= 88.0f ? y : expf(x);
}

__device__ __forceinline__ float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* d_t from the raw delta (pre = delta + delta_bias) */
__device__ __forceinline__ float scan_delta(int32_t sp, float pre) { return sp ? softplus(pre) : pre; }

/* One step: h = exp(d a) h + du b; returns sum_n c[n] h[n] in order of n. When hp is not NULL it
 * receives h before the step and ea the decay factors. */
template <int NS>
__device__ __forceinline__ float scan_step(int32_t ns, const float (&a)[NS],
                                           const float* __restrict__ bt,
                                           const float* __restrict__ ct, float d, float du,
                                           float (&h)[NS], float* hp, float* ea) {
  float y = 0.0f;
#pragma unroll
  for (int n = 0; n < NS; n++) {
    if (n < ns) {
      float e = decay_exp(__fmul_rn(d, a[n]));
      if (hp) hp[n] = h[n], ea[n] = e;
      h[n] = __fmaf_rn(e, h[n], __fmul_rn(du, __ldg(bt + n)));
      y = __fmaf_rn(__ldg(ct + n), h[n], y);
    }
  }
  return y;
}

/* ---- forward ---- */

template <int NS>
__global__ void __launch_bounds__(FWD_THREADS)
    scan_forward_kernel(Scan p, int32_t tiles, const float* __restrict__ u,
                        const float* __restrict__ delta, const float* __restrict__ A,
                        const float* __restrict__ B, const float* __restrict__ C,
                        const float* __restrict__ D, const float* __restrict__ z,
                        const float* __restrict__ delta_bias, float* __restrict__ out,
                        float* __restrict__ states, const float* __restrict__ other) {
  int32_t tile = blockIdx.x % tiles;
  int64_t b = blockIdx.x / tiles;
  int32_t c = tile * FWD_THREADS + threadIdx.x;
  if (c >= p.channels) return;
  const int32_t ns = p.ns, T = p.T;
  float a[NS], h[NS];
#pragma unroll
  for (int n = 0; n < NS; n++) {
    a[n] = n < ns ? A[(int64_t)c * ns + n] : 0.0f;
    h[n] = 0.0f;
  }
  const float Dc = D ? D[c] : 0.0f, bias = delta_bias ? delta_bias[c] : 0.0f;
  int32_t k = 0, in_chunk = 0;
  for (int32_t t = 0; t < T; t++) {
    if (in_chunk == 0) {
      float* s = states + (b * p.nchunks + k) * p.ld_state + (int64_t)c * ns;
#pragma unroll
      for (int n = 0; n < NS; n++)
        if (n < ns) s[n] = h[n];
    }
    if (++in_chunk == p.chunk) in_chunk = 0, k++;
    int64_t row = scan_row(p, b, t), i = row * p.ld_u + c, ibc = row * p.ld_bc;
    float ut = u[i];
    float d = scan_delta(p.softplus, __fadd_rn(delta[i], bias));
    float y = scan_step<NS>(ns, a, B + ibc, C + ibc, d, __fmul_rn(d, ut), h, nullptr, nullptr);
    if (D) y = __fmaf_rn(Dc, ut, y);
    if (z) {
      float zt = z[row * p.ld_z + c];
      y = y * (zt * sigmoid(zt)); /* silu(z) */
    }
    /* BiMamba's halves: 0.5 y exactly, then + the other direction's half (no FMA) */
    if (p.half) y = __fmul_rn(y, 0.5f);
    cm_store_f32_or_bf16(p.out_bf16 ? nullptr : out,
                         p.out_bf16 ? reinterpret_cast<unsigned short*>(out) : nullptr, i,
                         other ? __fadd_rn(other[i], y) : y);
  }
}

/* ---- backward ---- */

/* Lane l of the warp returns the sum over the 32 lanes of v[l]: five halving steps, each lane
 * keeping the half of its values that its bit selects and adding its partner's copy of that half
 * (a fixed order: deterministic). */
__device__ __forceinline__ float transpose_sum(float (&v)[32], int lane) {
#pragma unroll
  for (int w = 16; w >= 1; w >>= 1) {
    bool up = (lane & w) != 0;
#pragma unroll
    for (int i = 0; i < w; i++) {
      float send = up ? v[i] : v[i + w];
      float keep = up ? v[i + w] : v[i];
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, w);
    }
  }
  return v[0];
}

/* Values per step and warp in the dB/dC scratch: dB's NS then dC's NS (NS >= 16: a multiple of 32). */
template <int NS>
constexpr int part_width() {
  return 2 * NS;
}

template <int NS>
__global__ void __launch_bounds__(32)
    scan_backward_kernel(Scan p, int32_t tiles, const float* __restrict__ u,
                         const float* __restrict__ delta, const float* __restrict__ A,
                         const float* __restrict__ B, const float* __restrict__ C,
                         const float* __restrict__ D, const float* __restrict__ z,
                         const float* __restrict__ delta_bias, const float* __restrict__ states,
                         const float* __restrict__ dout, float* __restrict__ du,
                         float* __restrict__ ddelta, float* __restrict__ dA,
                         float* __restrict__ dD, float* __restrict__ dz,
                         float* __restrict__ ddelta_bias, float* __restrict__ part) {
  constexpr int PW = part_width<NS>();
  const int lane = threadIdx.x;
  const int32_t tile = blockIdx.x % tiles;
  const int64_t b = blockIdx.x / tiles;
  const int32_t c = tile * 32 + lane;
  const bool valid = c < p.channels; /* idle lanes run the loops with zeros (the warp reduces) */
  const int32_t ns = p.ns, T = p.T;
  float a[NS], h[NS], dh[NS], dA_sum[NS];
#pragma unroll
  for (int n = 0; n < NS; n++) {
    a[n] = valid && n < ns ? A[(int64_t)c * ns + n] : 0.0f;
    dh[n] = dA_sum[n] = 0.0f;
  }
  const float Dc = valid && D ? D[c] : 0.0f;
  const float bias = valid && delta_bias ? delta_bias[c] : 0.0f;
  float dD_sum = 0.0f, ddb_sum = 0.0f;
  /* per thread: the states at the sub-chunk starts; h before each step of the sub-chunk and the
   * decay factors; d and y before the gate per step */
  float starts[MAX_SUBS][NS], hs[SUB][NS], es[SUB][NS], d_s[SUB], ypre_s[SUB];
  float* part_b = part + ((b * tiles + tile) * (int64_t)T) * PW;

  for (int32_t k = p.nchunks - 1; k >= 0; k--) {
    const int32_t t0 = k * p.chunk, t1 = t0 + p.chunk < T ? t0 + p.chunk : T;
    if (t0 >= t1) continue;
    /* first pass: from the saved state, the states at every SUB steps */
    const float* saved = states + (b * p.nchunks + k) * p.ld_state + (int64_t)c * ns;
#pragma unroll
    for (int n = 0; n < NS; n++) h[n] = valid && n < ns ? saved[n] : 0.0f;
    const int32_t last = t0 + (t1 - 1 - t0) / SUB * SUB; /* start of the last sub-chunk */
    for (int32_t t = t0; t < last; t++) {
      if ((t - t0) % SUB == 0) {
#pragma unroll
        for (int n = 0; n < NS; n++) starts[(t - t0) / SUB][n] = h[n];
      }
      int64_t row = scan_row(p, b, t), i = row * p.ld_u + c, ibc = row * p.ld_bc;
      float ut = valid ? u[i] : 0.0f;
      float d = scan_delta(p.softplus, __fadd_rn(valid ? delta[i] : 0.0f, bias));
      scan_step<NS>(ns, a, B + ibc, C + ibc, d, __fmul_rn(d, ut), h, nullptr, nullptr);
    }
#pragma unroll
    for (int n = 0; n < NS; n++) starts[(last - t0) / SUB][n] = h[n];

    for (int32_t s0 = last; s0 >= t0; s0 -= SUB) {
      const int32_t s1 = s0 + SUB < t1 ? s0 + SUB : t1;
      /* recompute the sub-chunk as the forward did, keeping h before each step and exp(d A) */
#pragma unroll
      for (int n = 0; n < NS; n++) h[n] = starts[(s0 - t0) / SUB][n];
      for (int32_t t = s0; t < s1; t++) {
        int64_t row = scan_row(p, b, t), i = row * p.ld_u + c, ibc = row * p.ld_bc;
        float ut = valid ? u[i] : 0.0f;
        float d = scan_delta(p.softplus, __fadd_rn(valid ? delta[i] : 0.0f, bias));
        d_s[t - s0] = d;
        float y = scan_step<NS>(ns, a, B + ibc, C + ibc, d, __fmul_rn(d, ut), h, hs[t - s0],
                                es[t - s0]);
        ypre_s[t - s0] = D ? __fmaf_rn(Dc, ut, y) : y;
      }
      /* the reverse recurrence */
      for (int32_t t = s1 - 1; t >= s0; t--) {
        const int64_t row = scan_row(p, b, t), i = row * p.ld_u + c, ibc = row * p.ld_bc;
        const float *bt = B + ibc, *ct = C + ibc;
        const float *hp = hs[t - s0], *e = es[t - s0];
        const float ut = valid ? u[i] : 0.0f;
        const float pre = __fadd_rn(valid ? delta[i] : 0.0f, bias);
        const float d = d_s[t - s0];
        float dy = valid ? dout[i] : 0.0f;
        if (p.half) dy = __fmul_rn(dy, 0.5f); /* the output was halved: exact */
        if (z) {
          const int64_t iz = row * p.ld_z + c;
          const float zt = valid ? z[iz] : 0.0f, sg = sigmoid(zt);
          if (dz && valid) /* silu'(z) = s (1 + z (1 - s)) */
          {
            const float g = (dy * ypre_s[t - s0]) * (sg * (1.0f + zt * (1.0f - sg)));
            dz[iz] = p.acc_dz ? __fadd_rn(dz[iz], g) : g; /* no FMA: a separate add's bits */
          }
          dy = dy * (zt * sg);
        }
        float du_t = 0.0f, dd = 0.0f;
        const float dut = __fmul_rn(d, ut);
        if (D) {
          dD_sum += dy * ut;
          du_t = dy * Dc;
        }
        float v[PW];
#pragma unroll
        for (int n = 0; n < NS; n++) {
          v[n] = v[NS + n] = 0.0f;
          if (n < ns) {
            const float bn = __ldg(bt + n), eh = e[n] * hp[n];
            const float hn = __fmaf_rn(e[n], hp[n], __fmul_rn(dut, bn)); /* h_t, as the forward */
            v[NS + n] = dy * hn;                                         /* dC share */
            dh[n] += dy * __ldg(ct + n);
            dd += dh[n] * (a[n] * eh + bn * ut);
            dA_sum[n] += dh[n] * (d * eh);
            v[n] = dh[n] * dut; /* dB share */
            du_t += dh[n] * (d * bn);
            dh[n] = dh[n] * e[n]; /* dh_(t-1) */
          }
        }
        if (!valid) {
#pragma unroll
          for (int m = 0; m < PW; m++) v[m] = 0.0f;
        }
        float* pt = part_b + (int64_t)(p.rev ? T - 1 - t : t) * PW; /* by row, as dB and dC */
#pragma unroll
        for (int r = 0; r < PW / 32; r++) {
          float w32[32];
#pragma unroll
          for (int m = 0; m < 32; m++) w32[m] = v[r * 32 + m];
          pt[r * 32 + lane] = transpose_sum(w32, lane);
        }
        if (p.softplus && pre <= 20.0f) dd = dd * sigmoid(pre); /* softplus' = sigmoid */
        if (valid) {
          ddelta[i] = dd;
          du[i] = du_t;
        }
        ddb_sum += dd;
      }
    }
  }
  if (!valid) return;
#pragma unroll
  for (int n = 0; n < NS; n++)
    if (n < ns) dA[(b * p.channels + c) * ns + n] = dA_sum[n];
  if (dD) dD[b * p.channels + c] = dD_sum;
  if (ddelta_bias) ddelta_bias[b * p.channels + c] = ddb_sum;
}

/* dB[b, t, n] and dC[b, t, n] = the warps' partials added in order of the warp (0 with none). */
__global__ void scan_bc_sum_kernel(int64_t total, int32_t ns, int32_t pw, int32_t T, int32_t tiles,
                                   int64_t ld_bc, const float* __restrict__ part,
                                   float* __restrict__ dB, float* __restrict__ dC) {
  CM_FOR(i, total) {
    int32_t m = (int32_t)(i % (2 * ns));
    int64_t row = i / (2 * ns); /* b T + t */
    int64_t t = row % T, b = row / T;
    int32_t col = m < ns ? m : pw / 2 + (m - ns);
    float acc = 0.0f;
    for (int32_t w = 0; w < tiles; w++) acc += part[((b * tiles + w) * T + t) * pw + col];
    if (m < ns)
      dB[row * ld_bc + m] = acc;
    else
      dC[row * ld_bc + (m - ns)] = acc;
  }
}

/* The limits of the Wasm kernels (its backward keeps up to 64 states and 64 steps on the stack):
 * beyond them, a recorded error instead of out-of-bounds accesses. */
bool check_params(const Scan& p, const char* op, int32_t max_chunk) {
  const char* why = nullptr;
  if (p.ns > SCAN_MAX_STATE) why = "dstate > 64";
  else if (p.T > 0 && (p.chunk <= 0 || p.chunk > max_chunk)) why = "chunk out of range";
  else if (p.T > 0 && (int64_t)p.nchunks * p.chunk < p.T) why = "nchunks * chunk < seqlen";
  if (!why) return true;
  char msg[96];
  snprintf(msg, sizeof msg, "%s: %s", op, why);
  cm_note_error(cudaErrorInvalidValue, msg);
  return false;
}

template <int NS>
void launch_forward(const Scan& p, const float* u, const float* delta, const float* A,
                    const float* B, const float* C, const float* D, const float* z,
                    const float* delta_bias, float* out, float* states, const float* other) {
  int32_t tiles = (p.channels + FWD_THREADS - 1) / FWD_THREADS;
  scan_forward_kernel<NS><<<(unsigned)((int64_t)tiles * p.batch), FWD_THREADS, 0, cm_stream()>>>(
      p, tiles, u, delta, A, B, C, D, z, delta_bias, out, states, other);
}

template <int NS>
void launch_backward(const Scan& p, const float* u, const float* delta, const float* A,
                     const float* B, const float* C, const float* D, const float* z,
                     const float* delta_bias, const float* states, const float* dout, float* du,
                     float* ddelta, float* dA, float* dB, float* dC, float* dD, float* dz,
                     float* ddelta_bias) {
  constexpr int PW = part_width<NS>();
  int32_t tiles = p.channels > 0 ? (p.channels + 31) / 32 : 0;
  int64_t rows = (int64_t)p.batch * (p.T > 0 ? p.T : 0);
  uint64_t bytes = (uint64_t)rows * tiles * PW * sizeof(float);
  uint64_t scratch = 0;
  if (bytes > 0) {
    scratch = cm_cuda_malloc(bytes);
    if (scratch == 0) {
      cm_note_error(cudaErrorMemoryAllocation, "selective_scan_backward");
      return;
    }
  }
  float* part = (float*)(uintptr_t)scratch;
  if (tiles > 0) {
    scan_backward_kernel<NS><<<(unsigned)((int64_t)tiles * p.batch), 32, 0, cm_stream()>>>(
        p, tiles, u, delta, A, B, C, D, z, delta_bias, states, dout, du, ddelta, dA, dD, dz,
        ddelta_bias, part);
    CM_CHECK_LAUNCH("selective_scan_backward");
  }
  int64_t total = rows * 2 * p.ns;
  if (total > 0) {
    scan_bc_sum_kernel<<<cm_blocks(total, 256), 256, 0, cm_stream()>>>(total, p.ns, PW, p.T, tiles,
                                                                        p.ld_bc, part, dB, dC);
    CM_CHECK_LAUNCH("selective_scan_backward");
  }
  if (scratch) cm_cuda_free(scratch);
}

}  // namespace

void cm_selective_scan_forward(const cm_scan_params* pp, const float* u, const float* delta,
                               const float* A, const float* B, const float* C, const float* D,
                               const float* z, const float* delta_bias, float* out,
                               float* states, const float* other) {
  Scan p = scan_of(pp);
  if (p.batch <= 0 || p.T <= 0 || p.channels <= 0) return;
  if (p.ns < 0) p.ns = 0;
  if (!check_params(p, "selective_scan_forward", 2147483647)) return;
  if (p.ns <= 16)
    launch_forward<16>(p, u, delta, A, B, C, D, z, delta_bias, out, states, other);
  else if (p.ns <= 32)
    launch_forward<32>(p, u, delta, A, B, C, D, z, delta_bias, out, states, other);
  else
    launch_forward<64>(p, u, delta, A, B, C, D, z, delta_bias, out, states, other);
  CM_CHECK_LAUNCH("selective_scan_forward");
}

void cm_selective_scan_backward(const cm_scan_params* pp, const float* u, const float* delta,
                                const float* A, const float* B, const float* C, const float* D,
                                const float* z, const float* delta_bias, const float* states,
                                const float* dout, float* du, float* ddelta, float* dA, float* dB,
                                float* dC, float* dD, float* dz, float* ddelta_bias) {
  Scan p = scan_of(pp);
  if (p.batch <= 0) return;
  if (p.ns < 0) p.ns = 0;
  if (p.T < 0) p.T = 0;
  if (p.channels < 0) p.channels = 0;
  if (!check_params(p, "selective_scan_backward", SCAN_MAX_CHUNK)) return;
  if (p.ns <= 16)
    launch_backward<16>(p, u, delta, A, B, C, D, z, delta_bias, states, dout, du, ddelta, dA, dB,
                        dC, dD, dz, ddelta_bias);
  else if (p.ns <= 32)
    launch_backward<32>(p, u, delta, A, B, C, D, z, delta_bias, states, dout, du, ddelta, dA, dB,
                        dC, dD, dz, ddelta_bias);
  else
    launch_backward<64>(p, u, delta, A, B, C, D, z, delta_bias, states, dout, du, ddelta, dA, dB,
                        dC, dD, dz, ddelta_bias);
}
