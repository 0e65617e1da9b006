#!/usr/bin/env bash
# The documentation is current and its commands run:
#  1. docs/config_keys.md is what `dyt list keys --markdown` prints (regenerate it when a key changes:
#     build/dyt list keys --markdown > docs/config_keys.md);
#  2. LICENSE and CITATION.cff are there and CITATION.cff is valid YAML with the paper as its
#     preferred citation;
#  3. every `build/dyt ...` line of the README's sh blocks that takes under a minute runs and exits 0:
#     list/config/model/env/eval as written; run with --max-steps 2 (and --out in a temporary
#     folder, where table and plot then read); data manifest on a generated audio tree. Lines that
#     need a GPU, ImageNet/LibriSpeech, or minutes (data speech, bench synopses) are listed as skipped.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$DYT_HOME"
"$DYT" list keys --markdown > "$tmp/keys.md"
diff -u docs/config_keys.md "$tmp/keys.md" > "$tmp/keys.diff" ||
  { head -40 "$tmp/keys.diff"; echo "FAIL: docs/config_keys.md is stale: build/dyt list keys --markdown > docs/config_keys.md"; exit 1; }
echo "ok: docs/config_keys.md matches the schema"
test -s LICENSE
"$PYTHON" - <<'PY'
import yaml
c = yaml.safe_load(open("CITATION.cff"))
assert c["cff-version"] and c["title"] and c["license"] == "MIT", c
assert c["preferred-citation"]["title"] == "Transformers without Normalization", c
print("ok: LICENSE, CITATION.cff")
PY
# The committed run records re-render the committed reference tables exactly (results/reference/runs/).
for exp in $(cd results/reference/runs && find . -name summary.json | sed 's|^\./||; s|/[^/]*/seed[0-9]*\(/[a-z]*\)\?/summary.json$||' | sort -u); do
  flat=${exp//\//_}
  cp -r results/reference/runs "$tmp/runs_copy_$flat"
  "$DYT" table "$exp" --out "$tmp/runs_copy_$flat" > /dev/null
  diff -u "results/reference/$flat/table.md" "$tmp/runs_copy_$flat/$exp/table.md" ||
    { echo "FAIL: results/reference/$flat/table.md is not what its committed runs give"; exit 1; }
  echo "ok: results/reference/$flat/table.md re-renders from results/reference/runs/$exp"
done
mkdir -p "$tmp/LibriSpeech/spk/ch"
for i in 1 2 3; do sox -n -r 16000 -c 1 "$tmp/LibriSpeech/spk/ch/u$i.flac" synth 1.$i sine 3${i}0 2> /dev/null; done
"$PYTHON" - README.md "$tmp" > "$tmp/commands.txt" <<'PY'
import re, shlex, sys
readme, tmp = sys.argv[1], sys.argv[2]
text = open(readme).read()
lines = []
for block in re.findall(r"```sh\n(.*?)```", text, re.S):
    joined = block.replace("\\\n", " ")
    for l in joined.split("\n"):
        l = l.split(" #")[0].strip()
        if l.startswith("build/dyt "):
            lines.append(l)
for l in lines:
    args = shlex.split(l)[1:]
    sub = args[0]
    skip = None
    if "[" in l: skip = "a synopsis with [options]"
    elif "--device" in args and "cuda" in args: skip = "needs a GPU"
    elif "path/to" in l or "/data/" in l: skip = "needs the reader's own files"
    elif sub == "data" and args[1] == "speech": skip = "synthesises an hour of speech (minutes)"
    elif sub == "bench": skip = "a benchmark (minutes)"
    elif sub not in {"list", "config", "model", "table", "plot", "env", "eval", "run", "data"}:
        print(f"UNKNOWN\t{l}"); continue
    if skip:
        print(f"SKIP\t{l}\t{skip}"); continue
    if "--out" in args and sub != "data":
        i = args.index("--out"); del args[i:i + 2]
    if sub == "run": args += ["--max-steps", "2", "--threads", "2", "--out", f"{tmp}/out"]
    if sub in ("table", "plot"): args += ["--out", f"{tmp}/out"]
    if sub == "eval": args = [a.replace("results/", f"{tmp}/out/", 1) if a.startswith("results/") else a for a in args]
    if sub == "data":
        args = [a.replace("LibriSpeech", f"{tmp}/LibriSpeech").replace("manifests", f"{tmp}/manifests") for a in args]
    print("RUN\t" + l + "\t" + shlex.join(args))
PY
if grep -q '^UNKNOWN' "$tmp/commands.txt"; then
  grep '^UNKNOWN' "$tmp/commands.txt"; echo "FAIL: classify these README commands in tests/e2e/docs_and_readme.sh"; exit 1
fi
n=0
while IFS=$'\t' read -r kind line args reason; do
  if [[ $kind == SKIP ]]; then echo "skip: $line ($args)"; continue; fi
  n=$((n + 1))
  start=$(date +%s)
  if ! eval timeout 120 "\"\$DYT\" $args" > "$tmp/out.log" 2>&1; then
    tail -20 "$tmp/out.log"; echo "FAIL: README command: $line (ran: dyt $args)"; exit 1
  fi
  echo "ok ($(( $(date +%s) - start )) s): $line"
done < "$tmp/commands.txt"
(( n >= 10 )) || { echo "FAIL: only $n README commands found"; exit 1; }
echo "ok: $n README commands ran"
