#!/usr/bin/env bash
# End to end: the table `dyt run` prints is built from the plan that ran: an experiment kept
# outside the suite (base: paths into configs/) runs, exits 0 and writes its table; seeds given
# with --seeds beyond the YAML's list appear in the table, and `dyt table` finds them again.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/elsewhere"
cat > "$tmp/elsewhere/my_exp.yaml" <<YAML
base:
  - $DYT_HOME/configs/models/vit_fmnist.yaml
  - $DYT_HOME/configs/data/fashion_mnist.yaml
  - $DYT_HOME/configs/recipes/small_adamw.yaml
description: an experiment outside experiments/
model: {embed_dim: 32, depth: 1}
data: {train_subset: 512, val_subset: 256, batch_size: 64}
schedule: {epochs: 1, warmup_epochs: 0.1}
seeds: [0]
report: {row: outside}
YAML
(cd "$tmp" && "$DYT" run "$tmp/elsewhere/my_exp.yaml" --out "$tmp/out" > "$tmp/run1.txt" 2>&1) ||
  { cat "$tmp/run1.txt"; echo "FAIL: dyt run of an external experiment exited non-zero"; exit 1; }
grep -q "| outside |" "$tmp/run1.txt" || { cat "$tmp/run1.txt"; echo "FAIL: no table printed"; exit 1; }
test -f "$tmp/out/my_exp/table.md" || { echo "FAIL: table.md not written"; exit 1; }
echo "ok: external experiment ran and wrote its table"

"$DYT" run smoke/vit_fmnist --variants dyt --seeds 0,1 --max-steps 3 --out "$tmp/out" > "$tmp/run2.txt" 2>&1 ||
  { cat "$tmp/run2.txt"; exit 1; }
grep -q "over 2 seeds" "$tmp/run2.txt" || { cat "$tmp/run2.txt"; echo "FAIL: seed 1 (from --seeds) is not in the table"; exit 1; }
"$DYT" table smoke/vit_fmnist --out "$tmp/out" > "$tmp/table.txt" 2>&1
grep -q "over 2 seeds" "$tmp/table.txt" || { cat "$tmp/table.txt"; echo "FAIL: dyt table lost seed 1"; exit 1; }
echo "ok: --seeds beyond the YAML appear in the run's table and in dyt table"
