#!/usr/bin/env bash
# Our MAE's loss for a given mask and its training for 6 AdamW updates equal transformers'
# ViTMAEForPreTraining's (LN and DyT) from the same weights, images and masking noise.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" "$tmp"
"$PYTHON" "$(dirname "$0")/mae_train_vs_transformers.py" "$tmp"
for m in decay_all betas; do
  if "$PYTHON" "$(dirname "$0")/mae_train_vs_transformers.py" "$tmp" "$m" > "$tmp/$m.log" 2>&1; then
    cat "$tmp/$m.log"; echo "the comparison did not catch the mutation '$m'"; exit 1
  fi
  grep -q DIFFERS "$tmp/$m.log" || { cat "$tmp/$m.log"; exit 1; }
  echo "mutation $m: caught ($(grep -c DIFFERS "$tmp/$m.log") differences)"
done
