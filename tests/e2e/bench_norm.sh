#!/usr/bin/env bash
# `dyt bench norm` at a tiny shape (seconds): its markdown table and CSV have a row per case,
# ratios against the copy and LayerNorm, and positive times; --only keeps the cases named (the
# copy always) and offers, for bf16 on the CPU, the fused kernels with their tanh table forced on
# and off in the same run; a misspelt case is refused with the choices (exit 2).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(bench norm --threads 1 --shape 96x40 --shape 64x16 --repeats 2 --warmup 1 --no-flush)

"$DYT" "${common[@]}" --dtype fp32 --csv "$tmp/fp32.csv" > "$tmp/fp32.md"
"$DYT" "${common[@]}" --dtype bf16 --only layernorm,dyt/fused,dyt/fused:table,dyt/fused:function \
  --csv "$tmp/bf16.csv" > "$tmp/bf16.md"
"$PYTHON" - "$tmp" <<'PY'
import csv, sys
tmp = sys.argv[1]
def rows(name):
    with open(f"{tmp}/{name}.csv") as f:
        return list(csv.DictReader(f))
fp32, bf16 = rows("fp32"), rows("bf16")
def cases(rs, shape):
    return [(r["layer"], r["impl"]) for r in rs if (r["tokens"], r["channels"]) == shape]
every = [("copy", "aten"), ("layernorm", "aten"), ("rmsnorm", "aten"), ("dyt", "aten"), ("dyt", "fused")]
for shape in [("96", "40"), ("64", "16")]:
    assert cases(fp32, shape) == every, cases(fp32, shape)
    assert cases(bf16, shape) == [("copy", "aten"), ("layernorm", "aten"), ("dyt", "fused"),
                                  ("dyt", "fused:table"), ("dyt", "fused:function")], cases(bf16, shape)
for r in fp32 + bf16:
    assert float(r["fwd_ms"]) > 0, r
    assert (r["fwdbwd_ms"] == "") == (r["layer"] == "copy"), r
    assert r["dtype"] == ("fp32" if r in fp32 else "bf16") and r["device"] == "cpu", r
md = open(f"{tmp}/bf16.md").read()
assert "| dyt | fused:table |" in md and "| dyt | fused:function |" in md, md
assert md.count("## ") == 2 and "| fwd / copy | fwd / LN | fwd+bwd / LN |" in md, md
print("bench norm: ok,", len(fp32), "fp32 and", len(bf16), "bf16 rows")
PY

if "$DYT" "${common[@]}" --only layernorm,dyt/fsued > "$tmp/bad.out" 2>&1; then
  echo "FAIL: a misspelt --only case was accepted"; cat "$tmp/bad.out"; exit 1
fi
rc=0; "$DYT" "${common[@]}" --only dyt/fsued > /dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || { echo "FAIL: exit $rc for a misspelt --only case, want 2"; exit 1; }
grep -q "unknown benchmark case 'dyt/fsued' (did you mean 'dyt/fused'?)" "$tmp/bad.out" ||
  { echo "FAIL: message"; cat "$tmp/bad.out"; exit 1; }
"$DYT" "${common[@]}" --dtype fp32 --only dyt/fused:table 2> "$tmp/note.err" > /dev/null
grep -q "dyt/fused:table skipped: the tanh table is the CPU kernels', for --dtype bf16" "$tmp/note.err" ||
  { echo "FAIL: no note for a table case at fp32"; cat "$tmp/note.err"; exit 1; }
echo "bench norm: refusals ok"
