/* Log-mel filterbank of one utterance, as SpeechBrain's Fbank computes it (CONMAMBA_SPEC.md §3):
 * centred frames (zero padding n_fft/2 each side), a window w (n_fft, zero-padded when shorter),
 * |FFT|^2, triangular mel filters, 10 log10(max(E, 1e-10)). The top_db clamp needs the maximum of
 * the whole utterance, so the caller applies it (src/audio/fbank.ts).
 *
 * Arithmetic is in double (the FFT, power, mel sums and the log): float32 outputs then match a
 * float64 reference to ~1e-6 dB, and the reference system's float32 output to its own rounding.
 * Twiddles arrive as float pairs hi + lo (hi = (float)t, lo = (float)(t - hi)), exact to ~1e-14. */
#include <stdint.h>

#include "../ffi/ops.h"

/* Two frames at a time: lane l of every vd holds frame 2 p + l. Each lane's arithmetic is the
 * scalar arithmetic (IEEE double, no contraction), so a frame's result does not depend on which
 * frame shares its vector or on how the frames are split over threads. */
typedef double vd __attribute__((vector_size(16)));
typedef struct {
  vd re, im;
} cplx2;
typedef struct {
  double re, im;
} cplx;

/* Natural log in double: x = m 2^e, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
 * s = (m - 1) / (m + 1), |s| <= 0.172, series to s^23 (error < 1e-17). x > 0 and finite. */
static double log_d(double x) {
  union {
    double d;
    uint64_t u;
  } v = {x};
  int e = (int)((v.u >> 52) & 0x7ff) - 1023;
  v.u = (v.u & 0x000fffffffffffffull) | 0x3ff0000000000000ull; /* m in [1, 2) */
  double m = v.d;
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const double s = (m - 1.0) / (m + 1.0), z = s * s;
  /* atanh(s) / s = sum z^i / (2i + 1), by Horner from i = 11 down */
  double p = 1.0 / 23;
  static const double inv_odd[11] = {1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13, 1.0 / 11,
                                     1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3,  1.0};
  for (int i = 0; i < 11; i++) p = p * z + inv_odd[i];
  return 2.0 * s * p + e * 0.6931471805599453;
}

/* Largest power-of-small-prime factorisation of n into radices 4, 2, 3, 5 (n <= 4096). */
static int factorise(int n, int* f) {
  int k = 0;
  while (n % 4 == 0) f[k++] = 4, n /= 4;
  while (n % 2 == 0) f[k++] = 2, n /= 2;
  while (n % 3 == 0) f[k++] = 3, n /= 3;
  while (n % 5 == 0) f[k++] = 5, n /= 5;
  return n == 1 ? k : -1;
}

/* Out-of-place mixed-radix decimation in time: X = DFT_n(x[0], x[s], x[2s], ...).
 * w[j] = exp(-2 pi i j / M) for the top length M; a sub-DFT of length n uses w[j * (M / n)].
 * Each level: r sub-DFTs of length m = n / r, then for every k the twiddled values
 * t_j = Y_j[k] W_n^{jk} go through an r-point DFT: X[q m + k] = sum_j t_j W_r^{jq}. */
static void fft_rec(const cplx2* x, cplx2* X, int n, int s, const cplx* w, int M, const int* f) {
  if (n == 1) {
    X[0] = x[0];
    return;
  }
  const int r = f[0], m = n / r, step = M / n;
  /* The last level reads its r inputs directly (a length-1 DFT is a copy). */
  if (m > 1) {
    for (int j = 0; j < r; j++) fft_rec(x + j * s, X + j * m, m, s * r, w, M, f + 1);
  } else {
    for (int j = 0; j < r; j++) X[j] = x[j * s];
  }
  cplx2 t[5];
  for (int k = 0; k < m; k++) {
    t[0] = X[k];
    for (int j = 1; j < r; j++) {
      const cplx2 y = X[j * m + k];
      const cplx tw = w[j * k * step]; /* j k < n, so the index is < M */
      t[j].re = y.re * tw.re - y.im * tw.im;
      t[j].im = y.re * tw.im + y.im * tw.re;
    }
    if (r == 2) {
      X[k].re = t[0].re + t[1].re, X[k].im = t[0].im + t[1].im;
      X[m + k].re = t[0].re - t[1].re, X[m + k].im = t[0].im - t[1].im;
    } else if (r == 4) { /* W_4 = -i */
      const vd ar = t[0].re + t[2].re, ai = t[0].im + t[2].im;
      const vd br = t[0].re - t[2].re, bi = t[0].im - t[2].im;
      const vd cr = t[1].re + t[3].re, ci = t[1].im + t[3].im;
      const vd dr = t[1].im - t[3].im, di = t[3].re - t[1].re; /* -i (t1 - t3) */
      X[k].re = ar + cr, X[k].im = ai + ci;
      X[m + k].re = br + dr, X[m + k].im = bi + di;
      X[2 * m + k].re = ar - cr, X[2 * m + k].im = ai - ci;
      X[3 * m + k].re = br - dr, X[3 * m + k].im = bi - di;
    } else if (r == 5) {
      /* X_q = sum_j t_j e^{-2 pi i j q / 5}, pairing j with 5 - j:
       * X1,4 = t0 + c1 s1 + c2 s2 -+ i (n1 d1 + n2 d2), X2,3 = t0 + c2 s1 + c1 s2 -+ i (n2 d1 - n1 d2) */
      const double c1 = 0.30901699437494745, c2 = -0.8090169943749475;
      const double n1 = 0.9510565162951535, n2 = 0.5877852522924731;
      const vd s1r = t[1].re + t[4].re, s1i = t[1].im + t[4].im;
      const vd d1r = t[1].re - t[4].re, d1i = t[1].im - t[4].im;
      const vd s2r = t[2].re + t[3].re, s2i = t[2].im + t[3].im;
      const vd d2r = t[2].re - t[3].re, d2i = t[2].im - t[3].im;
      const vd a1r = t[0].re + c1 * s1r + c2 * s2r, a1i = t[0].im + c1 * s1i + c2 * s2i;
      const vd a2r = t[0].re + c2 * s1r + c1 * s2r, a2i = t[0].im + c2 * s1i + c1 * s2i;
      const vd u1r = n1 * d1r + n2 * d2r, u1i = n1 * d1i + n2 * d2i;
      const vd u2r = n2 * d1r - n1 * d2r, u2i = n2 * d1i - n1 * d2i;
      X[k].re = t[0].re + s1r + s2r, X[k].im = t[0].im + s1i + s2i;
      X[m + k].re = a1r + u1i, X[m + k].im = a1i - u1r; /* a1 - i u1 */
      X[4 * m + k].re = a1r - u1i, X[4 * m + k].im = a1i + u1r;
      X[2 * m + k].re = a2r + u2i, X[2 * m + k].im = a2i - u2r;
      X[3 * m + k].re = a2r - u2i, X[3 * m + k].im = a2i + u2r;
    } else { /* 3: the small DFT as written */
      const int rs = M / r;
      for (int q = 0; q < r; q++) {
        vd re = {0.0, 0.0}, im = {0.0, 0.0};
        for (int j = 0; j < r; j++) {
          const cplx e = w[((j * q) % r) * rs];
          re += t[j].re * e.re - t[j].im * e.im;
          im += t[j].re * e.im + t[j].im * e.re;
        }
        X[q * m + k].re = re, X[q * m + k].im = im;
      }
    }
  }
}

