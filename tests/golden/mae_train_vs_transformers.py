"""MAE pretraining pinned to transformers: the initial weights our C++ MAE wrote (LN and DyT) are
loaded into transformers' ViTMAEForPreTraining (DyT: its LayerNorms replaced one for one by the
paper's DynamicTanh, as the DyT authors' MAE patch converts the model), which then trains on the
same images with the same masking noise: its loss at the first update (same weights, same mask),
the loss of each of 6 AdamW updates, and the final weights must equal ours. The optimizer is MAE's
(main_pretrain.py: torch.optim.AdamW over timm's param_groups_weight_decay, betas (0.9, 0.95)).

Tolerances (fp32, one thread; measured in results/reference/train_vs_timm.md): the first loss to
1e-5 relative (same weights, different kernels), every loss to 1e-4, the final weights to 1e-4
absolute, except the attention's key bias (zero gradient in exact arithmetic, so AdamW turns
rounding noise into lr-sized steps), compared by size. The test also runs the reference with
weight decay on every parameter, and with betas (0.9, 0.999), and requires both to be caught.
"""
import sys
from pathlib import Path

import torch
import timm.optim
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import ViTMAEConfig, ViTMAEForPreTraining


# The paper's DynamicTanh and the LayerNorm -> DyT conversion, from the repository's python/
# module (the one users load runs with), so that the tests exercise it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from dyt_timm import DynamicTanh, convert_ln_to_dyt  # noqa: E402


