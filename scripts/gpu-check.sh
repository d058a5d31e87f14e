#!/usr/bin/env bash
# The GPU check of the CUDA backend (issues 9 and 10). Runs from the repository root on a bare
# machine with an NVIDIA H100 / H200, nvcc and no network, within 8 minutes (BUDGET, 470 s),
# every step under a timeout taken from what is left:
#   1. unpack the carried deno (build/carry/deno.xz), the npm packages the code imports, the Wasm
#      kernels (the parity suite's reference) and the mini corpus (build/carry/corpus.tar);
#      find a cuBLAS (the system's, else PyTorch's wheel: $CONMAMBA_CUBLAS)          ~5 s
#   2. build the CUDA library for sm_90 (`make cuda CUDA_ARCH=-arch=sm_90`)           ~30-60 s
#   3. the parity suite (tests/cuda/: every op, CUDA against Wasm on the same random inputs, plus
#      one training step of a tiny model on each backend), fp32 matmul                ~15-30 s
#   4. the real pipeline end to end on `--device cuda`: the tiny experiment on the carried mini
#      corpus (train dev-clean, 2 epochs; decode and score test-clean), then the same command
#      again, which must reuse every stage (content-hashed artifacts)                  ~30-60 s
#   5. the parity suite again with the matmul on our bf16 tensor-core kernel (whole suite), then
#      through cuBLAS fp32 and bf16 (matrix-product cases and the training step)       ~30-50 s
#   6. the GPU benchmark (bench/gpu_bench.ts) with all the time left: training step of
#      conmamba_small / conmamba_large per matmul path, every matmul path vs torch.matmul, the
#      selective scan's bandwidth, bitwise repeatability of a training step per path, a leak
#      check over up to 1000 steps, conmamba_large / _small on the recipe's ~500 s batch  ~250 s
#   7. append the results, with the date and the card, to docs/GPU_RESULTS.md.
# Order: what everything else depends on first (build, fp32 parity: a wrong kernel makes every
# later number meaningless), then the one result no other step gives, the whole product working
# on the GPU (the pipeline), then correctness of the faster matmul paths (short, all-or-nothing
# per run, and their speed is worthless if wrong), and last the benchmark, which orders its own
# sections by importance, writes each as it finishes and fits itself to the time left (the leak
# check's length absorbs the slack). The estimates above are for an H100 with 16 cores: the
# build is ~25 files on 16 jobs (2 cores here build both architectures in ~2 minutes), the fp32
# suite takes 16 s here as Wasm against Wasm on 2 cores, the pipeline 55 s here on Wasm with 2
# threads (training 24 s, beam-search decoding 29 s, on the GPU mostly per-op launch cost).
#
# Everything it writes also goes to $OUT when set (the machine's own copy of docs/ does not come
# back by itself): GPU_RESULTS.md (the whole file), gpu_results_section.md (the new section:
# append it to docs/GPU_RESULTS.md where the check was launched from), parity*.md, pipeline.md,
# bench.md, bench.json and the logs. Without $OUT they are kept under build/gpu-check/.
#
# Prepare the carried files here, on a machine where `make setup wasm corpus` has run (once per
# deno version, kernel or corpus change):
#   bash scripts/gpu-check.sh --prepare
# which writes build/carry/ (about 38 MB; build/ is git-ignored, so carry it explicitly; the
# whole travelling tree must stay under 64 MiB):
#   deno.xz             xz -T0 -9 -c node_modules/deno/deno > build/carry/deno.xz   (96 -> ~30 MB;
#                       kept when newer than the binary)
#   node_modules.tar.xz tar -cJf ... node_modules/{commander,yaml,zod} (the npm: imports of deno.json)
#   kernels.wasm        cp build/kernels.wasm build/carry/ (`make wasm`; the GPU machine may lack
#                       clang and wasm-ld, and `make` there would try `npm ci`)
#   corpus.tar          build/mini_corpus/LibriSpeech/{dev-clean,test-clean,*.TXT,VERSION}
#                       (`make corpus` needs espeak-ng, which the GPU machine lacks; flac does not
#                       compress, so plain tar, ~8 MB)
#
# Testing this script without a GPU: GPU_CHECK_DRY=1 with stand-ins for nvidia-smi, nvcc and make
# on PATH runs every step on Wasm (parity as CONMAMBA_PARITY_BACKEND=wasm2, the pipeline with
# --device wasm, the benchmark with --dry-run) and writes its section under $OUT /
# build/gpu-check/ only, never into docs/GPU_RESULTS.md.
#
# Exit status: 0 when the build, the fp32 parity suite, the pipeline and the benchmark all
# succeeded; 1 when one of them (or a parity run of another matmul path) failed (the results
# written so far are still appended); 2 when this machine cannot run the check at all (no NVIDIA
# driver or GPU, no nvcc, no deno), with the reason.
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY=build/carry
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-470} # seconds for the whole check (the limit is 8 minutes)
DRY=${GPU_CHECK_DRY:-0}

