#!/usr/bin/env bash
# Installs the Debian packages the project needs beyond npm, when missing:
#   clang, lld          the WebAssembly kernels (clang --target=wasm32, wasm-ld)
#   espeak-ng, sox, flac the generated mini corpus (speech, resampling, FLAC encoding) and the
#                        FLAC decoder's tests
#   libopenblas0         the GEMM baseline of `deno task bench` (loaded through FFI)
#   sctk                 NIST sclite, the WER oracle of tests/score (/usr/lib/sctk/bin/sclite)
#   sentencepiece        spm_train / spm_encode, the oracle of the tokenizer tests
#   chromium             headless browser of tests/report (the HTML report renders without errors)
# Does nothing when everything is present; as non-root it prints the command to run instead.
set -euo pipefail
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need clang clang
need wasm-ld lld
need espeak-ng espeak-ng
need sox sox
need flac flac
[ -x /usr/lib/sctk/bin/sclite ] || command -v sclite >/dev/null 2>&1 || missing+=(sctk)
need spm_encode sentencepiece
need chromium chromium
ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0' || missing+=(libopenblas0)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing ${missing[*]}; install as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
