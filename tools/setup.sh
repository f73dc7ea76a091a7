#!/usr/bin/env bash
# setup.sh - installs what nncc needs on Debian 12 (as root, or with sudo)
# and builds it into build/ (or $NNCC_BUILD_DIR). Sourced by demo.sh and
# test.sh; safe to run again: it installs only what is missing.
#   NNCC_SANITIZE=1   build with ASan + UBSan (into build-asan/)
#   NNCC_WERROR=1     warnings are errors (CI)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(gcc make libc6-dev cmake pkg-config llvm-19-dev check libsubunit-dev zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "nncc setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sanitize=${NNCC_SANITIZE:-0}
if [ "$sanitize" = 1 ]; then
  build=${NNCC_BUILD_DIR:-$root/build-asan}
else
  build=${NNCC_BUILD_DIR:-$root/build}
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNNCC_SANITIZE=$([ "$sanitize" = 1 ] && echo ON || echo OFF) \
  -DNNCC_WERROR=$([ "${NNCC_WERROR:-0}" = 1 ] && echo ON || echo OFF) >/dev/null
cmake --build "$build" -j"$(nproc)"
export NNCC_BUILD="$build"
