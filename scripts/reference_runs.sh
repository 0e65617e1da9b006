#!/usr/bin/env bash
# Re-runs the small-scale reference experiments whose tables and figures are committed under
# results/reference/, one after another (nothing else should share the machine while they run:
# two OpenMP programs on the same cores slow each other down many times over), then the
# benchmarks. About 4 hours on 2 cores. Each experiment's log is results/reference/logs/<name>.log.
#   bash scripts/reference_runs.sh [experiment ...]
set -uo pipefail
cd "$(dirname "$0")/.."
logs=results/reference/logs
mkdir -p "$logs"
exps=("$@")
[[ ${#exps[@]} -gt 0 ]] || exps=(quick/vit_fmnist mini/vit_fmnist mini/mae_fmnist mini/w2v2_speech analysis/ln_mapping
                                   analysis/alpha_tracking analysis/squash_ablation analysis/alpha0_sweep)
for e in "${exps[@]}"; do
  log=$logs/$(echo "$e" | tr / _).log
  start=$(date +%s)
  build/dyt run "$e" > "$log" 2>&1
  rc=$?
  echo "exit $rc, wall $(( $(date +%s) - start )) s, $(date -u)" >> "$log"
  build/dyt plot "$e" >> "$log" 2>&1
done
