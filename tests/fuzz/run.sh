#!/usr/bin/env bash
# run.sh - builds the libFuzzer harnesses of tests/fuzz (README.md there)
# and runs each for a bounded time; .ci/run calls it after the test suites.
#
#   1. installs clang-19, its sanitizer runtimes and libFuzzer when missing
#   2. configures and builds target `fuzz` (-DNNCC_FUZZ=ON, clang-19) into
#      build-fuzz-libfuzzer/ (or $NNCC_FUZZ_BUILD)
#   3. writes the seed corpora (fuzz_seeds) from the tree's .nn files
#   4. replays the regression corpus tests/fuzz/crashes/HARNESS/ (inputs
#      that once failed): each must now pass
#   5. fuzzes each harness for FUZZ_SECONDS over its seeds, the committed
#      corpus tests/fuzz/corpus/HARNESS/ and what earlier runs in the
#      same build directory found (BUILD/corpus/HARNESS/)
# A failure (crash, sanitizer report, leak, timeout, out-of-memory, an
# oracle's abort) is copied to tests/fuzz/crashes/HARNESS/, its path and
# base64 printed, and the script exits 1.
#
#   FUZZ_SECONDS=60        fuzzing time per harness (0: replay only)
#   FUZZ_JOBS=2            harnesses fuzzed at once
#   FUZZ_HARNESSES="..."   a subset (default: all seven)
#   FUZZ_ARGS="..."        more libFuzzer options for every harness
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/tests/fuzz
build=${NNCC_FUZZ_BUILD:-$root/build-fuzz-libfuzzer}
bin=$build/tests/fuzz  # the harnesses
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
harnesses=(${FUZZ_HARNESSES:-frontend ir safetensors idx npy csv text})

# ---- 1. packages (the normal build needs no clang: only this script does)
packages=(clang-19 libclang-rt-19-dev libfuzzer-19-dev make libc6-dev cmake pkg-config
          llvm-19-dev zlib1g-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- 2. build
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DNNCC_FUZZ=ON -DNNCC_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz -j"$(nproc)"

# ---- 3. seeds, regenerated each run
rm -rf "$build/seeds"
sources=()
while IFS= read -r -d '' f; do sources+=("${f#"$root"/}"); done < <(
  find "$root/examples" "$root/tests" -path "$root/tests/fuzz" -prune -o -type f \
    \( -name '*.nn' -o -path "$root/tests/errors/*" -o -path "$root/tests/cli/fuzz/*" \) \
    -print0 | sort -z)
(cd "$root" && "$bin/fuzz_seeds" "$build/seeds" "${sources[@]}")

# per harness: the longest input, the dictionary
declare -A max_len=([frontend]=16384 [ir]=32768 [safetensors]=4096 [idx]=4096 [npy]=4096
                    [csv]=4096 [text]=4096)
declare -A dict=([frontend]=nn.dict [ir]=ir.dict [safetensors]=safetensors.dict
                 [idx]=idx.dict [npy]=npy.dict [csv]=csv.dict)
# leaks are failures too (libFuzzer checks each input for them)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-timeout=10 -rss_limit_mb=2048)

options() {  # the libFuzzer options of harness $1
  local h=$1
  local o=("${common[@]}" -max_len="${max_len[$h]}")
  [ -n "${dict[$h]:-}" ] && o+=(-dict="$here/${dict[$h]}")
  echo "${o[@]}"
}

# Copies the artifacts of harness $1 (failing inputs) into the regression
# corpus and prints where they are.
save_findings() {
  local h=$1 found=0
  mkdir -p "$here/crashes/$h"
  for a in "$build/artifacts/$h"/*; do
    [ -f "$a" ] || continue
    local name
    name=$(basename "$a")
    cp "$a" "$here/crashes/$h/$name"
    echo "fuzz: $h: FAILED on tests/fuzz/crashes/$h/$name ($(stat -c %s "$a") bytes); base64:"
    head -c 4096 "$a" | base64 -w 100
    found=1
  done
  return $found
}

# ---- 4. the regression corpus: every input that once failed, once each
status=0
for h in "${harnesses[@]}"; do
  files=()
  for f in "$here/crashes/$h"/*; do [ -f "$f" ] && files+=("$f"); done
  [ ${#files[@]} -eq 0 ] && continue
  mkdir -p "$build/logs"
  if "$bin/fuzz_$h" $(options "$h") "${files[@]}" >"$build/logs/$h.replay.log" 2>&1; then
    echo "fuzz: $h: ${#files[@]} regression inputs pass"
  else
    echo "fuzz: $h: a regression input fails again (log: $build/logs/$h.replay.log):"
    grep -E "^Running: |ERROR|SUMMARY|oracle" "$build/logs/$h.replay.log" | tail -20
    status=1
  fi
done
[ "$seconds" = 0 ] && exit $status

# ---- 5. fuzz, FUZZ_JOBS harnesses at a time
fuzz_one() {
  local h=$1 corpus=("$build/corpus/$h" "$build/seeds/$h")
  rm -rf "$build/artifacts/$h"
  mkdir -p "$build/corpus/$h" "$build/artifacts/$h" "$build/logs"
  [ -d "$here/corpus/$h" ] && corpus+=("$here/corpus/$h")
  local rc=0
  "$bin/fuzz_$h" $(options "$h") -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$h/" ${FUZZ_ARGS:-} "${corpus[@]}" \
    >"$build/logs/$h.log" 2>&1 || rc=$?
  local execs rate cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$h.log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$build/logs/$h.log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$build/logs/$h.log" | tail -1)
  echo "fuzz: $h: ${execs:-?} runs in ${seconds} s (${rate:-?}/s), $cov, exit $rc"
  local found=0
  save_findings "$h" || found=1
  if [ $rc -ne 0 ] || [ $found = 1 ]; then
    grep -E "ERROR|SUMMARY|oracle|Test unit written" "$build/logs/$h.log" | tail -20
    echo "fuzz: $h: log $build/logs/$h.log"
    return 1
  fi
}

# each job leaves its verdict in a file: `wait -n` reaps jobs in any order
for h in "${harnesses[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  rm -f "$build/logs/$h.status"
  (fuzz_one "$h" && echo ok >"$build/logs/$h.status") &
done
wait
for h in "${harnesses[@]}"; do
  [ -f "$build/logs/$h.status" ] || status=1
done
[ $status = 0 ] && echo "fuzz: all harnesses pass" || echo "fuzz: FAILED"
exit $status
