"""An ImageNet-shaped JPEG tree for loader benchmarks and tests: ImageNet's sizes, aspect ratios,
JPEG quality and chroma subsampling, with photo-like content (smooth colour fields, hard-edged
shapes, sensor-like noise) so that decoding and resampling cost what they cost on photographs.

    .venv/bin/python scripts/imagenet_like.py --out DIR [--images 1000] [--classes 10] [--val 0.1]

writes DIR/train/<class>/<n>.JPEG and DIR/val/<class>/<n>.JPEG (the layout `data.name: imagenet`
and `dyt bench data` read) and prints the size and file-size statistics.
Size model (ILSVRC-2012 train: most images have a 500-pixel longer side, 4:3 the commonest shape,
about 110 KB per file: 1.28 M files in about 140 GB): longer side 500 with probability 0.8, else
uniform in [200, 1000]; aspect 4:3 / 3:2 / 1:1 / 3:4 / 2:3 with probabilities .45 / .2 / .1 / .15
/ .1; quality uniform in [75, 95]; 4:2:0 subsampling. The script prints the mean size and file
size it made (--images 500, seed 0: 550 files, 487x425 pixels and 103 KB on average).
"""
import argparse
import os

import numpy as np
from PIL import Image


def photo_like(w, h, seed):
    """Smooth colour fields, hard-edged shapes and a little noise: resampling sees edges and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.002, 0.05), rng.uniform(0.002, 0.05), rng.uniform(0, 6.3)
            img[..., c] += rng.uniform(20, 50) * np.sin(fx * x + fy * y + ph)
    img += 128
    for _ in range(25):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        rw, rh = rng.integers(5, max(6, w // 3)), rng.integers(5, max(6, h // 3))
        col = rng.integers(0, 256, 3)
        if rng.random() < 0.5:
            img[y0:y0 + rh, x0:x0 + rw] = col
        else:
            m = (x - x0) ** 2 + (y - y0) ** 2 < (rw / 2) ** 2
            img[m] = col
    img += rng.normal(0, 6, img.shape)  # colour noise
    img += rng.normal(0, 20, (h, w))[..., None]  # luminance texture: file sizes near ImageNet's
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def imagenet_size(rng):
    longer = 500 if rng.random() < 0.8 else int(rng.integers(200, 1001))
    aspect = rng.choice([4 / 3, 3 / 2, 1.0, 3 / 4, 2 / 3], p=[0.45, 0.2, 0.1, 0.15, 0.1])
    if aspect >= 1:
        return longer, max(1, round(longer / aspect))
    return max(1, round(longer * aspect)), longer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=1000, help="training images in all (default 1000)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--val", type=float, default=0.1, help="validation images as a fraction of --images")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    sizes, kbytes = [], []
    for split, n in (("train", a.images), ("val", max(a.classes, int(a.images * a.val)))):
        for i in range(n):
            cls = f"n{i % a.classes:08d}"
            d = os.path.join(a.out, split, cls)
            os.makedirs(d, exist_ok=True)
            w, h = imagenet_size(rng)
            path = os.path.join(d, f"{split}_{i:07d}.JPEG")
            photo_like(w, h, int(rng.integers(1 << 31))).save(path, quality=int(rng.integers(75, 96)), subsampling="4:2:0")
            sizes.append((w, h))
            kbytes.append(os.path.getsize(path) / 1024)
    s = np.array(sizes)
    print(f"{len(sizes)} JPEGs under {a.out}: mean {s[:, 0].mean():.0f}x{s[:, 1].mean():.0f} pixels, "
          f"{np.mean(kbytes):.0f} KB (median {np.median(kbytes):.0f} KB)")


if __name__ == "__main__":
    main()
