"""Loads the weights our C++ wav2vec 2.0 wrote into transformers' Wav2Vec2ForPreTraining (same
parameter names, strict) and checks that its Transformer output equals ours for the same
waveform, for the Base layout (GroupNorm conv, post-norm) and the Large one (LayerNorm convs,
pre-norm). Independent reference: transformers' own forward pass."""
import sys
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file, safe_open
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining


def check(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    x, ours = t.pop("__input"), t.pop("__hidden")
    large = meta["large"] == "1"
    cfg = Wav2Vec2Config(
        conv_dim=[int(meta["conv_dim"])] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
        conv_bias=False, feat_extract_norm="layer" if large else "group", do_stable_layer_norm=large,
        hidden_size=int(meta["hidden"]), num_hidden_layers=int(meta["layers"]), num_attention_heads=int(meta["heads"]),
        intermediate_size=int(meta["ffn"]), num_conv_pos_embeddings=int(meta["pos_kernel"]),
        num_conv_pos_embedding_groups=int(meta["pos_groups"]), codevector_dim=int(meta["final_dim"]),
        proj_codevector_dim=int(meta["final_dim"]), num_codevectors_per_group=int(meta["entries"]),
        num_codevector_groups=2, layer_norm_eps=1e-5, hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0)
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
    files = sorted(Path(sys.argv[1]).glob("w2v2_*.safetensors"))
    assert len(files) == 2, files
    for p in files:
        check(p)
    print(f"transformers {transformers.__version__}: both layouts agree")
