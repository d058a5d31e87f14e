/* Log-mel filterbank of one utterance (CONMAMBA_SPEC.md 3.2-3.5), the CUDA twin of wasm/fbank.c:
 * centred frames (zero padding n_fft/2 each side), a window (n_fft, zero-padded when shorter),
 * |FFT|^2, triangular mel filters, 10 log10(max(E, 1e-10)); the top_db clamp is the caller's.
 *
 * One thread block per frame. The real FFT of N samples is the complex FFT of H = N/2 points
 * z[m] = x[2m] + i x[2m+1] followed by a split, as in the reference. The reference computes that
 * FFT by a recursive mixed-radix decimation in time (radices 4, 2, 3, 5 in this order); here the
 * same recursion runs level by level: first every leaf (a length-1 DFT) is loaded at its place in
 * the output, the mixed-radix digit reversal of its input index, then the levels from the deepest
 * up, each a set of independent in-place r-point butterflies (one thread each, a barrier between
 * levels). A butterfly reads and writes the same elements with the same float64 operations in the
 * same order as the reference's loop body, so each frame's spectrum has the reference's bits. The
 * power spectrum is one thread per bin, the mel sums one thread per filter (bins in increasing
 * order), the log the reference's own series (log_d).
 *
 * Products are written as __dmul_rn (M below) so that nvcc cannot contract them into FMAs: the
 * Wasm build is -ffp-contract=off. row0 is honoured as in the reference (a CUDA call is never
 * split; the caller's row0 is the frame index of output row 0). */
#include "common.cuh"

