#!/usr/bin/env python3
"""Side-by-side norm benchmark: what a PyTorch user gets from Python against `dyt bench norm`.

Times, on the same shapes, machine and run: a copy of the tensor, torch's layer_norm and rms_norm,
DyT written as tensor ops (eager) twice: as the paper's module computes it (a 1-element fp32
alpha promotes a bf16 input, so the output is fp32) and dtype-preserving (cast back to the input's
dtype, what the fused op returns), the same DyT under torch.compile, and on CUDA Liger-Kernel's
Triton DyT when it is installed; forward and forward+backward, median of repeats after warm-up
with caches flushed between repeats (on CUDA: a 512 MiB fill evicts the L2, and each call is
timed with CUDA events, as the C++ benchmark does). Then runs `dyt bench norm` on the same shapes
and prints our fused DyT's time as a ratio to each Python entry.

    .venv/bin/python scripts/bench_python_norms.py [--device cpu|cuda] [--dtype fp32|bf16]
        [--shape 12608x384 ...] [--threads N] [--out results/reference/bench]

Not used by `dyt` itself; needs the project's virtual environment (torch 2.11).
"""
import argparse
import csv
import ctypes
import io
import os
import shlex
import tempfile
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent


def dyt_eager(x, alpha, w, b):
    return torch.tanh(alpha * x) * w + b


def dyt_eager_keep_dtype(x, alpha, w, b):
    return (torch.tanh(alpha * x) * w + b).to(x.dtype)


def timeit(fn, device, warmup, repeats, flush_buf):
    for _ in range(warmup):
        fn()
    samples = []
    if device == "cuda":
        for _ in range(repeats):
            flush_buf.fill_(1.0)
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop))
        return statistics.median(samples)
    inner = 10 if device == "cuda" else 1
    for _ in range(repeats):
        if flush_buf is not None and device == "cpu":
            flush_buf.fill_(1.0)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append((time.perf_counter() - t0) * 1e3 / inner)
    return statistics.median(samples)


def time_case(layer, f, params, x, dy, device, warmup, repeats, flush_buf):
    with torch.no_grad():
        fwd = timeit(lambda: f(x), device, warmup, repeats, flush_buf)
    fb = float("nan")
    if layer != "copy":
        xg = x.detach().requires_grad_(True)
        for p in params:
            p.requires_grad_(True)

        def step():
            xg.grad = None
            for p in params:
                p.grad = None
            f(xg).backward(dy)

        fb = timeit(step, device, warmup, repeats, flush_buf)
        for p in params:
            p.requires_grad_(False)
    return fwd, fb


