#!/usr/bin/env bash
# The one-call GPU check, run from the GPU bundle (scripts/gpu_bundle.sh) on a machine that has
# PyTorch 2.11 (CUDA 13), timm and a driver but none of the suite's Debian libraries:
#
#   bash gpu-bundle/scripts/gpu_check.sh        # from the bundle alone (copied anywhere), or
#   bash scripts/gpu_check.sh                   # from a checkout holding gpu-bundle/
#
# writes ${OUT:-results/gpu_check}/ in about 3 minutes on an H200 (8 at most, part by part limits). Parts, in order, each under its own time limit; a part
# that fails or runs out of time is recorded and the next one runs:
#   1. GPU facts (name, clocks, driver) and `dyt env`
#   2. dyt_kernel_check: every kernel path and corner case against fp64, fp32/bf16/fp16, at the
#      benchmark shapes; determinism; refusals; kernel timing with CUDA events and L2 flushed
#   3. compute-sanitizer memcheck of the kernel check at small shapes
#   4. `dyt bench train`: ViT-B/16 training images/s and peak memory, LN and DyT (fused and aten)
#   5. norm layers side by side (bf16, 32768x4096 and 50432x768): torch layer_norm, rms_norm,
#      eager DyT (paper's module and dtype-kept), torch.compile DyT, Liger-Kernel's DyT (wheel in
#      .whl/ when carried) and `dyt bench norm` (copy, LN, RMSNorm, DyT aten and fused)
#   6. timm ViT-B/16 training, LN and DyT, eager and torch.compile
#   7. summary.md: the issue's goals against their anchors, from the numbers of this run
#   8. profiles of 3 training steps, dyt and timm eager, LN and DyT: GPU kernel time by family and
#      by kernel (kernels.md) and ATen ops on the CPU side (cpu_ops.md), scripts/trace_kernels.py
#   9. `dyt bench model`: the paper's efficiency table (LLaMA-7B-shaped, 4096 tokens; ViT-B/16)
# PARTS="1 8 9" runs only those parts. At most 8 files land in $OUT (what a device call brings back).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results/gpu_check}
# Inside a bundle, the bundle is here; in a checkout, gpu-bundle/ (make gpu-bundle).
if [[ -x run && -d bin ]]; then bundle=${BUNDLE:-.}; else bundle=${BUNDLE:-gpu-bundle}; fi
budget=${CHECK_BUDGET_S:-500}
mkdir -p "$out"
work=$(mktemp -d)
log=$out/check.log
: > "$log"
py=${PYTHON:-python3}
export out bundle work log py
run() { "$bundle/run" "$@"; }
say() { printf '%s\n' "$*" | tee -a "$log"; }

# part NAME LIMIT_S COMMAND...: runs COMMAND with its output appended to the log, under a time
# limit shrunk to what is left of the budget.
parts=${PARTS:-1 2 3 4 5 6 7}
part() {
  local name=$1 limit=$2; shift 2
  [[ " $parts " == *" ${name%%.*} "* ]] || return 0
  local left=$((budget - SECONDS))
  if ((left < 20)); then say "== $name: skipped, budget spent"; return; fi
  ((limit > left)) && limit=$left
  say "== $name (limit ${limit} s, at ${SECONDS} s)"
  local t0=$SECONDS
  # bash -c so that the shell functions below (exported) can be parts too
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" >> "$log" 2>&1
  local rc=$?
  say "== $name: exit $rc after $((SECONDS - t0)) s$( ((rc == 124)) && echo ' (time limit)')"
}

