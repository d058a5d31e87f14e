/* cuBLAS at run time, nothing at build time: matmul precision modes 2 (fp32) and 3 (bf16 inputs,
 * fp32 accumulation) of cm_matmul (see matmul.cuh). The library is opened with dlopen the first
 * time it is wanted (runtime.cu says when), and the few entry points used are declared here
 * from the public cuBLAS API reference (docs.nvidia.com/cuda/cublas, "cuBLAS Datatypes
 * Reference" and the cublas_api.h of CUDA 12/13), so no cuBLAS header or library is needed to
 * build; cudaDataType_t comes from the CUDA runtime's own library_types.h.
 *
 * Which library: $CONMAMBA_CUBLAS when set (a path or soname; "0" or "off" disables cuBLAS),
 * then libcublas.so.12, libcublas.so.13, libcublas.so on the loader's path, then the same under
 * /usr/local/cuda/lib64. (PyTorch wheels keep theirs under site-packages/nvidia/cublas/lib:
 * scripts/gpu-check.sh points CONMAMBA_CUBLAS there when no system cuBLAS exists.)
 *
 * Determinism: the cuBLAS documentation ("Results reproducibility") guarantees bitwise equal
 * results from run to run for a given toolkit version, on GPUs of the same architecture and SM
 * count, when a single stream is active (the handle is bound to the library's one stream);
 * the atomics mode stays at its default (CUBLAS_ATOMICS_NOT_ALLOWED, and GEMM does not use
 * atomics). The math mode is CUBLAS_DEFAULT_MATH: fp32 GEMM on fp32 units, no TF32. Whatever
 * algorithm (split-K included) the heuristics pick for a shape is fixed for that shape, so the
 * training step stays bitwise repeatable; results are NOT the fp32 SIMT kernel's bits (another
 * summation order), so the parity suite's fp32 bounds (not exact equality) apply to mode 2. */
#include <cuda_bf16.h>
#include <dlfcn.h>
#include <library_types.h> /* cudaDataType_t: CUDA_R_32F = 0, CUDA_R_16BF = 14 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <mutex>

#include "common.cuh"
#include "matmul.cuh"

namespace {

/* ---- the cuBLAS API subset (values from the cuBLAS Datatypes Reference) ----------------------- */
typedef struct cublasContext* cublasHandle_t;
typedef int cublasStatus_t;
constexpr cublasStatus_t CB_STATUS_SUCCESS = 0;        /* CUBLAS_STATUS_SUCCESS */
constexpr cublasStatus_t CB_STATUS_INVALID_VALUE = 7;  /* CUBLAS_STATUS_INVALID_VALUE */
constexpr cublasStatus_t CB_STATUS_ARCH_MISMATCH = 8;  /* CUBLAS_STATUS_ARCH_MISMATCH */
constexpr cublasStatus_t CB_STATUS_NOT_SUPPORTED = 15; /* CUBLAS_STATUS_NOT_SUPPORTED */
/* cublasOperation_t: CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 (CublasGemm::transa/transb hold these). */
constexpr int CB_DEFAULT_MATH = 0;            /* cublasMath_t CUBLAS_DEFAULT_MATH */
constexpr int CB_COMPUTE_32F = 68;            /* cublasComputeType_t CUBLAS_COMPUTE_32F */
constexpr int CB_GEMM_DEFAULT_TENSOR_OP = 99; /* cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT_TENSOR_OP */

/* cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) */
using CreateFn = cublasStatus_t (*)(cublasHandle_t*);
/* cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) */
using SetStreamFn = cublasStatus_t (*)(cublasHandle_t, cudaStream_t);
/* cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) */
using SetMathModeFn = cublasStatus_t (*)(cublasHandle_t, int);
/* cublasStatus_t cublasGetVersion_v2(cublasHandle_t, int* version) */
using GetVersionFn = cublasStatus_t (*)(cublasHandle_t, int*);
/* cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t transa,
 *   cublasOperation_t transb, int m, int n, int k, const float* alpha, const float* A, int lda,
 *   long long strideA, const float* B, int ldb, long long strideB, const float* beta, float* C,
 *   int ldc, long long strideC, int batchCount) */
using SgemmStridedBatchedFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int,
                                                 const float*, const float*, int, long long,
                                                 const float*, int, long long, const float*,
                                                 float*, int, long long, int);
/* cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t, cublasOperation_t transa,
 *   cublasOperation_t transb, int m, int n, int k, const void* alpha, const void* A,
 *   cudaDataType Atype, int lda, long long strideA, const void* B, cudaDataType Btype, int ldb,
 *   long long strideB, const void* beta, void* C, cudaDataType Ctype, int ldc, long long strideC,
 *   int batchCount, cublasComputeType_t computeType, cublasGemmAlgo_t algo) */
using GemmStridedBatchedExFn = cublasStatus_t (*)(cublasHandle_t, int, int, int, int, int,
                                                  const void*, const void*, cudaDataType_t, int,
                                                  long long, const void*, cudaDataType_t, int,
                                                  long long, const void*, void*, cudaDataType_t,
                                                  int, long long, int, int, int);

