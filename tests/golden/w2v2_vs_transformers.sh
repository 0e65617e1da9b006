#!/usr/bin/env bash
# Our wav2vec 2.0 computes what transformers' Wav2Vec2 computes for the same weights: Transformer
# outputs (Base and Large layouts), the contrastive loss for the same masks and distractors, and
# every parameter's gradient of it.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" "$tmp"
"$PYTHON" "$(dirname "$0")/w2v2_vs_transformers.py" "$tmp"
