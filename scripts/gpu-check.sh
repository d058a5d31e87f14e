#!/usr/bin/env bash
# The GPU check of the CUDA backend (issue 9). Runs from the repository root on a bare machine
# with an NVIDIA H100 / H200, nvcc and no network, within 8 minutes:
#   1. unpack the carried deno (build/carry/deno.xz), the npm packages the code imports and the
#      Wasm kernels (the parity suite's reference),
#   2. build the CUDA library for sm_90 (`make cuda CUDA_ARCH=-arch=sm_90`),
#   3. run the parity suite (tests/cuda/: every op, CUDA against Wasm on the same random inputs,
#      plus one training step of a tiny model on each backend), then again with the matmul on
#      bf16 tensor cores and through cuBLAS fp32 / bf16 (loaded at run time) while time allows,
#   4. run the GPU benchmark (bench/gpu_bench.ts: training-step throughput and MFU for
#      conmamba_small and conmamba_large, the selective scan's bandwidth vs a device-to-device
#      copy, our matmul vs torch.matmul),
#   5. append the results, with the date and the card, to docs/GPU_RESULTS.md.
# Everything it writes also goes to $OUT when set (the machine's own copy of docs/ does not come
# back by itself): GPU_RESULTS.md (the whole file), gpu_results_section.md (the new section:
# append it to docs/GPU_RESULTS.md where the check was launched from), parity.md, bench.md,
# bench.json and the logs. Without $OUT they are kept under build/gpu-check/.
#
# Prepare the carried files here, on a machine where `make setup wasm` has run (once per deno
# version or kernel change):
#   bash scripts/gpu-check.sh --prepare
# which writes build/carry/ (about 33 MB; build/ is git-ignored, so carry it explicitly):
#   deno.xz             xz -T0 -9 -c node_modules/deno/deno > build/carry/deno.xz   (96 -> ~30 MB)
#   node_modules.tar.xz tar -cJf ... node_modules/{commander,yaml,zod} (the npm: imports of deno.json)
#   kernels.wasm        cp build/kernels.wasm build/carry/ (`make wasm`; the GPU machine may lack
#                       clang and wasm-ld, and `make` there would try `npm ci`)
#
# Exit status: 0 when the build, the parity suite and the benchmark all succeeded; 1 when one of
# them failed (the results written so far are still appended); 2 when this machine cannot run the
# check at all (no NVIDIA driver or GPU, no nvcc, no deno), with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY=build/carry
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470} # seconds for the whole check (the limit is 8 minutes)

die() {
  echo "gpu-check: $*" >&2
  exit 2
}
left() { echo $((BUDGET - ($(date +%s) - START))); }
log() { echo "gpu-check [$(($(date +%s) - START)) s]: $*" >&2; }

# ---- --prepare: build/carry/ for the GPU machine -------------------------------------------
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p "$CARRY"
  deno_bin=$(readlink -f node_modules/.bin/deno 2>/dev/null || true)
  [ -x "$deno_bin" ] || die "no node_modules/.bin/deno here: run \`make setup\` first"
  [ -f build/kernels.wasm ] || die "no build/kernels.wasm here: run \`make wasm\` first"
  echo "gpu-check --prepare: compressing $deno_bin (xz -9, a minute or so)" >&2
  xz -T0 -9 -c "$deno_bin" > "$CARRY/deno.xz.tmp" && mv "$CARRY/deno.xz.tmp" "$CARRY/deno.xz"
  tar -cJf "$CARRY/node_modules.tar.xz" node_modules/commander node_modules/yaml node_modules/zod
  cp build/kernels.wasm "$CARRY/kernels.wasm"
  ls -l "$CARRY" >&2
  echo "gpu-check --prepare: done; carry build/carry to the GPU machine, then run" \
    "bash scripts/gpu-check.sh there" >&2
  exit 0