struct Cublas {
  void* lib = nullptr;
  cublasHandle_t handle = nullptr;
  int version = 0;
  SgemmStridedBatchedFn sgemm = nullptr;
  GemmStridedBatchedExFn gemm_ex = nullptr;
};

Cublas g_cublas;
std::atomic<int> g_state{0}; /* 0 not tried, 1 loaded, -1 unavailable */
std::mutex g_load_mutex;

bool try_open(const char* name, Cublas& cb) {
  void* lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!lib) return false;
  auto create = (CreateFn)dlsym(lib, "cublasCreate_v2");
  auto set_stream = (SetStreamFn)dlsym(lib, "cublasSetStream_v2");
  auto set_math = (SetMathModeFn)dlsym(lib, "cublasSetMathMode");
  auto get_version = (GetVersionFn)dlsym(lib, "cublasGetVersion_v2");
  cb.sgemm = (SgemmStridedBatchedFn)dlsym(lib, "cublasSgemmStridedBatched");
  cb.gemm_ex = (GemmStridedBatchedExFn)dlsym(lib, "cublasGemmStridedBatchedEx");
  cublasHandle_t h = nullptr;
  if (!create || !set_stream || !set_math || !cb.sgemm || !cb.gemm_ex ||
      create(&h) != CB_STATUS_SUCCESS) {
    dlclose(lib);
    return false;
  }
  /* The handle is never destroyed: the library stays loaded for the process's life (tearing it
   * down at exit can run after the CUDA context is gone). */
  if (set_stream(h, cm_stream()) != CB_STATUS_SUCCESS ||
      set_math(h, CB_DEFAULT_MATH) != CB_STATUS_SUCCESS)
    return false;
  int v = 0;
  if (get_version && get_version(h, &v) != CB_STATUS_SUCCESS) v = 0;
  cb.lib = lib;
  cb.handle = h;
  cb.version = v > 0 ? v : 1;
  return true;
}

/* fp32 (ld, batch stride; 0 = shared) -> packed bf16 (ld = cols, stride rows * cols), round to
 * nearest even: one block row at a time, threads along the columns. */
__global__ void pack_bf16_kernel(const float* __restrict__ src, int ld, int64_t stride, int rows,
                                 int cols, int batches, __nv_bfloat16* __restrict__ dst) {
  const int64_t nrows = (int64_t)rows * batches;
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    const int64_t t = row / rows, r = row % rows;
    const float* s = src + t * stride + r * ld;
    __nv_bfloat16* d = dst + row * cols;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) d[j] = __float2bfloat16_rn(s[j]);
  }
}

/* C[t][i][j] += bias[j]: the bias, added last as the fp32 kernel does. */
__global__ void add_bias_kernel(float* c, int ldc, int64_t stride_c, int m, int n, int batch,
                                const float* __restrict__ bias) {
  const int64_t nrows = (int64_t)m * batch;
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    const int64_t t = row / m, i = row % m;
    float* d = c + t * stride_c + i * ldc;
    for (int j = threadIdx.x; j < n; j += blockDim.x) d[j] += bias[j];
  }
}

unsigned row_blocks(int64_t rows) {
  int64_t cap = (int64_t)matmul_sm_count() * 16;
  return (unsigned)(rows < 1 ? 1 : rows < cap ? rows : cap);
}

/* A packed bf16 copy of an operand (rows x cols as stored, leading dimension ld, batch stride;
 * stride 0 stays one shared matrix). Returns the device block (free it after queuing its use),
 * or 0 when out of memory. */
uint64_t pack_bf16(const float* src, int rows, int cols, int ld, int stride, int batch,
                   long long& packed_stride) {
  const int batches = stride == 0 ? 1 : batch;
  const int64_t per = (int64_t)rows * cols;
  uint64_t dst = cm_cuda_malloc((uint64_t)(per * batches) * sizeof(__nv_bfloat16));
  if (!dst) return 0;
  pack_bf16_kernel<<<row_blocks((int64_t)rows * batches), 256, 0, cm_stream()>>>(
      src, ld, stride, rows, cols, batches, (__nv_bfloat16*)(uintptr_t)dst);
  CM_CHECK_LAUNCH("matmul (cuBLAS bf16 input packing)");
  packed_stride = stride == 0 ? 0 : per;
  return dst;
}

}  // namespace

