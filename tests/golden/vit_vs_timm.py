"""Loads the weights our C++ ViT wrote into timm's VisionTransformer (DyT: timm's LayerNorms
replaced one for one by the official DynamicTanh, as the paper's code does) and checks that timm's
logits equal ours on the same input. Independent reference: timm's own forward pass."""
import sys
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file, safe_open


# The paper's DynamicTanh and the LayerNorm -> DyT conversion, from the repository's python/
# module (the one users load runs with), so that the tests exercise it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from dyt_timm import DynamicTanh, convert_ln_to_dyt  # noqa: E402


def check(path: Path) -> float:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    x, ours = tensors.pop("__input"), tensors.pop("__logits")
    model = timm.create_model(
        "vit_base_patch16_224", pretrained=False, img_size=int(meta["img_size"]), patch_size=int(meta["patch_size"]),
        embed_dim=int(meta["embed_dim"]), depth=int(meta["depth"]), num_heads=int(meta["num_heads"]),
        num_classes=int(meta["num_classes"]),
        global_pool={"cls": "token", "avg": "avg"}[meta["global_pool"]])
    if meta["norm"] == "dyt":
        model = convert_ln_to_dyt(model)
    missing, unexpected = model.load_state_dict(tensors, strict=True)
    model.eval()
    with torch.no_grad():
        theirs = model(x)
    err = (theirs - ours).abs().max().item()
    scale = theirs.abs().max().item()
    print(f"{path.name}: max |timm - ours| = {err:.3g} (logits up to {scale:.3g})")
    assert err <= 1e-4 * max(1.0, scale), f"{path.name}: logits differ from timm by {err}"
    return err


if __name__ == "__main__":
    files = sorted(Path(sys.argv[1]).glob("vit_*.safetensors"))
    assert len(files) == 4, files
    for p in files:
        check(p)
    print(f"timm {timm.__version__}, torch {torch.__version__}: all {len(files)} models agree")
