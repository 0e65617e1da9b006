"""Training, not just the forward pass, pinned to timm: `dyt run` trains a small ViT (LN and DyT) on
an image tree written here, from initial weights written here, and this script trains timm's
VisionTransformer (DyT: timm's LayerNorms replaced by the paper's DynamicTanh) on the same batches
with the reference pieces: timm's optimizer factory (AdamW, no weight decay on 1-D parameters and
biases, timm's param_groups_weight_decay), MAE's per-step warm-up + cosine formula
(util/lr_sched.py), torch's label-smoothed cross-entropy, timm's ModelEmaV2. The loss of every
update, the final weights and the final EMA weights must agree.

Tolerances (fp32, one thread, measured in results/reference/train_vs_timm.md): over 32 updates
the LN run is bit-identical to timm's and the DyT run (our fused kernel against tanh ops) agrees to
1e-7 in the loss and 5e-7 in any weight. Allowed: 1e-4 relative in each loss and 2e-4 absolute in
each weight, far below what the mutations below change (7e-4 and 2e-3 at the least). The
attention's key bias is compared by size, not value: its gradient is zero in exact arithmetic
(softmax ignores a shift shared by all keys), so AdamW turns rounding noise into lr-sized steps
(both stay below 1e-2).

Can it fail? `--mutate decay_all` makes dyt decay every parameter (DyT's alpha, norm gains, biases
included) and `--mutate warmup_shift` moves the reference's warm-up by one update; the test runs
both and requires each to be caught (tests/golden/vit_train_vs_timm.sh).
"""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import timm
import timm.optim
import timm.utils
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

M64 = (1 << 64) - 1


class MT19937_64:
    """std::mt19937_64 (the generator of dyt's epoch order), from its published definition."""

    def __init__(self, seed):
        self.mt = [0] * 312
        self.i = 312
        self.mt[0] = seed & M64
        for k in range(1, 312):
            self.mt[k] = (6364136223846793005 * (self.mt[k - 1] ^ (self.mt[k - 1] >> 62)) + k) & M64

    def __call__(self):
        if self.i >= 312:
            for k in range(312):
                x = (self.mt[k] & 0xFFFFFFFF80000000) | (self.mt[(k + 1) % 312] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[k] = self.mt[(k + 156) % 312] ^ xa
            self.i = 0
        y = self.mt[self.i]
        self.i += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & M64


def _check_mt():  # the C++ standard: the 10000th draw of a default-constructed mt19937_64
    g = MT19937_64(5489)
    for _ in range(9999):
        g()
    assert g() == 9981545732273789042


_check_mt()


def mix_seed(a, b):  # datasets/loader.cpp (splitmix64-style finaliser)
    z = (a * 0x9E3779B97F4A7C15 + b + 0x632BE59BD9B4E019) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def epoch_order(n, seed, epoch):  # dyt's documented epoch order: Fisher-Yates with mt19937_64
    perm = list(range(n))
    rng = MT19937_64(mix_seed(seed, epoch + 1))
    for i in range(n - 1, 0, -1):
        j = rng() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


# The paper's DynamicTanh and the LayerNorm -> DyT conversion, from the repository's python/
# module (the one users load runs with), so that the tests exercise it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import dyt_timm  # noqa: E402
from dyt_timm import convert_ln_to_dyt  # noqa: E402


CFG = dict(classes=4, per_class=32, size=16, patch=4, dim=32, depth=2, heads=4, batch=16, epochs=4, warmup=1,
           lr=2e-3, min_lr=1e-5, wd=0.05, smoothing=0.1, ema=0.9, seed=3, mean=0.5, std=0.25)


def make_model(norm):
    torch.manual_seed(0)
    m = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=CFG["size"], patch_size=CFG["patch"],
                          embed_dim=CFG["dim"], depth=CFG["depth"], num_heads=CFG["heads"],
                          num_classes=CFG["classes"], global_pool="token")
    return convert_ln_to_dyt(m) if norm == "dyt" else m


