#!/usr/bin/env bash
# The paper-scale recipes resolve with `dyt config` and run on an ImageNet-style ImageFolder tree
# (1000 class folders, generated here), a couple of steps each: the full augmentation stack
# (RandAugment, mixup/cutmix, random erasing), EMA, drop-path and layer shapes of ViT-B and ViT-L.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$tmp/imagenet" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
root = Path(sys.argv[1])
rng = np.random.default_rng(0)
for split, per_class in [("train", 1), ("val", 1)]:
    for c in range(1000):
        d = root / split / f"n{c:08d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            h, w = rng.integers(40, 80, size=2)
            Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(d / f"img{i}.JPEG", format="JPEG")
print("wrote", root)
PY
for exp in paper/vit_b_imagenet paper/vit_l_imagenet; do
  "$DYT" config "$exp" > "$tmp/config.txt"
  grep -q "randaugment: rand-m9-mstd0.5-inc1" "$tmp/config.txt"
  grep -q "epochs: 300" "$tmp/config.txt"
  grep -q "mixup: 0.8" "$tmp/config.txt"
  "$DYT" run "$exp" --out "$tmp/out" --max-steps 2 --set data.root="$tmp/imagenet" --set data.batch_size=4 \
    --set data.train_subset=16 --set data.val_subset=8 --set data.eval_batch_size=8
  for v in ln dyt; do
    grep -q '"status": "finished"' "$tmp/out/$exp/$v/seed0/summary.json"
    test -s "$tmp/out/$exp/$v/seed0/model_ema.safetensors"
  done
done
for exp in paper/mae_vit_b_imagenet paper/mae_vit_l_imagenet; do
  "$DYT" config "$exp" > "$tmp/config.txt"
  grep -q "blr: 0.00015" "$tmp/config.txt"
  grep -q "layer_decay: 0.65\|layer_decay: 0.75" "$tmp/config.txt"
done
"$DYT" run paper/mae_vit_b_imagenet --out "$tmp/out" --max-steps 1 --set data.root="$tmp/imagenet" --set data.batch_size=4 \
  --set data.train_subset=8 --set data.val_subset=4 --set data.eval_batch_size=4 --variants dyt
for stage in pretrain finetune; do
  grep -q '"status": "finished"' "$tmp/out/paper/mae_vit_b_imagenet/dyt/seed0/$stage/summary.json"
done
test -s "$tmp/out/paper/mae_vit_b_imagenet/dyt/seed0/pretrain/reconstruction.png"
echo "paper recipes: OK"
