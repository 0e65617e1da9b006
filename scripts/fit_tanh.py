#!/usr/bin/env python3
"""Derives the CPU kernels' tanh fits (models/norm/dyt_cpu_impl.h) and checks them in fp32.

    tanh(x) ~= x * P(s) / Q(s),  s = min(x^2, c^2),  clamped to [-1, 1],  Q monic.

For each (degree, interval end X): a relative-error minimax fit of tanh(x)/x on [0, X] with
P(0) = Q(0) = 1 (Lawson iterations on the linearised error, fp64), divided by Q's leading
coefficient and rounded to fp32; then c, the first fp32 point past X (in steps of 1e-5) where
the fp32 rational exceeds 1; then the worst relative error of the kernels' fp32 evaluation
(Horner with single-rounding FMAs, a correctly rounded division) against tanh in fp64 over
[1e-4, 40], [-1e-3, 1e-3], 1e30 and inf.

    .venv/bin/python scripts/fit_tanh.py                 # the two fits the kernels use
    .venv/bin/python scripts/fit_tanh.py 3 3 6.6 7.1 7.3 # degrees (3, 3), three interval ends
    .venv/bin/python scripts/fit_tanh.py --check models/norm/dyt_cpu_impl.h

--check (a ctest entry): the header's coefficients are this derivation's (each within 4 fp32 ulps,
so that another BLAS's last bits do not matter), its clamps are where its own fp32 rationals first
pass 1, and its fits' fp32 errors are within the bounds the unit tests hold them to.
"""
import re
import sys

import numpy as np


def fit(m, n, X, iters=300):
    x = np.unique(np.concatenate([np.linspace(0, X, 20000), X * np.sin(np.linspace(0, np.pi / 2, 20000))]))
    x = x[x > 0]
    s, f = x * x, np.tanh(x) / x
    w, qprev, best = np.ones_like(x) / len(x), np.ones_like(x), None
    for _ in range(iters):
        # unknowns p_1..p_m, q_1..q_n:  P - f Q = (1 - f) + sum p_k s^k - f sum q_k s^k
        A = np.concatenate([s[:, None] ** np.arange(1, m + 1), -(f[:, None] * s[:, None] ** np.arange(1, n + 1))], 1)
        den = f * qprev
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(A / den[:, None] * sw[:, None], (f - 1) / den * sw, rcond=None)
        p, q = np.concatenate([[1.0], c[:m]]), np.concatenate([[1.0], c[m:]])
        P, Q = np.polyval(p[::-1], s), np.polyval(q[::-1], s)
        err = (P / Q - f) / f
        if best is None or np.abs(err).max() < best[0]:
            best = (np.abs(err).max(), p.copy(), q.copy())
        qprev = Q
        w = w * np.abs(err)
        w /= w.sum()
    return best


def fma32(a, b, c):  # a*b exact in fp64 for fp32 a, b; one rounding to fp32
    return (a.astype(np.float64) * b + c).astype(np.float32)


def rational32(pm, qm, x, smax=None):
    """x P(s)/Q(s) as the kernels evaluate it in fp32, unclamped (fp64 result of the last multiply)."""
    x = x.astype(np.float32)
    with np.errstate(over="ignore"):
        s = (x.astype(np.float64) ** 2).astype(np.float32)
    if smax is not None:
        s = np.minimum(s, np.float32(smax))
    P = np.full_like(s, pm[-1])
    for k in range(len(pm) - 2, -1, -1):
        P = fma32(P, s, np.float64(pm[k]))
    Q = (s.astype(np.float64) + np.float64(qm[-1])).astype(np.float32)
    for k in range(len(qm) - 2, -1, -1):
        Q = fma32(Q, s, np.float64(qm[k]))
    return x.astype(np.float64) * (P.astype(np.float64) / Q).astype(np.float32)


