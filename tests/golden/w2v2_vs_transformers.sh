#!/usr/bin/env bash
# Our wav2vec 2.0 computes what transformers' Wav2Vec2 computes for the same weights.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$1" "$tmp"
"$PYTHON" "$(dirname "$0")/w2v2_vs_transformers.py" "$tmp"
