/* The split-K path of cm_matmul (plan and rationale in matmul.cuh, split_k_plan): the chunks'
 * products into a workspace by our own tile kernels, then one pass that sums them in chunk
 * order into C (+ C when accumulating, + bias last). */
#include "common.cuh"
#include "matmul.cuh"

namespace {

/* C[i][j] = (accumulate ? C[i][j] : 0) + W[0][i][j] + ... + W[parts-1][i][j] (+ bias[j]). */
__global__ void split_k_sum_kernel(const float* __restrict__ w, int parts, int m, int n,
                                   float* c, int ldc, int accumulate,
                                   const float* __restrict__ bias) {
  const int64_t mn = (int64_t)m * n;
  CM_FOR(e, mn) {
    const int64_t i = e / n, j = e % n;
    float* dst = c + i * ldc + j;
    float v = accumulate ? *dst : 0.0f;
    for (int s = 0; s < parts; s++) v += w[s * mn + e];
    if (bias) v += bias[j];
    *dst = v;
  }
}

}  // namespace

bool matmul_split_k(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                    float* c,
                    void (*tiles)(const MatmulArgs&, const float*, const float*, const float*,
                                  float*)) {
  const SplitK s = split_k_plan(q);
  if (s.parts < 2) return false;
  const int64_t mn = (int64_t)q.m * q.n;
  const uint64_t block = cm_cuda_malloc((uint64_t)(s.parts * mn) * sizeof(float));
  if (!block) {
    /* Falling back to the one-chunk product would change the result's bits with the memory
     * left; a step must not depend on that, so this is an error like any out-of-memory. */
    cm_note_failure("matmul (split-K): out of device memory for the workspace");
    return true;
  }
  float* w = (float*)(uintptr_t)block;
  tiles(split_k_chunks(q, s), a, b, nullptr, w);
  if (s.kr > 0)
    tiles(split_k_rest(q, s), matmul_advance(a, q.a_bf16, s.full * s.step_a),
          matmul_advance(b, q.b_bf16, s.full * s.step_b), nullptr, w + s.full * mn);
  split_k_sum_kernel<<<cm_blocks(mn, 256), 256, 0, cm_stream()>>>(w, s.parts, q.m, q.n, c, q.ldc,
                                                                    q.accumulate, bias);
  CM_CHECK_LAUNCH("matmul (split-K sum)");
  cm_cuda_free(block); /* stream order keeps it until the sum has run */
  return true;
}
