/* The CNN front end's 2-D convolution (CONMAMBA_SPEC.md 4.2) as im2col + matmul on the GPU
 * (wasm/im2col.c). Tensors are (batch, time, freq, channels); the convolution's H axis is frequency
 * and W is time, so columns are ordered (ci, kf, kt):
 *   cols[b, to, fo, (ci k + kf) k + kt] = x[b, r(s to - pad + kt), r(s fo - pad + kf), ci]
 * with r reflecting at both ends (index -1 reads 1, index n reads n - 2).
 *
 * im2col_reflect: one thread per cols entry (a gather). col2im_reflect, its adjoint, is a gather
 * too: one thread per x element finds the (to, kt) and (fo, kf) that read it (the taps whose
 * unreflected index is ts, -ts or 2 (T - 1) - ts, a window of a few outputs) and adds those cols
 * entries from 0 in the order (to, fo, kf, kt), the order in which the Wasm kernel's loops visit
 * them, so the sums (and their bits) are the Wasm kernel's; no atomics. A reflected index outside
 * [0, n) (only when an axis is shorter than the padding needs, which the Wasm kernel does not
 * guard either) reads 0 here instead of out of bounds. */
#include "common.cuh"

namespace {

struct Geo {
  int32_t batch, time, freq, channels, time_out, freq_out, k, s, pad;
};

__device__ inline int32_t reflect(int32_t i, int32_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

__global__ void im2col_kernel(int64_t total, Geo g, const float* __restrict__ x,
                              float* __restrict__ cols) {
  int64_t kk = (int64_t)g.k * g.k, ckk = g.channels * kk;
  CM_FOR(i, total) {
    int64_t e = i % ckk, pos = i / ckk;
    int32_t fo = (int32_t)(pos % g.freq_out);
    pos /= g.freq_out;
    int32_t to = (int32_t)(pos % g.time_out);
    int64_t b = pos / g.time_out;
    int32_t ci = (int32_t)(e / kk), rem = (int32_t)(e % kk);
    int32_t kf = rem / g.k, kt = rem % g.k;
    int32_t ts = reflect(to * g.s - g.pad + kt, g.time);
    int32_t fs = reflect(fo * g.s - g.pad + kf, g.freq);
    float v = 0.0f;
    if (ts >= 0 && ts < g.time && fs >= 0 && fs < g.freq)
      v = x[((b * g.time + ts) * g.freq + fs) * g.channels + ci];
    cols[i] = v;
  }
}

/* The outputs o in [lo, hi] that may read input index `is` of an axis of length n (a superset:
 * the caller checks each tap): those whose unreflected index o s - pad + k' is is, -is or
 * 2 (n - 1) - is. Returns false when there are none. */
__device__ inline bool out_window(int32_t is, int32_t n, int32_t n_out, int32_t s, int32_t pad,
                                  int32_t k, int32_t* lo, int32_t* hi) {
  int32_t qmin = -pad, qmax = (n_out - 1) * s - pad + k - 1;
  int32_t qlo = is, qhi = is;
  if (is > 0 && -is >= qmin) qlo = -is;
  int32_t far = 2 * (n - 1) - is;
  if (far >= n && far <= qmax) qhi = far;
  int32_t lo_num = qlo + pad - (k - 1), hi_num = qhi + pad;
  if (hi_num < 0) return false;
  *lo = lo_num <= 0 ? 0 : (lo_num + s - 1) / s;
  *hi = hi_num / s < n_out - 1 ? hi_num / s : n_out - 1;
  return *lo <= *hi;
}

__global__ void col2im_kernel(int64_t total, Geo g, const float* __restrict__ cols,
                              float* __restrict__ x) {
  int64_t kk = (int64_t)g.k * g.k, ckk = g.channels * kk;
  CM_FOR(i, total) {
    int32_t ci = (int32_t)(i % g.channels);
    int64_t r = i / g.channels;
    int32_t fs = (int32_t)(r % g.freq);
    r /= g.freq;
    int32_t ts = (int32_t)(r % g.time);
    int64_t b = r / g.time;
    float acc = 0.0f;
    int32_t tlo, thi, flo, fhi;
    if (out_window(ts, g.time, g.time_out, g.s, g.pad, g.k, &tlo, &thi) &&
        out_window(fs, g.freq, g.freq_out, g.s, g.pad, g.k, &flo, &fhi)) {
      for (int32_t to = tlo; to <= thi; to++)
        for (int32_t fo = flo; fo <= fhi; fo++) {
          const float* c = cols + ((b * g.time_out + to) * g.freq_out + fo) * ckk + ci * kk;
          for (int32_t kf = 0; kf < g.k; kf++) {
            if (reflect(fo * g.s - g.pad + kf, g.freq) != fs) continue;
            for (int32_t kt = 0; kt < g.k; kt++)
              if (reflect(to * g.s - g.pad + kt, g.time) == ts) acc += c[kf * g.k + kt];
          }
        }
    }
    x[i] = acc;
  }
}

Geo geo_of(const cm_im2col_params* p) {
  return Geo{p->batch,    p->time,     p->freq,  p->channels, p->time_out,
             p->freq_out, p->ksize,    p->stride, p->pad};
}

}  // namespace

void cm_im2col_reflect(const cm_im2col_params* p, const float* x, float* cols) {
  int64_t total = (int64_t)p->batch * p->time_out * p->freq_out * p->channels * p->ksize * p->ksize;
  if (total <= 0 || p->batch <= 0 || p->time_out <= 0 || p->freq_out <= 0 || p->channels <= 0 ||
      p->ksize <= 0)
    return;
  im2col_kernel<<<cm_blocks(total, 256), 256, 0, cm_stream()>>>(total, geo_of(p), x, cols);
  CM_CHECK_LAUNCH("im2col_reflect");
}

void cm_col2im_reflect(const cm_im2col_params* p, const float* cols, float* x) {
  int64_t total = (int64_t)p->batch * p->time * p->freq * p->channels;
  if (p->batch <= 0 || p->time <= 0 || p->freq <= 0 || p->channels <= 0) return;
  if (p->stride <= 0) {
    cm_note_error(cudaErrorInvalidValue, "col2im_reflect: stride must be positive");
    return;
  }
  col2im_kernel<<<cm_blocks(total, 256), 256, 0, cm_stream()>>>(total, geo_of(p), cols, x);
  CM_CHECK_LAUNCH("col2im_reflect");
}
