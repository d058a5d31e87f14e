/* Generated from ffi/ops.ts by ffi/gen_header.ts: edit the table there, then regenerate. */
#ifndef CM_OPS_H
#define CM_OPS_H

#include <stdint.h>

#if defined(__wasm__)
#define CM_API __attribute__((visibility("default")))
#else
#define CM_API
#endif

#define CM_OP_COUNT 56

typedef struct cm_matmul_params {
  int32_t batch; /* number of independent products */
  int32_t m; /* rows of C */
  int32_t n; /* columns of C */
  int32_t k; /* inner dimension */
  int32_t lda; /* row stride of A as stored ((M, K), or (K, M) when trans_a) */
  int32_t ldb; /* row stride of B as stored ((K, N), or (N, K) when trans_b) */
  int32_t ldc; /* row stride of C */
  int32_t stride_a; /* elements between batches of A (0: shared) */
  int32_t stride_b; /* elements between batches of B (0: shared, e.g. a weight) */
  int32_t stride_c; /* elements between batches of C */
  int32_t trans_a; /* 1: A is stored (K, M) */
  int32_t trans_b; /* 1: B is stored (N, K) */
  int32_t accumulate; /* 1: C += op(A) op(B); 0: C = op(A) op(B) */
  int32_t bf16_inputs; /* 1: A and B rounded to bf16 (nearest even) first; fp32 accumulation */
  int32_t a_bf16; /* 1: A is stored as packed bf16 (needs bf16_inputs; see bf16_pack) */
  int32_t b_bf16; /* 1: B is stored as packed bf16 (needs bf16_inputs) */
  int32_t epilogue; /* 1: also y = dropout(gelu(C)) after the bias, gelu_dropout_forward's bits (batch 1, ldc n) */
  float p; /* the epilogue's drop probability in [0, 1) */
  int32_t seed; /* the epilogue's dropout seed */
  int32_t stream; /* the epilogue's dropout stream */
  int32_t row0; /* global row of C's first row (thread split): element (i, j) is mask index (row0 + i) n + j */
  int32_t y_bf16; /* 1: the epilogue's y written as packed bf16 */
} cm_matmul_params;

typedef struct cm_elementwise_params {
  int32_t n; /* number of elements */
  float alpha; /* scalar operand (scale) */
  int32_t y_bf16; /* gelu_forward, silu_forward: 1: y written as packed bf16 (nearest even) */
} cm_elementwise_params;

typedef struct cm_rows_params {
  int32_t rows; /* number of rows handled by this call */
  int32_t cols; /* length of the last axis handled by this call */
  int32_t ld; /* row stride in elements (>= cols) */
  int32_t accumulate; /* 1: outputs are added to, 0: overwritten */
  float eps; /* LayerNorm epsilon */
  int32_t y_bf16; /* layernorm_forward: 1: y written as packed bf16 (rounded to nearest even) */
} cm_rows_params;

typedef struct cm_ln_backward_params {
  int32_t rows; /* rows of the whole call (a split part sees all of them, from its chunk0 on) */
  int32_t cols; /* length of the normalised last axis */
  int32_t ld; /* row stride of x, dy and dx in elements (>= cols) */
  int32_t accumulate; /* 1: dx += its gradient (the bits of a separate add), 0: dx = */
  int32_t chunk_rows; /* rows per partial sum of the parameter gradients (a multiple of 8) */
  int32_t chunks; /* chunks handled by this call: ceil(rows / chunk_rows) for the whole call */
  int32_t chunk0; /* the first chunk of this call within the whole call */
} cm_ln_backward_params;

typedef struct cm_scan_params {
  int32_t batch; /* sequences */
  int32_t seqlen; /* time steps T */
  int32_t channels; /* inner channels Di handled by this call */
  int32_t dstate; /* state size Ns (16) */
  int32_t ld_u; /* row stride of u, delta, out and their gradients (>= channels) */
  int32_t ld_bc; /* row stride of B and C and of dB, dC (they are columns of x_proj's output) */
  int32_t ld_z; /* row stride of z and dz (the second half of in_proj's output) */
  int32_t delta_softplus; /* 1: delta = softplus(delta + delta_bias), identity above 20 */
  int32_t chunk; /* time steps between saved states (the backward recomputes inside a chunk) */
  int32_t nchunks; /* ceil(seqlen / chunk) */
  int32_t ld_state; /* elements between saved states of one sequence: Di of the whole call * dstate */
  int32_t reverse; /* 1: step t reads and writes row T-1-t (the bits of flip, scan, flip) */
  int32_t accumulate_dz; /* 1: dz += its gradient (the bits of a separate add), 0: dz = */
  int32_t half; /* 1: out = 0.5 y (+ other), and the backward reads 0.5 dout: BiMamba's halves (exact) */
  int32_t out_bf16; /* forward: 1: out written as packed bf16 (nearest even; out_proj's input) */
} cm_scan_params;

