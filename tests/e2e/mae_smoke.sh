#!/usr/bin/env bash
# End to end: the two-stage MAE experiment. Pretraining writes weights and a reconstruction
# grid; fine-tuning starts from exactly those encoder weights; the from-scratch variants skip
# pretraining and say so; the table shows both rows; a finished stage is reused on rerun; two
# processes started on the same two-stage run share it (the second leaves the stage after the one
# the first holds to the first, instead of failing for want of its weights).
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$DYT" run smoke/mae_fmnist --out "$out" > "$out/run.txt" 2> "$out/run.err"
cat "$out/run.txt"
"$PYTHON" - "$out" "$(dirname "$0")/../golden" <<'PY'
import json, sys
from pathlib import Path
root = Path(sys.argv[1]) / "smoke" / "mae_fmnist"
for norm in ["ln", "dyt"]:
    pre = root / norm / "seed0" / "pretrain"
    png = (pre / "reconstruction.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000, "reconstruction grid missing"
    s = json.loads((pre / "summary.json").read_text())
    assert s["status"] == "finished" and s["val_loss"] < 1.0, s
    ft = json.loads((root / norm / "seed0" / "finetune" / "summary.json").read_text())
    assert ft["init"]["loaded"] == {"ln": 28, "dyt": 32}[norm] and ft["init"]["shape_mismatch"] == [], ft["init"]
    assert ft["top1"] > 15.0, ft
    sc = json.loads((root / f"{norm}_scratch" / "seed0" / "finetune" / "summary.json").read_text())
    assert "from scratch" in sc["init"]["skipped"], sc
    assert not (root / f"{norm}_scratch" / "seed0" / "pretrain").exists()
# config.json builds transformers' ViTMAEForPreTraining, and the LN weights load into it strictly
# (names mapped by the golden test's to_hf).
sys.path.insert(0, str(Path(sys.argv[2])))
import torch, transformers
from safetensors.torch import load_file
from mae_train_vs_transformers import to_hf
pre = root / "ln" / "seed0" / "pretrain"
cfg = json.loads((pre / "config.json").read_text())
assert cfg["architectures"] == ["ViTMAEForPreTraining"] and cfg["dyt_norm"]["type"] == "layernorm", cfg
hf = transformers.ViTMAEForPreTraining(transformers.ViTMAEConfig(**{k: v for k, v in cfg.items() if k not in ("dyt_norm", "weights_layout")}))
v5 = int(transformers.__version__.split(".")[0]) >= 5
state = to_hf(load_file(str(pre / "model.safetensors")), v5)
hf.load_state_dict(state, strict=True)
print("MAE config.json: transformers builds the model and the weights load")
table = (root / "table.md").read_text()
assert "| MAE pretrain + fine-tune |" in table and "| from scratch |" in table, table
print("MAE stages: OK")
PY
"$DYT" run smoke/mae_fmnist --out "$out" > /dev/null 2> "$out/rerun.err"
test "$(grep -c 'done already' "$out/rerun.err")" -eq 6

echo "== two processes on one two-stage run"
two=$out/two
"$DYT" run smoke/mae_fmnist --variants ln --out "$two" > "$out/p1.log" 2>&1 &
pid=$!
for _ in $(seq 1200); do [[ -e $two/smoke/mae_fmnist/ln/seed0/pretrain/config.yaml ]] && break; sleep 0.1; done
"$DYT" run smoke/mae_fmnist --variants ln --out "$two" > "$out/p2.log" 2>&1 || { cat "$out/p2.log"; exit 1; }
grep -q "pretrain\] skipped: another dyt process is running it" "$out/p2.log"
grep -q "finetune\] skipped: it follows a stage another dyt process is running" "$out/p2.log"
wait $pid || { cat "$out/p1.log"; exit 1; }
grep -q '"status": "finished"' "$two/smoke/mae_fmnist/ln/seed0/finetune/summary.json"
echo "two processes: OK"
