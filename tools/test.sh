#!/usr/bin/env bash
# test.sh - the README's second command: set up, build, run every test
# through CTest. NNCC_SANITIZE=1 runs the same suite under ASan + UBSan.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/tools/setup.sh"
cd "$NNCC_BUILD"
ctest --output-on-failure -j"$(nproc)" "$@"
