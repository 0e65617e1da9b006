"""`dyt eval` on two kinds of checkpoint, against independent references.

1. A timm checkpoint (timm.create_model's weights saved as safetensors with a hub-style
   config.json: architecture + model_args, no DyT): `dyt eval` must give the top-1, top-5 and mean
   cross-entropy that timm's own forward pass gives on the Fashion-MNIST test set (read here from
   the idx files with numpy, normalised with the suite's mean/std). A DyT version of the same model
   (python/dyt_timm.py, config.json with dyt_norm and a non-default alpha) too.
2. A run folder: `dyt eval RUN` must reproduce the run's own summary.json (val and test) exactly.
"""
import gzip, json, subprocess, sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import timm
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import dyt_timm  # noqa: E402

dyt, tmp, run_dir = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
root = Path("/usr/share/datasets/fashion-mnist")


def idx(name):
    b = gzip.open(root / name).read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


x = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)
x = (x - 0.2860) / 0.3530
y = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
args = dict(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=32, depth=2, num_heads=4, global_pool="token")
fails = []


def reference(model):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)]).double()
    top5 = logits.topk(5, 1).indices.eq(y[:, None])
    return {"top1": 100.0 * top5[:, 0].double().mean().item(), "top5": 100.0 * top5.any(1).double().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}


def ours(folder, extra=()):
    out = folder / "eval.json"
    subprocess.run([dyt, "eval", str(folder / "model.safetensors"), "--threads", "2", "--json", str(out),
                    "--set", "data.holdout=0", *extra], check=True, capture_output=True)
    return json.load(open(out))["val"]


for name, norm in [("timm_ln", None), ("timm_dyt", {"type": "dyt", "alpha_init": 1.5})]:
    torch.manual_seed(0)
    model = timm.create_model("vit_base_patch16_224", pretrained=False, **args)
    config = {"architecture": "vit_base_patch16_224", "num_classes": 10, "model_args": args}
    if norm:
        model = dyt_timm.convert_ln_to_dyt(model, alpha_init_value=norm["alpha_init"])
        with torch.no_grad():  # every DyT parameter away from its initial value: all must load
            for n, p in model.named_parameters():
                if n.endswith(".alpha") or "norm" in n:
                    p.add_(0.1 * torch.randn_like(p))
        config["dyt_norm"] = norm
    folder = tmp / name
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    json.dump(config, open(folder / "config.json", "w"))
    ref, got = reference(model), ours(folder)
    print(f"{name}: timm {ref}\n{' ' * len(name)}  dyt  {{'top1': {got['top1']}, 'top5': {got['top5']}, 'loss': {got['loss']}}} n {got['n']}")
    if got["n"] != 10000: fails.append(f"{name}: n {got['n']}")
    for k, tol in [("top1", 0.02), ("top5", 0.02), ("loss", 1e-5)]:
        if abs(got[k] - ref[k]) > tol * (1 if k != "loss" else max(1.0, abs(ref[k]))):
            fails.append(f"{name}: {k} {got[k]} vs timm {ref[k]}")

# A run folder: the numbers its own summary recorded.
out = tmp / "run_eval.json"
subprocess.run([dyt, "eval", run_dir, "--threads", "2", "--json", str(out)], check=True, capture_output=True)
got, summary = json.load(open(out)), json.load(open(Path(run_dir) / "summary.json"))
for key, value in [("top1", got["val"]["top1"]), ("val_loss", got["val"]["loss"]), ("test_top1", got["test"]["top1"]),
                   ("test_loss", got["test"]["loss"])]:
    if abs(summary[key] - value) > 1e-9 * max(1.0, abs(value)):
        fails.append(f"run folder: {key} {value} vs summary.json {summary[key]}")
print(f"run folder: val top1 {got['val']['top1']} test top1 {got['test']['top1']} (summary.json: {summary['top1']}, {summary['test_top1']})")
if fails:
    print("FAIL:\n  " + "\n  ".join(fails)); sys.exit(1)
print("ok")