typedef struct cm_conv1d_params {
  int32_t batch; /* sequences */
  int32_t seqlen; /* time steps T (the output has as many) */
  int32_t channels; /* channels handled by this call (depthwise: one filter each) */
  int32_t kernel; /* taps K */
  int32_t pad_left; /* zeros before t = 0: K - 1 causal, (K - 1) / 2 'same' */
  int32_t ld_x; /* row stride of x and dx (>= channels) */
  int32_t ld_y; /* row stride of y, dy and dpre (>= channels) */
  int32_t activation; /* 0: none, 1: SiLU fused after the bias */
  int32_t reverse; /* 1: time t is row T-1-t of every tensor (the bits of flip, conv, flip) */
  int32_t accumulate_dx; /* 1: dx += its gradient (the bits of a separate add), 0: dx = */
} cm_conv1d_params;

typedef struct cm_seq_params {
  int32_t batch; /* sequences */
  int32_t seqlen; /* time steps T */
  int32_t width; /* features per time step */
} cm_seq_params;

typedef struct cm_im2col_params {
  int32_t batch; /* images handled by this call */
  int32_t time; /* input frames T (the convolution's W axis) */
  int32_t freq; /* input frequency bins F (the convolution's H axis) */
  int32_t channels; /* input channels Cin */
  int32_t time_out; /* output frames */
  int32_t freq_out; /* output bins */
  int32_t ksize; /* kernel size along both axes (3) */
  int32_t stride; /* stride along both axes (2) */
  int32_t pad; /* reflect padding on each side of both axes (1) */
} cm_im2col_params;

typedef struct cm_mask_params {
  int32_t batch; /* sequences */
  int32_t seqlen; /* time steps T */
  int32_t width; /* features per time step */
  float value; /* what frames t >= length become */
} cm_mask_params;

typedef struct cm_dropout_params {
  int32_t n; /* elements handled by this call */
  float p; /* drop probability in [0, 1) */
  int32_t seed; /* run seed */
  int32_t stream; /* which mask of the run (e.g. step * 4096 + call site) */
  int32_t index0; /* global index of this call's first element (set by the thread split) */
  int32_t y_bf16; /* dropout, gelu_dropout_forward: 1: y written as packed bf16 (nearest even) */
} cm_dropout_params;

typedef struct cm_chunked_rows_params {
  int32_t rows; /* rows of the whole call (a split part sees all of them, from its chunk0 on) */
  int32_t cols; /* columns of the op's narrow side (GLU: its output's) */
  int32_t chunk_rows; /* rows per partial column sum (a multiple of 8) */
  int32_t chunks; /* chunks handled by this call: ceil(rows / chunk_rows) for the whole call */
  int32_t chunk0; /* the first chunk of this call within the whole call */
  int32_t out_bf16; /* 1: dx written as packed bf16 (the column sums from its float32 values) */
} cm_chunked_rows_params;

typedef struct cm_dropout_rows_params {
  int32_t rows; /* rows of the whole call (a split part sees all of them, from its chunk0 on) */
  int32_t cols; /* elements per row (rows are contiguous) */
  float p; /* drop probability in [0, 1) */
  float alpha; /* scale_dropout's factor (gelu_dropout_backward does not read it) */
  int32_t seed; /* run seed */
  int32_t stream; /* which mask of the run (e.g. step * 4096 + call site) */
  int32_t chunk_rows; /* rows per partial column sum (a multiple of 8) */
  int32_t chunks; /* chunks handled by this call: ceil(rows / chunk_rows) for the whole call */
  int32_t chunk0; /* the first chunk of this call within the whole call */
  int32_t out_bf16; /* 1: dx / y written as packed bf16 (the sums from its float32 values) */
} cm_dropout_rows_params;

typedef struct cm_dropout_add_params {
  int32_t n; /* elements handled by this call */
  float p; /* drop probability in [0, 1) */
  float alpha; /* scale of the dropped-out branch (0.5: the macaron FFN's half step) */
  int32_t seed; /* run seed */
  int32_t stream; /* which mask of the run (e.g. step * 4096 + call site) */
  int32_t index0; /* global index of this call's first element (set by the thread split) */
} cm_dropout_add_params;

typedef struct cm_add_ln_params {
  int32_t rows; /* rows handled by this call */
  int32_t cols; /* the normalised last axis */
  int32_t ld; /* row stride of x, y, s and ln (= cols) */
  float eps; /* LayerNorm epsilon */
  float p; /* drop probability of y in [0, 1) (0: none) */
  float alpha; /* scale of the dropped-out y (1 with p 0: a plain add) */
  int32_t seed; /* run seed */
  int32_t stream; /* which mask of the run */
  int32_t row0; /* global row of this call's first row (thread split): mask index (row0 + r) cols + j */
  int32_t y_bf16; /* 1: ln written as packed bf16 (nearest even) */
} cm_add_ln_params;

typedef struct cm_bf16_params {
  int32_t pairs; /* float32 slots of the packed side: 2 bf16 values each */
} cm_bf16_params;

