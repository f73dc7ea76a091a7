#!/usr/bin/env bash
# bench/run.sh - nncc against its PyTorch CPU peer on the peers' workloads
# W1 (mlp_small: 784-128-10, batch 64, Adam), W5 (tiny_sine: 1-32-32-1
# tanh, batch 256, Adam) and W3 (lenet: 2 conv + 2 dense, batch 64, Adam),
# one thread, in one sequential run (~3 minutes). The other peer workloads,
# W2 (mlp_wide: 784-512-512-10, batch 128, SGD momentum), W6 (mlp_wide_bn,
# mlp_wide_ln: the same with BatchNorm1d / LayerNorm) and W4 (rnn, lstm:
# T = 32, B = 32, V = 65, H = 128, Adam), run when named in WORKLOADS
# (~6 minutes more with ROUNDS=2: JIT-compiling the 32 unrolled steps of
# rnn.nn / lstm.nn takes ~20 s per process); WORKLOADS=all runs all eight.
#
#   bash bench/run.sh                  # nncc from build/nncc
#   NNCC=/path/to/nncc ROUNDS=5 WORKLOADS="mlp_small tiny_sine" bash bench/run.sh
#   WORKLOADS="mlp_wide mlp_wide_bn mlp_wide_ln rnn lstm" bash bench/run.sh
#
# A workload is a file bench/<name>.nn; its PyTorch peer is torch_bench.py's
# workload of the same name, except rnn.nn and lstm.nn, which are timed
# against both of the peers' variants (rnn_module = torch.nn.RNN, rnn_loop =
# the cell in a Python loop; lstm_module, lstm_loop): one row each.
#
# Builds nothing: it needs a built nncc (build/nncc or $NNCC). PyTorch comes
# from Debian's python3-torch for /usr/bin/python3, installed with apt-get
# when missing (and OpenBLAS behind libblas.so.3, as the peers measured).
# The PyTorch numbers come from the peers' own script
# (../shared/peers/torch_bench.py, copied to a temporary folder, as their
# README asks), run with its documented flags: --threads 1 --mode eager.
# nncc's come from `nncc bench bench/<workload>.nn` (and -D B=1 for the
# batch-1 forward). Each configuration runs in its own process, ROUNDS
# times (default 3), round k+1 in the reverse order of round k, never two
# at once. Reported: best = fastest single call of all rounds; med = median
# of the per-round medians; spread = (max-min)/min of the round medians.
# The ratio is PyTorch time / nncc time: above 1 means nncc is faster.
# Raw outputs stay in /tmp/nncc-bench.*/raw (the path is printed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
NNCC=${NNCC:-$root/build/nncc}
PEERS=${PEERS:-$root/../shared/peers}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-mlp_small tiny_sine lenet}  # bench/<name>.nn against peers_of <name>
[ "$WORKLOADS" = all ] && WORKLOADS="mlp_small tiny_sine lenet mlp_wide mlp_wide_bn mlp_wide_ln rnn lstm"
PY=/usr/bin/python3

# one thread everywhere: torch_bench.py re-execs itself with these too
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

if [ ! -x "$NNCC" ]; then
  echo "bench/run.sh: no nncc at $NNCC: build it first (cmake + make nncc) or set NNCC=/path/to/nncc" >&2
  exit 2
fi
if [ ! -f "$PEERS/torch_bench.py" ] || [ ! -f "$PEERS/models.py" ]; then
  echo "bench/run.sh: no peer scripts in $PEERS (set PEERS=/path/to/shared/peers)" >&2
  exit 2
fi
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "bench/run.sh: $PY cannot import torch: installing Debian's python3-torch with apt-get (large: ~1 GB with its dependencies)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-torch
fi

