#!/usr/bin/env bash
# End to end: the two-stage MAE experiment. Pretraining writes weights and a reconstruction
# grid; fine-tuning starts from exactly those encoder weights; the from-scratch variants skip
# pretraining and say so; the table shows both rows; a finished stage is reused on rerun.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$DYT" run smoke/mae_fmnist --out "$out" > "$out/run.txt" 2> "$out/run.err"
cat "$out/run.txt"
"$PYTHON" - "$out" <<'PY'
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
table = (root / "table.md").read_text()
assert "| MAE pretrain + fine-tune |" in table and "| from scratch |" in table, table
print("MAE stages: OK")
PY
"$DYT" run smoke/mae_fmnist --out "$out" > /dev/null 2> "$out/rerun.err"
test "$(grep -c 'done already' "$out/rerun.err")" -eq 6
