#!/usr/bin/env bash
# demo.sh - the README's first command: set up, build, then show what
# nncc does today with the bundled examples: check each one, list its
# parameters, and print the graph IR of the MLP.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/tools/setup.sh"
nncc="$NNCC_BUILD/nncc"
cd "$root"
"$nncc" --version
for f in examples/*.nn; do
  printf '\n== nncc check %s\n' "$f"
  "$nncc" check "$f" && echo "ok"
done
printf '\n== nncc examples/spiral.nn --emit=params\n'
"$nncc" examples/spiral.nn --emit=params
printf '\n== nncc examples/mlp.nn --emit=ir\n'
"$nncc" examples/mlp.nn --emit=ir
