#!/usr/bin/env bash
# Re-runs the small-scale reference experiments whose tables and figures are committed under
# results/reference/, one after another (nothing else should share the machine while they run:
# two OpenMP programs on the same cores slow each other down many times over), then the
# benchmarks (the name `bench`). The wall times recorded in results/reference/*.md add up to about
# 4 hours on 2 cores. Each experiment's log is
# results/reference/logs/<name>.log; benchmark tables go to results/reference/bench/.
#   bash scripts/reference_runs.sh [experiment|bench ...]
set -uo pipefail
cd "$(dirname "$0")/.."
logs=results/reference/logs
mkdir -p "$logs"
exps=("$@")
[[ ${#exps[@]} -gt 0 ]] || exps=(quick/vit_fmnist mini/vit_fmnist mini/mae_fmnist mini/w2v2_speech analysis/ln_mapping
                                   analysis/alpha_tracking analysis/squash_ablation analysis/alpha0_sweep bench)
bench() {
  local b=results/reference/bench tv
  tv=$(.venv/bin/python -c 'import torch;print(torch.__version__.split("+")[0])')
  mkdir -p "$b"
  build/dyt bench norm --threads 2 --csv "$b/norm_cpu_fp32_torch$tv.csv" > "$b/norm_cpu_fp32_torch$tv.md"
  build/dyt bench norm --threads 2 --dtype bf16 --shape 12608x384 --shape 50432x768 \
    --csv "$b/norm_cpu_bf16_torch$tv.csv" > "$b/norm_cpu_bf16_torch$tv.md"
  build/dyt bench model --threads 2 --out-dir "$b" > "$b/model_cpu_fp32.log"
  .venv/bin/python scripts/bench_python_norms.py --threads 2 --out "$b" > "$b/norm_side_by_side.log"
}
for e in "${exps[@]}"; do
  if [[ $e == bench ]]; then
    start=$(date +%s); bench > "$logs/bench.log" 2>&1
    echo "exit $?, wall $(( $(date +%s) - start )) s, $(date -u)" >> "$logs/bench.log"; continue
  fi
  log=$logs/$(echo "$e" | tr / _).log
  start=$(date +%s)
  build/dyt run "$e" > "$log" 2>&1
  rc=$?
  echo "exit $rc, wall $(( $(date +%s) - start )) s, $(date -u)" >> "$log"
  build/dyt plot "$e" >> "$log" 2>&1
done
