#!/usr/bin/env python3
"""Learning-dynamics reference for mini/w2v2_speech: trains transformers' Wav2Vec2ForPreTraining
with the same architecture, corpus, crops, masking, distractors, optimiser and schedule, and
prints the contrastive loss in bits per masked frame every 25 updates. Used to tell a bug in
our wav2vec 2.0 from the model's own early plateau at chance (log2(1 + negatives) bits).

    .venv/bin/python tests/golden/w2v2_train_transformers.py [STEPS] [CORPUS]

CORPUS defaults to results/data/speech_1h (made by `dyt run mini/w2v2_speech` or
`dyt data speech --out results/data/speech_1h --hours 1`). Not used by `dyt`.
"""
import math, random, sys, wave
from pathlib import Path
import numpy as np, torch
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices
torch.set_num_threads(1); torch.manual_seed(0); random.seed(0); np.random.seed(0)
root = sys.argv[2] if len(sys.argv) > 2 else str(Path(__file__).resolve().parents[2] / "results/data/speech_1h")
lines = open(f"{root}/train.tsv").read().splitlines(); base = lines[0]
files = [l.split("\t")[0] for l in lines[1:]]
def load(f):
    with wave.open(f"{base}/{f}") as w: a = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return a.astype(np.float32) / 32768.0
audio = [load(f) for f in files]
cfg = Wav2Vec2Config(conv_dim=(128,)*7, conv_kernel=(10,3,3,3,3,2,2), conv_stride=(5,2,2,2,2,2,2), conv_bias=False,
    feat_extract_norm="group", hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
    num_conv_pos_embeddings=32, num_conv_pos_embedding_groups=8, do_stable_layer_norm=False, num_codevector_groups=2,
    num_codevectors_per_group=64, codevector_dim=64, proj_codevector_dim=64, num_negatives=50,
    contrastive_logits_temperature=0.1, diversity_loss_weight=0.1, mask_time_prob=0.65, mask_time_length=10,
    mask_time_min_masks=2, hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.1, feat_quantizer_dropout=0.1,
    layerdrop=0.0, layer_norm_eps=1e-5, apply_spec_augment=True)
m = Wav2Vec2ForPreTraining(cfg); m.train()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
for step in range(1, steps + 1):
    lr = 1e-3 * min(step / 150, max(0.0, (1500 - step) / (1500 - 150)))
    for g in opt.param_groups: g["lr"] = lr
    batch = random.sample(audio, 8)
    L = min(32000, min(len(a) for a in batch))
    x = []
    for a in batch:
        s = random.randint(0, len(a) - L); x.append(a[s:s + L])
    x = torch.tensor(np.stack(x))
    T = m._get_feat_extract_output_lengths(L).item()
    mask = _compute_mask_indices((8, T), 0.65, 10, min_masks=2)
    neg = _sample_negative_indices((8, T), 50, mask_time_indices=mask)
    m.set_gumbel_temperature(max(2.0 * 0.999995 ** step, 0.5))
    out = m(x, mask_time_indices=torch.tensor(mask, dtype=torch.bool), sampled_negative_indices=torch.tensor(neg, dtype=torch.long))
    opt.zero_grad(); out.loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 10.0); opt.step()
    if step % 25 == 0:
        M = mask.sum()
        print(step, "contrastive bits %.3f" % (out.contrastive_loss.item() / M / math.log(2)),
              "ppl %.1f" % out.codevector_perplexity.item(), flush=True)
