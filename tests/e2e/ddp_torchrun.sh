#!/usr/bin/env bash
# Data parallelism on LibTorch's c10d (Gloo, CPU) under the project's torchrun, end to end on
# smoke/vit_fmnist's DyT run (no dropout, no drop-path: the ViT's defaults, which it keeps):
#  1. 2 processes x batch 32, 1 process x 64 and 1 process x 32 x accumulation 2 log the same
#     training losses for 50 updates (relative difference <= 1e-5; the logged loss is the mean
#     over the global batch) and end with weights within 1e-5 (all but the attention's key bias,
#     whose gradient is exactly zero: see below); the 2-rank evaluation counts
#     (n, correct top-1/top-5) equal the 1-rank ones;
#  2. only rank 0 writes: the 2-rank run folder holds the same files as the 1-rank one, and its
#     env.json records the world size;
#  3. SIGKILL of rank 1 mid-run: torchrun exits non-zero; the same command resumes from the last
#     checkpoint and ends with the metrics of an uninterrupted 2-rank run (with drop-path on, so
#     every rank's random draws must resume too); so does torchrun
#     --max-restarts 1 by itself; SIGINT to one rank stops both after the same update;
#  4. two `torchrun --nnodes 2` invocations (one process each, c10d rendezvous) train together,
#     with the same losses as the single-node 2-process job;
#  5. ranks whose configs differ are refused before training, naming the rank and the key;
#  6. --spread: one run per process (a sweep shared through the run locks), one complete table.
set -euo pipefail
tmp=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
TORCHRUN=$(dirname "$PYTHON")/torchrun
export OMP_NUM_THREADS=1
exp=smoke/vit_fmnist
base=(run $exp --variants dyt --threads 1 --set data.workers=1)
short=("${base[@]}" --max-steps 50 --set train.log_every=1)
run_dir() { echo "$1/$exp/dyt/seed0"; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # wait_for FILE: until it exists (at most 300 s)
  for _ in $(seq 3000); do [[ -e $1 ]] && return 0; sleep 0.1; done
  echo "timed out waiting for $1"; return 1
}
t0=$(date +%s)

echo "== 1. world-size invariance: 2 x 32 (torchrun), 1 x 64, 1 x 32 x accumulation 2"
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${short[@]}" --set data.batch_size=32 \
  --out "$tmp/w2" > "$tmp/w2.log" 2>&1 || { cat "$tmp/w2.log"; exit 1; }
"$DYT" "${short[@]}" --set data.batch_size=64 --out "$tmp/w1" > "$tmp/w1.log" 2>&1 || { cat "$tmp/w1.log"; exit 1; }
"$DYT" "${short[@]}" --set data.batch_size=32 --set train.accum_steps=2 --out "$tmp/a2" > "$tmp/a2.log" 2>&1 ||
  { cat "$tmp/a2.log"; exit 1; }
grep -q "total batch 64 (32 x 2 process(es) x 1 accumulated)" "$tmp/w2.log"
grep -q "total batch 64 (32 x 1 process(es) x 2 accumulated)" "$tmp/a2.log"
"$PYTHON" - "$(run_dir "$tmp/w1")" "$(run_dir "$tmp/w2")" "$(run_dir "$tmp/a2")" <<'PY'
import json, sys
from safetensors.numpy import load_file
import numpy as np
ref, *others = sys.argv[1:]
def lines(d): return [json.loads(l) for l in open(d + "/metrics.jsonl")]
def train(d): return {j["step"]: j["loss"] for j in lines(d) if j["split"] == "train"}
def val(d): return [j for j in lines(d) if j["split"] == "val"]
r = train(ref)
assert sorted(r) == list(range(1, 51)), sorted(r)
for d in others:
    o = train(d)
    assert sorted(o) == sorted(r), (d, sorted(o))
    worst = max(abs(o[s] - r[s]) / abs(r[s]) for s in r)
    assert worst <= 1e-5, (d, worst)
    wr, wo = load_file(ref + "/model.safetensors"), load_file(d + "/model.safetensors")
    assert wr.keys() == wo.keys()
    # The key third of attn.qkv.bias is excluded: softmax ignores a shift shared by all keys, so
    # its gradient is zero in exact arithmetic and only rounding noise, which AdamW scales up to
    # lr-sized steps; its values stay noise (checked below 1e-4), in any run.
    def split(k, w):
        if not k.endswith("attn.qkv.bias"): return w, None
        q, key, v = np.split(w, 3)
        return np.concatenate([q, v]), key
    dw, key_max = 0.0, 0.0
    for k in wr:
        a, ka = split(k, wr[k]); b, kb = split(k, wo[k])
        dw = max(dw, float(np.abs(a - b).max()))
        if ka is not None: key_max = max(key_max, float(np.abs(ka).max()), float(np.abs(kb).max()))
    assert dw <= 1e-5, (d, dw)
    assert key_max <= 1e-4, (d, key_max)
    vr, vo = val(ref), val(d)
    assert len(vr) == len(vo) == 1
    # counts: n exactly; top-1/top-5 are counts / n, exact when the weights agree to 1e-5
    assert vr[0]["n"] == vo[0]["n"] == 1000, (vr, vo)
    assert vr[0]["top1"] == vo[0]["top1"] and vr[0]["top5"] == vo[0]["top5"], (vr, vo)
    print(f"  {d.split('/')[-5]}: max rel. loss diff {worst:.2e} over 50 updates, max weight diff {dw:.2e}, "
          f"val n {vo[0]['n']} top1 {vo[0]['top1']} (1 process: {vr[0]['top1']})")
