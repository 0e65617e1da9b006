#!/usr/bin/env python3
"""What the feature norm does to wav2vec 2.0's inputs and targets at initialisation, LN vs DyT.

    .venv/bin/python scripts/w2v2_feature_scale.py WEIGHTS.safetensors

WEIGHTS: a mini/w2v2_speech model with continuous targets (e.g. the initial weights from
`build/dyt run mini/w2v2_speech --variants dyt --seeds 0 --max-steps 1 --out /tmp/w`, whose single
logged step has lr 0, so model.safetensors is the initialisation). Runs its conv feature encoder
(loaded into transformers' Wav2Vec2, same names) on 8 validation crops of results/data/speech_1h,
then normalises the features with LayerNorm and with DyT (alpha 0.5, gamma 1, beta 0, the
initial values) and prints their scale, the projected features' scale beside the mask embedding's,
and how alike the targets (project_q of the normed features) are. Analysis only; not used by dyt.
"""
import sys, wave
import numpy as np, torch
from safetensors.torch import load_file
from transformers import Wav2Vec2Config, Wav2Vec2Model

t = {k[len("wav2vec2."):]: v for k, v in load_file(sys.argv[1]).items() if k.startswith("wav2vec2.")}
full = load_file(sys.argv[1])
cfg = Wav2Vec2Config(conv_dim=(128,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                     conv_bias=False, feat_extract_norm="group", hidden_size=128, num_hidden_layers=4,
                     num_attention_heads=4, intermediate_size=512, num_conv_pos_embeddings=32,
                     num_conv_pos_embedding_groups=8)
m = Wav2Vec2Model(cfg)
m.feature_extractor.load_state_dict({k[len("feature_extractor."):]: v for k, v in t.items()
                                     if k.startswith("feature_extractor.")})
m.eval()
root = "results/data/speech_1h"
lines = open(f"{root}/valid.tsv").read().splitlines()
def load(f):
    with wave.open(f"{lines[0]}/{f}") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
x = torch.tensor(np.stack([load(l.split("\t")[0])[:32000] for l in lines[1:9]]))
with torch.no_grad():
    f = m.feature_extractor(x).transpose(1, 2).reshape(-1, 128)  # frames x channels, before the feature norm
    normed = {"LN": torch.nn.functional.layer_norm(f, (128,)), "DyT": torch.tanh(0.5 * f)}
    P_w, P_b = t["feature_projection.projection.weight"], t["feature_projection.projection.bias"]
    Q_w, Q_b = full["project_q.weight"], full["project_q.bias"]
    def mean_cos(z):
        z = torch.nn.functional.normalize(z, dim=-1); c = z @ z.T; n = c.shape[0]
        return float((c.sum() - n) / (n * n - n))
    print(f"conv features: std across channels {float(f.std(1).mean()):.3f}")
    print(f"mask embedding rms {float(t['masked_spec_embed'].pow(2).mean().sqrt()):.3f}")
    for name, z in normed.items():
        proj = z @ P_w.T + P_b
        print(f"{name:3s}: normed std {float(z.std()):.3f}, projected rms {float(proj.pow(2).mean().sqrt()):.3f}, "
              f"targets' mean pairwise cosine {mean_cos(z @ Q_w.T + Q_b):.3f}")
