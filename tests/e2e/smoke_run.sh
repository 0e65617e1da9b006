#!/usr/bin/env bash
# End to end: `dyt run smoke/vit_fmnist` on real Fashion-MNIST learns (test accuracy far above
# the 10% of chance) with LN and with DyT, writes complete run folders and the table, reuses
# finished runs, and refuses to overwrite them with another config.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$DYT" run smoke/vit_fmnist --out "$out" > "$out/run1.txt"
cat "$out/run1.txt"
"$PYTHON" - "$out" <<'PY'
import json, sys
from pathlib import Path
from safetensors import safe_open
root = Path(sys.argv[1]) / "smoke" / "vit_fmnist"
for variant in ["ln", "dyt"]:
    run = root / variant / "seed0"
    for name in ["config.yaml", "env.json", "metrics.jsonl", "summary.json", "model.safetensors"]:
        assert (run / name).is_file(), f"missing {run / name}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished", summary
    assert summary["top1"] >= 30.0, f"{variant}: top-1 {summary['top1']} is not far above chance (10%)"
    config = (run / "config.yaml").read_text()
    assert f"variant: {variant}" in config and ("type: dyt" in config) == (variant == "dyt"), config
    env = json.loads((run / "env.json").read_text())
    assert env["libtorch"].startswith("2.") and "blas" in env and env["threads"] >= 1, env
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(l["split"] == "train" for l in lines) and sum(l["split"] == "val" for l in lines) == 3, lines
    with safe_open(str(run / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "blocks.0.attn.qkv.weight" in keys and "head.weight" in keys
    assert ("blocks.0.norm1.alpha" in keys) == (variant == "dyt")
    print(f"{variant}: top-1 {summary['top1']:.2f}% after {summary['steps']} steps, files complete")
    # Training losses pinned to the values the runner gave before the Task/hook redesign
    # (2026-12-01, commit 2a78bab, AVX-512 machine): the redesign changed no number (bit-identical
    # there). Other processors round the kernels differently and training drifts: on an AMD EPYC
    # (Zen 3, AVX2; 2026-12-02) DyT matched to 1e-6 at every step and LN at steps 20 and 60,
    # while LN's step 120 read 1.5518, 4.5e-3 below (the same with either CPU allocator), hence
    # a looser bound at the last step.
    pinned = {"ln": {20: 2.177362489700317, 60: 1.9755760192871095, 120: 1.5588830947875976},
              "dyt": {20: 2.300227963924408, 60: 2.0407620131969453, 120: 1.862361615896225}}[variant]
    got = {l["step"]: l["loss"] for l in lines if l["split"] == "train" and l["step"] in pinned}
    for step, want in pinned.items():
        tol = 2e-3 if step <= 60 else 1e-2
        assert abs(got[step] - want) <= tol * abs(want), f"{variant} loss at step {step}: {got[step]} vs pinned {want}"
table = (root / "table.md").read_text()
assert "| LN | DyT |" in table and (root / "table.csv").is_file() and (root / "table.tex").is_file(), table
PY
# A second run reuses the finished runs instead of training again.
"$DYT" run smoke/vit_fmnist --out "$out" > "$out/run2.txt" 2> "$out/run2.err"
grep -q "done already (finished); reusing it" "$out/run2.err"
# A run made before a setting existed (its config.yaml lacks the key) is reused when the new
# setting is at its default: drop one from the saved config and run again.
cfg="$out/smoke/vit_fmnist/ln/seed0/config.yaml"
grep -q "^  capture_mapping: 0$" "$cfg"
sed -i '/^  capture_mapping: 0$/d' "$cfg"
"$DYT" run smoke/vit_fmnist --out "$out" > "$out/run2b.txt" 2> "$out/run2b.err" || { cat "$out/run2b.err"; exit 1; }
grep -q "done already (finished); reusing it" "$out/run2b.err"
# Another config would overwrite them: refused with the difference and the way out.
set +e
"$DYT" run smoke/vit_fmnist --out "$out" --set optim.lr=0.005 > /dev/null 2> "$out/run3.err"
rc=$?
set -e
cat "$out/run3.err"
test $rc -eq 2
grep -q "optim.lr: 0.004 -> 0.005" "$out/run3.err"
grep -q -- "--force" "$out/run3.err"
echo "smoke run: OK"