say "# GPU check, $(date -u), bundle $(cat "$bundle/REVISION" 2>/dev/null | tr '\n' ' ')"
# Liger-Kernel travels as a wheel (.whl/), installed for this process only.
if ls .whl/*.whl >/dev/null 2>&1; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .whl/*.whl >> "$log" 2>&1 &&
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi

facts() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv
  nvidia-smi -q -d CLOCK | sed -n '1,40p'
  "$py" -c 'import torch, timm; p = torch.cuda.get_device_properties(0); print(f"torch {torch.__version__}, timm {timm.__version__}, {p.name}, {p.multi_processor_count} SMs, L2 {p.L2_cache_size >> 20} MiB, {p.total_memory >> 30} GiB")'
  nproc
  run dyt env
}
export -f facts run
part "1. GPU facts and dyt env" 60 facts

part "2. kernel check" 150 bash -c "set -o pipefail; '$bundle/run' dyt_kernel_check --device cuda | tee '$out/kernel_check.txt'"

if command -v compute-sanitizer >/dev/null; then
  part "3. compute-sanitizer memcheck (small shapes)" 60 \
    "$bundle/run" compute-sanitizer --tool memcheck --error-exitcode 9 "$bundle/bin/dyt_kernel_check" --device cuda \
    --quick --no-timing
else
  [[ " $parts " == *" 3 "* ]] && say "== 3. compute-sanitizer: not on PATH, skipped"
fi

part "4. dyt bench train (ViT-B/16, bf16, batch 256)" 120 \
  "$bundle/run" dyt bench train --device cuda --dtype bf16 --norm layernorm,dyt,dyt:aten --out-dir "$work"
cp "$work"/train_vit_b16_*.md "$out/train_dyt.md" 2>/dev/null

part "5. norm layers side by side (bf16)" 180 \
  "$py" scripts/bench_python_norms.py --device cuda --dtype bf16 --shape 32768x4096 --shape 50432x768 \
  --out "$work" --dyt "$bundle/run dyt"
cp "$work"/norm_side_by_side_*.md "$out/norm_side_by_side.md" 2>/dev/null
cp "$work"/norm_side_by_side_*.csv "$out/norm_side_by_side.csv" 2>/dev/null

part "6. timm ViT-B/16 training, eager and torch.compile" 240 \
  "$py" scripts/bench_python_train.py --out "$work"
cp "$work"/train_timm.md "$out/train_timm.md" 2>/dev/null

summary() {
  "$py" - "$out" "$work" <<'PY'
import csv, glob, math, sys
from pathlib import Path
out, work = Path(sys.argv[1]), Path(sys.argv[2])
lines = ["# GPU check: goals against anchors (this run)", ""]
def rows(pattern):
    for f in glob.glob(str(work / pattern)):
        with open(f) as fh:
            yield from csv.DictReader(fh)
norm = {(r["tokens"], r["channels"], r["layer"], r["impl"]): r for r in rows("norm_side_by_side_*.csv")}
def ms(key, col):
    r = norm.get(key)
    try:
        return float(r[col]) if r and r[col] else math.nan
    except ValueError:
        return math.nan
fused = ("32768", "4096", "dyt", "dyt fused")
liger = ("32768", "4096", "dyt", "Liger-Kernel (Triton)")
f, fb = ms(fused, "fwd_ms"), ms(fused, "fwdbwd_ms")
lf, lfb = ms(liger, "fwd_ms"), ms(liger, "fwdbwd_ms")
def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "NOT met")
def le(a, b):
    return None if math.isnan(a) or math.isnan(b) else a <= b
lines += ["| goal | anchor | measured | verdict |", "|---|---|---|---|",
          f"| fused DyT bf16 32768x4096 forward | <= 0.16 ms | {f:.3f} ms | {verdict(le(f, 0.16))} |",
          f"| fused DyT bf16 32768x4096 forward+backward | <= 0.40 ms | {fb:.3f} ms | {verdict(le(fb, 0.40))} |",
          f"| faster than Liger's DyT, forward | {lf:.3f} ms | {f:.3f} ms | {verdict(le(f, lf))} |",
          f"| faster than Liger's DyT, forward+backward | {lfb:.3f} ms | {fb:.3f} ms | {verdict(le(fb, lfb))} |"]
dyt_train = {(r["norm"], r["impl"]): r for r in rows("train_vit_b16_*.csv")}
timm = {(r["norm"], r["mode"]): r for r in rows("train_timm.csv")}
d = dyt_train.get(("dyt", "auto"))
t = timm.get(("ln", "compile"))
ips = float(d["images_per_s"]) if d else math.nan
peak = float(d["peak_gib"]) if d and d["peak_gib"] else math.nan
t_ips = float(t["images_per_s"]) if t else math.nan
t_peak = float(t["peak_gib"]) if t else math.nan
lines += [f"| ViT-B/16 DyT training (dyt) vs timm LN compiled, paper anchor 3526 img/s | 3526 img/s; this run {t_ips:.0f} | {ips:.0f} img/s | {verdict(le(3526, ips))} (anchor), {verdict(le(t_ips, ips))} (this run) |",
          f"| ... at no more peak memory | 17.4 GiB; this run {t_peak:.1f} | {peak:.1f} GiB | {verdict(le(peak, 17.4))} (anchor), {verdict(le(peak, t_peak))} (this run) |", ""]
lines.append("Raw numbers: norm_side_by_side.md, train_dyt.md, train_timm.md, kernel_check.txt; full log: check.log.")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
}
export -f summary
part "7. summary" 30 summary
profile() {
  "$bundle/run" dyt bench train --device cuda --dtype bf16 --norm layernorm,dyt --steps 5 --warmup 5 \
    --out-dir "$work/prof" --profile "$work/prof" &&
  "$py" scripts/bench_python_train.py --mode eager --norm ln,dyt --steps 5 --warmup 5 --profile "$work/prof" &&
  "$py" scripts/trace_kernels.py "$work"/prof/trace_*.json --out "$out/kernels.md" &&
  "$py" scripts/trace_kernels.py "$work"/prof/trace_*.json --cat cpu_op --top 40 --out "$out/cpu_ops.md"
}
export -f profile
part "8. profiles of training steps, dyt and timm" 150 profile
part "9. dyt bench model (efficiency table)" 150 \
  "$bundle/run" dyt bench model --device cuda --dtype bf16 --out-dir "$work/model"
cp "$work"/model/model_*.md "$out/model_efficiency.md" 2>/dev/null

say "# done after ${SECONDS} s; files: $(ls "$out" | tr '\n' ' ')"
