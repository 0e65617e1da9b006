"""The suite's image pixels against timm's (Pillow's), op by op.

Usage: pixels_vs_timm.py EXPORT_PIXELS WORK_DIR [--report FILE]

Makes two test images (a 500x375 ImageNet-sized one, saved as PNG and as a quality-90 4:2:0 JPEG
like ImageNet's, and an odd-sized 333x251 one as PNG and as 4:2:2, 4:4:4 and progressive JPEGs),
runs the same operations through timm/Pillow/
torchvision from this .venv and through the suite (tests/golden/export_pixels.cpp), and compares
the uint8 results. Tolerance: every case must be equal pixel for pixel (max |difference| 0),
except JPEG decoding (whole files and the training crop's region decode), where Debian's
libjpeg-turbo and the one bundled with Pillow may differ by their IDCT's rounding: at most 1 grey
level, in at most 1 % of the values (measured: equal). Prints one line per case;
exits 1 naming the cases out of tolerance.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from PIL import Image

import timm
import timm.data.auto_augment as aa
import torchvision.transforms.functional as TF
from timm.data import create_transform
from torchvision.transforms import InterpolationMode

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from imagenet_like import photo_like  # noqa: E402

PIL_FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
               "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
               "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
TV_MODES = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
            "nearest": InterpolationMode.NEAREST}
FILL = tuple(min(255, round(255 * x)) for x in (0.485, 0.456, 0.406))  # timm's img_mean for ImageNet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export_pixels")
    ap.add_argument("work")
    ap.add_argument("--report")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    big = photo_like(500, 375, 0)
    odd = photo_like(333, 251, 1)
    paths = {"png": os.path.join(a.work, "big.png"), "jpg": os.path.join(a.work, "big.jpg"),
             "odd": os.path.join(a.work, "odd.png"), "j422": os.path.join(a.work, "odd422.jpg"),
             "j444": os.path.join(a.work, "odd444.jpg"), "jprog": os.path.join(a.work, "oddprog.jpg")}
    big.save(paths["png"])
    big.save(paths["jpg"], quality=90, subsampling="4:2:0")
    odd.save(paths["odd"])
    odd.save(paths["j422"], quality=90, subsampling="4:2:2")
    odd.save(paths["j444"], quality=95, subsampling="4:4:4")
    odd.save(paths["jprog"], quality=85, progressive=True)

    cases = {k: [] for k in paths}  # image -> [(name, command, reference PIL image, (max, frac) tolerance)]
    exact = (0, 0.0)

    # Decoding: the ImageFolder reader vs Image.open(...).convert("RGB").
    cases["jpg"].append(("decode_jpeg", "load decode_jpeg", Image.open(paths["jpg"]).convert("RGB"), (1, 0.01)))
    cases["png"].append(("decode_png", "load decode_png", Image.open(paths["png"]).convert("RGB"), exact))

    # The training crop's region decode (datasets/jpeg.h) against Pillow's full decode, cropped.
    for key in ("jpg", "j422", "j444", "jprog"):
        full = Image.open(paths[key]).convert("RGB")
        W, H = full.size
        rng = np.random.default_rng(len(key))
        for i in range(10):
            w, h = int(rng.integers(1, W + 1)), int(rng.integers(1, H + 1))
            x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            name = f"region_{key}_{i}"
            cases[key].append((name, f"region {name} {x} {y} {w} {h}", full.crop((x, y, x + w, y + h)), (1, 0.01)))

    # Image.resize, down and up, every filter.
    for key, img in (("png", big), ("odd", odd)):
        for (w, h) in ((224, 224), (256, 192), (97, 61), (640, 480)):
            for f in ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming"):
                name = f"resize_{key}_{w}x{h}_{f}"
                cases[key].append((name, f"resize {name} {w} {h} {f}", img.resize((w, h), PIL_FILTERS[f]), exact))

    # timm's evaluation transform (Resize(floor(224 / 0.875)), CenterCrop(224)), before ToTensor.
    for key, img in (("png", big), ("odd", odd)):
        for size, crop_pct, f in ((224, 0.875, "bicubic"), (224, 0.9, "bilinear"), (192, 1.0, "bicubic")):
            t = create_transform(size, is_training=False, interpolation=f, crop_pct=crop_pct)
            ref = img
            for op in t.transforms:
                if type(op).__name__ in ("ToTensor", "MaybeToTensor", "Normalize"):
                    continue
                ref = op(ref)
            name = f"eval_{key}_{size}_{crop_pct}_{f}"
            cases[key].append((name, f"eval {name} {size} {crop_pct} {f}", ref, exact))
    t = create_transform(224, is_training=False, interpolation="bicubic", crop_pct=0.875)
    ref = Image.open(paths["jpg"]).convert("RGB")
    for op in t.transforms:
        if type(op).__name__ not in ("ToTensor", "MaybeToTensor", "Normalize"):
            ref = op(ref)
    cases["jpg"].append(("eval_jpeg_224_0.875_bicubic", "eval eval_jpeg_224_0.875_bicubic 224 0.875 bicubic", ref,
                         (1, 0.01)))

    # RandomResizedCrop at fixed boxes: torchvision's resized_crop (crop, then Pillow's resize).
    for key, img in (("png", big), ("odd", odd)):
        W, H = img.size
        boxes = [(0, 0, W, H), (37, 21, 133, 97), (W - 300, H - 200, 300, 200), (5, 9, 41, 250 if H > 259 else H - 9)]
        rng = np.random.default_rng(W)  # and random boxes: every combination of up- and downscaling
        for _ in range(12):
            w, h = int(rng.integers(8, W)), int(rng.integers(8, H))
            boxes.append((int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1)), w, h))
        for i, (left, top, w, h) in enumerate(boxes):
            for f in ("bicubic", "bilinear"):
                name = f"rrc_{key}_{i}_{f}"
                ref = TF.resized_crop(img, top, left, h, w, [224, 224], TV_MODES[f])
                cases[key].append((name, f"crop {name} {left} {top} {w} {h} 224 {f}", ref, exact))

    # RandAugment ops at fixed magnitude and sign, on a 224x224 crop as in training.
    arg_lines, arg_ref = [], {}
    ops = sorted(set(aa._RAND_TRANSFORMS) | set(aa._RAND_INCREASING_TRANSFORMS))
    base = big.resize((224, 224), Image.Resampling.BICUBIC)
    base_path = os.path.join(a.work, "ra_base.png")
    base.save(base_path)
    paths["ra"] = base_path
    cases["ra"] = []
    original_negate = aa._randomly_negate
    for op in ops:
        for level in (0.0, 3.3, 4.5, 9.0, 10.0):
            for negate in (0, 1):
                aa._randomly_negate = (lambda v: -v) if negate else (lambda v: v)
                fn = aa.LEVEL_TO_ARG[op]
                args = fn(level, {"translate_pct": 0.45}) if fn else ()
                arg_ref[(op, level, negate)] = float(args[0]) if args else 0.0
                arg_lines.append(f"arg {op} {level} {negate}")
                if level in (4.5, 9.0):
                    for f in ("bicubic", "bilinear"):
                        if f == "bilinear" and op not in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"):
                            continue
                        name = f"op_{op}_{level}_{negate}_{f}"
                        ref = aa.NAME_TO_OP[op](base, *args, fillcolor=FILL, resample=PIL_FILTERS[f])
                        arg = repr(float(args[0])) if args else "0"
                        cases["ra"].append((name, f"op {name} {op} {arg} {f} {FILL[0]} {FILL[1]} {FILL[2]}", ref, exact))
    aa._randomly_negate = original_negate
    # The odd sizes through the geometric ops (the half-pixel centre of Image.rotate).
    for op, arg in (("Rotate", 27.0), ("Rotate", -90.0), ("Rotate", 180.0), ("ShearX", 0.27), ("TranslateYRel", -0.405)):
        name = f"op_odd_{op}_{arg}"
        ref = aa.NAME_TO_OP[op](odd, arg, fillcolor=FILL, resample=Image.Resampling.BICUBIC)
        cases["odd"].append((name, f"op {name} {op} {arg!r} bicubic {FILL[0]} {FILL[1]} {FILL[2]}", ref, exact))

    failures, lines = [], []
    for key, lst in cases.items():
        cmds = "\n".join(c[1] for c in lst) + "\n"
        if key == "ra":
            cmds += "\n".join(arg_lines) + "\n"
        r = subprocess.run([a.export_pixels, paths[key], a.work], input=cmds, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            sys.exit(f"export_pixels failed on {paths[key]}")
        for ln in r.stdout.splitlines():
            if ln.startswith("arg "):
                _, op, level, negate, value = ln.split()
                want = arg_ref[(op, float(level), int(negate))]
                if float(value) != want:
                    failures.append(f"arg {op} level {level} negate {negate}: ours {value}, timm {want!r}")
        for name, _, ref, (tol_max, tol_frac) in lst:
            ours = np.asarray(Image.open(os.path.join(a.work, name + ".png")).convert("RGB")).astype(np.int32)
            want = np.asarray(ref.convert("RGB")).astype(np.int32)
            if ours.shape != want.shape:
                failures.append(f"{name}: shape {ours.shape} vs timm {want.shape}")
                continue
            d = np.abs(ours - want)
            frac = float((d > 0).mean())
            line = f"{name:48s} max |diff| {int(d.max()):3d}  differing {100 * frac:6.3f} %  (tolerance {tol_max}, {100 * tol_frac:g} %)"
            lines.append(line)
            if d.max() > tol_max or frac > tol_frac:
                failures.append(line)
    n_args = len(arg_lines)
    summary = (f"{sum(len(v) for v in cases.values())} image cases and {n_args} level->argument values against "
               f"timm {timm.__version__}, Pillow {Image.__version__}")
    out = "\n".join(lines + ["", summary, f"{len(failures)} out of tolerance"] + failures) + "\n"
    print(out)
    if a.report:
        with open(a.report, "w") as fh:
            fh.write(out)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