PY

echo "== 2. only rank 0 writes; env.json records the world size"
tb_names() { sed 's/events\.out\.tfevents\..*/events.out.tfevents.(time.host.pid)/'; }  # event files name their process
diff <(cd "$(run_dir "$tmp/w1")" && find . | tb_names | sort) <(cd "$(run_dir "$tmp/w2")" && find . | tb_names | sort)
"$PYTHON" - "$(run_dir "$tmp/w2")/env.json" "$(run_dir "$tmp/w1")/env.json" <<'PY'
import json, sys
two, one = (json.load(open(p)) for p in sys.argv[1:])
assert two["distributed"]["world_size"] == 2 and two["distributed"]["backend"] == "gloo", two.get("distributed")
assert "distributed" not in one
PY

echo "== 3. SIGKILL of rank 1 mid-run, then the same command resumes"
# drop-path on: a resumed job must draw the same stochastic depth on every rank as the uninterrupted one
full=("${base[@]}" --set data.batch_size=32 --set train.checkpoint_every=25 --set model.drop_path_rate=0.1)
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/ref" > "$tmp/ref.log" 2>&1 ||
  { cat "$tmp/ref.log"; exit 1; }
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/k" > "$tmp/k.log" 2>&1 &
job=$!
wait_for "$(run_dir "$tmp/k")/checkpoints/step_000000150.safetensors"
rank1=""
for p in $(pgrep -f -- "--out $tmp/k" || true); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "RANK=1" && [[ $(cat /proc/$p/comm) == dyt ]]; then rank1=$p; fi
done
test -n "$rank1" || { echo "rank 1 not found"; exit 1; }
kill -9 "$rank1"
set +e; wait $job; rc=$?; set -e
test $rc -ne 0 || { echo "torchrun exited 0 after a rank was killed"; cat "$tmp/k.log"; exit 1; }
test ! -e "$(run_dir "$tmp/k")/summary.json"
echo "  torchrun exited $rc after SIGKILL of rank 1 (pid $rank1)"
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/k" > "$tmp/k2.log" 2>&1 ||
  { cat "$tmp/k2.log"; exit 1; }
grep -q "resuming at step" "$tmp/k2.log"
"$PYTHON" - "$(run_dir "$tmp/ref")/summary.json" "$(run_dir "$tmp/k")/summary.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["status"] == "finished" and b["steps"] == a["steps"] == 375, (a["steps"], b["steps"])
for k in ("top1", "top5", "val_loss", "best_top1"):
    assert abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k])), (k, a[k], b[k])
print(f"  resumed: top1 {b['top1']} val_loss {b['val_loss']:.6f} (uninterrupted: {a['top1']} {a['val_loss']:.6f})")
PY

rank_pid() {  # rank_pid OUT RANK: the dyt process of that rank writing to OUT
  for p in $(pgrep -f -- "--out $1" || true); do
    if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "RANK=$2" && [[ $(cat /proc/$p/comm) == dyt ]]; then
      echo "$p"; return 0
    fi
  done
  return 1
}
same_metrics() {
  "$PYTHON" - "$(run_dir "$tmp/ref")/summary.json" "$(run_dir "$1")/summary.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert b["status"] == "finished" and b["steps"] == a["steps"], (a["steps"], b["steps"])
for k in ("top1", "top5", "val_loss", "best_top1"):
    assert abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k])), (k, a[k], b[k])
PY
}

echo "== 3b. the same kill under torchrun --max-restarts 1: torchrun restarts both ranks, which resume"
"$TORCHRUN" --standalone --max-restarts 1 --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/mr" \
  > "$tmp/mr.log" 2>&1 &
