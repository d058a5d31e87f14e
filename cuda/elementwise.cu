/* Elementwise add, mul and scale on the device (ffi/ops.ts "add", "mul", "scale"; the reference is
 * wasm/elementwise.c). One float32 operation per element, so the bits equal the Wasm kernel's.
 * y may alias a, b or x: every element is read and written by the same thread. A float4 path is
 * taken when every pointer is 16-byte aligned (the tail and unaligned calls go element by element;
 * both compute the same single rounding per element). */
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

struct AddOp {
  __device__ float operator()(float a, float b) const { return __fadd_rn(a, b); }
};
struct MulOp {
  __device__ float operator()(float a, float b) const { return __fmul_rn(a, b); }
};

template <class Op>
__global__ void __launch_bounds__(kThreads) binary_kernel(int64_t n, const float* a, const float* b,
                                                          float* y, int vec) {
  Op op;
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / 4;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* y4 = reinterpret_cast<float4*>(y);
    CM_FOR(i, nv) {
      float4 u = a4[i], v = b4[i];
      y4[i] = make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w));
    }
    done = nv * 4;
  }
  CM_FOR(i, n - done) y[done + i] = op(a[done + i], b[done + i]);
}

__global__ void __launch_bounds__(kThreads) scale_kernel(int64_t n, float alpha, const float* x,
                                                         float* y, int vec) {
  int64_t done = 0;
  if (vec) {
    int64_t nv = n / 4;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* y4 = reinterpret_cast<float4*>(y);
    CM_FOR(i, nv) {
      float4 u = x4[i];
      y4[i] = make_float4(__fmul_rn(alpha, u.x), __fmul_rn(alpha, u.y), __fmul_rn(alpha, u.z),
                          __fmul_rn(alpha, u.w));
    }
    done = nv * 4;
  }
  CM_FOR(i, n - done) y[done + i] = __fmul_rn(alpha, x[done + i]);
}

inline bool aligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }

/* Enough blocks for the grid-stride loops (a few waves at most; the loop covers the rest). */
inline unsigned grid_for(int64_t items) {
  unsigned g = cm_blocks(items, kThreads);
  return g > 65536u ? 65536u : g;
}

template <class Op>
void launch_binary(const cm_elementwise_params* p, const float* a, const float* b, float* y,
                   const char* name) {
  int64_t n = p->n;
  if (n <= 0) return;
  int vec = aligned16(a) && aligned16(b) && aligned16(y);
  binary_kernel<Op><<<grid_for(vec ? n / 4 + 3 : n), kThreads, 0, cm_stream()>>>(n, a, b, y, vec);
  CM_CHECK_LAUNCH(name);
}

}  // namespace

void cm_add(const cm_elementwise_params* p, const float* a, const float* b, float* y) {
  launch_binary<AddOp>(p, a, b, y, "add");
}

void cm_mul(const cm_elementwise_params* p, const float* a, const float* b, float* y) {
  launch_binary<MulOp>(p, a, b, y, "mul");
}

void cm_scale(const cm_elementwise_params* p, const float* x, float* y) {
  int64_t n = p->n;
  if (n <= 0) return;
  int vec = aligned16(x) && aligned16(y);
  scale_kernel<<<grid_for(vec ? n / 4 + 3 : n), kThreads, 0, cm_stream()>>>(n, p->alpha, x, y, vec);
  CM_CHECK_LAUNCH("scale");
}
