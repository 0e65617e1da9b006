#!/usr/bin/env bash
# The suite's image pixels equal timm's / Pillow's: decode, resize, eval transform, RandomResizedCrop
# at fixed boxes, every RandAugment op and its level -> argument map (golden/pixels_vs_timm.py).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" "$(dirname "$0")/pixels_vs_timm.py" "$1" "$tmp"