typedef struct cm_ctc_params {
  int32_t batch; /* utterances handled by this call */
  int32_t time; /* padded frames T */
  int32_t vocab; /* classes V */
  int32_t max_target; /* padded target length S */
  int32_t lattice; /* 2 S + 1 */
  int32_t blank; /* blank id (0) */
  int32_t zero_infinity; /* 1: an infeasible utterance gets loss 0 and gradient 0 */
  float grad_scale; /* factor of the gradient (1 / batch times the loss weight), applied to each state's occupancy in float64 before it is rounded */
} cm_ctc_params;

typedef struct cm_loss_params {
  int32_t rows; /* positions handled by this call */
  int32_t vocab; /* classes V */
  float smoothing; /* label smoothing eps (0: NLL) */
  float grad_scale; /* factor of the gradient, applied in float64 before it is rounded */
} cm_loss_params;

typedef struct cm_adam_params {
  int32_t n; /* elements */
  float beta1; /* first-moment decay */
  float beta2; /* second-moment decay */
  float eps; /* added to the root of the bias-corrected second moment */
  float weight_decay; /* Adam's L2 term (g += wd p) when not decoupled */
  int32_t decoupled; /* 1: AdamW, p *= decay_factor first; 0: Adam */
  float decay_factor; /* 1 - lr wd (computed in float64 by the caller, as PyTorch does) */
  float step_size; /* lr / (1 - beta1^step) */
  float bc2_sqrt; /* sqrt(1 - beta2^step) */
  float grad_scale; /* multiplies the gradient first (the clipping coefficient, or 1) */
} cm_adam_params;

typedef struct cm_blocks_params {
  int32_t blocks; /* blocks handled by this call */
  int32_t block; /* elements per block (the last one may be shorter) */
  int32_t n; /* elements of the whole vector */
  int32_t first_block; /* index of this call's first block (set by the thread split) */
} cm_blocks_params;

typedef struct cm_fbank_params {
  int32_t rows; /* frames computed by this call */
  int32_t cols; /* mel filters (80) */
  int32_t ld; /* row stride of the output */
  int32_t row0; /* index of this call's first frame in the utterance */
  int32_t n_samples; /* samples of the waveform */
  int32_t n_fft; /* FFT length (even, n_fft/2 a product of 2, 3, 5; <= 1024) */
  int32_t hop; /* samples between frames (160) */
} cm_fbank_params;

typedef struct cm_resample_params {
  int32_t rows; /* output blocks computed by this call (one per `orig` input samples) */
  int32_t cols; /* output samples per block (the new rate's factor) */
  int32_t ld; /* row stride of the output */
  int32_t row0; /* index of this call's first block */
  int32_t n_in; /* input samples */
  int32_t taps; /* kernel length per phase (2 width + orig) */
  int32_t orig; /* input samples per block (the old rate's factor) */
  int32_t width; /* taps before the block start */
} cm_resample_params;

typedef struct cm_gather_params {
  int32_t rows; /* ids handled by this call */
  int32_t cols; /* columns handled by this call */
  int32_t ld; /* row stride of the table and of y, dy (the embedding width) */
  int32_t vocab; /* rows of the table */
} cm_gather_params;

typedef struct cm_time_copy_params {
  int32_t batch; /* sequences handled by this call */
  int32_t len; /* time steps copied */
  int32_t width; /* features per time step */
  int32_t x_seqlen; /* time steps of x */
  int32_t x_t0; /* first time step read from x */
  int32_t y_seqlen; /* time steps of y */
  int32_t y_t0; /* first time step written in y */
} cm_time_copy_params;

typedef struct cm_swap_params {
  int32_t batch; /* leading blocks handled by this call */
  int32_t d1; /* first swapped axis of x */
  int32_t d2; /* second swapped axis of x */
  int32_t inner; /* contiguous elements moved together (1: a plain transpose) */
  int32_t y_bf16; /* 1: y written as packed bf16 (nearest even; for a matmul alone) */
} cm_swap_params;

typedef struct cm_attn_params {
  int32_t rows; /* score rows handled by this call (of batch * heads * tq) */
  int32_t cols; /* keys S */
  int32_t tq; /* queries per (batch, head) */
  int32_t heads; /* heads H */
  int32_t causal; /* 1: key j > query i is masked (self-attention, tq == S) */
  int32_t row0; /* global index of this call's first row (set by the thread split) */
  float scale; /* multiplies the raw scores before the mask and the softmax */
} cm_attn_params;

typedef struct cm_axis_params {
  int32_t outer; /* blocks before the reduced axis handled by this call */
  int32_t n; /* length of the reduced axis */
  int32_t inner; /* elements after the reduced axis */
  float divisor; /* the sum is divided by this (1: sum, n: mean) */
} cm_axis_params;

