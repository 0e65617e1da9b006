"""timm's ImageNet input pipeline on an image tree, for `dyt bench data` (side by side, same tree,
same number of workers): torchvision ImageFolder + timm create_transform + torch DataLoader.

    .venv/bin/python scripts/bench_timm_data.py --tree DIR --split train --workers 2 --images 2048

Prints one JSON line: {"split", "workers", "images", "seconds", "images_per_s"}. The training
transform is the DyT/ConvNeXt ImageNet recipe's: RandomResizedCrop(224, bicubic), flip,
rand-m9-mstd0.5-inc1, normalise, random erasing 0.25 (pixel mode); evaluation: Resize(256,
bicubic), CenterCrop(224), normalise. Workers: 0 = in this process; time starts after the first
batch (worker start-up and the first decode excluded), as `dyt bench data` does.
"""
import argparse
import json
import os
import time

import torch
import timm.data.auto_augment as aa
from timm.data import create_transform
from torchvision.datasets import ImageFolder

# Pillow 13 refuses ImageOps.posterize(img, 0), which timm 1.0.29's PosterizeIncreasing asks for
# at magnitude 10 (reached by m9 + mstd0.5): older Pillow gave a black image, as the suite does.
_posterize = aa.posterize


def _posterize_zero_ok(img, bits_to_keep, **kw):
    if bits_to_keep <= 0:
        return img.point(lambda _: 0)
    return _posterize(img, bits_to_keep, **kw)


aa.posterize = _posterize_zero_ok
aa.NAME_TO_OP["Posterize"] = aa.NAME_TO_OP["PosterizeIncreasing"] = aa.NAME_TO_OP["PosterizeOriginal"] = _posterize_zero_ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", required=True)
    ap.add_argument("--split", default="train", choices=["train", "val"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args()
    torch.set_num_threads(1)
    train = a.split == "train"
    if train:
        tf = create_transform(a.size, is_training=True, scale=(0.08, 1.0), hflip=0.5,
                              auto_augment="rand-m9-mstd0.5-inc1", interpolation="bicubic",
                              re_prob=0.25, re_mode="pixel", re_count=1)
    else:
        tf = create_transform(a.size, is_training=False, interpolation="bicubic", crop_pct=0.875)
    ds = ImageFolder(os.path.join(a.tree, a.split), transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=train, num_workers=a.workers, drop_last=False,
                                     persistent_workers=a.workers > 0)
    seen, t0 = 0, None
    while seen < a.images:
        for x, _ in dl:
            if t0 is None:  # after the first batch
                t0 = time.perf_counter()
                continue
            seen += x.shape[0]
            if seen >= a.images:
                break
    dt = time.perf_counter() - t0
    print(json.dumps({"split": a.split, "workers": a.workers, "images": seen, "seconds": dt, "images_per_s": seen / dt}))


if __name__ == "__main__":
    main()