def derive(m, n, X):
    e, p, q = fit(m, n, X)
    pm = np.array([np.float32(v / q[-1]) for v in p])
    qm = np.array([np.float32(v / q[-1]) for v in q[:-1]])
    xs = np.arange(np.float32(X), np.float32(X * 1.6), np.float32(1e-5), dtype=np.float32)
    tu = rational32(pm, qm, xs)
    if not (tu > 1.0).any():  # the rational stays below 1: no clamp gives exactly +-1
        print(f"degrees ({m}, {n}), fit on [0, {X}]: fit error {e:.3g} (fp64); the fp32 rational stays below 1 "
              f"on [{X}, {1.6 * X:.3g}] (max {tu.max():.9g}): no clamp point, not usable as is")
        return
    i = int(np.argmax(tu > 1.0))
    c = xs[i]
    t, rel, xt = errors(pm, qm, c)
    print(f"degrees ({m}, {n}), fit on [0, {X}]: fit error {e:.3g} (fp64); c = {np.format_float_positional(c)}f (rational past 1 by "
          f"{tu[i] - 1:.2g}); fp32 worst relative error {rel.max():.3g} at x = {xt[rel.argmax()]:.6g}; "
          f"t(1e30) = {float(t[-2])!r}, t(inf) = {float(t[-1])!r}")
    print("  P:", ", ".join(f"{v:.9e}f" for v in pm))
    print("  Q:", ", ".join(f"{v:.9e}f" for v in qm), "(and 1 for s^%d)" % n)
    return pm, qm, c


def errors(pm, qm, c):
    """The clamped fp32 evaluation at test points, its relative errors against tanh, the points."""
    smax = np.float32(np.float64(c) ** 2)
    xt = np.concatenate([np.linspace(1e-4, 40, 2000001), np.linspace(-1e-3, 1e-3, 20001), [1e30, np.inf]])
    xt = xt[xt != 0].astype(np.float32)
    with np.errstate(invalid="ignore"):
        t = np.clip(rational32(pm, qm, xt, smax).astype(np.float32), -1, 1)
    ref = np.tanh(xt.astype(np.float64))
    return t, np.abs((t - ref) / ref), xt


def check(header):
    text = open(header).read()

    def arr(name):
        m = re.search(name + r"\[\d+\]\s*=\s*\{([^}]*)\}", text)
        if not m:
            sys.exit(f"FAIL: {header}: no {name}[] = {{...}}")
        return np.array([np.float32(v.strip().rstrip("f")) for v in m.group(1).split(",")], dtype=np.float32)

    def scalar(name):
        m = re.search(name + r"\s*=\s*([0-9.e+-]+)f", text)
        if not m:
            sys.exit(f"FAIL: {header}: no {name} = ...f")
        return np.float32(m.group(1))

    ok = True
    for tag, (m, n, X), bound in (("32", (3, 3, 7.1), 2e-6), ("16", (2, 2, 5.1), 1e-4)):
        hp, hq, hc = arr("kP" + tag), arr("kQ" + tag), scalar("kC" + tag)
        pm, qm, c = derive(m, n, X)
        ulps = max(int(np.max(np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))))
                   for a, b in ((hp, pm), (hq, qm)))
        step = np.float32(1e-5)
        past = rational32(hp, hq, np.array([hc - step, hc], dtype=np.float32))
        t, rel, xt = errors(hp, hq, hc)
        lines = [(ulps <= 4, f"coefficients within {ulps} fp32 ulps of the derivation (<= 4)"),
                 (abs(float(hc) - float(c)) <= 2e-5, f"clamp {hc} vs derived {c}"),
                 (past[1] > 1.0 >= past[0], f"the header's rational passes 1 at its clamp ({past[0]:.9g}, {past[1]:.9g})"),
                 (rel.max() <= bound, f"worst relative error {rel.max():.3g} (bound {bound:g})"),
                 (t[-2] == 1.0 and t[-1] == 1.0, "exactly 1 at 1e30 and inf"),
                 (bool(np.all(t[np.abs(xt) < 1e-4] == xt[np.abs(xt) < 1e-4])), "tanh(x) = x for |x| < 1e-4")]
        for good, what in lines:
            print(("ok  " if good else "FAIL") + f" kP{tag}/kQ{tag}/kC{tag}: {what}")
            ok &= bool(good)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    elif len(sys.argv) > 3:
        m, n = int(sys.argv[1]), int(sys.argv[2])
        for X in sys.argv[3:]:
            derive(m, n, float(X))
    else:
        derive(3, 3, 7.1)  # fp32 tensors
        derive(2, 2, 5.1)  # bf16 tensors
