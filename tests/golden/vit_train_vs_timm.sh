#!/usr/bin/env bash
# dyt's training (ViT, LN and DyT: AdamW groups, warm-up + cosine, label smoothing, EMA, the loop)
# equals timm's for 32 updates from the same weights on the same batches; and the comparison
# catches alpha under weight decay and a warm-up off by one update (each must make it fail).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=$(dirname "$0")/vit_train_vs_timm.py
"$PYTHON" "$py" "$tmp"
for m in decay_all warmup_shift; do
  if "$PYTHON" "$py" "$tmp" --mutate "$m" > "$tmp/$m.log" 2>&1; then
    cat "$tmp/$m.log"; echo "the comparison did not catch the mutation '$m'"; exit 1
  fi
  grep -q "DIFFERS" "$tmp/$m.log" || { cat "$tmp/$m.log"; exit 1; }
  echo "mutation $m: caught ($(grep -c DIFFERS "$tmp/$m.log") differences)"
done
