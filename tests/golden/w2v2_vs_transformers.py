"""Loads the weights our C++ wav2vec 2.0 wrote into transformers' Wav2Vec2ForPreTraining (same
parameter names, strict) and checks that its Transformer output equals ours for the same
waveform, for the Base layout (GroupNorm conv, post-norm) and the Large one (LayerNorm convs,
pre-norm); then that its contrastive loss, for the masks and distractors ours drew, and the
gradient of that loss for every parameter equal ours. Independent reference: transformers' own
forward and backward passes."""
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, safe_open
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining


def config(meta: dict, large: bool, **kw) -> Wav2Vec2Config:
    return Wav2Vec2Config(
        conv_dim=[int(meta["conv_dim"])] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
        conv_bias=False, feat_extract_norm="layer" if large else "group", do_stable_layer_norm=large,
        hidden_size=int(meta["hidden"]), num_hidden_layers=int(meta["layers"]), num_attention_heads=int(meta["heads"]),
        intermediate_size=int(meta["ffn"]), num_conv_pos_embeddings=int(meta["pos_kernel"]),
        num_conv_pos_embedding_groups=int(meta["pos_groups"]), codevector_dim=int(meta["final_dim"]),
        proj_codevector_dim=int(meta["final_dim"]), num_codevectors_per_group=int(meta["entries"]),
        num_codevector_groups=2, layer_norm_eps=1e-5, hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, feat_proj_dropout=0.0, feat_quantizer_dropout=0.0, layerdrop=0.0, **kw)


def check_loss(path: Path) -> None:
    """Contrastive loss (summed over masked frames) and every parameter's gradient."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    x, ours_loss = t.pop("__input"), t.pop("__loss")
    mask, negatives = t.pop("__mask").bool(), t.pop("__negatives")
    ours_grad = {k[len("__grad."):]: t.pop(k) for k in list(t) if k.startswith("__grad.")}
    K = int(meta["negatives"])
    model = Wav2Vec2ForPreTraining(config(meta, False, num_negatives=K, diversity_loss_weight=0.0))
    model.load_state_dict(t, strict=True)
    model.eval()
    # Our distractors index the masked frames in row-major order; transformers wants indices into
    # the flattened [B * T] frames, at each masked frame's position.
    B, T = mask.shape
    frame_of = mask.flatten().nonzero().squeeze(1)             # masked row -> flat frame index
    sampled = torch.zeros(B * T, K, dtype=torch.long)
    sampled[frame_of] = frame_of[negatives]
    out = model(x, mask_time_indices=mask, sampled_negative_indices=sampled.view(B, T, K))
    out.loss.backward()
    err = abs(out.loss.item() - ours_loss.item())
    print(f"{path.name}: loss transformers {out.loss.item():.6f} ours {ours_loss.item():.6f} "
          f"({int(mask.sum())} masked frames, {K} distractors)")
    assert err < 1e-3 * abs(out.loss.item()), f"losses differ by {err}"
    worst, checked = ("", 0.0), 0
    for name, p in model.named_parameters():
        if p.grad is None or float(p.grad.abs().max()) == 0.0:
            assert name not in ours_grad or float(ours_grad[name].abs().max()) == 0.0, f"{name}: only ours has a gradient"
            continue
        assert name in ours_grad, f"{name}: transformers has a gradient, ours none"
        # Relative difference, with an absolute floor for gradients that are zero in exact
        # arithmetic (the attention's key biases) and so pure rounding noise in both.
        rel = float((p.grad - ours_grad[name]).norm() / (p.grad.norm() + 1e-4))
        checked += 1
        if rel > worst[1]:
            worst = (name, rel)
    print(f"{path.name}: {checked} parameter gradients, worst relative difference {worst[1]:.2e} ({worst[0]})")
    assert worst[1] < 1e-3, f"gradients differ: {worst}"


def check(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    x, ours = t.pop("__input"), t.pop("__hidden")
    large = meta["large"] == "1"
    cfg = config(meta, large)
    model = Wav2Vec2ForPreTraining(cfg)
    model.load_state_dict(t, strict=True)
    model.eval()
    with torch.no_grad():
        theirs = model.wav2vec2(x).last_hidden_state
    err = (theirs - ours).abs().max().item()
    print(f"{path.name}: max |transformers - ours| = {err:.3g} (values up to {theirs.abs().max().item():.3g})")
    assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
    assert err < 1e-4, f"{path.name}: outputs differ by {err}"


if __name__ == "__main__":
    d = Path(sys.argv[1])
    for name in ("w2v2_base.safetensors", "w2v2_large.safetensors"):
        check(d / name)
    check_loss(d / "w2v2_loss.safetensors")
    print(f"transformers {transformers.__version__}: both layouts, the loss and its gradients agree")
