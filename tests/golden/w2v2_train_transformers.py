#!/usr/bin/env python3
"""Learning-dynamics reference for mini/w2v2_speech: trains transformers' Wav2Vec2ForPreTraining
with the same architecture, corpus, crops, masking, distractors, optimiser and schedule, and
prints the contrastive loss in bits per masked frame every 25 updates. Used to tell a bug in
our wav2vec 2.0 from the model's own early plateau at chance (log2(1 + negatives) bits).

    .venv/bin/python tests/golden/w2v2_train_transformers.py [--steps N] [--schedule S]
        [--mask-prob P] [--mask-length L] [--diversity W] [--lr LR] [--seed S] [--corpus DIR]

Defaults are the paper's quantised objective with fairseq's Base masks (0.65 x 10 frames) on
mini/w2v2_speech's model, crops and optimiser, over a 1,500-update schedule; --steps stops early
within it. (transformers has no continuous-target option, so mini/w2v2_speech's own objective
cannot be run here; results/reference/mini_w2v2_speech.md uses this script for the plateau.)
The corpus defaults to results/data/speech_1h (made by `dyt run mini/w2v2_speech` or
`dyt data speech --out results/data/speech_1h --hours 1`). Not used by `dyt`.
"""
import argparse, math, random, sys, wave
from pathlib import Path
import numpy as np, torch
from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining
from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices
ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--steps", type=int, default=300, help="updates to run (default 300)")
ap.add_argument("--schedule", type=int, default=1500, help="linear schedule length in updates (default 1500)")
ap.add_argument("--warmup", type=int, default=150, help="warm-up updates (default 150)")
ap.add_argument("--mask-prob", type=float, default=0.65)
ap.add_argument("--mask-length", type=int, default=10)
ap.add_argument("--diversity", type=float, default=0.1, help="diversity loss weight (default 0.1)")
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--seed", type=int, default=0, help="initial weights and data order (default 0)")
ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "results/data/speech_1h"))
args = ap.parse_args()
torch.set_num_threads(1); torch.manual_seed(args.seed); random.seed(args.seed); np.random.seed(args.seed)
root = args.corpus
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
    contrastive_logits_temperature=0.1, diversity_loss_weight=args.diversity, mask_time_prob=args.mask_prob,
    mask_time_length=args.mask_length,
    mask_time_min_masks=2, hidden_dropout=0.1, attention_dropout=0.1, feat_proj_dropout=0.1, feat_quantizer_dropout=0.1,
    layerdrop=0.0, layer_norm_eps=1e-5, apply_spec_augment=True)
m = Wav2Vec2ForPreTraining(cfg); m.train()
opt = torch.optim.AdamW(m.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
steps, total, warm = args.steps, args.schedule, args.warmup
for step in range(1, steps + 1):
    lr = args.lr * min(step / warm, max(0.0, (total - step) / (total - warm)))
    for g in opt.param_groups: g["lr"] = lr
    batch = random.sample(audio, 8)
    L = min(32000, min(len(a) for a in batch))
    x = []
    for a in batch:
        s = random.randint(0, len(a) - L); x.append(a[s:s + L])
    x = torch.tensor(np.stack(x))
    T = m._get_feat_extract_output_lengths(L).item()
    mask = _compute_mask_indices((8, T), args.mask_prob, args.mask_length, min_masks=2)
    neg = _sample_negative_indices((8, T), 50, mask_time_indices=mask)
    m.set_gumbel_temperature(max(2.0 * 0.999995 ** step, 0.5))
    out = m(x, mask_time_indices=torch.tensor(mask, dtype=torch.bool), sampled_negative_indices=torch.tensor(neg, dtype=torch.long))
    opt.zero_grad(); out.loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 10.0); opt.step()
    if step % 25 == 0:
        M = mask.sum()
        print(step, "contrastive bits %.3f" % (out.contrastive_loss.item() / M / math.log(2)),
              "ppl %.1f" % out.codevector_perplexity.item(), flush=True)
