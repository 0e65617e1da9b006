#!/usr/bin/env python3
"""GPU kernel time by kernel family, side by side for several profiler traces.

Reads Chrome-trace JSON files written by `dyt bench train --profile DIR` (LibTorch's Kineto) and by
`scripts/bench_python_train.py --profile DIR` (torch.profiler): sums the duration of every GPU
kernel event (cat "kernel") per family of kernel names (GEMMs, attention, element-wise, norms,
reductions, optimizer, ...) and per individual name, divided by the number of profiled steps.

    python3 scripts/trace_kernels.py DIR/trace_*.json [--steps 3] [--top 25] [--out FILE.md]
"""
import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

FAMILIES = [  # first match wins
    ("attention (flash / cuDNN / efficient)", r"flash|fmha|attention|sdpa|cudnn.*(mha|sdpa)|cutlassF|cutlassB|pytorch_flash"),
    ("GEMM (cuBLAS / CUTLASS)", r"gemm|sm90_xmma|cutlass|cublas|nvjet|matmul|wgmma"),
    ("convolution", r"conv|implicit_convolve|cudnn"),
    ("layer norm", r"layer_norm|LayerNorm|layernorm"),
    ("DyT fused (dyt)", r"dyt::cuda|forward_rows_kernel|backward_rows_kernel|finalize_kernel"),
    ("tanh", r"tanh"),
    ("GELU", r"gelu|GeluCUDA"),
    ("optimizer (fused AdamW)", r"adam|Adam|multi_tensor"),
    ("reduction (sum / norm)", r"reduce_kernel|Reduce|reduction"),
    ("softmax / loss", r"softmax|nll_loss|cross_entropy|log_softmax"),
    ("copy / cast / fill", r"copy|Copy|fill|Fill|cast|memset|memcpy"),
    ("element-wise (add, mul, ...)", r"elementwise|vectorized|unrolled_elementwise|Binary|Unary|index"),
]


def family(name):
    for fam, pat in FAMILIES:
        if re.search(pat, name):
            return fam
    return "other"


def load(path, steps, cat):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    kernels = [e for e in events if e.get("cat") == cat and "dur" in e]
    by_name, by_family = defaultdict(float), defaultdict(float)
    count = 0
    for e in kernels:
        by_name[e["name"]] += e["dur"] / steps
        by_family[family(e["name"])] += e["dur"] / steps
        count += 1
    span = 0.0
    if kernels:
        span = (max(e["ts"] + e["dur"] for e in kernels) - min(e["ts"] for e in kernels)) / steps
    return {"name": by_name, "family": by_family, "count": count / steps, "busy": sum(by_name.values()), "span": span}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="+")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default="")
    ap.add_argument("--cat", default="kernel", help="event category: kernel (GPU kernels) or cpu_op (ATen ops)")
    args = ap.parse_args()
    runs = []
    for t in args.traces:
        try:
            runs.append((Path(t).stem.replace("trace_", ""), load(t, args.steps, args.cat)))
        except Exception as e:  # one unreadable trace must not hide the others
            print(f"note: {t}: {e}", file=sys.stderr)
    what = "GPU kernel" if args.cat == "kernel" else f"'{args.cat}' event"
    lines = [f"# {what} time per training step (ms), from {len(runs)} traces of {args.steps} steps", ""]
    head = "| | " + " | ".join(n for n, _ in runs) + " |"
    sep = "|---|" + "---:|" * len(runs)
    lines += [head, sep]
    lines.append("| events per step | " + " | ".join(f"{r['count']:.0f}" for _, r in runs) + " |")
    lines.append("| sum of event times | " + " | ".join(f"{r['busy'] / 1e3:.1f}" for _, r in runs) + " |")
    lines.append("| first-to-last event span | " + " | ".join(f"{r['span'] / 1e3:.1f}" for _, r in runs) + " |")
    fams = sorted({f for _, r in runs for f in r["family"]}, key=lambda f: -max(r["family"].get(f, 0) for _, r in runs))
    for f in fams:
        lines.append(f"| {f} | " + " | ".join(f"{r['family'].get(f, 0) / 1e3:.2f}" for _, r in runs) + " |")
    lines += ["", f"## Top {args.top} by time (ms per step)", "", head, sep]
    names = sorted({n for _, r in runs for n in r["name"]}, key=lambda n: -max(r["name"].get(n, 0) for _, r in runs))
    for n in names[: args.top]:
        short = n if len(n) <= 90 else n[:87] + "..."
        short = short.replace("|", "/")
        lines.append(f"| `{short}` | " + " | ".join(f"{r['name'].get(n, 0) / 1e3:.2f}" for _, r in runs) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
