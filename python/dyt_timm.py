"""Load a `dyt` ViT run into timm, DyT included.

    import sys; sys.path.insert(0, "python")
    import dyt_timm
    model = dyt_timm.load("results/quick/vit_fmnist/dyt/seed0")        # model.safetensors
    ema = dyt_timm.load("results/paper/vit_b_imagenet/dyt/seed0", ema=True)

The run folder's config.json holds the architecture in timm's terms (timm.create_model(
architecture, **model_args)) and the norm as "dyt_norm"; the weights carry timm's parameter names.
DynamicTanh is the paper's layer (jiachenzhu/DyT dynamic_tanh.py), written from its definition:
gamma * tanh(alpha * x) + beta, with one scalar alpha per layer.
"""
import json
from pathlib import Path

import torch


class DynamicTanh(torch.nn.Module):
    def __init__(self, normalized_shape, alpha_init_value=0.5):
        super().__init__()
        self.normalized_shape = normalized_shape
        self.alpha = torch.nn.Parameter(torch.ones(1) * alpha_init_value)
        self.weight = torch.nn.Parameter(torch.ones(normalized_shape))
        self.bias = torch.nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x):
        return torch.tanh(self.alpha * x) * self.weight + self.bias

    def extra_repr(self):
        return f"normalized_shape={self.normalized_shape}"


def convert_ln_to_dyt(module, alpha_init_value=0.5):
    """Replaces every LayerNorm of `module` by a DynamicTanh of the same width (as the DyT code does)."""
    out = module
    if isinstance(module, torch.nn.LayerNorm):
        out = DynamicTanh(module.normalized_shape[0], alpha_init_value)
    for name, child in module.named_children():
        out.add_module(name, convert_ln_to_dyt(child, alpha_init_value))
    return out


def create(config: dict):
    """The timm model a dyt config.json describes (untrained)."""
    import timm

    model = timm.create_model(config["architecture"], pretrained=False, **config["model_args"])
    norm = config.get("dyt_norm", {"type": "layernorm"})
    if norm["type"] == "dyt":
        if norm.get("squash", "tanh") != "tanh":
            raise ValueError(f"norm squash '{norm['squash']}' has no timm counterpart here; only tanh (DyT)")
        model = convert_ln_to_dyt(model, norm.get("alpha_init", 0.5))
    elif norm["type"] != "layernorm":
        raise ValueError(f"norm '{norm['type']}' has no timm counterpart here (layernorm and dyt do)")
    return model


def load(run_dir, ema: bool = False):
    """A run folder's final weights (or its EMA weights) in a timm model, strictly, in eval mode."""
    from safetensors.torch import load_file

    run = Path(run_dir)
    config = json.loads((run / "config.json").read_text())
    model = create(config)
    model.load_state_dict(load_file(str(run / ("model_ema.safetensors" if ema else "model.safetensors"))), strict=True)
    return model.eval()
