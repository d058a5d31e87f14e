/* Embedding lookup (CONMAMBA_SPEC.md 4.13) and its backward on the GPU (wasm/embedding.c).
 *
 * Forward: one thread per (id, column); an id that is not an integer in [0, vocab) (row_of as in
 * the Wasm kernel: NaN, negative, fractional, too large) gives a row of zeros.
 *
 * Backward, a scatter-add without atomics: dtable = 0, then dtable[ids[r]] += dy[r] for r in order.
 * The ids are ranked by (row, position) (a stable counting rank, O(rows^2) comparisons through
 * shared memory, cheap for the few thousand tokens of a batch), so that each group of equal ids is
 * a contiguous run listing its positions in increasing order; one thread per (run, column) then
 * adds the run's dy rows from 0 in that order and stores the sum. The sums are the Wasm kernel's
 * (0 + dy[r1] + dy[r2] + ..., positions ascending), so the bits match it. The keys and the order
 * live in a scratch block from the library's allocator, returned at once (stream order keeps it
 * alive for the kernels queued before). */
#include "common.cuh"


namespace {

/* The row of an id stored as a float, or -1 when it is not an integer in [0, vocab). */
__device__ inline int32_t row_of(float id, int32_t vocab) {
  if (!(id >= 0.0f && id < (float)vocab)) return -1; /* also rejects NaN */
  int32_t v = (int32_t)id;
  return (float)v == id ? v : -1;
}

__global__ void embedding_forward_kernel(int64_t n, int32_t cols, int64_t ld, int32_t vocab,
                                         const float* __restrict__ table,
                                         const float* __restrict__ ids, float* __restrict__ y) {
  CM_FOR(i, n) {
    int64_t r = i / cols, j = i % cols;
    int32_t v = row_of(ids[r], vocab);
    y[r * ld + j] = v < 0 ? 0.0f : table[(int64_t)v * ld + j];
  }
}

/* dtable[v, j] = 0 for j < cols */
__global__ void zero_rows_kernel(int64_t n, int32_t cols, int64_t ld, float* __restrict__ dtable) {
  CM_FOR(i, n) dtable[(i / cols) * ld + i % cols] = 0.0f;
}

/* key[r] = the table row of ids[r], or vocab (sorted last, skipped) when it has none */
__global__ void keys_kernel(int32_t rows, int32_t vocab, const float* __restrict__ ids,
                            int32_t* __restrict__ key) {
  CM_FOR(r, rows) {
    int32_t v = row_of(ids[r], vocab);
    key[r] = v < 0 ? vocab : v;
  }
}

/* Stable rank by key: pos[r] = #{r' : key[r'] < key[r]} + #{r' < r : key[r'] == key[r]};
 * order[pos] = r, sorted_key[pos] = key[r]. Blocks of RANK_THREADS threads. */
constexpr int RANK_THREADS = 256;

__global__ void __launch_bounds__(RANK_THREADS)
    rank_kernel(int32_t rows, const int32_t* __restrict__ key, int32_t* __restrict__ order,
                int32_t* __restrict__ sorted_key) {
  __shared__ int32_t tile[RANK_THREADS];
  int32_t r = blockIdx.x * RANK_THREADS + threadIdx.x;
  int32_t kr = r < rows ? key[r] : 0, pos = 0;
  for (int32_t base = 0; base < rows; base += RANK_THREADS) {
    __syncthreads();
    if (base + (int32_t)threadIdx.x < rows) tile[threadIdx.x] = key[base + threadIdx.x];
    __syncthreads();
    int32_t m = rows - base < RANK_THREADS ? rows - base : RANK_THREADS;
    if (r < rows) {
      for (int32_t q = 0; q < m; q++) {
        int32_t k2 = tile[q];
        pos += (k2 < kr) | ((k2 == kr) & (base + q < r));
      }
    }
  }
  if (r < rows) {
    order[pos] = r;
    sorted_key[pos] = kr;
  }
}

/* One thread per (position in the ranked order, column): the first position of each run of equal
 * keys sums the run's dy rows in increasing r and stores the sum. */
__global__ void run_sum_kernel(int64_t n, int32_t rows, int32_t cols, int64_t ld, int32_t vocab,
                               const int32_t* __restrict__ order,
                               const int32_t* __restrict__ sorted_key,
                               const float* __restrict__ dy, float* __restrict__ dtable) {
  CM_FOR(i, n) {
    int32_t pos = (int32_t)(i / cols);
    int64_t j = i % cols;
    int32_t k = sorted_key[pos];
    if (k >= vocab || (pos > 0 && sorted_key[pos - 1] == k)) continue;
    float acc = 0.0f;
    for (int32_t q = pos; q < rows && sorted_key[q] == k; q++) acc += dy[(int64_t)order[q] * ld + j];
    dtable[(int64_t)k * ld + j] = acc;
  }
}

}  // namespace

void cm_embedding_forward(const cm_gather_params* p, const float* table, const float* ids,
                          float* y) {
  int64_t n = (int64_t)p->rows * p->cols;
  if (p->rows <= 0 || p->cols <= 0) return;
  embedding_forward_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, p->cols, p->ld, p->vocab,
                                                                       table, ids, y);
  CM_CHECK_LAUNCH("embedding_forward");
}

void cm_embedding_backward(const cm_gather_params* p, const float* ids, const float* dy,
                           float* dtable) {
  if (p->cols <= 0 || p->vocab <= 0) return;
  int64_t nz = (int64_t)p->vocab * p->cols;
  zero_rows_kernel<<<cm_blocks(nz, 256), 256, 0, cm_stream()>>>(nz, p->cols, p->ld, dtable);
  CM_CHECK_LAUNCH("embedding_backward");
  if (p->rows <= 0) return;
  int32_t rows = p->rows;
  uint64_t scratch = cm_cuda_malloc((uint64_t)rows * 3 * sizeof(int32_t));
  if (scratch == 0) {
    cm_note_error(cudaErrorMemoryAllocation, "embedding_backward");
    return;
  }
  int32_t* key = (int32_t*)(uintptr_t)scratch;
  int32_t* order = key + rows;
  int32_t* sorted_key = order + rows;
  keys_kernel<<<cm_blocks(rows, 256), 256, 0, cm_stream()>>>(rows, p->vocab, ids, key);
  CM_CHECK_LAUNCH("embedding_backward");
  rank_kernel<<<cm_blocks(rows, RANK_THREADS), RANK_THREADS, 0, cm_stream()>>>(rows, key, order,
                                                                               sorted_key);
  CM_CHECK_LAUNCH("embedding_backward");
  int64_t n = (int64_t)rows * p->cols;
  run_sum_kernel<<<cm_blocks(n, 256), 256, 0, cm_stream()>>>(n, rows, p->cols, p->ld, p->vocab,
                                                             order, sorted_key, dy, dtable);
  CM_CHECK_LAUNCH("embedding_backward");
  cm_cuda_free(scratch);
}
