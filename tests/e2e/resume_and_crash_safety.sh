#!/usr/bin/env bash
# Crash safety end to end, on the smoke experiment's DyT run (375 steps, checkpoints every 25):
#  1. a run killed with SIGKILL mid-epoch and resumed ends with the same final metrics and the
#     same weights, bit for bit, as an uninterrupted run (CPU, fixed thread count);
#  2. SIGINT finishes the step, checkpoints, exits 130 and says how to resume; resuming gives
#     the same result again;
#  3. a second `dyt run` on a run another process holds skips it and says so;
#  4. a full disk (here a file-size limit) fails with exit status 4 naming the file, leaves no
#     summary or half-written file, and the same command resumes once there is room;
#  5. a NaN loss marks the run diverged at its step and the table shows it.
set -euo pipefail
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
args=(run smoke/vit_fmnist --variants dyt --threads 2 --set train.checkpoint_every=25)
run_dir() { echo "$1/smoke/vit_fmnist/dyt/seed0"; }
wait_for() {  # wait_for FILE: until it exists (at most 120 s)
  for _ in $(seq 1200); do [[ -e $1 ]] && return 0; sleep 0.1; done
  echo "timed out waiting for $1"; return 1
}

echo "== uninterrupted reference"
"$DYT" "${args[@]}" --out "$tmp/a" > /dev/null 2>&1

echo "== SIGKILL at step >= 150 (mid-epoch 2), then resume"
"$DYT" "${args[@]}" --out "$tmp/b" > "$tmp/b.log" 2>&1 &
pid=$!
wait_for "$(run_dir "$tmp/b")/checkpoints/step_000000150.safetensors"
kill -9 $pid; wait $pid 2>/dev/null || true
test ! -e "$(run_dir "$tmp/b")/summary.json"
"$DYT" "${args[@]}" --out "$tmp/b" > "$tmp/b2.log" 2>&1
grep -q "resuming at step" "$tmp/b2.log"

echo "== SIGINT, then resume"
"$DYT" "${args[@]}" --out "$tmp/c" > "$tmp/c.log" 2>&1 &
pid=$!
wait_for "$(run_dir "$tmp/c")/checkpoints/step_000000100.safetensors"
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
test $rc -eq 130 || { echo "SIGINT exit status $rc, want 130"; cat "$tmp/c.log"; exit 1; }
grep -q "Resume with the same command: dyt run smoke/vit_fmnist" "$tmp/c.log"
"$DYT" "${args[@]}" --out "$tmp/c" > "$tmp/c2.log" 2>&1

"$PYTHON" - "$tmp" <<'PY'
import json, sys
from pathlib import Path
from safetensors.torch import load_file
import torch
tmp = Path(sys.argv[1])
runs = {k: tmp / k / "smoke/vit_fmnist/dyt/seed0" for k in "abc"}
ref = json.loads((runs["a"] / "summary.json").read_text())
ref_w = load_file(str(runs["a"] / "model.safetensors"))
for k in "bc":
    s = json.loads((runs[k] / "summary.json").read_text())
    for m in ["top1", "top5", "val_loss", "steps"]:
        assert s[m] == ref[m], f"run {k}: {m} {s[m]} != {ref[m]} (uninterrupted)"
    w = load_file(str(runs[k] / "model.safetensors"))
    assert w.keys() == ref_w.keys()
    for name in w:
        assert torch.equal(w[name], ref_w[name]), f"run {k}: {name} differs"
    val = [json.loads(l) for l in (runs[k] / "metrics.jsonl").read_text().splitlines() if '"val"' in l]
    assert [v["step"] for v in val] == [125, 250, 375], f"run {k}: validation lines {val}"
    print(f"run {k} (interrupted, resumed): top-1 {s['top1']} == {ref['top1']}, weights identical")
PY

echo "== a run held by another process is skipped"
"$DYT" "${args[@]}" --out "$tmp/d" > /dev/null 2>&1 &
pid=$!
wait_for "$(run_dir "$tmp/d")/config.yaml"
"$DYT" "${args[@]}" --out "$tmp/d" > "$tmp/d2.log" 2>&1
grep -q "skipped: another dyt process is running it" "$tmp/d2.log"
wait $pid
grep -q '"status": "finished"' "$(run_dir "$tmp/d")/summary.json"

echo "== full disk: exit 4, nothing half-written, resumable"
set +e
( ulimit -f 300; "$DYT" "${args[@]}" --out "$tmp/e" > "$tmp/e.log" 2>&1 )
rc=$?
set -e
cat "$tmp/e.log" | tail -2
test $rc -eq 4 || { echo "full disk exit status $rc, want 4"; exit 1; }
grep -q "the disk (or quota / file-size limit) is full" "$tmp/e.log"
test ! -e "$(run_dir "$tmp/e")/summary.json"
! ls "$(run_dir "$tmp/e")"/checkpoints/*.tmp* > /dev/null 2>&1
"$DYT" "${args[@]}" --out "$tmp/e" > /dev/null 2>&1
grep -q '"status": "finished"' "$(run_dir "$tmp/e")/summary.json"

echo "== divergence is a result, not a crash"
"$DYT" run smoke/vit_fmnist --variants dyt --out "$tmp/f" --set optim.lr=1e6 --set model.norm.squash=identity \
  --set train.log_every=1 > "$tmp/f.log" 2>&1
grep -q '"status": "diverged"' "$(run_dir "$tmp/f")/summary.json"
grep -q "diverged @ step" "$tmp/f/smoke/vit_fmnist/table.md"
echo "crash safety: OK"