job=$!
wait_for "$(run_dir "$tmp/mr")/checkpoints/step_000000100.safetensors"
kill -9 "$(rank_pid "$tmp/mr" 1)"
wait $job || { echo "torchrun --max-restarts 1 failed"; cat "$tmp/mr.log"; exit 1; }
grep -q "resuming at step" "$tmp/mr.log"
same_metrics "$tmp/mr"

echo "== 3c. SIGINT to rank 1 alone: both ranks stop after the same update, checkpointed; the rerun resumes"
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/si" > "$tmp/si.log" 2>&1 &
job=$!
wait_for "$(run_dir "$tmp/si")/checkpoints/step_000000100.safetensors"
kill -INT "$(rank_pid "$tmp/si" 1)"
set +e; wait $job; rc=$?; set -e
test $rc -ne 0
grep -q "interrupted; progress is checkpointed" "$tmp/si.log" || { cat "$tmp/si.log"; exit 1; }
grep -q "Resume with the same command: torchrun ... dyt run $exp" "$tmp/si.log"
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" "${full[@]}" --out "$tmp/si" > "$tmp/si2.log" 2>&1 ||
  { cat "$tmp/si2.log"; exit 1; }
grep -q "resuming at step" "$tmp/si2.log"
same_metrics "$tmp/si"

echo "== 4. two torchrun --nnodes 2 invocations on this machine train together"
port=$(free_port)
for node in 0 1; do
  "$TORCHRUN" --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint "127.0.0.1:$port" --rdzv-id "dyt-e2e-$$" \
    --no-python "$DYT" "${short[@]}" --set data.batch_size=32 --out "$tmp/mn" > "$tmp/mn$node.log" 2>&1 &
done
for j in $(jobs -p); do wait "$j" || { cat "$tmp"/mn*.log; exit 1; }; done
"$PYTHON" - "$(run_dir "$tmp/w2")" "$(run_dir "$tmp/mn")" <<'PY'
import json, sys
def train(d): return {j["step"]: j["loss"] for j in map(json.loads, open(d + "/metrics.jsonl")) if j["split"] == "train"}
a, b = map(train, sys.argv[1:])
assert sorted(a) == sorted(b) and max(abs(a[s] - b[s]) / abs(a[s]) for s in a) <= 1e-5
env = json.load(open(sys.argv[2] + "/env.json"))["distributed"]
assert env["world_size"] == 2 and env["local_world_size"] == 1, env
print("  2 nodes x 1 process: same 50 losses as 1 node x 2 processes")
PY

echo "== 5. a rank with another config is refused"
cat > "$tmp/differ.sh" <<EOF
#!/usr/bin/env bash
extra=()
[[ \$RANK == 1 ]] && extra=(--set optim.weight_decay=0.01)
exec "$DYT" ${short[*]} --set data.batch_size=32 --out "$tmp/bad" "\${extra[@]}"
EOF
set +e
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python bash "$tmp/differ.sh" > "$tmp/bad.log" 2>&1
rc=$?
set -e
test $rc -ne 0 || { echo "ranks with different configs trained"; exit 1; }
grep -q "rank 1: .*optim.weight_decay: 0.05 -> 0.01" "$tmp/bad.log" || { cat "$tmp/bad.log"; exit 1; }
test ! -e "$(run_dir "$tmp/bad")/metrics.jsonl"
echo "== 6. --spread: a sweep's runs spread over the processes, one table at the end"
"$TORCHRUN" --standalone --nproc-per-node 2 --no-python "$DYT" run $exp --spread --threads 1 --max-steps 20 \
  --set data.workers=1 --out "$tmp/sp" > "$tmp/sp.log" 2>&1 || { cat "$tmp/sp.log"; exit 1; }
"$PYTHON" - "$tmp/sp/$exp" <<'PY'
import json, sys
d = sys.argv[1]
procs = sorted(json.load(open(f"{d}/{v}/seed0/env.json"))["spread"]["process"] for v in ("ln", "dyt"))
assert procs == [0, 1], procs  # each process trained one of the two runs
for v in ("ln", "dyt"):
    assert json.load(open(f"{d}/{v}/seed0/summary.json"))["status"] == "finished"
table = open(f"{d}/table.md").read()
assert "missing" not in table, table
PY
test "$(grep -c '^| ViT' "$tmp/sp.log")" -eq 1  # process 0 alone printed the table

echo "ddp_torchrun: all checks passed in $(( $(date +%s) - t0 )) s"