# torch's Linear goes to libblas.so.3; the peers measured it with OpenBLAS
# (pthread build). Debian's reference (netlib) BLAS, which other packages
# may have put there, is ~20x slower and would make an unfair peer.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ $blas != *openblas* ]]; then
  echo "bench/run.sh: libblas.so.3 is ${blas:-missing}, not OpenBLAS: installing libopenblas0-pthread with apt-get (the peers' BLAS)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libopenblas0-pthread
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
fi
if [[ $blas != *openblas* ]] && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
  # the alternative was set by hand: point only the PyTorch processes at OpenBLAS
  export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  blas="/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 (LD_LIBRARY_PATH)"
fi

work=$(mktemp -d /tmp/nncc-bench.XXXXXX)
cp -r "$PEERS"/. "$work/peers"  # the peers' folder is read-only: run a copy
rm -rf "$work/peers/results"
raw="$work/raw"
mkdir -p "$raw"

echo "== machine"
echo "nproc: $(nproc --all) (OMP_NUM_THREADS=1 makes plain nproc say 1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$NNCC" --version
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null), libblas.so.3 = $blas"
echo "env: OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE-(unset)}"
echo "raw outputs: $raw"

# the peers' workload names (torch_bench.py --workload) that bench/<w>.nn is timed against
peers_of() {
  case $1 in
    rnn)  echo rnn_module rnn_loop ;;
    lstm) echo lstm_module lstm_loop ;;
    *)    echo "$1" ;;
  esac
}

# one job = one process; its output goes to $raw/<job>.r<round>
run_job() {  # job round
  local job=$1 r=$2 out="$raw/$1.r$2" w
  case $job in
    nncc_*_b1) w=${job#nncc_} && "$NNCC" bench "$here/${w%_b1}.nn" -D B=1 >"$out" ;;
    nncc_*)    "$NNCC" bench "$here/${job#nncc_}.nn" >"$out" ;;
    torch_*)   (cd "$work/peers" && "$PY" torch_bench.py --workload "${job#torch_}" --threads 1 --mode eager --round "$r") >"$out" ;;
  esac
}

read -r -a wl_list <<<"$WORKLOADS"
jobs=()
for w in "${wl_list[@]}"; do
  [ -f "$here/$w.nn" ] || { echo "bench/run.sh: no bench/$w.nn for workload '$w'" >&2; exit 2; }
  jobs+=("nncc_$w" "nncc_${w}_b1")
  for p in $(peers_of "$w"); do jobs+=("torch_$p"); done