def bench_python(shape, device, dtype, repeats, warmup, flush):
    T, C = shape
    torch.manual_seed(0)
    x = torch.randn(T, C, device=device, dtype=dtype)
    dy = torch.randn(T, C, device=device, dtype=dtype)
    w = torch.ones(C, device=device)
    b = torch.zeros(C, device=device)
    alpha = torch.full((1,), 0.5, device=device)
    wx, bx = w.to(dtype), b.to(dtype)
    compiled = torch.compile(dyt_eager_keep_dtype, dynamic=False)
    flush_buf = None
    if device == "cuda":
        flush_buf = torch.empty((512 << 20) // 4, device="cuda")
    if flush and device == "cpu":
        l3 = os.sysconf("SC_LEVEL3_CACHE_SIZE") if "SC_LEVEL3_CACHE_SIZE" in os.sysconf_names else 0
        nbytes = min(max(2 * l3, 32 << 20), 1 << 30) if l3 > 0 else 64 << 20
        flush_buf = torch.empty(nbytes // 4, dtype=torch.float32)
    cases = [
        ("copy", "torch", lambda t: t.clone(), []),
        ("layernorm", "torch", lambda t: F.layer_norm(t, (C,), wx, bx, 1e-6), [wx, bx]),
        ("rmsnorm", "torch", lambda t: F.rms_norm(t, (C,), wx, 1e-6), [wx]),
        ("dyt", "torch eager (paper's module)", lambda t: dyt_eager(t, alpha, w, b), [alpha, w, b]),
        ("dyt", "torch eager, dtype kept", lambda t: dyt_eager_keep_dtype(t, alpha, w, b), [alpha, w, b]),
        ("dyt", "torch.compile, dtype kept", lambda t: compiled(t, alpha, w, b), [alpha, w, b]),
    ]
    if device == "cuda":
        try:
            from liger_kernel.ops.dyt import LigerDyTFunction
            cases.append(("dyt", "Liger-Kernel (Triton)", lambda t: LigerDyTFunction.apply(t, alpha, w, b), [alpha, w, b]))
        except Exception as e:  # not installed: say so in the output, keep the rest
            print(f"note: Liger-Kernel's DyT not available ({e})", file=sys.stderr)
    rows = []
    for layer, impl, f, params in cases:
        try:
            fwd, fb = time_case(layer, f, params, x, dy, device, warmup, repeats, flush_buf)
        except Exception as e:  # one failing implementation must not hide the others
            print(f"note: {layer} {impl} failed: {e}", file=sys.stderr)
            fwd, fb = float("nan"), float("nan")
            for p in params:
                p.requires_grad_(False)
        rows.append((layer, impl, fwd, fb))
    return rows


def bench_ours(dyt, shapes, device, dtype_name, threads, repeats):
    csv_path = Path(tempfile.mkdtemp()) / "bench_norm_side_by_side.csv"
    cmd = shlex.split(dyt) + ["bench", "norm", "--device", device, "--dtype", dtype_name, "--csv", str(csv_path),
           "--repeats", str(repeats)]
    if threads:
        cmd += ["--threads", str(threads)]
    for s in shapes:
        cmd += ["--shape", f"{s[0]}x{s[1]}"]
    # The Python process allocates through glibc (with dyt's mallopt settings, below); so does
    # `dyt` here, without its caching CPU allocator, so that both columns pay the same allocator.
    env = dict(os.environ, DYT_CPU_ALLOCATOR="system")
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    out = {}
    with open(csv_path) as f:
        for r in csv.DictReader(f):
            key = (int(r["tokens"]), int(r["channels"]), r["layer"], r["impl"])
            out[key] = (float(r["fwd_ms"]), float(r["fwdbwd_ms"]) if r["fwdbwd_ms"] else float("nan"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--shape", action="append", help="TOKENSxCHANNELS (default: 12608x384 50432x768)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default="", help="also write <out>/norm_side_by_side_<setup>.{csv,md}")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's default malloc settings (large tensors then pay page faults on every allocation)")
    ap.add_argument("--dyt", default=str(ROOT / "build" / "dyt"), help="the dyt command (default: build/dyt; e.g. 'gpu-bundle/run dyt')")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu" and not args.default_malloc:
        # `dyt` keeps freed large blocks in the heap (mallopt in runner/main.cpp) so that a fresh
        # 100 MiB tensor does not cost tens of thousands of page faults; do the same here, or the
        # Python column measures the kernel's page faults rather than its arithmetic.
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shape or ["12608x384", "50432x768"])]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    repeats = args.repeats or (20 if args.device == "cuda" else 7)
    ours = bench_ours(args.dyt, shapes, args.device, args.dtype, args.threads, repeats)
    setup = f"{args.device}_{args.dtype}_torch{torch.__version__.split('+')[0]}_{torch.get_num_threads()}threads"
    md = io.StringIO()
    md.write(f"# Norm layers: Python (torch {torch.__version__}) vs dyt, {args.device} {args.dtype}, "
             f"{torch.get_num_threads()} thread(s), median of {repeats}\n\n")
    md.write(f"command: `.venv/bin/python scripts/bench_python_norms.py {' '.join(sys.argv[1:])}`\n\n")
    if args.device == "cpu":
        md.write("glibc malloc: " + ("default (fresh large tensors are mmapped: page faults on every call)\n\n"
                                     if args.default_malloc else
                                     "large freed blocks kept in the heap in both processes, as `dyt` does\n\n"))
    rows_csv = [["tokens", "channels", "layer", "impl", "fwd_ms", "fwdbwd_ms", "dyt_fused_fwd_ratio", "dyt_fused_fwdbwd_ratio"]]
    for T, C in shapes:
        py = bench_python((T, C), args.device, dtype, repeats, args.warmup, True)
        fused = ours.get((T, C, "dyt", "fused"), (float("nan"), float("nan")))
        md.write(f"## {T} x {C}\n\n| layer | impl | fwd ms | fwd+bwd ms | dyt fused / this, fwd | dyt fused / this, fwd+bwd |\n")
        md.write("|---|---|---:|---:|---:|---:|\n")
        entries = [(l, i, f, fb) for (l, i, f, fb) in py]
        entries += [(k[2], "dyt " + k[3], v[0], v[1]) for k, v in ours.items() if k[0] == T and k[1] == C]
        for layer, impl, f, fb in entries:
            rf = fused[0] / f if f > 0 else float("nan")
            rfb = fused[1] / fb if fb == fb and fb > 0 else float("nan")
            fmt = lambda v, d=3: "-" if v != v else f"{v:.{d}f}"
            md.write(f"| {layer} | {impl} | {fmt(f)} | {fmt(fb)} | {fmt(rf, 2)}x | {fmt(rfb, 2)}x |\n")
            rows_csv.append([T, C, layer, impl, f"{f:.4f}", "" if fb != fb else f"{fb:.4f}", f"{rf:.3f}",
                             "" if rfb != rfb else f"{rfb:.3f}"])
        md.write("\n")
    text = md.getvalue()
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"norm_side_by_side_{setup}.md").write_text(text)
        with open(out / f"norm_side_by_side_{setup}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows_csv)
        print(f"written to {out}/norm_side_by_side_{setup}.{{md,csv}}")


if __name__ == "__main__":
    main()
