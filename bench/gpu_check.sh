#!/usr/bin/env bash
# The GPU path end to end, in about 8 minutes on one NVIDIA GPU:
#   1. a short `synth evolve --devices cuda:0` search (single_ar, 2 generations, population 6);
#   2. random_teacher seconds per candidate on CUDA (AdamW at the cascade's 100 steps and at 400);
#   3. `synth export` of the GPU run's elite: its re-score on the run's device must match the stored
#      score (export exits 1 otherwise), plus its transfer verdict on mqar;
#   4. a compact summary of every figure (also in $OUT/summary.txt).
# Usage: bench/gpu_check.sh [--cpu-dry-run]   (run from anywhere; outputs under $OUT, else a temp dir)
# --cpu-dry-run runs the same steps on CPU with short budgets: it proves the script, not the GPU.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d -t synth-gpu-check.XXXXXX)}
mkdir -p "$OUT"
DRY=0
[[ "${1:-}" == "--cpu-dry-run" ]] && DRY=1
[[ $# -gt 0 && $DRY == 0 ]] && { echo "usage: $0 [--cpu-dry-run]" >&2; exit 2; }

SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }
stamp() { date +%s.%N; }
elapsed() { $PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }
step() {  # step NAME SECONDS CMD...: a time limit per step, its output kept under $OUT
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s)"
    local rc=0
    timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1 || rc=$?
    if (( rc != 0 )); then
        say "FAILED: $name (exit $rc; 124 = over ${limit}s); last lines of $OUT/$name.log:"
        tail -n 15 "$OUT/$name.log" | tee -a "$SUMMARY"
        exit 1
    fi
}

# ---------------------------------------------------------------- 0. is there a GPU?
CUDA=$($PY -c "import torch; print(torch.cuda.is_available())" 2>/dev/null || echo "no-torch")
TORCH=$($PY -c "import torch; print(torch.__version__, 'cuda', torch.version.cuda)" 2>/dev/null || echo "torch not importable")
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null || echo "none")
say "torch: $TORCH; torch.cuda.is_available(): $CUDA; GPU: $GPU"
if [[ $DRY == 1 ]]; then
    DEVICE=cpu; WORKERS=2; STEPS=(--steps 30); RT_SHORT=5; RT_FULL=10; LIMIT_RT=300
    say "CPU DRY RUN: every step runs on CPU with short budgets; the figures below say nothing about a GPU"
elif [[ "$CUDA" != "True" ]]; then
    say "NO GPU: torch cannot use CUDA here (torch.cuda.is_available() is $CUDA). Install a CUDA build of"
    say "torch, or run '$0 --cpu-dry-run' to check the script itself."
    exit 3
else
    DEVICE=cuda:0; WORKERS=4; STEPS=(); RT_SHORT=100; RT_FULL=400; LIMIT_RT=240
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | tee -a "$SUMMARY" || true
fi
say "device: $DEVICE; outputs: $OUT"

# ---------------------------------------------------------------- 1. a short search on the device
RUN="$OUT/run"
rm -rf "$RUN"
t0=$(stamp)
step evolve 300 $PY -m cli evolve --track single_ar --devices "$DEVICE" --workers "$WORKERS" --generations 2 --population 6 \
    --seed 0 --finalists 1 --quiet "${STEPS[@]}" --run-dir "$RUN"
t1=$(stamp)
$PY -m cli show "$RUN" --json > "$OUT/show.json"
read -r CANDS BEST_ID BEST_VERDICT <<< "$($PY - "$RUN" "$OUT/show.json" <<'EOF'
import json, sqlite3, sys
with sqlite3.connect(sys.argv[1] + "/synth.db") as conn:
    n = conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
best = json.load(open(sys.argv[2]))["top"][0]
print(n, best["id"], best["verdict"].replace(" ", "_"))
EOF
)"
say "evolve on $DEVICE: $CANDS evaluations in $(elapsed "$t0" "$t1") s ($WORKERS workers on one device); elite #$BEST_ID: ${BEST_VERDICT//_/ }"

# ---------------------------------------------------------------- 2. random_teacher per candidate
$PY - "$OUT/adamw.py" <<'EOF'
import sys
open(sys.argv[1], "w").write('''import torch


class Submission(torch.optim.AdamW):
    def __init__(self, params):
        super().__init__(params, lr=1e-2, betas=(0.9, 0.99), weight_decay=0)
''')
EOF
for n in $RT_SHORT $RT_FULL; do
    t0=$(stamp)
    step "random_teacher_$n" $LIMIT_RT $PY -m cli eval "$OUT/adamw.py" --track random_teacher --steps "$n" \
        --device "$DEVICE" --json
    t1=$(stamp)
    $PY - "$OUT/random_teacher_$n.log" "$(elapsed "$t0" "$t1")" "$n" <<'EOF' | tee -a "$SUMMARY"
import json, sys
text = open(sys.argv[1]).read()
r = json.loads(text[text.index("{"):])
print(f"random_teacher AdamW {sys.argv[3]} steps on {r['device']}: training {r['training_wall_time_s']:.2f} s, "
      f"candidate total {r['total_s']:.2f} s, data build {r['data_build_s']:.2f} s, command {sys.argv[2]} s; "
      f"final eval MSE {r['final_eval_mse']:.6g}")
EOF
done

# ---------------------------------------------------------------- 3. export on the run's device
rm -rf "$OUT/export"
t0=$(stamp)
step export 300 $PY -m cli export "$RUN" --out "$OUT/export" --transfer single_ar,mqar --transfer-seeds benchmark
t1=$(stamp)
$PY - "$OUT/export/lineage.json" "$DEVICE" <<'EOF' | tee -a "$SUMMARY"
import json, sys
rec = json.load(open(sys.argv[1]))
how = rec["rescored_with"]
assert rec["verified_by_rescoring"] and how["device"] == sys.argv[2], how
row = {r["track"]: r for r in rec["transfer"]}
print(f"export: re-scored #{rec['candidate']} on {how['device']} ({how['steps']} steps): identical to the stored "
      f"score ({rec['benchmark_result']['status']}, accuracy {rec['benchmark_result']['final_eval_accuracy']}); "
      f"transfer to mqar: {row['mqar']['benchmark']['verdict']}")
EOF
say "export (re-score + checks + transfer): $(elapsed "$t0" "$t1") s"
say "OK: every step passed"
