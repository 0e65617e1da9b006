#!/usr/bin/env bash
# Every LaTeX table under results/reference/ (the committed ones, as `dyt table` writes them)
# compiles with pdflatex in a plain single-column article with booktabs and array, and none of
# them is wider than the text (no "Overfull \hbox" in the log). (Wide tables are split into
# blocks of four numeric columns: tests/test_report.cpp.)
set -euo pipefail
command -v pdflatex > /dev/null || { echo "SKIP: pdflatex is not installed (scripts/setup.sh installs texlive-latex-recommended)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mapfile -t tables < <(find "$DYT_HOME/results/reference" -name 'table.tex' | sort)
(( ${#tables[@]} > 0 )) || { echo "FAIL: no reference tables found"; exit 1; }
n=0 old=()
for t in "${tables[@]}" ; do
  # Tables from before the current renderer (no booktabs/array line) are listed, not checked:
  # they are regenerated when their experiment is re-run (results/reference/README.md).
  if ! grep -q '^% needs \\usepackage{booktabs,array}' "$t"; then old+=("${t#$DYT_HOME/}"); continue; fi
  n=$((n + 1))
  doc=$tmp/t$n.tex
  { printf '\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs,array}\n\\begin{document}\n'
    printf '\\begin{table}\n\\centering\n'
    cat "$t"
    printf '\\end{table}\n\\end{document}\n'; } > "$doc"
  (cd "$tmp" && pdflatex -interaction=nonstopmode -halt-on-error "t$n.tex" > "t$n.out" 2>&1) ||
    { tail -30 "$tmp/t$n.out"; echo "FAIL: $t does not compile"; exit 1; }
  if grep -q "Overfull \\\\hbox" "$tmp/t$n.log"; then
    grep -A2 "Overfull" "$tmp/t$n.log"; echo "FAIL: $t is wider than the text"; exit 1
  fi
  echo "ok: ${t#$DYT_HOME/}"
done
(( n > 0 )) || { echo "FAIL: no reference table in the current format"; exit 1; }
echo "ok: $n reference tables compile and fit the text width"
(( ${#old[@]} == 0 )) || printf 'not checked (written before the current table format; re-run to regenerate): %s\n' "${old[@]}"
