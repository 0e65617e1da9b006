#!/usr/bin/env bash
# Our ViT's logits equal timm's VisionTransformer's for the same weights, with LN and with DyT.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" "$tmp"
"$PYTHON" "$(dirname "$0")/vit_vs_timm.py" "$tmp"