fi
[ $# -eq 0 ] || die "usage: bash scripts/gpu-check.sh [--prepare]"

# ---- the machine ---------------------------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 ||
  die "nvidia-smi not found: no NVIDIA driver on this machine. This check needs a GPU machine" \
    "(H100/H200) with nvcc; nothing was built or run."
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
[ -n "$CARD" ] || die "nvidia-smi lists no GPU ($(nvidia-smi -L 2>&1 | head -n 1)); nothing was run."
DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
[ -d /usr/local/cuda/bin ] && PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null 2>&1 || die "nvcc not found (PATH or /usr/local/cuda/bin): cannot build."
NVCC_VERSION=$(nvcc --version | grep -o 'release [0-9.]*' | head -n 1)

RES=${OUT:-build/gpu-check}
mkdir -p "$RES"
RES=$(cd "$RES" && pwd)
log "card: $CARD (driver $DRIVER), nvcc $NVCC_VERSION; results in $RES"

# Decompresses xz without relying on the xz tool (python3's lzma as a fallback).
unxz_to() { # <file.xz> <output>
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1" > "$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

# ---- 1. deno, npm packages, Wasm kernels ---------------------------------------------------
DENO=""
if [ -f "$CARRY/deno.xz" ]; then
  mkdir -p "$CARRY/bin"
  if [ ! -x "$CARRY/bin/deno" ] || [ "$CARRY/deno.xz" -nt "$CARRY/bin/deno" ]; then
    log "unpacking $CARRY/deno.xz"
    unxz_to "$CARRY/deno.xz" "$CARRY/bin/deno.tmp" || die "cannot decompress $CARRY/deno.xz"
    chmod +x "$CARRY/bin/deno.tmp" && mv "$CARRY/bin/deno.tmp" "$CARRY/bin/deno"
  fi
  DENO=$CARRY/bin/deno
elif [ -x node_modules/.bin/deno ]; then
  DENO=node_modules/.bin/deno
fi
[ -n "$DENO" ] || die "no deno: carry $CARRY/deno.xz (prepare it with \`bash scripts/gpu-check.sh --prepare\`)."
"$DENO" --version >/dev/null 2>&1 || die "$DENO does not run on this machine"
DENO=$(cd "$(dirname "$DENO")" && pwd)/$(basename "$DENO")
export DENO_DIR=${DENO_DIR:-$PWD/$CARRY/deno_dir} DENO_NO_UPDATE_CHECK=1 NO_COLOR=1

if [ ! -d node_modules/zod ] || [ ! -d node_modules/yaml ] || [ ! -d node_modules/commander ]; then
  [ -f "$CARRY/node_modules.tar.xz" ] ||
    die "node_modules/{zod,yaml,commander} missing and no $CARRY/node_modules.tar.xz to unpack."
  log "unpacking $CARRY/node_modules.tar.xz"
  unxz_to "$CARRY/node_modules.tar.xz" "$CARRY/node_modules.tar" &&
    tar -xf "$CARRY/node_modules.tar" && rm -f "$CARRY/node_modules.tar" ||
    die "cannot unpack $CARRY/node_modules.tar.xz"
fi
if [ ! -f build/kernels.wasm ]; then
  [ -f "$CARRY/kernels.wasm" ] ||
    die "no build/kernels.wasm (the parity reference) and none carried in $CARRY/."
  cp "$CARRY/kernels.wasm" build/kernels.wasm
fi

# ---- 2. build ------------------------------------------------------------------------------
STATUS=0
BUILD=failed
log "building the CUDA library for sm_90"
# Objects built for another architecture would not be rebuilt (make does not track flags).
rm -rf build/cuda build/libconmamba_cuda.so
budget=$(($(left) - 300))
[ "$budget" -lt 120 ] && budget=120
if timeout "$budget" make -j"$(nproc)" cuda CUDA_ARCH=-arch=sm_90 > "$RES/build.log" 2>&1; then
  BUILD=ok
else
  STATUS=1
  tail -n 30 "$RES/build.log" >&2
fi
log "build: $BUILD"

# ---- 3. parity suite -----------------------------------------------------------------------
PARITY="not run (build failed)"
rm -f "$RES/parity.md"
if [ "$BUILD" = ok ]; then
  budget=$(($(left) - 200))
  [ "$budget" -gt 300 ] && budget=300
  [ "$budget" -lt 60 ] && budget=60
  log "parity suite (tests/cuda/, at most $budget s)"
  CONMAMBA_PARITY_REPORT="$RES/parity.md" timeout "$budget" \
    "$DENO" test -A --no-check tests/cuda/ > "$RES/parity.log" 2>&1
  rc=$?
  summary=$(grep -E '^(ok|FAILED) \|' "$RES/parity.log" | tail -n 1)
  if [ $rc -eq 124 ]; then
    PARITY="timed out after $budget s"
  elif grep -q "CUDA unavailable" "$RES/parity.log"; then
    PARITY="not run: $(grep -o 'CUDA unavailable[^;]*' "$RES/parity.log" | head -n 1)"
    rc=1
  elif [ $rc -eq 0 ] && [ -f "$RES/parity.md" ]; then
    PARITY="passed ($summary)"
  else
    PARITY="FAILED ($summary)"
    rc=1
  fi
  [ $rc -eq 0 ] || { STATUS=1; grep -E 'FAILED|error' "$RES/parity.log" | head -n 40 >&2; }
fi
log "parity: $PARITY"

# ---- 3b. parity with the other matmul paths ------------------------------------------------
# bf16 tensor cores (CudaBackend.setMatmulPrecision("bf16"), the whole suite with its bf16
# bounds), then cuBLAS fp32 and bf16 (loaded at run time; only the cases with matrix products and
# the training step). Each only while the benchmark keeps 4 minutes.
if [ -z "${CONMAMBA_CUBLAS:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so' &&
  ! ls /usr/local/cuda/lib64/libcublas.so* > /dev/null 2>&1; then
  # No system cuBLAS: PyTorch's wheel carries one (site-packages/nvidia/cublas/lib).
  cublas_dir=$(python3 -c 'import nvidia.cublas as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null)
  cublas_lib=$(ls "$cublas_dir"/libcublas.so.* 2>/dev/null | head -n 1)
  [ -n "$cublas_lib" ] && export CONMAMBA_CUBLAS=$cublas_lib && log "cuBLAS: $cublas_lib (PyTorch's)"
fi
PARITY_MODES=""
case "$PARITY" in "not run"*) ;; *)
  for variant in "bf16 ours" "fp32 cublas" "bf16 cublas"; do
    prec=${variant% *} lib=${variant#* }
    budget=$(($(left) - 240))
    [ "$budget" -gt 120 ] && budget=120
    if [ "$budget" -lt 45 ]; then
      PARITY_MODES="$PARITY_MODES; $prec $lib: not run (no time left)"
      continue
    fi
    filter=()
    [ "$lib" = cublas ] && filter=(--filter "/matmul|conv2d|training step|report/")
    tag="${prec}_$lib"
    log "parity suite, matmul $prec $lib (at most $budget s)"
    CONMAMBA_PARITY_PRECISION=$prec CONMAMBA_PARITY_CUBLAS=$([ "$lib" = cublas ] && echo 1 || echo 0) \
      CONMAMBA_PARITY_REPORT="$RES/parity_$tag.md" timeout "$budget" \
      "$DENO" test -A --no-check tests/cuda/parity_test.ts "${filter[@]}" > "$RES/parity_$tag.log" 2>&1
    rc=$?
    used=$(grep -o 'matmul [a-z0-9]* [a-z]*\(, cuBLAS [^)]*\)\?' "$RES/parity_$tag.log" | head -n 1)
    summary=$(grep -E '^(ok|FAILED) \|' "$RES/parity_$tag.log" | tail -n 1)
    if [ $rc -eq 124 ]; then
      result="timed out after $budget s"
    elif [ $rc -eq 0 ]; then
      result="passed ($summary)"
    else
      result="FAILED ($summary)"
      STATUS=1
      grep -E 'FAILED|error' "$RES/parity_$tag.log" | head -n 20 >&2
    fi
    PARITY_MODES="$PARITY_MODES; $prec $lib [${used:-mode not reported}]: $result"
    log "parity $prec $lib: $result"
  done
  ;;
esac

# ---- 4. benchmark --------------------------------------------------------------------------
BENCH="not run (build failed)"
rm -f "$RES/bench.md"
if [ "$BUILD" = ok ]; then
  budget=$(($(left) - 15))
  log "benchmark (at most $budget s)"
  if [ "$budget" -lt 60 ]; then
    BENCH="not run: no time left"
    STATUS=1
  elif timeout "$budget" "$DENO" run -A bench/gpu_bench.ts --budget-s $((budget - 30)) \
    --out "$RES/bench.md" --json "$RES/bench.json" > "$RES/bench.log" 2>&1; then
    BENCH=ok
  else
    BENCH="FAILED (exit $?; see bench.log)"
    STATUS=1
    tail -n 20 "$RES/bench.log" >&2
  fi
fi
log "benchmark: $BENCH"

# ---- 5. results ----------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
[ "$COMMIT" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ] && COMMIT="$COMMIT + local changes"
SECTION="$RES/gpu_results_section.md"
{
  echo
  echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — $CARD"
  echo
  echo "scripts/gpu-check.sh: commit $COMMIT, driver $DRIVER, nvcc $NVCC_VERSION," \
    "$("$DENO" --version | head -n 1), build for sm_90: $BUILD; $(($(date +%s) - START)) s in all."
  echo
  echo "Parity suite (tests/cuda/, fp32 bounds): $PARITY."
  if [ -f "$RES/parity.md" ]; then
    over=$(grep -c '| \*\*no\*\* |$' "$RES/parity.md" || true)
    echo "Outputs over their bound: $over (listed first)."
    echo
    echo "<details><summary>measured differences per op and output</summary>"
    echo
    head -n 4 "$RES/parity.md"
    grep '| \*\*no\*\* |$' "$RES/parity.md" || true
    tail -n +5 "$RES/parity.md" | grep -v '| \*\*no\*\* |$' || true
    echo
    echo "</details>"
  fi
  if [ -n "$PARITY_MODES" ]; then
    echo
    echo "Parity with the other matmul paths (precision, library [what ran]): ${PARITY_MODES#; }."
    for f in "$RES"/parity_bf16_ours.md "$RES"/parity_fp32_cublas.md "$RES"/parity_bf16_cublas.md; do
      [ -f "$f" ] || continue
      echo
      echo "<details><summary>$(basename "$f" .md): matrix-product rows and rows over their bound</summary>"
      echo
      head -n 4 "$f"
      tail -n +5 "$f" | grep -E 'matmul|conv2d|training|\| \*\*no\*\* \|$' || true
      echo
      echo "</details>"
    done
  fi
  echo
  echo "Benchmark (bench/gpu_bench.ts): $BENCH."
  if [ -f "$RES/bench.md" ]; then
    echo
    cat "$RES/bench.md"
  fi
} > "$SECTION"
if [ ! -f docs/GPU_RESULTS.md ]; then
  {
    echo "# GPU results"
    echo
    echo "Appended by scripts/gpu-check.sh, one section per run (newest last): the parity suite"
    echo "(CUDA against Wasm, tests/cuda/parity_test.ts) and the GPU benchmark (bench/gpu_bench.ts)."
  } > docs/GPU_RESULTS.md
fi
cat "$SECTION" >> docs/GPU_RESULTS.md
# deno fmt's markdown style (`deno task ok` checks it); the section copy gets the same.
"$DENO" fmt docs/GPU_RESULTS.md > /dev/null 2>&1 || true
"$DENO" fmt "$SECTION" > /dev/null 2>&1 || true
cp docs/GPU_RESULTS.md "$RES/GPU_RESULTS.md"
log "appended to docs/GPU_RESULTS.md (and $SECTION); exit $STATUS"
cat "$SECTION"
exit $STATUS
