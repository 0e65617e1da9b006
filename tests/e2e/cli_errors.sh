#!/usr/bin/env bash
# The command line's contract: documented exit statuses and messages that name the file, key
# and fix (2: bad command line or config, 3: data error).
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() {  # expect STATUS PATTERN -- command...
  local want=$1 pattern=$2
  shift 3
  "$@" > "$tmp/out" 2>&1
  local rc=$?
  if [[ $rc -ne $want ]] || ! grep -qE -- "$pattern" "$tmp/out"; then
    echo "FAIL: '$*' exited $rc (want $want), output:"; cat "$tmp/out"; echo "(wanted /$pattern/)"
    fail=1
  else
    echo "ok: $* -> $rc"
  fi
}
expect 0 "parameters: 86567656" -- "$DYT" model vit_b16
expect 0 "parameters: 86567681" -- "$DYT" model vit_b16 --set norm.type=dyt
expect 0 "parameters: 111907840" -- "$DYT" model mae_vit_b16
expect 0 "smoke/vit_fmnist" -- "$DYT" list experiments
expect 0 "dyt .*Dynamic Tanh" -- "$DYT" list norms
expect 0 "model.norm.alpha_init" -- "$DYT" list keys
expect 0 "type: dyt" -- "$DYT" config smoke/vit_fmnist --variants dyt
expect 2 "no experiment 'smoke/vit_fmnst'.*did you mean 'smoke/vit_fmnist'" -- "$DYT" run smoke/vit_fmnst
expect 2 "no model preset 'vit_b1'.*did you mean 'vit_b16'" -- "$DYT" model vit_b1
expect 2 "--set optim.lr=fast: optim.lr: expected a number, got 'fast'" -- "$DYT" config smoke/vit_fmnist --set optim.lr=fast
expect 2 "model.norm.tpye: unknown key \(did you mean 'type'\?\)" -- "$DYT" config smoke/vit_fmnist --set model.norm.tpye=dyt
printf 'base: ../../configs/models/vit_fmnist.yaml\noptim:\n  lr: [0.1\n' > "$tmp/bad.yaml"
expect 2 "bad.yaml:[0-9]+:[0-9]+: malformed YAML" -- "$DYT" config "$tmp/bad.yaml"
printf 'base: ../nowhere.yaml\n' > "$tmp/nobase.yaml"
expect 2 "nobase.yaml:1:7: base: base file 'nowhere.yaml' not found" -- "$DYT" config "$tmp/nobase.yaml"
expect 2 "model.patch_size: patch_size 5 does not divide img_size 28" -- "$DYT" config smoke/vit_fmnist --set model.patch_size=5
expect 2 "data.batch_size: value 0 is out of range" -- "$DYT" config smoke/vit_fmnist --set data.batch_size=0
expect 2 "model.mask_ratio: value 1.0 is out of range: must be >= 0 and < 1 \[variant ln, stage pretrain\]" -- "$DYT" config smoke/mae_fmnist --set model.mask_ratio=1.0
expect 2 "model.num_heads: num_heads 5 does not divide embed_dim 64" -- "$DYT" config smoke/vit_fmnist --set model.num_heads=5
expect 2 "optim.lr: value -0.1 is out of range: must be >= 0" -- "$DYT" config smoke/vit_fmnist --set optim.lr=-0.1
expect 2 "optim.lr: .nan is not a finite number" -- "$DYT" run smoke/vit_fmnist --set optim.lr=.nan --out "$tmp/nan"
expect 2 "model.norm.alpha_init: .inf is not a finite number" -- "$DYT" config smoke/vit_fmnist --set model.norm.alpha_init=.inf
expect 3 "no train-images-idx3-ubyte\[.gz\]; set data.root" -- "$DYT" run smoke/vit_fmnist --out "$tmp/r1" --set data.root="$tmp/nodata"
mkdir -p "$tmp/cut"
head -c 5000 /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz > "$tmp/cut/train-images-idx3-ubyte.gz"
cp /usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz "$tmp/cut/"
expect 3 "train-images-idx3-ubyte.gz: corrupt or truncated gzip data" -- "$DYT" run smoke/vit_fmnist --out "$tmp/r2" --set data.root="$tmp/cut"
test ! -e "$tmp/r2/smoke/vit_fmnist/ln/seed0/summary.json" || { echo "FAIL: a failed run left a summary"; fail=1; }
exit $fail
