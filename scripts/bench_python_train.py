#!/usr/bin/env python3
"""Training throughput of timm's ViT-B/16 with LayerNorm and with DyT, eager and torch.compile.

The anchor `dyt bench train` is compared with: random images and labels already on the GPU, bf16
autocast, cross-entropy, backward, torch.optim.AdamW(fused=True), batch 256; images/s over the
timed steps and the caching allocator's peak of allocated bytes. DyT is the paper's module
(jiachenzhu/DyT, dynamic_tanh.py): alpha a 1-element fp32 parameter, tanh(alpha * x) * weight +
bias, replacing every nn.LayerNorm of the model (as its convert_ln_to_dyt does).

    python3 scripts/bench_python_train.py [--norm ln,dyt] [--mode eager,compile] [--batch 256]
        [--steps 30] [--warmup 10] [--out DIR]

Not used by `dyt` itself; runs wherever torch and timm are installed (the .venv, the GPU machine).
"""
import argparse
import csv
import io
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn


class DynamicTanh(nn.Module):
    """The paper's DyT layer (channels-last), as in the authors' dynamic_tanh.py."""

    def __init__(self, normalized_shape, alpha_init_value=0.5):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1) * alpha_init_value)
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))

    def forward(self, x):
        return torch.tanh(self.alpha * x) * self.weight + self.bias


def convert_ln_to_dyt(module):
    out = module
    if isinstance(module, nn.LayerNorm):
        out = DynamicTanh(module.normalized_shape)
    for name, child in module.named_children():
        out.add_module(name, convert_ln_to_dyt(child))
    return out


def param_groups(model, weight_decay):
    # timm's rule for the image recipes: no decay on 1-D parameters (norm gains, biases, alpha).
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def bench(norm, mode, args):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(args.model, num_classes=1000)
    if norm == "dyt":
        model = convert_ln_to_dyt(model)
    dev = args.device
    model = model.to(dev).train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4, fused=dev == "cuda")
    fwd = torch.compile(model) if mode == "compile" else model
    images = torch.randn(args.batch, 3, 224, 224, device=dev)
    labels = torch.randint(0, 1000, (args.batch,), device=dev)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = loss_fn(fwd(images).float(), labels)
        loss.backward()
        opt.step()

    cuda = dev == "cuda"
    t_compile = time.perf_counter()
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    t_compile = time.perf_counter() - t_compile
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    ms = (time.perf_counter() - t0) * 1e3 / args.steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    if args.profile and mode == "eager":
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
        with torch.profiler.profile(activities=acts) as prof:
            for _ in range(3):
                step()
            if cuda:
                torch.cuda.synchronize()
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(Path(args.profile) / f"trace_timm_{norm}_{mode}.json"))
    del model, opt, fwd
    if cuda:
        torch.cuda.empty_cache()
    return ms, args.batch * 1e3 / ms, peak, t_compile


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vit_base_patch16_224")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--norm", default="ln,dyt")
    ap.add_argument("--mode", default="eager,compile")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", default="")
    ap.add_argument("--profile", default="", help="also write a trace of 3 eager steps per norm to this folder")
    args = ap.parse_args()
    import timm

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    md = io.StringIO()
    md.write(f"# timm {timm.__version__} {args.model} training, torch {torch.__version__}, "
             f"{torch.cuda.get_device_name() if args.device == 'cuda' else 'CPU'}, batch {args.batch}, bf16 autocast, AdamW(fused=True), "
             f"{args.steps} timed steps after {args.warmup}\n\n")
    md.write(f"command: `python3 scripts/bench_python_train.py {' '.join(sys.argv[1:])}`\n\n")
    md.write("| norm | mode | ms / step | images/s | peak GiB | warm-up s (compile included) |\n|---|---|---:|---:|---:|---:|\n")
    rows = [["model", "norm", "mode", "batch", "ms_per_step", "images_per_s", "peak_gib"]]
    for mode in args.mode.split(","):
        for norm in args.norm.split(","):
            try:
                ms, ips, peak, tc = bench(norm, mode, args)
            except Exception as e:  # keep going: one failing mode must not hide the others
                print(f"{norm} {mode}: failed: {e}", flush=True)
                md.write(f"| {norm} | {mode} | failed: {type(e).__name__} | | | |\n")
                continue
            print(f"{norm} {mode}: {ms:.1f} ms/step, {ips:.0f} images/s, peak {peak:.1f} GiB (warm-up {tc:.0f} s)", flush=True)
            md.write(f"| {norm} | {mode} | {ms:.1f} | {ips:.0f} | {peak:.1f} | {tc:.0f} |\n")
            rows.append([args.model, norm, mode, args.batch, f"{ms:.3f}", f"{ips:.1f}", f"{peak:.3f}"])
    text = md.getvalue()
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_timm.md").write_text(text)
        with open(out / "train_timm.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)


if __name__ == "__main__":
    main()
