#!/usr/bin/env bash
# Installs what the build needs beyond npm: clang and wasm-ld (Debian packages clang, lld) for
# the WebAssembly kernels. Does nothing when both are present.
set -euo pipefail
missing=()
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "error: ${missing[*]} missing; install them as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${missing[@]}" >/dev/null