/* C = op(A) op(B) (+ C when accumulate) (+ bias per column). Each C element is a sequential float32 sum over k in order, whatever the blocking or thread split. A packed bf16 operand (a_bf16 / b_bf16, bf16 mode only) holds element e at bf16 index e from its pointer (two per float32 slot, bf16_pack's layout); lda, ldb and strides count elements either way, so it gives the same C as its float32 widening. With epilogue 1, also y = dropout(gelu(C)) element by element, the bits of gelu_dropout_forward on C with index0 = row0 n (the FFN's first Linear, GELU and dropout: y without a pass re-reading C).
 *   a: (batch, m, k) or (batch, k, m)
 *   b: (batch, k, n) or (batch, n, k)
 *   bias: (n), may be NULL
 *   c: (batch, m, n)
 *   y: (m, n), may be NULL */
CM_API void cm_matmul(const cm_matmul_params* p, const float* a, const float* b, const float* bias, float* c, float* y);

/* y[j] (+)= sum over rows of x[r, j], rows in order (bias and LayerNorm beta gradients).
 *   x: (rows, ld)
 *   y: (cols) */
CM_API void cm_sum_rows(const cm_rows_params* p, const float* x, float* y);

/* y = a + b; y may alias a or b.
 *   a: (n)
 *   b: (n)
 *   y: (n) */
CM_API void cm_add(const cm_elementwise_params* p, const float* a, const float* b, float* y);

/* y = a * b; y may alias a or b.
 *   a: (n)
 *   b: (n)
 *   y: (n) */
CM_API void cm_mul(const cm_elementwise_params* p, const float* a, const float* b, float* y);

/* y = alpha * x; y may alias x.
 *   x: (n)
 *   y: (n) */
CM_API void cm_scale(const cm_elementwise_params* p, const float* x, float* y);

/* y = x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (exact, erf-based GELU).
 *   x: (n)
 *   y: (n) */
CM_API void cm_gelu_forward(const cm_elementwise_params* p, const float* x, float* y);

/* dx = dy * (Phi(x) + x phi(x)).
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_gelu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx);

/* y = x * sigmoid(x) (Swish).
 *   x: (n)
 *   y: (n) */
CM_API void cm_silu_forward(const cm_elementwise_params* p, const float* x, float* y);

/* dx = dy * s (1 + x (1 - s)), s = sigmoid(x).
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_silu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx);

/* LayerNorm over the last axis (CONMAMBA_SPEC.md 4.16): y = (x - mean) rstd gamma + beta, rstd = 1 / sqrt(biased var + eps); saves mean and rstd for the backward. With y_bf16, y is the float32 value rounded to packed bf16 (an input only matmuls read, in bf16 mode).
 *   x: (rows, ld)
 *   gamma: (cols)
 *   beta: (cols)
 *   y: (rows, ld)
 *   mean: (rows)
 *   rstd: (rows) */
CM_API void cm_layernorm_forward(const cm_rows_params* p, const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd);

/* A residual sum and the LayerNorm after it in one pass: s = x + alpha dropout(y), dropout_add's bits with mask index (row0 + r) cols + j (p 0, alpha 1: the bits of add), then ln, mean, rstd = layernorm_forward of s (its bits; ln packed bf16 with y_bf16). The LayerNorm reads s from the pass that wrote it, not from memory again.
 *   x: (rows, ld)
 *   y: (rows, ld)
 *   gamma: (cols)
 *   beta: (cols)
 *   s: (rows, ld)
 *   ln: (rows, ld)
 *   mean: (rows)
 *   rstd: (rows) */
CM_API void cm_dropout_add_layernorm(const cm_add_ln_params* p, const float* x, const float* y, const float* gamma, const float* beta, float* s, float* ln, float* mean, float* rstd);

/* One pass over x and dy: dx (+)= rstd (g - mean(g) - xhat mean(g xhat)), g = dy gamma, per row; and the parameter gradients' partial sums per chunk of chunk_rows rows, in a fixed order: the chunk's 8 groups of chunk_rows / 8 consecutive rows are each summed in row order from 0, then added from 0 in group order (terms dy * ((x - mean) * rstd) and dy, each rounded). dgamma and dbeta are sum_rows over the chunks (layerNormBackward).
 *   x: (rows, ld)
 *   gamma: (cols)
 *   mean: (rows)
 *   rstd: (rows)
 *   dy: (rows, ld)
 *   dx: (rows, ld)
 *   part: (chunks, 2, cols): per chunk, sum dy xhat then sum dy */
CM_API void cm_layernorm_backward(const cm_ln_backward_params* p, const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy, float* dx, float* part);

/* y = exp(x - max) / sum exp(x - max), per row.
 *   x: (rows, ld)
 *   y: (rows, ld) */
CM_API void cm_softmax_forward(const cm_rows_params* p, const float* x, float* y);

/* dx = y (dy - sum(dy y)), per row.
 *   y: (rows, ld)
 *   dy: (rows, ld)
 *   dx: (rows, ld) */
CM_API void cm_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx);