die() {
  echo "gpu-check: $*" >&2
  exit 2
}
now() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET - $(now))); }
log() { echo "gpu-check [$(now) s]: $*" >&2; }
# clamp <value> <min> <max>
clamp() {
  local v=$1
  [ "$v" -lt "$2" ] && v=$2
  [ "$v" -gt "$3" ] && v=$3
  echo "$v"
}

# ---- --prepare: build/carry/ for the GPU machine -------------------------------------------
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p "$CARRY"
  deno_bin=$(readlink -f node_modules/.bin/deno 2>/dev/null || true)
  [ -x "$deno_bin" ] || die "no node_modules/.bin/deno here: run \`make setup\` first"
  [ -f build/kernels.wasm ] || die "no build/kernels.wasm here: run \`make wasm\` first"
  corpus=build/mini_corpus/LibriSpeech
  for d in dev-clean test-clean; do
    [ -d "$corpus/$d" ] || die "no $corpus/$d here: run \`make corpus\` first (needs espeak-ng)"
  done
  # What the check unpacks on the GPU machine must not travel back out (bin/deno is 96 MB).
  rm -rf "${CARRY:?}/bin" "${CARRY:?}/deno_dir" "${CARRY:?}/node_modules.tar" "${CARRY:?}"/*.tmp
  if [ -f "$CARRY/deno.xz" ] && [ "$CARRY/deno.xz" -nt "$deno_bin" ]; then
    echo "gpu-check --prepare: $CARRY/deno.xz is newer than $deno_bin: kept" >&2
  else
    echo "gpu-check --prepare: compressing $deno_bin (xz -9, a minute or so)" >&2
    xz -T0 -9 -c "$deno_bin" > "$CARRY/deno.xz.tmp" && mv "$CARRY/deno.xz.tmp" "$CARRY/deno.xz"
  fi
  tar -cJf "$CARRY/node_modules.tar.xz" node_modules/commander node_modules/yaml node_modules/zod
  cp build/kernels.wasm "$CARRY/kernels.wasm"
  (cd build/mini_corpus && tar -cf - LibriSpeech/dev-clean LibriSpeech/test-clean \
    LibriSpeech/*.TXT LibriSpeech/VERSION) > "$CARRY/corpus.tar.tmp"
  mv "$CARRY/corpus.tar.tmp" "$CARRY/corpus.tar"
  ls -l "$CARRY" >&2
  kb=$(du -sk "$CARRY" | cut -f1)
  echo "gpu-check --prepare: $CARRY holds $((kb / 1024)) MiB" >&2
  [ "$kb" -le $((45 * 1024)) ] ||
    echo "gpu-check --prepare: WARNING: over 45 MiB; with the tracked files the travelling" \
      "tree may pass its 64 MiB limit" >&2
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
[ "$DRY" = 1 ] && log "GPU_CHECK_DRY=1: every step on Wasm, nothing goes into docs/"
log "card: $CARD (driver $DRIVER), nvcc $NVCC_VERSION; results in $RES"

# Decompresses xz without relying on the xz tool (python3's lzma as a fallback).
unxz_to() { # <file.xz> <output>
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$1" > "$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi
}

# ---- 1. deno, npm packages, Wasm kernels, corpus, cuBLAS -----------------------------------
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
  if ! unxz_to "$CARRY/node_modules.tar.xz" "$CARRY/node_modules.tar" ||
    ! tar -xf "$CARRY/node_modules.tar"; then
    die "cannot unpack $CARRY/node_modules.tar.xz"
  fi
  rm -f "$CARRY/node_modules.tar"
fi
if [ ! -f build/kernels.wasm ]; then
  [ -f "$CARRY/kernels.wasm" ] ||
    die "no build/kernels.wasm (the parity reference) and none carried in $CARRY/."
  cp "$CARRY/kernels.wasm" build/kernels.wasm
fi
CORPUS=build/gpu_corpus/LibriSpeech
rm -rf build/gpu_corpus
if [ -f "$CARRY/corpus.tar" ]; then
  mkdir -p build/gpu_corpus
  tar -xf "$CARRY/corpus.tar" -C build/gpu_corpus || log "cannot unpack $CARRY/corpus.tar"
fi
if [ -z "${CONMAMBA_CUBLAS:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so' &&
  ! ls /usr/local/cuda/lib64/libcublas.so* > /dev/null 2>&1; then
  # No system cuBLAS: PyTorch's wheel carries one (site-packages/nvidia/cublas/lib).
  cublas_dir=$(python3 -c 'import nvidia.cublas as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null)
  cublas_lib=""
  for f in "$cublas_dir"/libcublas.so.*; do
    [ -n "$cublas_dir" ] && [ -e "$f" ] && cublas_lib=$f && break
  done
  [ -n "$cublas_lib" ] && export CONMAMBA_CUBLAS=$cublas_lib && log "cuBLAS: $cublas_lib (PyTorch's)"
fi
T_SETUP=$(now)

# ---- 2. build ------------------------------------------------------------------------------
STATUS=0
BUILD=failed
t0=$(now)
log "building the CUDA library for sm_90"
# Objects built for another architecture would not be rebuilt (make does not track flags).
rm -rf build/cuda build/libconmamba_cuda.so
budget=$(clamp $(($(left) - 330)) 120 300)
if timeout "$budget" make -j"$(nproc)" cuda CUDA_ARCH=-arch=sm_90 > "$RES/build.log" 2>&1; then
  BUILD=ok
else
  [ $? -eq 124 ] && BUILD="failed (timed out after $budget s)"
  STATUS=1
  tail -n 30 "$RES/build.log" >&2
fi
T_BUILD=$(($(now) - t0))
log "build: $BUILD ($T_BUILD s)"
# The dry run computes on Wasm: the parity suite compares 2 Wasm threads against 1.
PARITY_ENV=()
[ "$DRY" = 1 ] && PARITY_ENV=(CONMAMBA_PARITY_BACKEND=wasm2)

# ---- 3. parity suite, fp32 -----------------------------------------------------------------
PARITY="not run (build failed)"
T_PARITY=0
rm -f "$RES/parity.md"
if [ "$BUILD" = ok ]; then
  t0=$(now)
  budget=$(clamp $(($(left) - 240)) 60 180)
  log "parity suite (tests/cuda/, at most $budget s)"
  env "${PARITY_ENV[@]}" CONMAMBA_PARITY_REPORT="$RES/parity.md" timeout "$budget" \
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
  T_PARITY=$(($(now) - t0))
fi
log "parity: $PARITY"

# ---- 4. the pipeline on the GPU ------------------------------------------------------------
# The tiny experiment on the carried mini corpus: 100 utterances of dev-clean to train on for 2
# epochs (the last one with the validation beam search), test-clean to validate and to decode
# (beam 8, joint CTC/attention) and score. A fresh cache, so every stage runs; then the same
# command again, which must reuse all of them.
PIPE_DEVICE=cuda
[ "$DRY" = 1 ] && PIPE_DEVICE=wasm
PIPE_CACHE=build/gpu_pipeline_cache
PIPE_CMD=(run -A src/cli/main.ts pipeline tiny --device "$PIPE_DEVICE" --cache "$PIPE_CACHE"
  --data_folder "$CORPUS" --train_splits '[dev-clean]' --dev_splits '[test-clean]'
  --test_splits '[test-clean]' --number_of_epochs 2)
PIPELINE="not run (build failed)"
RERUN="not run"
T_PIPE=0
rm -f "$RES/pipeline.md"
if [ ! -d "$CORPUS/dev-clean" ] || [ ! -d "$CORPUS/test-clean" ]; then
  PIPELINE="not run: no mini corpus ($CARRY/corpus.tar; \`bash scripts/gpu-check.sh --prepare\`)"
  STATUS=1
elif [ "$BUILD" = ok ]; then
  rm -rf "$PIPE_CACHE"
  t0=$(now)
  budget=$(clamp $(($(left) - 200)) 60 180)
  log "pipeline tiny --device $PIPE_DEVICE (at most $budget s)"
  timeout "$budget" "$DENO" "${PIPE_CMD[@]}" > "$RES/pipeline.log" 2>&1
  rc=$?
  T_PIPE=$(($(now) - t0))
  wer=$(grep -m 1 '^| test-clean |' "$RES/pipeline.log" | awk -F'|' '{gsub(/ /, "", $3); print $3}')
  summary=$(grep -E -m 1 '^tiny: [0-9]+ stage' "$RES/pipeline.log")
  if [ $rc -eq 124 ]; then
    PIPELINE="timed out after $budget s"
  elif [ $rc -ne 0 ]; then
    PIPELINE="FAILED (exit $rc: $(grep -E -m 1 'rror' "$RES/pipeline.log" | cut -c 1-300))"
  elif [ -z "$wer" ]; then
    PIPELINE="FAILED (exit 0 but no test-clean WER in its output)"
  elif ! grep -q "compute: $PIPE_DEVICE" "$RES/pipeline.log"; then
    PIPELINE="FAILED (it did not compute on $PIPE_DEVICE)"
  else
    PIPELINE="passed in $T_PIPE s ($summary); test-clean WER $wer %"
  fi
  case "$PIPELINE" in passed*) ;; *)
    STATUS=1
    tail -n 20 "$RES/pipeline.log" >&2
    ;;
  esac
  log "pipeline: $PIPELINE"
  if [ $rc -eq 0 ]; then
    budget=$(clamp $(($(left) - 200)) 20 60)
    log "pipeline again (must reuse every stage; at most $budget s)"
    t1=$(now)
    timeout "$budget" "$DENO" "${PIPE_CMD[@]}" > "$RES/pipeline_rerun.log" 2>&1
    rc=$?
    again=$(grep -E -m 1 '^tiny: [0-9]+ stage' "$RES/pipeline_rerun.log")
    if [ $rc -ne 0 ]; then
      RERUN="FAILED (exit $rc after $(($(now) - t1)) s)"
    elif echo "$again" | grep -q '(0 ran, 0 resumed,'; then
      RERUN="every stage reused in $(($(now) - t1)) s ($again)"
    else
      RERUN="NOT all reused ($again)"
    fi
    log "pipeline rerun: $RERUN"
  fi
  shown=""
  for a in "${PIPE_CMD[@]}"; do
    case "$a" in *"["*) shown="$shown '$a'" ;; *) shown="$shown $a" ;; esac
  done
  {
    echo "Command: \`deno$shown\`"
    echo
    grep -E -m 1 '^pipeline tiny ' "$RES/pipeline.log" | sed 's/^/    /'
    grep -E -m 1 '^train: computing on' "$RES/pipeline.log" | sed 's/^/    /'
    grep -E '^train: epoch' "$RES/pipeline.log" | sed 's/^/    /'
    echo
    # The stage table and the WER table, as the command prints them.
    sed -n '/^tiny: [0-9]* stage/,$p' "$RES/pipeline.log" | grep -v -E '^(tiny: |report: )'
    case "$PIPELINE" in passed*) ;; *)
      echo
      echo "The end of its output:"
      echo
      tail -n 15 "$RES/pipeline.log" | sed 's/^/    /'
      ;;
    esac
  } > "$RES/pipeline.md"
fi

# ---- 5. parity with the other matmul paths -------------------------------------------------
# bf16 tensor cores (CudaBackend.setMatmulPrecision("bf16"), the whole suite with its bf16
# bounds), then cuBLAS fp32 and bf16 (loaded at run time; only the cases with matrix products and
# the training step). Each while the benchmark keeps 200 s.
PARITY_MODES=""
case "$PARITY" in "not run"*) ;; *)
  for variant in "bf16 ours" "fp32 cublas" "bf16 cublas"; do
    prec=${variant% *} lib=${variant#* }
    budget=$(($(left) - 200))
    [ "$budget" -gt 120 ] && budget=120
    if [ "$budget" -lt 40 ]; then
      PARITY_MODES="$PARITY_MODES; $prec $lib: not run (no time left)"
      continue
    fi
    filter=()
    [ "$lib" = cublas ] && filter=(--filter "/matmul|conv2d|training step|report/")
    tag="${prec}_$lib"
    log "parity suite, matmul $prec $lib (at most $budget s)"
    t0=$(now)
    env "${PARITY_ENV[@]}" CONMAMBA_PARITY_PRECISION="$prec" \
      CONMAMBA_PARITY_CUBLAS="$([ "$lib" = cublas ] && echo 1 || echo 0)" \
      CONMAMBA_PARITY_REPORT="$RES/parity_$tag.md" timeout "$budget" \
      "$DENO" test -A --no-check tests/cuda/parity_test.ts "${filter[@]}" > "$RES/parity_$tag.log" 2>&1
    rc=$?
    used=$(grep -o 'matmul [a-z0-9]* [a-z]*\(, cuBLAS [^)]*\)\?' "$RES/parity_$tag.log" | head -n 1)
    summary=$(grep -E '^(ok|FAILED) \|' "$RES/parity_$tag.log" | tail -n 1)
    if [ $rc -eq 124 ]; then
      result="timed out after $budget s"
    elif [ $rc -eq 0 ]; then
      result="passed in $(($(now) - t0)) s ($summary)"
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

# ---- 5b. the host's share of a training step -----------------------------------------------
# bench/host_bench.ts needs no GPU (the library replaced by a compiled host stub): this machine's
# CPU preparing batches with BatchPrep's helpers and running the step's host code, against the
# modelled GPU floor. Short, while the benchmark keeps 260 s.
HOSTB="not run (no time left)"
budget=$(($(left) - 260))
[ "$budget" -gt 90 ] && budget=90
if [ "$budget" -ge 30 ]; then
  log "host share of a training step (at most $budget s)"
  if timeout "$budget" "$DENO" run -A bench/host_bench.ts > "$RES/host.md" 2> "$RES/host.log"; then
    HOSTB="below"
  else
    HOSTB="failed (host.log: $(tail -n 1 "$RES/host.log" | cut -c 1-200))"
    rm -f "$RES/host.md"
  fi
  log "host share: $HOSTB"
fi

# ---- 6. benchmark --------------------------------------------------------------------------
BENCH="not run (build failed)"
T_BENCH=0
rm -f "$RES/bench.md" "$RES/bench.json"
if [ "$BUILD" = ok ]; then
  t0=$(now)
  budget=$(($(left) - 20))
  log "benchmark (at most $budget s)"
  bench_args=(--budget-s $((budget - 15)) --leak-s 150 --out "$RES/bench.md" --json "$RES/bench.json")
  [ "$DRY" = 1 ] && bench_args+=(--dry-run)
  if [ "$budget" -lt 60 ]; then
    BENCH="not run: no time left"
    STATUS=1
  elif timeout "$budget" "$DENO" run -A bench/gpu_bench.ts "${bench_args[@]}" > "$RES/bench.log" 2>&1; then
    BENCH="ok in $(($(now) - t0)) s"
  else
    rc=$?
    BENCH="FAILED (exit $rc$([ $rc -eq 124 ] && echo ", timed out after $budget s"):"
    BENCH="$BENCH $(grep -v '^\s*$' "$RES/bench.log" | tail -n 1 | cut -c 1-300); see bench.log)"
    STATUS=1
    tail -n 20 "$RES/bench.log" >&2
  fi
  T_BENCH=$(($(now) - t0))
fi
log "benchmark: $BENCH"

# ---- 7. results ----------------------------------------------------------------------------
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown")
[ "$COMMIT" != unknown ] && [ -n "$(git status --porcelain 2>/dev/null)" ] && COMMIT="$COMMIT + local changes"
SECTION="$RES/gpu_results_section.md"
{
  echo
  if [ "$DRY" = 1 ]; then
    echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — DRY RUN on Wasm ($CARD): numbers mean nothing"
  else
    echo "## $(date -u +%Y-%m-%dT%H:%M:%SZ) — $CARD"
  fi
  echo
  echo "scripts/gpu-check.sh: commit $COMMIT, driver $DRIVER, nvcc $NVCC_VERSION," \
    "$("$DENO" --version | head -n 1), ${CONMAMBA_CUBLAS:+cuBLAS $CONMAMBA_CUBLAS, }$(now) s in" \
    "all (setup $T_SETUP s, build $T_BUILD s, parity $T_PARITY s, pipeline $T_PIPE s," \
    "benchmark $T_BENCH s)."
  echo
  echo "- Build for sm_90: $BUILD."
  echo "- Parity suite (tests/cuda/, fp32 bounds): $PARITY."
  echo "- Pipeline on --device $PIPE_DEVICE (tiny, mini corpus): $PIPELINE. Same command again: $RERUN."
  modes=${PARITY_MODES#; }
  echo "- Parity with the other matmul paths (precision, library [what ran]):" \
    "${modes:-not run (the fp32 suite did not run)}."
  echo "- Benchmark (bench/gpu_bench.ts): $BENCH."
  echo "- Host share of a training step (bench/host_bench.ts, no kernels): $HOSTB."
  if compgen -G "$RES/parity*.md" > /dev/null; then
    echo
    echo "### Parity suite"
  fi
  if [ -f "$RES/parity.md" ]; then
    echo
    over=$(grep -c '| \*\*no\*\* |$' "$RES/parity.md" || true)
    echo "Parity, fp32: outputs over their bound: $over (listed first)."
    echo
    echo "<details><summary>measured differences per op and output</summary>"
    echo
    head -n 4 "$RES/parity.md"
    grep '| \*\*no\*\* |$' "$RES/parity.md" || true
    tail -n +5 "$RES/parity.md" | grep -v '| \*\*no\*\* |$' || true
    echo
    echo "</details>"
  fi
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
  if [ -f "$RES/pipeline.md" ]; then
    echo
    echo "### Pipeline on --device $PIPE_DEVICE"
    echo
    cat "$RES/pipeline.md"
  fi
  if [ -f "$RES/host.md" ]; then
    echo
    echo "### Host share of a training step (this machine's CPU, library stubbed)"
    echo
    cat "$RES/host.md"
  fi
  if [ -f "$RES/bench.md" ]; then
    echo
    echo "### Benchmark"
    echo
    sed 's/^### /#### /' "$RES/bench.md"
  fi
} > "$SECTION"
"$DENO" fmt "$SECTION" > /dev/null 2>&1 || true
if [ "$DRY" = 1 ]; then
  log "dry run: the section is $SECTION (docs/GPU_RESULTS.md untouched); exit $STATUS"
else
  if [ ! -f docs/GPU_RESULTS.md ]; then
    {
      echo "# GPU results"
      echo
      echo "Appended by scripts/gpu-check.sh, one section per run (newest last): the parity suite"
      echo "(CUDA against Wasm, tests/cuda/parity_test.ts), the pipeline on the GPU and the GPU"
      echo "benchmark (bench/gpu_bench.ts)."
    } > docs/GPU_RESULTS.md
  fi
  cat "$SECTION" >> docs/GPU_RESULTS.md
  # deno fmt's markdown style (`deno task ok` checks it).
  "$DENO" fmt docs/GPU_RESULTS.md > /dev/null 2>&1 || true
  cp docs/GPU_RESULTS.md "$RES/GPU_RESULTS.md"
  log "appended to docs/GPU_RESULTS.md (and $SECTION); exit $STATUS"
fi
cat "$SECTION"
exit $STATUS