def write_tree(root: Path):
    rng = np.random.default_rng(0)
    files = []
    for split, n in [("train", CFG["per_class"]), ("val", 4)]:
        for c in range(CFG["classes"]):
            d = root / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(n):
                # Class-dependent colour plus noise: learnable in a few dozen updates.
                base = np.array([60 * c, 255 - 50 * c, 40 + 30 * c], dtype=np.float64)
                px = np.clip(base + rng.normal(0, 60, (CFG["size"], CFG["size"], 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(d / f"img{i:03d}.png")
    return root


def load_train(root: Path):
    """The training images as dyt's image_folder reads them: classes sorted, files sorted, pixels
    normalised as datasets/transforms.cpp does (x * 1/(255 std) - mean/std in float32)."""
    xs, ys = [], []
    classes = sorted(p.name for p in (root / "train").iterdir())
    for ci, c in enumerate(classes):
        for f in sorted((root / "train" / c).iterdir()):
            px = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32)
            scale = np.float32(1.0 / (255.0 * CFG["std"]))
            shift = np.float32(-CFG["mean"] / CFG["std"])
            xs.append(torch.from_numpy((px * scale + shift).transpose(2, 0, 1).copy()))
            ys.append(ci)
    return torch.stack(xs), torch.tensor(ys)


def experiment_yaml(tmp: Path, init: Path, norm: str, decay_all: bool):
    return f"""
task: classification
description: training trajectory vs timm ({norm})
model: {{type: vit, img_size: {CFG['size']}, patch_size: {CFG['patch']}, in_chans: 3, num_classes: {CFG['classes']},
         embed_dim: {CFG['dim']}, depth: {CFG['depth']}, num_heads: {CFG['heads']}, mlp_ratio: 4.0, global_pool: cls,
         drop_path_rate: 0.0, norm: {{type: {'dyt' if norm == 'dyt' else 'layernorm'}}}}}
data: {{dataset: image_folder, root: {tmp / 'tree'}, image_size: {CFG['size']}, batch_size: {CFG['batch']},
        eval_batch_size: 64, workers: 1, mean: [{CFG['mean']}], std: [{CFG['std']}],
        augment: {{train_crop: none, hflip: 0.0, randaugment: "", random_erasing: 0.0, mixup: 0.0, cutmix: 0.0}}}}
optim: {{name: adamw, lr: {CFG['lr']}, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: {CFG['wd']},
         decay_all: {'true' if decay_all else 'false'}}}
schedule: {{epochs: {CFG['epochs']}, warmup_epochs: {CFG['warmup']}, min_lr: {CFG['min_lr']}, kind: cosine}}
train: {{label_smoothing: {CFG['smoothing']}, ema: true, ema_decay: {CFG['ema']}, log_every: 1, precision: fp32,
         checkpoint_every: 0, eval_every: 100}}
init: {{checkpoint: {init}}}
seeds: [{CFG['seed']}]
run: {{threads: 1, device: cpu}}
"""


def run_dyt(tmp: Path, norm: str, decay_all: bool):
    init = tmp / f"init_{norm}.safetensors"
    save_file({k: v.contiguous() for k, v in make_model(norm).state_dict().items()}, str(init))
    exp = tmp / f"traj_{norm}.yaml"
    exp.write_text(experiment_yaml(tmp, init, norm, decay_all))
    out = tmp / "out"
    subprocess.run([os.environ["DYT"], "run", str(exp), "--out", str(out), "--force"], check=True,
                   stdout=subprocess.DEVNULL)
    run = out / f"traj_{norm}" / "default" / f"seed{CFG['seed']}"
    losses = {j["step"]: j["loss"] for j in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if j["split"] == "train"}
    # The run loads into timm from its own config.json through python/dyt_timm.py (strict names).
    loaded = dyt_timm.load(run)
    loaded_ema = dyt_timm.load(run, ema=True)
    weights = load_file(str(run / "model.safetensors"))
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, weights[k]), k
    return losses, weights, load_file(str(run / "model_ema.safetensors")), loaded, loaded_ema


def run_timm(x, y, norm: str, warmup_shift: int):
    model = make_model(norm)
    model.train()
    opt = timm.optim.create_optimizer_v2(model, "adamw", lr=CFG["lr"], weight_decay=CFG["wd"], betas=(0.9, 0.999),
                                         eps=1e-8)
    ema = timm.utils.ModelEmaV2(model, decay=CFG["ema"])
    ce = torch.nn.CrossEntropyLoss(label_smoothing=CFG["smoothing"])
    n, B = len(y), CFG["batch"]
    spe = n // B
    losses = {}
    step = 0
    for epoch in range(CFG["epochs"]):
        order = epoch_order(n, CFG["seed"], epoch)
        for b in range(spe):
            idx = torch.tensor(order[b * B:(b + 1) * B])
            # MAE util/lr_sched.adjust_learning_rate, per update (epoch = fractional)
            e = (step + warmup_shift) / spe
            if e < CFG["warmup"]:
                lr = CFG["lr"] * e / CFG["warmup"]
            else:
                lr = CFG["min_lr"] + (CFG["lr"] - CFG["min_lr"]) * 0.5 * (
                    1.0 + math.cos(math.pi * (e - CFG["warmup"]) / (CFG["epochs"] - CFG["warmup"])))
            for g in opt.param_groups:
                g["lr"] = lr
            loss = ce(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model)
            step += 1
            losses[step] = loss.item()
    return losses, model.state_dict(), ema.module.state_dict(), model, ema.module


def compare(norm, ours, theirs):
    """Returns a list of failures (empty: agree) and prints the measured agreement."""
    fails = []
    l_ours, w_ours, e_ours, loaded, loaded_ema = ours
    l_theirs, w_theirs, e_theirs, timm_model, timm_ema = theirs
    # config.json describes the architecture: dyt_timm's model, built from it alone, computes the
    # logits of the reference model trained here (weights within the tolerance below).
    x = torch.randn(8, 3, CFG["size"], CFG["size"], generator=torch.Generator().manual_seed(1))
    timm_model.eval()
    with torch.no_grad():
        dl = (loaded(x) - timm_model(x)).abs().max().item()
        de = (loaded_ema(x) - timm_ema(x)).abs().max().item()
    if max(dl, de) > 1e-3:
        fails.append(f"{norm}: the run loaded from its config.json gives other logits than timm's model ({dl:.3g}, EMA {de:.3g})")
    print(f"  {norm}: loaded from config.json by python/dyt_timm.py: logits within {dl:.1e} (EMA {de:.1e}) of timm's")
    if sorted(l_ours) != sorted(l_theirs):
        return [f"{norm}: steps differ: {sorted(l_ours)[:3]}... vs {sorted(l_theirs)[:3]}..."]
    loss_rel = max(abs(l_ours[s] - l_theirs[s]) / abs(l_theirs[s]) for s in l_theirs)
    if loss_rel > 1e-4:
        fails.append(f"{norm}: losses differ by {loss_rel:.3g} (relative)")
    for what, a, b in (("weights", w_ours, w_theirs), ("EMA weights", e_ours, e_theirs)):
        if set(a) != set(b):
            fails.append(f"{norm}: {what}: names differ: {sorted(set(a) ^ set(b))[:4]}")
            continue
        worst, worst_name, key_bias = 0.0, "", 0.0
        for k in b:
            ta, tb = a[k].float(), b[k].float()
            if k.endswith("attn.qkv.bias"):
                qa, ka, va = ta.chunk(3)
                qb, kb, vb = tb.chunk(3)
                key_bias = max(key_bias, ka.abs().max().item(), kb.abs().max().item())
                ta, tb = torch.cat([qa, va]), torch.cat([qb, vb])
            d = (ta - tb).abs().max().item()
            if d > worst:
                worst, worst_name = d, k
        if worst > 2e-4:
            fails.append(f"{norm}: {what} differ by {worst:.3g} at {worst_name}")
        if key_bias > 1e-2:
            fails.append(f"{norm}: {what}: the key bias (zero gradient) grew to {key_bias:.3g}")
        print(f"  {norm} {what}: max |dyt - timm| {worst:.2e} ({worst_name}); key bias <= {key_bias:.1e}")
    print(f"  {norm}: {len(l_theirs)} updates, losses {l_theirs[1]:.4f} -> {l_theirs[max(l_theirs)]:.4f}, "
          f"max relative difference {loss_rel:.2e}")
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tmp")
    ap.add_argument("--mutate", choices=["none", "decay_all", "warmup_shift"], default="none")
    a = ap.parse_args()
    torch.set_num_threads(1)
    tmp = Path(a.tmp)
    if not (tmp / "tree").exists():
        write_tree(tmp / "tree")
    x, y = load_train(tmp / "tree")
    fails = []
    for norm in ("ln", "dyt"):
        ours = run_dyt(tmp, norm, decay_all=a.mutate == "decay_all")
        theirs = run_timm(x, y, norm, warmup_shift=1 if a.mutate == "warmup_shift" else 0)
        fails += compare(norm, ours, theirs)
    for f in fails:
        print("DIFFERS:", f)
    print(f"timm {timm.__version__}, torch {torch.__version__}: "
          + ("training agrees" if not fails else f"{len(fails)} difference(s)") + f" (mutation: {a.mutate})")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