/* y = (x - max) - log sum exp(x - max), per row.
 *   x: (rows, ld)
 *   y: (rows, ld) */
CM_API void cm_log_softmax_forward(const cm_rows_params* p, const float* x, float* y);

/* dx = dy - exp(y) sum(dy), per row.
 *   y: (rows, ld)
 *   dy: (rows, ld)
 *   dx: (rows, ld) */
CM_API void cm_log_softmax_backward(const cm_rows_params* p, const float* y, const float* dy, float* dx);

/* y = exp(x) (A = -exp(A_log)); its backward is dy * y (mul).
 *   x: (n)
 *   y: (n) */
CM_API void cm_exp_forward(const cm_elementwise_params* p, const float* x, float* y);

/* y = x > 0 ? x : alpha x (CNN front end, alpha 0.01, CONMAMBA_SPEC.md 4.2).
 *   x: (n)
 *   y: (n) */
CM_API void cm_leaky_relu_forward(const cm_elementwise_params* p, const float* x, float* y);

/* dx = x > 0 ? dy : alpha dy.
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_leaky_relu_backward(const cm_elementwise_params* p, const float* x, const float* dy, float* dx);

/* y = x[:, :cols] sigmoid(x[:, cols:]) (GLU over channels, CONMAMBA_SPEC.md 4.6).
 *   x: (rows, 2 cols)
 *   y: (rows, cols) */
CM_API void cm_glu_forward(const cm_rows_params* p, const float* x, float* y);

/* dx[:, :cols] = dy s, dx[:, cols:] = dy a s (1 - s), a = x[:, :cols], s = sigmoid(x[:, cols:]). With part, also dx's column sums per chunk in gelu_dropout_backward's order (the bias gradient of the pointwise conv before the GLU).
 *   x: (rows, 2 cols)
 *   dy: (rows, cols)
 *   dx: (rows, 2 cols)
 *   part: (chunks, 2 cols): per chunk, the column sums of dx, may be NULL */
CM_API void cm_glu_backward(const cm_chunked_rows_params* p, const float* x, const float* dy, float* dx, float* part);

/* y = keep ? x / (1 - p) : 0, keep = hash(seed, stream, index0 + i) >= p (a counter-based draw: the mask depends on neither threads nor call order). The backward is this same op on dy with the same seed and stream. With y_bf16, y rounded to packed bf16 (attention probabilities that only the product with V reads, in bf16 mode).
 *   x: (n)
 *   y: (n) */
CM_API void cm_dropout(const cm_dropout_params* p, const float* x, float* y);

/* y = dropout(leaky_relu(x)) in one pass, alpha the slope: leaky_relu_forward's value, then dropout's mask and product, the bits of the two ops in sequence (the CNN front end).
 *   x: (n)
 *   y: (n) */
CM_API void cm_leaky_relu_dropout_forward(const cm_dropout_add_params* p, const float* x, float* y);

/* dx = leaky_relu_backward(x, dropout(dy)) in one pass, the bits of the two ops in sequence; x is the LeakyReLU's input.
 *   x: (n)
 *   dy: (n)
 *   dx: (n) */
CM_API void cm_leaky_relu_dropout_backward(const cm_dropout_add_params* p, const float* x, const float* dy, float* dx);

/* y = dropout(gelu(x)) in one pass: gelu_forward's float32 value, then dropout's mask and product, the bits of the two ops in sequence (the FFN's inner activation). With y_bf16, y is that value rounded to packed bf16 (the next Linear's input, in bf16 mode).
 *   x: (n)
 *   y: (n) */
CM_API void cm_gelu_dropout_forward(const cm_dropout_params* p, const float* x, float* y);

/* dx = gelu_backward(x, dropout(dy)) in one pass, the bits of the two ops in sequence (the mask of element (r, j) is dropout's at index r cols + j); x is the GELU's input. With part, also dx's column sums per chunk of chunk_rows rows in layernorm_backward's order (the bias gradient of the Linear before the GELU, src/tensor/chunk_sums.ts).
 *   x: (rows, cols)
 *   dy: (rows, cols)
 *   dx: (rows, cols)
 *   part: (chunks, cols): per chunk, the column sums of dx, may be NULL */
CM_API void cm_gelu_dropout_backward(const cm_dropout_rows_params* p, const float* x, const float* dy, float* dx, float* part);

/* s = x + alpha dropout(y) in one pass (a residual around a dropped-out branch): dropout's mask and product, then alpha times it, then the sum, each rounded as the three ops in sequence. The backward is dx = ds and dy = scale_dropout(ds).
 *   x: (n)
 *   y: (n)
 *   s: (n) */
CM_API void cm_dropout_add(const cm_dropout_add_params* p, const float* x, const float* y, float* s);

/* y = dropout(alpha x) in one pass (dropout_add's backward for its branch): the bits of scale then dropout, the mask of element (r, j) at index r cols + j. With part, also y's column sums per chunk in gelu_dropout_backward's order (the bias gradient of the Linear that ends the branch).
 *   x: (rows, cols)
 *   y: (rows, cols)
 *   part: (chunks, cols): per chunk, the column sums of y, may be NULL */