def to_hf(ours, v5):
    """facebookresearch/mae names (ours) -> transformers' ViTMAE names (v5: vit.layers.i.attention.q_proj,
    mlp.fc1, ...; v4: vit.encoder.layer.i.attention.attention.query, intermediate.dense, ...); qkv split."""
    out = {}
    if v5:
        parts = [("norm1", "layernorm_before"), ("norm2", "layernorm_after"), ("attn.proj", "attention.o_proj"),
                 ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")]
        qkv = ("attention.q_proj", "attention.k_proj", "attention.v_proj")
    else:
        parts = [("norm1", "layernorm_before"), ("norm2", "layernorm_after"), ("attn.proj", "attention.output.dense"),
                 ("mlp.fc1", "intermediate.dense"), ("mlp.fc2", "output.dense")]
        qkv = ("attention.attention.query", "attention.attention.key", "attention.attention.value")

    def block(src, dst):
        for a, b in parts:
            for leaf in ("weight", "bias", "alpha"):
                k = f"{src}.{a}.{leaf}"
                if k in ours:
                    out[f"{dst}.{b}.{leaf}"] = ours[k]
        for leaf in ("weight", "bias"):
            for name, x in zip(qkv, ours[f"{src}.attn.qkv.{leaf}"].chunk(3)):
                out[f"{dst}.{name}.{leaf}"] = x

    depth = 1 + max(int(k.split(".")[1]) for k in ours if k.startswith("blocks."))
    ddepth = 1 + max(int(k.split(".")[1]) for k in ours if k.startswith("decoder_blocks."))
    for i in range(depth):
        block(f"blocks.{i}", f"vit.layers.{i}" if v5 else f"vit.encoder.layer.{i}")
    for i in range(ddepth):
        block(f"decoder_blocks.{i}", f"decoder.decoder_layers.{i}")
    simple = {"cls_token": "vit.embeddings.cls_token", "pos_embed": "vit.embeddings.position_embeddings",
              "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
              "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
              "mask_token": "decoder.mask_token", "decoder_pos_embed": "decoder.decoder_pos_embed",
              "decoder_embed.weight": "decoder.decoder_embed.weight", "decoder_embed.bias": "decoder.decoder_embed.bias",
              "decoder_pred.weight": "decoder.decoder_pred.weight", "decoder_pred.bias": "decoder.decoder_pred.bias"}
    for a, b in simple.items():
        out[b] = ours[a]
    for src, dst in (("norm", "vit.layernorm"), ("decoder_norm", "decoder.decoder_norm")):
        for leaf in ("weight", "bias", "alpha"):
            if f"{src}.{leaf}" in ours:
                out[f"{dst}.{leaf}"] = ours[f"{src}.{leaf}"]
    return out


def check(path: Path, mutate: str) -> list:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    init = {k[5:]: v for k, v in t.items() if k.startswith("init.")}
    final = {k[6:]: v for k, v in t.items() if k.startswith("final.")}
    steps = int(meta["steps"])
    cfg = ViTMAEConfig(image_size=int(meta["img_size"]), patch_size=int(meta["patch_size"]), num_channels=3,
                       hidden_size=int(meta["embed_dim"]), num_hidden_layers=int(meta["depth"]),
                       num_attention_heads=int(meta["heads"]), intermediate_size=4 * int(meta["embed_dim"]),
                       decoder_hidden_size=int(meta["decoder_dim"]), decoder_num_hidden_layers=int(meta["decoder_depth"]),
                       decoder_num_attention_heads=int(meta["decoder_heads"]),
                       decoder_intermediate_size=4 * int(meta["decoder_dim"]), mask_ratio=0.75, norm_pix_loss=True,
                       layer_norm_eps=1e-6, hidden_act="gelu", qkv_bias=True, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0)
    model = ViTMAEForPreTraining(cfg)
    if meta["norm"] == "dyt":
        model = convert_ln_to_dyt(model)
    v5 = any(k.startswith("vit.layers.") for k in model.state_dict())
    model.load_state_dict(to_hf(init, v5), strict=True)
    model.train()
    # MAE main_pretrain.py: AdamW over timm's groups (no decay on 1-D parameters and biases)
    groups = timm.optim.param_groups_weight_decay(model, 0.05)
    if mutate == "decay_all":  # the check must catch DyT's alpha, gains and biases under weight decay
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": 0.05}]
    betas = (0.9, 0.999) if mutate == "betas" else (0.9, 0.95)  # ... and the ViT recipe's betas in MAE's place
    opt = torch.optim.AdamW(groups, lr=float(meta["lr"]), betas=betas, eps=1e-8)
    ours_losses = t["losses"].tolist()
    fails = []
    worst_loss = 0.0
    for s in range(steps):
        out = model(pixel_values=t[f"images.{s}"], noise=t[f"noise.{s}"])
        rel = abs(out.loss.item() - ours_losses[s]) / abs(ours_losses[s])
        worst_loss = max(worst_loss, rel)
        if s == 0 and rel > 1e-5:
            fails.append(f"{path.name}: first loss (same weights, same mask) {out.loss.item():.7g} vs ours {ours_losses[0]:.7g}")
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    if worst_loss > 1e-4:
        fails.append(f"{path.name}: losses differ by {worst_loss:.3g} (relative)")
    theirs = model.state_dict()
    mapped = to_hf(final, v5)
    worst, worst_name, key_bias = 0.0, "", 0.0
    for k, v in mapped.items():
        d = (v - theirs[k]).abs().max().item()
        if k.endswith("key.bias") or k.endswith("k_proj.bias"):
            key_bias = max(key_bias, v.abs().max().item(), theirs[k].abs().max().item())
            continue
        if d > worst:
            worst, worst_name = d, k
    if worst > 1e-4:
        fails.append(f"{path.name}: final weights differ by {worst:.3g} at {worst_name}")
    if key_bias > 1e-2:
        fails.append(f"{path.name}: the key bias (zero gradient) grew to {key_bias:.3g}")
    print(f"{path.name}: first loss {ours_losses[0]:.6f} (transformers: same within {worst_loss:.1e} relative over "
          f"{steps} updates), final loss {ours_losses[-1]:.6f}; weights within {worst:.1e} ({worst_name}); "
          f"key bias <= {key_bias:.1e}")
    return fails


if __name__ == "__main__":
    torch.set_num_threads(1)
    files = sorted(Path(sys.argv[1]).glob("mae_*.safetensors"))
    assert len(files) == 2, files
    mutate = sys.argv[2] if len(sys.argv) > 2 else "none"
    fails = [f for p in files for f in check(p, mutate)]
    for f in fails:
        print("DIFFERS:", f)
    import transformers
    print(f"transformers {transformers.__version__}, torch {torch.__version__}: "
          + ("MAE training agrees" if not fails else f"{len(fails)} difference(s)"))
    sys.exit(1 if fails else 0)
