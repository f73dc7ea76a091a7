#!/usr/bin/env bash
# demo.sh - the README's first command: set up, build, then train a real
# network that needs no data files (the 3-class spiral), compile it to a
# shared library with a C header, and train it again from a C program.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/tools/setup.sh"
nncc="$NNCC_BUILD/nncc"
out="$NNCC_BUILD/demo"
mkdir -p "$out"
cd "$root"
"$nncc" --version
printf '\n== nncc train examples/spiral.nn   (JIT-compiled, synthetic data)\n'
"$nncc" train examples/spiral.nn --epochs 15 --save "$out/spiral.safetensors"
printf '\n== nncc eval examples/spiral.nn --load %s/spiral.safetensors\n' "$out"
"$nncc" eval examples/spiral.nn --load "$out/spiral.safetensors"
printf '\n== nncc examples/spiral.nn -o spiral.so --header spiral.h\n'
"$nncc" examples/spiral.nn -o "$out/spiral.so" --header "$out/spiral.h"
ldd "$out/spiral.so" | sed 's/^/   /'
printf '\n== a C program using spiral.so (examples/c/use_model.c)\n'
cc -std=c11 -O2 -I"$out" -o "$out/use_model" examples/c/use_model.c "$out/spiral.so" -lm
(cd "$out" && ./use_model)
printf '\n== nncc bench examples/spiral.nn\n'
"$nncc" bench examples/spiral.nn