void cm_fbank_forward(const cm_fbank_params* p, const float* wav, const float* window,
                      const float* tw_hi, const float* tw_lo, const float* mel, float* out) {
  const int N = p->n_fft, H = N / 2; /* real FFT of N = complex FFT of H = N/2, then a split */
  int f[16];
  if (N > 1024 || N % 2 || factorise(H, f) < 0) return; /* validated by the caller */
  cplx w[1024], wh[512]; /* wh[j] = exp(-2 pi i j / H) = w[2 j] */
  for (int j = 0; j < N; j++) {
    w[j].re = (double)tw_hi[2 * j] + (double)tw_lo[2 * j];
    w[j].im = (double)tw_hi[2 * j + 1] + (double)tw_lo[2 * j + 1];
  }
  for (int j = 0; j < H; j++) wh[j] = w[2 * j];
  cplx2 z[512], Z[512];
  vd power[513];
  for (int r = 0; r < p->rows; r += 2) {
    const int pair = r + 1 < p->rows; /* an odd last frame runs alone in lane 0 */
    int64_t start[2];
    for (int l = 0; l < 2; l++) start[l] = ((int64_t)p->row0 + r + (pair ? l : 0)) * p->hop - N / 2;
    /* z[m] = x[2m] + i x[2m+1], x = windowed frame, zero outside the signal */
    for (int l = 0; l < 2; l++) {
      const float* src = wav + start[l];
      if (start[l] >= 0 && start[l] + N <= p->n_samples) { /* interior frame: no checks */
        for (int m = 0; m < H; m++) {
          z[m].re[l] = (double)src[2 * m] * window[2 * m];
          z[m].im[l] = (double)src[2 * m + 1] * window[2 * m + 1];
        }
      } else {
        for (int m = 0; m < H; m++) {
          const int64_t a = start[l] + 2 * m, b = a + 1;
          z[m].re[l] = (a >= 0 && a < p->n_samples) ? (double)wav[a] * window[2 * m] : 0.0;
          z[m].im[l] = (b >= 0 && b < p->n_samples) ? (double)wav[b] * window[2 * m + 1] : 0.0;
        }
      }
    }
    fft_rec(z, Z, H, 1, wh, H, f);
    /* X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[H-k]) / 2, O = (Z[k] - conj Z[H-k]) / 2i */
    for (int k = 0; k <= H; k++) {
      const cplx2 a = Z[k % H], b = Z[(H - k) % H];
      const vd er = 0.5 * (a.re + b.re), ei = 0.5 * (a.im - b.im);
      const vd or_ = 0.5 * (a.im + b.im), oi = -0.5 * (a.re - b.re);
      const cplx tw = k < N ? w[k] : w[0];
      const vd xr = er + tw.re * or_ - tw.im * oi;
      const vd xi = ei + tw.re * oi + tw.im * or_;
      power[k] = xr * xr + xi * xi;
    }
    /* mel: packed as [first_bin, count, weights...] per filter */
    const float* m = mel;
    for (int i = 0; i < p->cols; i++) {
      const int first = (int)m[0], count = (int)m[1];
      vd e = {0.0, 0.0};
      for (int k = 0; k < count; k++) e += power[first + k] * (double)m[2 + k];
      m += 2 + count;
      for (int l = 0; l < 1 + pair; l++) {
        const double el = e[l];
        out[(int64_t)(r + l) * p->ld + i] =
            (float)(4.342944819032518 * log_d(el > 1e-10 ? el : 1e-10)); /* 10 / ln 10 */
      }
    }
  }
}
