#!/usr/bin/env bash
# TensorBoard event files and log.txt, end to end: a run killed after a checkpoint and resumed
# leaves event files that TensorBoard itself (the .venv's tensorboard package, EventAccumulator)
# reads as exactly the curves of metrics.jsonl: every train/val/norms value at its step, none of
# the interrupted process's points after the checkpoint (SessionLog START purges them); log.txt
# holds what the terminal showed, the resume included.
set -euo pipefail
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
run=$tmp/smoke/vit_fmnist/dyt/seed0
args=(run smoke/vit_fmnist --variants dyt --threads 2 --out "$tmp" --set train.checkpoint_every=25
      --set train.log_every=5 --set train.track_norms_every=25)
"$DYT" "${args[@]}" > "$tmp/a.log" 2>&1 &
pid=$!
for _ in $(seq 3000); do [[ -e $run/checkpoints/step_000000150.safetensors ]] && break; sleep 0.1; done
sleep 1  # let it log past the checkpoint, so that there is something to purge
kill -9 $pid; wait $pid 2>/dev/null || true
"$DYT" "${args[@]}" > "$tmp/b.log" 2>&1
test "$(ls "$run/tensorboard" | wc -l)" -eq 2  # one event file per process
grep -q "resuming at step" "$run/log.txt"
grep -q "epoch 3 val: " "$run/log.txt"
"$PYTHON" - "$run" <<'PY'
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run = sys.argv[1]
lines = [json.loads(l) for l in open(run + "/metrics.jsonl")]
ea = EventAccumulator(run + "/tensorboard", size_guidance={"scalars": 0, "tensors": 0})
ea.Reload()
tags = set(ea.Tags()["scalars"])
def series(tag):
    return [(e.step, e.value) for e in ea.Scalars(tag)]
want = {}
for j in lines:
    if j["split"] == "norms":
        for l in j["layers"]:
            for k in ("alpha", "input_std"):
                if k in l:
                    want.setdefault(f"{k}/{l['name']}", []).append((j["step"], l[k]))
    else:
        for k, v in j.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("step", "epoch"):
                want.setdefault(f"{j['split']}/{k}", []).append((j["step"], v))
assert set(want) == tags, (sorted(set(want) ^ tags))
for tag, w in want.items():
    got = series(tag)
    assert [s for s, _ in got] == [s for s, _ in w], (tag, [s for s, _ in got][:12], [s for s, _ in w][:12])
    for (s, a), (_, b) in zip(got, w):
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b)), (tag, s, a, b)
print(f"tensorboard: {len(tags)} tags, {sum(map(len, want.values()))} points, same as metrics.jsonl after a resume")
PY
