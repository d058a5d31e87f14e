/* The CUDA library runtime: device selection, the one stream, a caching device allocator (freed
 * blocks are kept per size class and reused, so a training step allocates nothing from the driver
 * after the first), host<->device copies, and the sticky error. Exported with C linkage next to
 * the op table (cm_<op>), loaded by src/tensor/cuda_backend.ts through Deno.dlopen. */
#include <stdio.h>
#include <string.h>

#include <map>
#include <mutex>
#include <vector>

#include "common.cuh"

static cudaStream_t g_stream = nullptr;
static char g_error[512] = "";
static std::mutex g_mutex;
/* Size class (bytes, rounded up) -> free blocks of that class. */
static std::map<size_t, std::vector<void*>> g_cache;
/* Live block -> its size class. */
static std::map<void*, size_t> g_live;
static size_t g_bytes_live = 0, g_bytes_cached = 0, g_bytes_peak = 0;

cudaStream_t cm_stream() { return g_stream; }

void cm_note_error(cudaError_t e, const char* where) {
  if (e == cudaSuccess || g_error[0] != 0) return;
  snprintf(g_error, sizeof g_error, "%s: %s", where, cudaGetErrorString(e));
}

/* Classes: 256-byte multiples up to 1 MiB, then powers of two (at most 2x waste for big blocks,
 * which are few: parameters and the largest activations). */
static size_t size_class(size_t bytes) {
  if (bytes <= (1u << 20)) return (bytes + 255) & ~(size_t)255;
  size_t c = 1u << 20;
  while (c < bytes) c <<= 1;
  return c;
}

extern "C" {

int cm_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

/* 0 on success; else a CUDA error code (the message is in cm_cuda_last_error). */
int cm_cuda_init(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e == cudaSuccess && g_stream == nullptr) e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking);
  cm_note_error(e, "cm_cuda_init");
  return (int)e;
}

