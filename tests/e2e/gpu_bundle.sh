#!/usr/bin/env bash
# End to end: the GPU bundle (scripts/gpu_bundle.sh) runs from a clean environment, with nothing
# but its own lib/ and the installed torch's lib/ to load from: `dyt env`, the kernel check program
# on the CPU kernels, and a short training run. Skipped (77) when the build has no CUDA kernels.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
build=$(dirname "$DYT")
if ! nm -C "$build/tests/dyt_kernel_check" | grep -c 'dyt::cuda::' > /dev/null; then
  echo "SKIP: this build has no CUDA kernels, so no GPU bundle"; exit 77
fi
BUILD_DIR=$build bash "$DYT_HOME/scripts/gpu_bundle.sh" "$out/bundle"
size=$(du -sm "$out/bundle" | cut -f1)
((size < 60)) || { echo "bundle is $size MiB (limit 60)"; exit 1; }
# Nothing from the build machine's paths: the binaries' RUNPATH is the bundle's lib/ only.
for b in "$out/bundle/bin/"*; do
  rp=$(readelf -d "$b" | sed -n 's/.*RUNPATH.*\[\(.*\)\]/\1/p')
  [[ $rp == '$ORIGIN/../lib' ]] || { echo "$b: RUNPATH '$rp'"; exit 1; }
done
clean() { (cd "$out" && env -i PATH=/usr/bin:/bin HOME="$out" PYTHON="$PYTHON" "$out/bundle/run" "$@"); }
clean dyt env | tee "$out/env.txt"
grep -q "CUDA compiled" "$out/env.txt"
clean dyt_kernel_check --device cpu --quick --no-timing | tail -3
clean dyt run smoke/vit_fmnist --variants dyt --max-steps 5 --out "$out/runs" | tail -4
test -f "$out/runs/smoke/vit_fmnist/dyt/seed0/summary.json"
# A stubbed library aborts with a message naming itself if ever called (never by the suite).
grep -q "is a stub in the GPU bundle" "$out/bundle/stubs/libgdal.c"
echo "bundle ok: $size MiB"