namespace {

constexpr int kThreads = 128;
constexpr int kMaxFft = 1024;        /* n_fft <= 1024 (validated by src/audio/fbank.ts) */
constexpr int kMaxHalf = kMaxFft / 2;

struct Radices {
  int count;  /* levels D */
  int f[16];  /* radix of each level, top first */
};

__device__ __forceinline__ double M(double a, double b) { return __dmul_rn(a, b); }

/* Natural log in double exactly as wasm/fbank.c log_d: x = m 2^e, m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), series to s^23. x > 0 and finite. */
__device__ double log_d(double x) {
  unsigned long long u = (unsigned long long)__double_as_longlong(x);
  int e = (int)((u >> 52) & 0x7ff) - 1023;
  u = (u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
  double m = __longlong_as_double((long long)u);
  if (m > 1.4142135623730951) {
    m = M(m, 0.5);
    e += 1;
  }
  const double s = (m - 1.0) / (m + 1.0), z = M(s, s);
  double p = 1.0 / 23; /* atanh(s) / s = sum z^i / (2i + 1), by Horner from i = 11 down */
  for (int i = 0; i < 11; i++) p = M(p, z) + 1.0 / (21 - 2 * i);
  return M(M(2.0, s), p) + M((double)e, 0.6931471805599453);
}

__global__ void fbank_kernel(cm_fbank_params p, Radices rad, const float* __restrict__ wav,
                             const float* __restrict__ window, const float* __restrict__ tw_hi,
                             const float* __restrict__ tw_lo, const float* __restrict__ mel,
                             float* __restrict__ out) {
  __shared__ double2 w[kMaxFft];      /* w[j] = exp(-2 pi i j / N) */
  __shared__ double2 X[kMaxHalf];     /* the complex FFT of z, in place level by level */
  __shared__ double power[kMaxHalf + 1];
  const int N = p.n_fft, H = N / 2, tid = threadIdx.x, r = blockIdx.x;
  for (int j = tid; j < N; j += kThreads) {
    w[j].x = (double)tw_hi[2 * j] + (double)tw_lo[2 * j];
    w[j].y = (double)tw_hi[2 * j + 1] + (double)tw_lo[2 * j + 1];
  }
  /* Leaves: X[idx] = z[in], in the mixed-radix digit reversal of idx (digit j_i of idx has
   * weight n_(i+1) = H / (f_0 ... f_i), in input index it has weight f_0 ... f_(i-1)). */
  const int64_t start = ((int64_t)p.row0 + r) * p.hop - N / 2;
  for (int idx = tid; idx < H; idx += kThreads) {
    int in = 0, n = H, stride = 1;
    for (int d = 0; d < rad.count; d++) {
      const int sub = n / rad.f[d];
      in += ((idx % n) / sub) * stride;
      stride *= rad.f[d];
      n = sub;
    }
    const int64_t a = start + 2 * in, b = a + 1;
    X[idx].x = (a >= 0 && a < p.n_samples) ? M((double)wav[a], (double)window[2 * in]) : 0.0;
    X[idx].y = (b >= 0 && b < p.n_samples) ? M((double)wav[b], (double)window[2 * in + 1]) : 0.0;
  }
  __syncthreads();
  /* Levels from the deepest up. At level d a sub-DFT has length nd = H / (f_0 ... f_(d-1)) and
   * occupies X[q nd .. (q + 1) nd); its r = f_d children of length m = nd / r sit at j m. The
   * reference uses twiddles wh[j k (H / nd)] of wh[j] = exp(-2 pi i j / H) = w[2 j]. */
  for (int d = rad.count - 1; d >= 0; d--) {
    int nd = H;
    for (int i = 0; i < d; i++) nd /= rad.f[i];
    const int rr = rad.f[d], m = nd / rr, step = H / nd;
    for (int bf = tid; bf < H / rr; bf += kThreads) {
      const int k = bf % m;
      double2* Y = X + (bf / m) * nd;
      double2 t[5];
      t[0] = Y[k];
      for (int j = 1; j < rr; j++) {
        const double2 y = Y[j * m + k];
        const double2 tw = w[2 * (j * k * step)];
        t[j].x = M(y.x, tw.x) - M(y.y, tw.y);
        t[j].y = M(y.x, tw.y) + M(y.y, tw.x);
      }
      if (rr == 2) {
        Y[k].x = t[0].x + t[1].x, Y[k].y = t[0].y + t[1].y;
        Y[m + k].x = t[0].x - t[1].x, Y[m + k].y = t[0].y - t[1].y;
      } else if (rr == 4) { /* W_4 = -i */
        const double ar = t[0].x + t[2].x, ai = t[0].y + t[2].y;
        const double br = t[0].x - t[2].x, bi = t[0].y - t[2].y;
        const double cr = t[1].x + t[3].x, ci = t[1].y + t[3].y;
        const double dr = t[1].y - t[3].y, di = t[3].x - t[1].x; /* -i (t1 - t3) */
        Y[k].x = ar + cr, Y[k].y = ai + ci;
        Y[m + k].x = br + dr, Y[m + k].y = bi + di;
        Y[2 * m + k].x = ar - cr, Y[2 * m + k].y = ai - ci;
        Y[3 * m + k].x = br - dr, Y[3 * m + k].y = bi - di;
      } else if (rr == 5) {
        const double c1 = 0.30901699437494745, c2 = -0.8090169943749475;
        const double n1 = 0.9510565162951535, n2 = 0.5877852522924731;
        const double s1r = t[1].x + t[4].x, s1i = t[1].y + t[4].y;
        const double d1r = t[1].x - t[4].x, d1i = t[1].y - t[4].y;
        const double s2r = t[2].x + t[3].x, s2i = t[2].y + t[3].y;
        const double d2r = t[2].x - t[3].x, d2i = t[2].y - t[3].y;
        const double a1r = t[0].x + M(c1, s1r) + M(c2, s2r), a1i = t[0].y + M(c1, s1i) + M(c2, s2i);
        const double a2r = t[0].x + M(c2, s1r) + M(c1, s2r), a2i = t[0].y + M(c2, s1i) + M(c1, s2i);
        const double u1r = M(n1, d1r) + M(n2, d2r), u1i = M(n1, d1i) + M(n2, d2i);
        const double u2r = M(n2, d1r) - M(n1, d2r), u2i = M(n2, d1i) - M(n1, d2i);
        Y[k].x = t[0].x + s1r + s2r, Y[k].y = t[0].y + s1i + s2i;
        Y[m + k].x = a1r + u1i, Y[m + k].y = a1i - u1r; /* a1 - i u1 */
        Y[4 * m + k].x = a1r - u1i, Y[4 * m + k].y = a1i + u1r;
        Y[2 * m + k].x = a2r + u2i, Y[2 * m + k].y = a2i - u2r;
        Y[3 * m + k].x = a2r - u2i, Y[3 * m + k].y = a2i + u2r;
      } else { /* 3: the small DFT as written, twiddles wh[((j q) % r) (H / r)] */
        const int rs = H / rr;
        for (int q = 0; q < rr; q++) {
          double re = 0.0, im = 0.0;
          for (int j = 0; j < rr; j++) {
            const double2 e = w[2 * (((j * q) % rr) * rs)];
            re += M(t[j].x, e.x) - M(t[j].y, e.y);
            im += M(t[j].x, e.y) + M(t[j].y, e.x);
          }
          Y[q * m + k].x = re, Y[q * m + k].y = im;
        }
      }
    }
    __syncthreads();
  }
  /* X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[H-k]) / 2, O = (Z[k] - conj Z[H-k]) / 2i */
  for (int k = tid; k <= H; k += kThreads) {
    const double2 a = X[k % H], b = X[(H - k) % H];
    const double er = M(0.5, a.x + b.x), ei = M(0.5, a.y - b.y);
    const double or_ = M(0.5, a.y + b.y), oi = M(-0.5, a.x - b.x);
    const double2 tw = k < N ? w[k] : w[0];
    const double xr = er + M(tw.x, or_) - M(tw.y, oi);
    const double xi = ei + M(tw.x, oi) + M(tw.y, or_);
    power[k] = M(xr, xr) + M(xi, xi);
  }
  __syncthreads();
  /* mel: packed as [first_bin, count, weights...] per filter; filter i finds its record by
   * walking the i records before it (80 filters: a few hundred loads from cache). */
  for (int i = tid; i < p.cols; i += kThreads) {
    int64_t off = 0;
    for (int ii = 0; ii < i; ii++) off += 2 + (int64_t)mel[off + 1];
    const int first = (int)mel[off], count = (int)mel[off + 1];
    double e = 0.0;
    for (int k = 0; k < count; k++) e += M(power[first + k], (double)mel[off + 2 + k]);
    out[(int64_t)r * p.ld + i] = (float)M(4.342944819032518, log_d(e > 1e-10 ? e : 1e-10));
  }
}

/* Radices 4, 2, 3, 5 of n as the reference's factorise; -1 when n has another prime factor. */
int factorise(int n, int* f) {
  int k = 0;
  while (n % 4 == 0) f[k++] = 4, n /= 4;
  while (n % 2 == 0) f[k++] = 2, n /= 2;
  while (n % 3 == 0) f[k++] = 3, n /= 3;
  while (n % 5 == 0) f[k++] = 5, n /= 5;
  return n == 1 ? k : -1;
}

}  // namespace

extern "C" void cm_fbank_forward(const cm_fbank_params* p, const float* wav, const float* window,
                                 const float* twiddle_hi, const float* twiddle_lo, const float* mel,
                                 float* out) {
  const int N = p->n_fft;
  Radices rad{};
  if (N <= 0 || N > kMaxFft || N % 2) return; /* validated by the caller, as in the reference */
  rad.count = factorise(N / 2, rad.f);
  if (rad.count < 0 || p->rows <= 0) return;
  fbank_kernel<<<(unsigned)p->rows, kThreads, 0, cm_stream()>>>(*p, rad, wav, window, twiddle_hi,
                                                                 twiddle_lo, mel, out);
  CM_CHECK_LAUNCH("cm_fbank_forward");
}
