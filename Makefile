# Entry points: `make demo` (the tiny experiment end to end on CPU) and `make test`.
# Every target depends on `setup`, which installs deno (npm, pinned in package.json) and, when
# missing, clang + lld (apt). Nothing assumes a globally installed deno.

DENO := node_modules/.bin/deno
STAMP := node_modules/.setup-done
# nvcc from PATH or /usr/local/cuda (empty when absent: `make test` then skips the CUDA build).
NVCC ?= $(shell command -v nvcc 2>/dev/null || (test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc))

.PHONY: setup demo corpus test bench ok fmt lint clean wasm sanitize cuda

setup: $(STAMP)

$(STAMP): package.json package-lock.json scripts/ensure-toolchain.sh
	npm ci --no-audit --no-fund --loglevel=error
	bash scripts/ensure-toolchain.sh
	@touch $@

demo: setup corpus build/kernels.wasm
	$(DENO) task pipeline tiny

# The generated mini corpus that hparams/tiny.yaml points at (LibriSpeech layout, espeak-ng voices).
CORPUS := build/mini_corpus/LibriSpeech
corpus: $(CORPUS)/VERSION

$(CORPUS)/VERSION: $(wildcard tests/fixtures/make_mini_corpus.ts tests/fixtures/mini_corpus_*.ts) | setup
	rm -rf $(CORPUS) $(CORPUS).partial
	$(DENO) run -A tests/fixtures/make_mini_corpus.ts --out build/mini_corpus

# The kernels' own C under ASan/UBSan first (seconds), the CUDA library where nvcc exists (a
# compile error fails the suite; running it needs a GPU), then the Deno suite.
test: setup build/kernels.wasm sanitize $(if $(NVCC),cuda)
	$(DENO) task test

bench: setup build/kernels.wasm
	$(DENO) task bench

ok: setup
	$(DENO) task ok

fmt: setup
	$(DENO) fmt

lint: setup
	$(DENO) lint

clean:
	rm -rf build .cache

# --- Compute kernels (issue 3) ------------------------------------------------------------------
# wasm/*.c -> build/kernels.wasm: wasm32 SIMD, shared memory for the worker pool. The memory is
# imported (one WebAssembly.Memory for all threads); each instance gets its own C stack by setting
# the exported __stack_pointer; the allocator in src/tensor starts at __heap_base.
WASM_SRC := $(wildcard wasm/*.c)
WASM_HDR := $(wildcard wasm/*.h) ffi/ops.h
WASM_OBJ := $(patsubst wasm/%.c,build/wasm/%.o,$(WASM_SRC))
WASM_CFLAGS := --target=wasm32 -O3 -msimd128 -matomics -mbulk-memory -mmutable-globals \
  -ffp-contract=off -nostdlib -fno-builtin-memcpy -Wall -Wextra -Werror
WASM_LDFLAGS := --no-entry --export-dynamic --import-memory --shared-memory \
  --max-memory=4294967296 -z stack-size=1048576 --stack-first \
  --export=__stack_pointer --export=__heap_base

wasm: build/kernels.wasm

build/wasm/%.o: wasm/%.c $(WASM_HDR) | setup
	@mkdir -p build/wasm
	clang $(WASM_CFLAGS) -c $< -o $@

build/kernels.wasm: $(WASM_OBJ)
	wasm-ld $(WASM_LDFLAGS) $(WASM_OBJ) -o $@

# The same kernel sources built natively with AddressSanitizer and UBSan, run by a C driver that
# checks every op against a naive double-precision loop.
build/sanitize_ops: $(WASM_SRC) $(WASM_HDR) wasm/native/sanitize_main.c | setup
	@mkdir -p build
	clang -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -ffp-contract=off \
	  -Wall -Wextra $(WASM_SRC) wasm/native/sanitize_main.c -lm -o $@

sanitize: build/sanitize_ops
	./build/sanitize_ops

# --- CUDA library (issue 9) ---------------------------------------------------------------------
# cuda/*.cu -> build/libconmamba_cuda.so: the op table (cm_<op>, the same C signatures as the Wasm
# kernels, on device pointers) plus the runtime (cm_cuda_*: device, stream, caching allocator,
# copies). Fatbin for sm_80 (A100) and sm_90 (H100/H200); `make cuda CUDA_ARCH=-arch=sm_90` builds
# one architecture (the GPU check script does). nvcc from PATH or /usr/local/cuda; no cuBLAS at
# build time (src/tensor/cuda_backend.ts may load it at run time).
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
CUDA_SRC := $(wildcard cuda/*.cu)
CUDA_HDR := $(wildcard cuda/*.cuh) ffi/ops.h
CUDA_OBJ := $(patsubst cuda/%.cu,build/cuda/%.o,$(CUDA_SRC))
CUDA_FLAGS := -O3 -std=c++17 -Xcompiler -fPIC,-Wall -Werror all-warnings --expt-relaxed-constexpr

cuda: build/libconmamba_cuda.so

build/cuda/%.o: cuda/%.cu $(CUDA_HDR)
	@test -n "$(NVCC)" || { echo "make cuda: nvcc not found (PATH or /usr/local/cuda/bin)"; exit 2; }
	@mkdir -p build/cuda
	$(NVCC) $(CUDA_FLAGS) $(CUDA_ARCH) -c $< -o $@

build/libconmamba_cuda.so: $(CUDA_OBJ)
	$(NVCC) -shared $(CUDA_ARCH) $(CUDA_OBJ) -o $@
