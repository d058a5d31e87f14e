/* The CNN front end's 2-D convolution (CONMAMBA_SPEC.md 4.2) as im2col + matmul: tensors are
 * (batch, time, freq, channels); the convolution's H axis is frequency and W is time, so the
 * PyTorch weight (out, in, k_freq, k_time) flattened to (out, in k k) multiplies columns ordered
 * (ci, kf, kt). Padding reflects at both ends (index -1 reads 1, index n reads n - 2). */
#include "../ffi/ops.h"

static inline int32_t reflect(int32_t i, int32_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/* Runs BODY for every entry of batch b with col (index into cols) and src (index into x). The
 * channel loop is innermost, so the reflections are computed once per tap; for each x element
 * the (to, fo, kf, kt) that read it still come in the same order, so col2im's sums are unchanged. */
#define IM2COL_LOOP(p, b, BODY)                                                                 \
  for (int32_t to = 0; to < (p)->time_out; to++)                                              \
    for (int32_t fo = 0; fo < (p)->freq_out; fo++) {                                          \
      int64_t col0 = (((int64_t)(b) * (p)->time_out + to) * (p)->freq_out + fo) * ckk;        \
      for (int32_t kf = 0; kf < (p)->ksize; kf++) {                                           \
        int32_t fs = reflect(fo * (p)->stride - (p)->pad + kf, (p)->freq);                    \
        for (int32_t kt = 0; kt < (p)->ksize; kt++) {                                         \
          int32_t ts = reflect(to * (p)->stride - (p)->pad + kt, (p)->time);                  \
          int64_t col1 = col0 + (int64_t)kf * (p)->ksize + kt;                                \
          int64_t src0 = (((int64_t)(b) * (p)->time + ts) * (p)->freq + fs) * (p)->channels; \
          for (int32_t ci = 0; ci < (p)->channels; ci++) {                                    \
            int64_t col = col1 + (int64_t)ci * kk, src = src0 + ci;                           \
            BODY;                                                                             \
          }                                                                                   \
        }                                                                                     \
      }                                                                                       \
    }

/* The same visits with the channel loop outside the taps: cheaper when there are few channels
 * (the first layer reads the 1-channel spectrogram). */
#define IM2COL_LOOP_FEW(p, b, BODY)                                                           \
  for (int32_t to = 0; to < (p)->time_out; to++)                                            \
    for (int32_t fo = 0; fo < (p)->freq_out; fo++)                                          \
      for (int32_t ci = 0; ci < (p)->channels; ci++)                                        \
        for (int32_t kf = 0; kf < (p)->ksize; kf++)                                         \
          for (int32_t kt = 0; kt < (p)->ksize; kt++) {                                     \
            int32_t ts = reflect(to * (p)->stride - (p)->pad + kt, (p)->time);              \
            int32_t fs = reflect(fo * (p)->stride - (p)->pad + kf, (p)->freq);              \
            int64_t col = (((int64_t)(b) * (p)->time_out + to) * (p)->freq_out + fo) * ckk + \
                          (ci * (p)->ksize + kf) * (p)->ksize + kt;                         \
            int64_t src = (((int64_t)(b) * (p)->time + ts) * (p)->freq + fs) * (p)->channels + ci; \
            BODY;                                                                           \
          }

#define FEW_CHANNELS 4

void cm_im2col_reflect(const cm_im2col_params* p, const float* x, float* cols) {
  int64_t kk = (int64_t)p->ksize * p->ksize, ckk = p->channels * kk;
  for (int32_t b = 0; b < p->batch; b++) {
    if (p->channels < FEW_CHANNELS) {
      IM2COL_LOOP_FEW(p, b, cols[col] = x[src])
    } else {
      IM2COL_LOOP(p, b, cols[col] = x[src])
    }
  }
}

void cm_col2im_reflect(const cm_im2col_params* p, const float* cols, float* x) {
  int64_t kk = (int64_t)p->ksize * p->ksize, ckk = p->channels * kk;
  int64_t per = (int64_t)p->time * p->freq * p->channels;
  for (int32_t b = 0; b < p->batch; b++) {
    for (int64_t i = 0; i < per; i++) x[(int64_t)b * per + i] = 0.0f;
    if (p->channels < FEW_CHANNELS) {
      IM2COL_LOOP_FEW(p, b, x[src] += cols[col])
    } else {
      IM2COL_LOOP(p, b, x[src] += cols[col])
    }
  }
}