CM_API void cm_scale_dropout(const cm_dropout_rows_params* p, const float* x, float* y, float* part);

/* y = x rounded to bf16, nearest even (NaN stays NaN), two per float32 slot, element 2i in the low half: a saved matmul operand kept at half the memory in bf16 matmul mode.
 *   x: (2 pairs)
 *   y: (pairs) as (2 pairs) bf16 */
CM_API void cm_bf16_pack(const cm_bf16_params* p, const float* x, float* y);

/* y = x widened to float32 (exact): the inverse of bf16_pack up to its rounding.
 *   x: (pairs) as (2 pairs) bf16
 *   y: (2 pairs) */
CM_API void cm_bf16_unpack(const cm_bf16_params* p, const float* x, float* y);

/* y[b, t] = x[b, T - 1 - t] (BiMamba's backward direction, CONMAMBA_SPEC.md 4.9); its own backward. y must not alias x.
 *   x: (batch, seqlen, width)
 *   y: (batch, seqlen, width) */
CM_API void cm_flip_time(const cm_seq_params* p, const float* x, float* y);

/* y[b, t] = x[b, t] for t < lengths[b], else value (the Conformer's conv-module output at padded frames, CONMAMBA_SPEC.md 4.6); the backward is this op on dy with value 0. y may alias x.
 *   x: (batch, seqlen, width)
 *   lengths: (batch): valid frames per sequence, exact floats
 *   y: (batch, seqlen, width) */
CM_API void cm_masked_fill_time(const cm_mask_params* p, const float* x, const float* lengths, float* y);

/* y[b, t, c] = act(bias[c] + sum_j w[c, j] x[b, t - pad_left + j, c]), x = 0 outside [0, T): Mamba's causal conv (K 4, SiLU, CONMAMBA_SPEC.md 4.7) and the conv module's 'same' conv (K 31, no activation, 4.6). y has row stride channels of the whole call.
 *   x: (batch, seqlen, ld_x)
 *   w: (channels, kernel)
 *   bias: (channels), may be NULL
 *   y: (batch, seqlen, channels) */
CM_API void cm_conv1d_depthwise_forward(const cm_conv1d_params* p, const float* x, const float* w, const float* bias, float* y);

/* Gradients of conv1d_depthwise_forward (the activation's input is recomputed); dw and dbias sum over batch then time, in order.
 *   x: (batch, seqlen, ld_x)
 *   w: (channels, kernel)
 *   bias: (channels), may be NULL
 *   dy: (batch, seqlen, channels)
 *   dpre: (batch, seqlen, channels): scratch, dL/d(pre-activation)
 *   dx: (batch, seqlen, ld_x)
 *   dw: (channels, kernel)
 *   dbias: (channels) */
CM_API void cm_conv1d_depthwise_backward(const cm_conv1d_params* p, const float* x, const float* w, const float* bias, const float* dy, float* dpre, float* dx, float* dw, float* dbias);

/* The Mamba recurrence (CONMAMBA_SPEC.md 4.7): d = softplus(delta + delta_bias), h_t = exp(d A) h_(t-1) + d B_t u_t, y_t = C_t . h_t + D u_t, out = y silu(z). Saves h at the start of every chunk for the backward. states' row stride is the whole call's channels * dstate. With half, out = 0.5 y silu(z), then + other when given: BiMamba's average of its two directions, each scan writing its half and the second adding the first's (for finite normal values the bits of (o_f + o_b) 0.5, a power-of-two scaling commuting with rounding). With out_bf16, out is that value rounded to packed bf16.
 *   u: (batch, seqlen, ld_u)
 *   delta: (batch, seqlen, ld_u)
 *   A: (channels, dstate)
 *   B: (batch, seqlen, ld_bc)
 *   C: (batch, seqlen, ld_bc)
 *   D: (channels), may be NULL
 *   z: (batch, seqlen, ld_z), may be NULL
 *   delta_bias: (channels), may be NULL
 *   out: (batch, seqlen, ld_u)
 *   states: (batch, nchunks, channels of the call, dstate)
 *   other: (batch, seqlen, ld_u), may be NULL */
CM_API void cm_selective_scan_forward(const cm_scan_params* p, const float* u, const float* delta, const float* A, const float* B, const float* C, const float* D, const float* z, const float* delta_bias, float* out, float* states, const float* other);