bool cublas_load() {
  const int state = g_state.load(std::memory_order_acquire);
  if (state != 0) return state > 0;
  std::lock_guard<std::mutex> lock(g_load_mutex);
  if (g_state.load(std::memory_order_relaxed) != 0) return g_state.load() > 0;
  if (cm_stream() == nullptr) return false; /* before cm_cuda_init: try again later */
  const char* env = getenv("CONMAMBA_CUBLAS");
  bool ok = false;
  if (env && *env) {
    if (strcmp(env, "0") != 0 && strcmp(env, "off") != 0) ok = try_open(env, g_cublas);
  }
  if (!(env && (strcmp(env, "0") == 0 || strcmp(env, "off") == 0))) {
    static const char* const names[] = {
        "libcublas.so.12", "libcublas.so.13", "libcublas.so",
        "/usr/local/cuda/lib64/libcublas.so.12", "/usr/local/cuda/lib64/libcublas.so.13",
        "/usr/local/cuda/lib64/libcublas.so"};
    for (const char* name : names) {
      if (ok) break;
      ok = try_open(name, g_cublas);
    }
  }
  g_state.store(ok ? 1 : -1, std::memory_order_release);
  return ok;
}

bool cublas_matmul(const MatmulArgs& q, const float* a, const float* b, const float* bias,
                   float* c, bool bf16) {
  if (!cublas_load()) return false;
  /* k = 0 (C = C or 0, + bias) stays with our kernels, which handle it directly. */
  if (q.k <= 0) return false;
  CublasGemm g;
  if (!cublas_map(q, g)) return false;
  const float one = 1.0f;
  cublasStatus_t st;
  if (!bf16) {
    /* C^T = op(B)^T op(A)^T: cuBLAS's first operand is our B, its second our A (matmul.cuh). */
    st = g_cublas.sgemm(g_cublas.handle, g.transa, g.transb, g.m, g.n, g.k, &one, b, g.lda,
                        g.stride_a, a, g.ldb, g.stride_b, &g.beta, c, g.ldc, g.stride_c, g.batch);
  } else {
    /* bf16 copies of A and B, packed (leading dimension = stored columns), then the same GEMM
     * with CUDA_R_16BF inputs, fp32 C and CUBLAS_COMPUTE_32F (fp32 accumulation). An operand
     * already stored as packed bf16 (a_bf16 / b_bf16) goes in as it is, with its own leading
     * dimension and batch stride (in elements, as for fp32). */
    int ar, ac, br, bc;
    matmul_stored_a(q, ar, ac);
    matmul_stored_b(q, br, bc);
    long long sa = q.stride_a, sb = q.stride_b;
    int la = q.lda, lb = q.ldb;
    const uint64_t a16 = q.a_bf16 ? 0 : pack_bf16(a, ar, ac, q.lda, q.stride_a, q.batch, sa);
    const uint64_t b16 =
        q.b_bf16 || (!q.a_bf16 && !a16) ? 0 : pack_bf16(b, br, bc, q.ldb, q.stride_b, q.batch, sb);
    if ((!q.a_bf16 && !a16) || (!q.b_bf16 && !b16)) { /* out of memory: our kernel instead */
      if (a16) cm_cuda_free(a16);
      return false;
    }
    if (a16) la = ac;
    if (b16) lb = bc;
    const void* a_in = q.a_bf16 ? (const void*)a : (const void*)(uintptr_t)a16;
    const void* b_in = q.b_bf16 ? (const void*)b : (const void*)(uintptr_t)b16;
    st = g_cublas.gemm_ex(g_cublas.handle, g.transa, g.transb, g.m, g.n, g.k, &one, b_in,
                          CUDA_R_16BF, lb, sb, a_in, CUDA_R_16BF, la, sa, &g.beta, c, CUDA_R_32F,
                          g.ldc, g.stride_c, g.batch, CB_COMPUTE_32F, CB_GEMM_DEFAULT_TENSOR_OP);
    if (a16) cm_cuda_free(a16); /* stream order keeps them until the GEMM has run */
    if (b16) cm_cuda_free(b16);
  }
  if (st != CB_STATUS_SUCCESS) {
    /* Argument checks fail before anything is queued: our kernels take over. Anything else is
     * an execution failure, reported like a kernel fault. */
    if (st == CB_STATUS_INVALID_VALUE || st == CB_STATUS_NOT_SUPPORTED ||
        st == CB_STATUS_ARCH_MISMATCH)
      return false;
    char msg[128];
    snprintf(msg, sizeof msg, "matmul (cuBLAS %s): cublasStatus_t %d",
             bf16 ? "cublasGemmStridedBatchedEx bf16" : "cublasSgemmStridedBatched", st);
    cm_note_failure(msg);
    return true;
  }
  if (bias) {
    add_bias_kernel<<<row_blocks((int64_t)q.m * q.batch), 256, 0, cm_stream()>>>(
        c, q.ldc, q.stride_c, q.m, q.n, q.batch, bias);
    CM_CHECK_LAUNCH("matmul (cuBLAS bias)");
  }
  return true;
}

extern "C" {

/* Nonzero when cuBLAS is loaded and usable (loading it now if it was not tried yet): its
 * version (cublasGetVersion, e.g. 120903 for 12.9.3) or 1; 0 when no cuBLAS was found. */
int cm_cuda_cublas_available(void) { return cublas_load() ? g_cublas.version : 0; }

}  // extern "C"