/* The device's name and compute capability, e.g. "NVIDIA H100 80GB HBM3 (sm_90)". */
int cm_cuda_device_name(char* out, int len) {
  cudaDeviceProp prop;
  int dev = 0;
  cudaGetDevice(&dev);
  cudaError_t e = cudaGetDeviceProperties(&prop, dev);
  if (e != cudaSuccess) return (int)e;
  snprintf(out, (size_t)len, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
  return 0;
}

/* The first error since the last call ("" when none); clears it. Synchronises the stream first,
 * so asynchronous kernel faults surface here. */
int cm_cuda_last_error(char* out, int len) {
  if (g_stream) cm_note_error(cudaStreamSynchronize(g_stream), "kernel");
  snprintf(out, (size_t)len, "%s", g_error);
  int had = g_error[0] != 0;
  g_error[0] = 0;
  return had;
}

/* A device block of at least `bytes`, from the cache when one of its class is free; 0 when the
 * device is out of memory even after the cache was released. */
uint64_t cm_cuda_malloc(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  size_t c = size_class(bytes ? bytes : 1);
  void* p = nullptr;
  auto it = g_cache.find(c);
  if (it != g_cache.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    g_bytes_cached -= c;
  } else if (cudaMallocAsync(&p, c, g_stream) != cudaSuccess) {
    cudaGetLastError();
    /* Out of memory: give the cached blocks back to the driver and try once more. */
    cudaStreamSynchronize(g_stream);
    for (auto& kv : g_cache)
      for (void* q : kv.second) cudaFree(q);
    g_cache.clear();
    g_bytes_cached = 0;
    if (cudaMallocAsync(&p, c, g_stream) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
  }
  g_live[p] = c;
  g_bytes_live += c;
  if (g_bytes_live > g_bytes_peak) g_bytes_peak = g_bytes_live;
  return (uint64_t)(uintptr_t)p;
}

/* Returns a block to the cache (stream order keeps pending kernels safe: a later kernel that gets
 * the block runs after them on the same stream). */
void cm_cuda_free(uint64_t ptr) {
  std::lock_guard<std::mutex> lock(g_mutex);
  void* p = (void*)(uintptr_t)ptr;
  auto it = g_live.find(p);
  if (it == g_live.end()) return;
  g_cache[it->second].push_back(p);
  g_bytes_cached += it->second;
  g_bytes_live -= it->second;
  g_live.erase(it);
}

/* Bytes live, cached, and the live peak since the last reset. */
void cm_cuda_memory_stats(uint64_t* out3) {
  out3[0] = g_bytes_live;
  out3[1] = g_bytes_cached;
  out3[2] = g_bytes_peak;
}

void cm_cuda_reset_peak(void) { g_bytes_peak = g_bytes_live; }

/* Host -> device; returns once the host buffer may be reused. */
int cm_cuda_upload(uint64_t dst, const void* src, uint64_t bytes) {
  cudaError_t e = cudaMemcpyAsync((void*)(uintptr_t)dst, src, bytes, cudaMemcpyHostToDevice, g_stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(g_stream);
  cm_note_error(e, "cm_cuda_upload");
  return (int)e;
}

/* Device -> host, after every op queued before it. */
int cm_cuda_download(void* dst, uint64_t src, uint64_t bytes) {
  cudaError_t e = cudaMemcpyAsync(dst, (const void*)(uintptr_t)src, bytes, cudaMemcpyDeviceToHost, g_stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(g_stream);
  cm_note_error(e, "cm_cuda_download");
  return (int)e;
}

/* Device -> device copy on the stream (asynchronous). */
int cm_cuda_copy(uint64_t dst, uint64_t src, uint64_t bytes) {
  cudaError_t e = cudaMemcpyAsync((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes,
                                  cudaMemcpyDeviceToDevice, g_stream);
  cm_note_error(e, "cm_cuda_copy");
  return (int)e;
}

int cm_cuda_synchronize(void) {
  cudaError_t e = cudaStreamSynchronize(g_stream);
  cm_note_error(e, "cm_cuda_synchronize");
  return (int)e;
}

}  // extern "C"

/* ---- matmul precision (cuda/matmul.cuh) ------------------------------------------------------
 * 0 fp32 SIMT kernel (the default; the parity suite's fp32 bounds), 1 our bf16 tensor-core
 * kernel, 2 cuBLAS fp32, 3 cuBLAS with bf16 inputs. cuBLAS is loaded (dlopen) the first time a
 * mode >= 2 is asked for or cm_cuda_cublas_available() is called, not by cm_cuda_init: loading
 * libcublas/libcublasLt and creating a handle costs time and device memory that the default mode
 * never needs (the backend is also opened just to probe for a GPU). */
#include "matmul.cuh"

static int g_matmul_mode = 0;

void cm_note_failure(const char* what) {
  if (g_error[0] != 0) return;
  snprintf(g_error, sizeof g_error, "%s", what);
}

int cm_matmul_precision() {
  int mode = g_matmul_mode;
  if (mode >= 2 && !cublas_load()) mode -= 2;
  if (mode == 1 && matmul_cc_major() < 8) mode = 0;
  return mode;
}

extern "C" {

/* Selects the matmul path for every later cm_matmul (see above); a mode outside 0-3 keeps the
 * current one and is reported by cm_cuda_last_error. */
void cm_cuda_set_matmul_precision(int mode) {
  if (mode < 0 || mode > 3) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "cm_cuda_set_matmul_precision: mode %d is not 0-3 (fp32, bf16, cublas fp32, "
             "cublas bf16)", mode);
    cm_note_failure(msg);
    return;
  }
  g_matmul_mode = mode;
  if (mode >= 2) cublas_load();
}

/* The mode cm_matmul uses now: the one set, less what this machine cannot run (2 -> 0 and
 * 3 -> 1 without cuBLAS, 1 -> 0 below sm_80). */
int cm_cuda_get_matmul_precision(void) { return cm_matmul_precision(); }

}  // extern "C"