/* Gradients of selective_scan_forward: states are recomputed chunk by chunk from the saved ones (no (T, Ns) state per channel is stored). Parameter gradients come out per sequence; the caller sums them over the batch (sum_rows), so no two threads add into one value.
 *   u: (batch, seqlen, ld_u)
 *   delta: (batch, seqlen, ld_u)
 *   A: (channels, dstate)
 *   B: (batch, seqlen, ld_bc)
 *   C: (batch, seqlen, ld_bc)
 *   D: (channels), may be NULL
 *   z: (batch, seqlen, ld_z), may be NULL
 *   delta_bias: (channels), may be NULL
 *   states: (batch, nchunks, channels, dstate)
 *   dout: (batch, seqlen, ld_u)
 *   du: (batch, seqlen, ld_u)
 *   ddelta: (batch, seqlen, ld_u)
 *   dA: (batch, channels, dstate): per-sequence partial sums
 *   dB: (batch, seqlen, ld_bc)
 *   dC: (batch, seqlen, ld_bc)
 *   dD: (batch, channels): per-sequence partial sums, may be NULL
 *   dz: (batch, seqlen, ld_z), may be NULL
 *   ddelta_bias: (batch, channels): per-sequence partial sums, may be NULL */
CM_API void cm_selective_scan_backward(const cm_scan_params* p, const float* u, const float* delta, const float* A, const float* B, const float* C, const float* D, const float* z, const float* delta_bias, const float* states, const float* dout, float* du, float* ddelta, float* dA, float* dB, float* dC, float* dD, float* dz, float* ddelta_bias);

/* cols[b, t, f, (ci kf + kf') k + kt] = x[b, r(s t - pad + kt), r(s f - pad + kf), ci], r reflecting at both ends (CONMAMBA_SPEC.md 4.2: H = freq, W = time, weight (out, in, k_freq, k_time)); a conv2d is then cols . W^T + bias.
 *   x: (batch, time, freq, channels)
 *   cols: (batch, time_out, freq_out, channels*ksize*ksize) */
CM_API void cm_im2col_reflect(const cm_im2col_params* p, const float* x, float* cols);

/* The adjoint of im2col_reflect: x = sum of the cols entries that read it, in a fixed order.
 *   cols: (batch, time_out, freq_out, channels*ksize*ksize)
 *   x: (batch, time, freq, channels) */
CM_API void cm_col2im_reflect(const cm_im2col_params* p, const float* cols, float* x);

/* Per-utterance CTC negative log-likelihood (CONMAMBA_SPEC.md 7.1) by the log-space forward-backward in float64, and grad_scale times its gradient with respect to log_probs taken as free inputs (minus the state occupancy; 0 past the input length).
 *   log_probs: (batch, time, vocab)
 *   targets: (batch, max_target): ids as floats
 *   input_lengths: (batch)
 *   target_lengths: (batch)
 *   loss: (batch)
 *   grad: (batch, time, vocab): d loss_b / d log_probs
 *   scratch: (batch, 4 time lattice): alpha and beta in float64 */
CM_API void cm_ctc_loss(const cm_ctc_params* p, const float* log_probs, const float* targets, const float* input_lengths, const float* target_lengths, float* loss, float* grad, float* scratch);

/* loss_r = w_r sum_k q(k) (log q(k) - log_probs[r, k]), q = 1 - eps at the target and eps / (V - 1) elsewhere (CONMAMBA_SPEC.md 7.2, 13 G17: the KL with its entropy term); eps = 0 gives the NLL.
 *   log_probs: (rows, vocab)
 *   targets: (rows): ids as floats
 *   weights: (rows): 1 to count the position, 0 to skip it
 *   loss: (rows)
 *   grad: (rows, vocab): d loss_r / d log_probs */
CM_API void cm_smoothed_nll(const cm_loss_params* p, const float* log_probs, const float* targets, const float* weights, float* loss, float* grad);

/* One Adam/AdamW update as PyTorch 2.0.1 (CONMAMBA_SPEC.md 8.1): g = grad_scale grad (+ wd p for Adam); p *= decay_factor (AdamW); m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g g; p += -step_size m / (sqrt(v) / bc2_sqrt + eps).
 *   param: (n)
 *   grad: (n)
 *   m: (n)
 *   v: (n) */
CM_API void cm_adam_step(const cm_adam_params* p, float* param, const float* grad, float* m, float* v);

/* partial[j] = sum of x^2 over block j, in order (the caller adds the partials in float64: gradient-norm clipping without atomics).
 *   x: (n)
 *   partial: (blocks) */
CM_API void cm_sum_squares_blocks(const cm_blocks_params* p, const float* x, float* partial);

/* y[r] = table[ids[r]] (CONMAMBA_SPEC.md 4.13, nn.Embedding without padding_idx); a row whose id is not an integer in [0, vocab) is zeros (the caller rejects such ids first).
 *   table: (vocab, ld)
 *   ids: (rows): ids as floats
 *   y: (rows, ld) */
CM_API void cm_embedding_forward(const cm_gather_params* p, const float* table, const float* ids, float* y);

/* dtable = 0, then dtable[ids[r]] += dy[r] for r in order: a thread owns a range of columns of every table row, so no two threads add into one value and repeated ids are summed in the same order for any thread count.
 *   ids: (rows): ids as floats
 *   dy: (rows, ld)
 *   dtable: (vocab, ld) */
