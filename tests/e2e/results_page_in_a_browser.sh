#!/usr/bin/env bash
# The results page (results/index.html) opened in a real headless browser (Debian's chromium):
# from a smoke run's tables and figures plus a reference note written here in Markdown, the
# browser's DOM must show one section per experiment, a contents list whose every link lands on a
# section, the tables as <table> elements, the note's link, code and emphasis rendered (not raw
# Markdown), every image loading from disk, and a screenshot must be drawn.
set -euo pipefail
command -v chromium > /dev/null || { echo "SKIP: chromium is not installed (scripts/setup.sh installs it)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$tmp/results
"$DYT" run smoke/vit_fmnist --max-steps 40 --threads 2 --out "$out" > "$tmp/run.log" 2>&1 || { cat "$tmp/run.log"; exit 1; }
"$DYT" plot smoke/vit_fmnist --out "$out" > "$tmp/plot.log" 2>&1 || { cat "$tmp/plot.log"; exit 1; }
mkdir -p "$out/reference/demo"
cp "$out/smoke/vit_fmnist/plots/val_top1.png" "$out/reference/demo/val_top1.png"
cat > "$out/reference/demo.md" <<'MD'
# demo: a reference note

command: `build/dyt run demo` then **look** at [the curve](demo/val_top1.png).

| setting | LN | DyT |
|---|---:|---:|
| tiny | 1.00 | 2.00 |

A second paragraph
that wraps over two lines.
MD
"$DYT" table smoke/vit_fmnist --out "$out" > "$tmp/table.log" 2>&1 || { cat "$tmp/table.log"; exit 1; }
page=$out/index.html
test -s "$page"
browser=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --allow-file-access-from-files)
timeout 120 "${browser[@]}" --dump-dom "file://$page" > "$tmp/dom.html" 2> "$tmp/chromium.log" ||
  { cat "$tmp/chromium.log"; echo "FAIL: chromium could not load the page"; exit 1; }
timeout 120 "${browser[@]}" --window-size=1200,2000 --screenshot="$tmp/page.png" "file://$page" > /dev/null 2>&1 ||
  { echo "FAIL: chromium could not draw the page"; exit 1; }
"$PYTHON" - "$tmp/dom.html" "$out" "$tmp/page.png" <<'PY'
import html.parser, os, sys
dom, root, shot = sys.argv[1], sys.argv[2], sys.argv[3]

class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.nav_links, self.imgs, self.tables, self.links, self.codes, self.strong = set(), [], [], 0, [], 0, 0
        self.in_nav = False
        self.text = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a: self.ids.add(a["id"])
        if tag == "nav": self.in_nav = True
        if tag == "a" and self.in_nav: self.nav_links.append(a.get("href", ""))
        elif tag == "a": self.links.append(a.get("href", ""))
        if tag == "img": self.imgs.append(a.get("src", ""))
        if tag == "table": self.tables += 1
        if tag == "code": self.codes += 1
        if tag == "strong": self.strong += 1
    def handle_endtag(self, tag):
        if tag == "nav": self.in_nav = False
    def handle_data(self, d): self.text.append(d)

p = P()
p.feed(open(dom, encoding="utf-8").read())
text = " ".join(p.text)
fail = []
sections = {"smoke-vit-fmnist", "reference-demo"}
if not sections <= p.ids: fail.append(f"sections missing: {sections - p.ids}")
targets = [h[1:] for h in p.nav_links if h.startswith("#")]
if not targets: fail.append("no contents list")
for t in targets:
    if t not in p.ids: fail.append(f"contents link #{t} lands on nothing")
if p.tables < 2: fail.append(f"{p.tables} <table> elements; want the smoke table and the note's")
if not p.imgs: fail.append("no figures")
for src in p.imgs:
    if not os.path.isfile(os.path.join(root, src)): fail.append(f"image {src} is not on disk")
if "reference/demo/val_top1.png" not in p.links: fail.append(f"the note's link was not rebased to the page: {p.links}")
if "[the curve]" in text or "**look**" in text or "`build/dyt" in text: fail.append("raw Markdown in the page")
if p.codes < 1 or p.strong < 1: fail.append("code / emphasis not rendered")
if "A second paragraph that wraps over two lines." not in " ".join(text.split()): fail.append("paragraph broken apart")
if "test top-1 accuracy (%), measured once after training" not in text: fail.append("the table's caption line is missing")
if os.path.getsize(shot) < 20000: fail.append(f"screenshot only {os.path.getsize(shot)} bytes")
if fail:
    print("FAIL:\n  " + "\n  ".join(fail)); sys.exit(1)
print(f"ok: {len(targets)} contents links, {p.tables} tables, {len(p.imgs)} images, screenshot {os.path.getsize(shot)} bytes")
PY