done
echo "== $ROUNDS rounds of ${#jobs[@]} processes, one at a time"
for ((r = 0; r < ROUNDS; r++)); do
  order=("${jobs[@]}")
  if ((r % 2)); then
    order=()
    for ((i = ${#jobs[@]} - 1; i >= 0; i--)); do order+=("${jobs[i]}"); done
  fi
  for j in "${order[@]}"; do
    printf 'round %d: %-18s ' "$r" "$j"
    t0=$(date +%s%N)
    run_job "$j" "$r"
    t1=$(date +%s%N)
    printf '%d.%d s\n' $(((t1 - t0) / 1000000000)) $(((t1 - t0) / 100000000 % 10))
  done
done

echo "== results (times in microseconds; ratio = PyTorch time / nncc time, > 1: nncc faster)"
specs=()
for w in "${wl_list[@]}"; do specs+=("$w:$(peers_of "$w" | tr ' ' ,)"); done
"$PY" - "$raw" "$ROUNDS" "${specs[@]}" <<'EOF'
import json, os, statistics, sys

raw, rounds = sys.argv[1], int(sys.argv[2])
workloads = [(s.split(":")[0], s.split(":")[1].split(",")) for s in sys.argv[3:]]  # (nncc file, [peer workloads])
LABEL = {"mlp_small": "W1", "mlp_wide": "W2", "lenet": "W3", "rnn": "W4", "lstm": "W4", "tiny_sine": "W5",
         "mlp_wide_bn": "W6", "mlp_wide_ln": "W6"}

def nncc(job):  # kernel -> list of (best_us, median_us, mflop) per round
    res = {}
    for r in range(rounds):
        for line in open(os.path.join(raw, "%s.r%d" % (job, r))):
            f = line.split()
            if line.startswith("nncc bench"):
                res["batch"] = int(line.split(", batch ")[1].split(";")[0])
            if f and f[0] in ("forward", "train_step"):
                res.setdefault(f[0], []).append((float(f[2]), float(f[3]), float(f[5])))
    return res

def torch(job):  # kernel -> list of (best_us, median_us, mflop) per round; and the JSON of round 0
    res, first = {}, None
    for r in range(rounds):
        d = json.loads(open(os.path.join(raw, "%s.r%d" % (job, r))).read().strip().splitlines()[-1])
        first = first or d
        res.setdefault("train_step", []).append((d["train"]["min_ms"] * 1e3, d["train"]["med_ms"] * 1e3, d["flops_train"] / 1e6))
        res.setdefault("forward", []).append((d["infer"]["bB"]["min_ms"] * 1e3, d["infer"]["bB"]["med_ms"] * 1e3, d["flops_fwd_B"] / 1e6))
        res.setdefault("forward_b1", []).append((d["infer"]["b1"]["min_ms"] * 1e3, d["infer"]["b1"]["med_ms"] * 1e3, d["flops_fwd_1"] / 1e6))
    return res, first

def us(t):  # 3 significant digits at least
    return "%.1f" % t if t >= 10 else "%.2f" % t if t >= 1 else "%.3f" % t

def agg(rows):
    best = min(b for b, _, _ in rows)
    meds = [m for _, m, _ in rows]
    return best, statistics.median(meds), (max(meds) - min(meds)) / min(meds), rows[0][2]

print("| workload | kernel | batch | nncc best | nncc med | nncc spread | nncc GFLOPS (med) "
      "| PyTorch best | PyTorch med | PyTorch spread | PyTorch GFLOPS (med) | ratio med | ratio best |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
notes = []
for wl, peers in workloads:
    n, n1 = nncc("nncc_" + wl), nncc("nncc_%s_b1" % wl)
    batch = n["batch"]
    for peer in peers:
        label = (LABEL.get(wl, "") + " " + wl).strip() + ("" if peer == wl else " vs " + peer)
        t, d = torch("torch_" + peer)
        for kernel, b, nrows, trows in (("train_step", batch, n["train_step"], t["train_step"]),
                                        ("forward", batch, n["forward"], t["forward"]),
                                        ("forward", 1, n1["forward"], t["forward_b1"])):
            nb, nm, ns, nf = agg(nrows)
            tb, tm, ts, tf = agg(trows)
            if abs(nf - tf) > max(1e-5, 1e-4 * tf):  # nncc prints MFLOP with 6 decimals
                notes.append("%s %s batch %d: FLOP counts differ: nncc %.3f MFLOP, PyTorch %.3f" % (label, kernel, b, nf, tf))
            print("| %s | %s | %d | %s | %s | %.0f%% | %.2f | %s | %s | %.0f%% | %.2f | %.2f | %.2f |"
                  % (label, kernel, b, us(nb), us(nm), 100 * ns, nf / nm * 1e3, us(tb), us(tm), 100 * ts, tf / tm * 1e3,
                     tm / nm, tb / nb))
        notes.append("%s: PyTorch %s, torch.mm 1024^3 in the same process %.0f GFLOPS (best, round 0), OPENBLAS_CORETYPE=%s, "
                     "MFLOP per train step %.3f" % (label, d["torch"], d["ref_gemm1024_gflops_best"], d["OPENBLAS_CORETYPE"],
                                                    d["flops_train"] / 1e6))
print()
for s in notes:
    print("note: " + s)
for wl, _ in workloads:
    for line in open(os.path.join(raw, "nncc_%s.r0" % wl)):
        if line.startswith("note:"):
            print("nncc %s %s" % (wl, line.strip()))
EOF
echo "(best = fastest call of $ROUNDS rounds; med = median of the round medians; spread = (max-min)/min of the round medians)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$work/peers"
