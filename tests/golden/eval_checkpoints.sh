#!/usr/bin/env bash
# `dyt eval` equals timm on timm checkpoints (LN and DyT) and reproduces a run's summary.json.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$DYT" run smoke/vit_fmnist --variants ln --max-steps 30 --threads 2 --out "$tmp/out" > "$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; exit 1; }
"$PYTHON" "$(dirname "$0")/eval_checkpoints.py" "$DYT" "$tmp" "$tmp/out/smoke/vit_fmnist/ln/seed0"
