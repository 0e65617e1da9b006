# The backward of timm's qkv split (reshape, permute, unbind: autograd stacks the three gradients
# and copies the permuted stack contiguous) against one buffer written slot by slot (what
# dyt's split_qkv does), ViT-B/16 shapes, PyTorch's own ops, CPU, median of 15.
#   .venv/bin/python qkv_split.py [--batch 8] [--threads 2] [--dtype fp32|bf16]
import argparse, statistics, time, torch

class SplitQkv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, heads):
        B, N, C3 = qkv.shape
        ctx.shape = (B, N, heads, C3 // (3 * heads))
        return qkv.reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    @staticmethod
    def backward(ctx, dq, dk, dv):
        B, N, H, Dh = ctx.shape
        out = torch.empty(B, N, 3, H, Dh, dtype=dq.dtype)
        for i, g in enumerate((dq, dk, dv)):
            out.select(2, i).transpose(1, 2).copy_(g)
        return out.view(B, N, 3 * H * Dh), None

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="fp32"); ap.add_argument("--repeats", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dt = torch.float32 if a.dtype == "fp32" else torch.bfloat16
    B, N, H, Dh = a.batch, 197, 12, 64
    x = torch.randn(B, N, 3 * H * Dh, dtype=dt, requires_grad=True)
    # the gradients SDPA's backward hands over: [B, H, N, Dh] contiguous
    gs = [torch.randn(B, H, N, Dh, dtype=dt) for _ in range(3)]
    def timm(x):
        return x.reshape(B, N, 3, H, Dh).permute(2, 0, 3, 1, 4).unbind(0)
    def ours(x):
        return SplitQkv.apply(x, H)
    res = {}
    for name, f in (("unbind (timm)", timm), ("one buffer (dyt)", ours)) * 2:
        ts = []
        for _ in range(a.repeats):
            parts = f(x)
            t0 = time.perf_counter()
            g, = torch.autograd.grad(parts, x, gs)
            ts.append(time.perf_counter() - t0)
        res[name] = statistics.median(ts) * 1e3
    ref = torch.autograd.grad(timm(x), x, gs)[0]; got = torch.autograd.grad(ours(x), x, gs)[0]
    print(f"B={B} N={N} H={H} Dh={Dh} {a.dtype} threads={a.threads} torch {torch.__version__}: "
          f"bit-identical {torch.equal(ref, got)}")
    for k, v in res.items(): print(f"  {k:18s} backward {v:.3f} ms")
    print(f"  ratio {res['one buffer (dyt)'] / res['unbind (timm)']:.2f}")
main()