CM_API void cm_embedding_backward(const cm_gather_params* p, const float* ids, const float* dy, float* dtable);

/* y[b, y_t0 + t] = x[b, x_t0 + t] for t < len; the rest of y is left as it is. Slicing and concatenation along time (the Mamba decoder's [memory; LN(target)], CONMAMBA_SPEC.md 4.12) and their backward.
 *   x: (batch, x_seqlen, width)
 *   y: (batch, y_seqlen, width) */
CM_API void cm_copy_time(const cm_time_copy_params* p, const float* x, float* y);

/* y = alpha.
 *   y: (n) */
CM_API void cm_fill(const cm_elementwise_params* p, float* y);

/* y[n, j, i] = x[n, i, j]: heads out of and back into the feature axis ((B, T, H, dh) <-> (B, H, T, dh)) and, with inner 1, a transpose of the last two axes. Its backward is itself with d1 and d2 exchanged. y must not alias x. With y_bf16, y rounded to packed bf16 (attention's heads, which only matmuls read, in bf16 mode).
 *   x: (batch, d1, d2, inner)
 *   y: (batch, d2, d1, inner) */
CM_API void cm_swap_axes(const cm_swap_params* p, const float* x, float* y);

/* y = softmax over keys of scale x + key_mask, masked keys (causal, past the length, or a key_mask of -inf) excluded, in fp32 (CONMAMBA_SPEC.md 4.10-4.11, 4.14). A row with every key masked is zeros (PyTorch gives NaN there).
 *   x: (batch, heads, tq, cols): raw scores
 *   key_lengths: (batch): keys j >= length are masked, may be NULL
 *   key_mask: (batch, cols): added to the scaled scores, may be NULL
 *   y: (batch, heads, tq, cols) */
CM_API void cm_attn_softmax_forward(const cm_attn_params* p, const float* x, const float* key_lengths, const float* key_mask, float* y);

/* dx = scale y (dy - sum(dy y)), per row; masked keys have y = 0 and get 0.
 *   y: (rows, cols)
 *   dy: (rows, cols)
 *   dx: (rows, cols): gradient of the raw scores */
CM_API void cm_attn_softmax_backward(const cm_attn_params* p, const float* y, const float* dy, float* dx);

/* RelPosMHAXL's relative shift (CONMAMBA_SPEC.md 4.10): y[n, i, j] = x[n, i, S - 1 - i + j], S = seqlen, n over batch * heads.
 *   x: (batch, seqlen, width = 2 seqlen - 1): BD_raw
 *   y: (batch, seqlen, seqlen) */
CM_API void cm_rel_shift_forward(const cm_seq_params* p, const float* x, float* y);

/* dx[n, i, S - 1 - i + j] = dy[n, i, j], 0 at the positions the shift does not read.
 *   dy: (batch, seqlen, seqlen)
 *   dx: (batch, seqlen, width = 2 seqlen - 1) */
CM_API void cm_rel_shift_backward(const cm_seq_params* p, const float* dy, float* dx);

/* y[o, k] = (sum_i x[o, i, k], i in order) / divisor: sum (divisor 1) or mean (n).
 *   x: (outer, n, inner)
 *   y: (outer, inner) */
CM_API void cm_sum_axis(const cm_axis_params* p, const float* x, float* y);

/* y[o, i, k] = x[o, k] / divisor: the backward of sum_axis.
 *   x: (outer, inner)
 *   y: (outer, n, inner) */
CM_API void cm_broadcast_axis(const cm_axis_params* p, const float* x, float* y);

/* y[r] = max_j x[r, j], index[r] = the first j that attains it (as a float).
 *   x: (rows, ld)
 *   y: (rows)
 *   index: (rows) */
CM_API void cm_max_last(const cm_rows_params* p, const float* x, float* y, float* index);

/* Log-mel dB of frames row0 .. row0+rows-1 (CONMAMBA_SPEC.md 3.2-3.5, before the per-utterance top_db clamp), computed in double: centred zero-padded frames, window, |FFT|^2, triangular mel filters, 10 log10(max(E, 1e-10)).
 *   wav: (n_samples)
 *   window: (n_fft)
 *   twiddle_hi: (n_fft, 2)
 *   twiddle_lo: (n_fft, 2)
 *   mel: (packed: per filter first_bin, count, count weights)
 *   out: (rows, ld) */
CM_API void cm_fbank_forward(const cm_fbank_params* p, const float* wav, const float* window, const float* twiddle_hi, const float* twiddle_lo, const float* mel, float* out);

/* Polyphase resampling (torchaudio Resample, CONMAMBA_SPEC.md 8.7): y[b, j] = sum_t kernels[j, t] x[(row0 + b) orig + t - width], zero outside the input; double sums.
 *   x: (n_in)
 *   kernels: (cols, taps)
 *   y: (rows, ld) */
CM_API void cm_resample_forward(const cm_resample_params* p, const float* x, const float* kernels, float* y);

#endif /* CM_OPS_H */
