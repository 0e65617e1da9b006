#!/usr/bin/env bash
# Makes the GPU bundle: `dyt`, the kernel check program and every shared library they need that
# neither PyPI's torch 2.11 wheels (torch/lib, nvidia/*) nor the NVIDIA driver provide, in one
# folder (default gpu-bundle/, git-ignored) that runs on a machine with only PyTorch and a driver:
#
#   gpu-bundle/run dyt env                # run.sh puts lib/ and the installed torch's lib on
#   gpu-bundle/run dyt_kernel_check       #   LD_LIBRARY_PATH and DYT_HOME on the bundle
#   bash gpu-bundle/scripts/gpu_check.sh  # the one-call GPU check (see that file)
#
# Built from the normal build (make build), which has the CUDA kernels whenever the .venv's
# LibTorch is the CUDA build and nvcc is installed. Three heavy libraries that OpenCV's image
# codecs link but the suite never calls (GDAL, GDCM, OpenEXR: geodata, DICOM and EXR readers,
# 170 MB with their dependencies) are replaced by stubs with the same names and symbols that abort
# with a message if ever called. glibc, libstdc++ and libgcc_s come from the target system.
#   scripts/gpu_bundle.sh [OUT_DIR]       (make gpu-bundle)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/gpu-bundle}
build=${BUILD_DIR:-$repo/build}
say() { printf '[gpu-bundle] %s\n' "$*"; }
die() { printf '[gpu-bundle] error: %s\n' "$*" >&2; exit 1; }

[[ -x $build/dyt && -x $build/tests/dyt_kernel_check ]] || die "no build in $build: run 'make build' first"
[[ $(nm -C "$build/tests/dyt_kernel_check" | grep -c 'dyt::cuda::') -gt 0 ]] ||
  die "$build/dyt has no CUDA kernels (needs the CUDA LibTorch of .venv and nvcc); see 'dyt env'"
venv_site=$("$repo/.venv/bin/python" -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/stubs"
cp "$build/dyt" "$build/tests/dyt_kernel_check" "$out/bin/"
cp -r "$repo/configs" "$repo/experiments" "$repo/scripts" "$out/"
strip --strip-unneeded "$out/bin/"* 2>/dev/null || true
# The build's RUNPATH names this machine's .venv and CUDA toolkit: replace it by the bundle's lib/.
command -v patchelf >/dev/null || die "patchelf is missing (scripts/setup.sh installs it)"
for b in "$out/bin/"*; do patchelf --set-rpath '$ORIGIN/../lib' "$b"; done

# Libraries the target provides: glibc, the C++ runtime, the driver, and the torch wheels.
provided() {
  case $(basename "$1") in
    libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux*|libresolv.so.*|libutil.so.*) return 0 ;;
    libstdc++.so.*|libgcc_s.so.*|libcuda.so.*|libnvidia-*) return 0 ;;
  esac
  [[ $1 == "$venv_site"/* && $1 != */libcudart.so* ]]
}
stubbed() {
  case $1 in libgdal.so.*|libgdcm*.so.*|libOpenEXR*.so.*|libOpenEXRCore*.so.*|libIex*.so.*|libIlmThread*.so.*) return 0 ;; esac
  return 1
}

# Name -> path as the loader resolves it here, for the binaries and everything they pull in.
declare -A where
while read -r name _ path _; do
  [[ $path == /* ]] && where[$name]=$path
done < <(ldd "$build/dyt" "$build/tests/dyt_kernel_check" | grep "=>")
# libcudart: the wheel's copy (the CUDA toolkit here has its own; the target has only the wheel's).
cudart=$(ls "$venv_site"/nvidia/cu13/lib/libcudart.so.13 2>/dev/null || true)
[[ -n $cudart ]] && where[libcudart.so.13]=$cudart

# Walk DT_NEEDED from the binaries, stopping at provided and stubbed libraries.
declare -A seen
queue=("$out/bin/dyt" "$out/bin/dyt_kernel_check")
stubs=()
while ((${#queue[@]})); do
  f=${queue[0]}; queue=("${queue[@]:1}")
  for need in $(objdump -p "$f" | awk '/NEEDED/ {print $2}'); do
    [[ -n ${seen[$need]:-} ]] && continue
    seen[$need]=1
    if stubbed "$need"; then stubs+=("$need"); continue; fi
    path=${where[$need]:-}
    # awk reads to the end (no `exit`): an early exit would kill ldconfig with SIGPIPE, which
    # pipefail turns into a silent exit 141 of this script, depending on timing.
    [[ -n $path ]] || path=$(ldconfig -p | awk -v n="$need" '$1 == n && !f {print $NF; f = 1}')
    [[ -n $path ]] || die "cannot resolve $need (needed by $f)"
    provided "$path" && continue
    cp -L "$path" "$out/lib/$need"
    queue+=("$out/lib/$need")
  done
done

# Stubs: every symbol the bundled libraries import from a stubbed library, as a function that
# aborts with a message (or a zeroed object of the right size), under the library's soname.
imports=$(mktemp)
for l in "$out"/lib/*; do nm -D --undefined-only "$l" | awk '{print $2}' | sed 's/@.*//'; done | sort -u > "$imports"
for s in "${stubs[@]}"; do
  real=$(ldconfig -p | awk -v n="$s" '$1 == n && !f {print $NF; f = 1}')
  [[ -n $real ]] || die "cannot find $s to stub"
  src=$out/stubs/${s%%.so*}.c
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo "static void stub(const char* f) { fprintf(stderr, \"dyt bundle: %s of $s is a stub in the GPU bundle; read GDAL/DICOM/EXR images with the full build\\n\", f); abort(); }"
    # nm -S prints: value size type name (size absent for some symbols).
    nm -D --defined-only -S "$real" | awk 'NF == 4 {print $3, $4, $2} NF == 3 {print $2, $3, "0"}' |
      while read -r kind sym size; do
        [[ $sym =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        grep -qxF "$sym" "$imports" || continue
        case $kind in
          T|t|W|w|i) echo "void $sym(void) { stub(\"$sym\"); }" ;;
          *) n=$((16#$size)); ((n > 0)) || n=8; echo "char $sym[$n] __attribute__((aligned(16)));" ;;
        esac
      done
  } > "$src"
  cc -shared -fPIC -O1 -w -o "$out/lib/$s" -Wl,-soname,"$s" "$src"
done
rm -f "$imports"

cat > "$out/run" <<'EOF'
#!/usr/bin/env bash
# Runs a bundle program with the bundle's libraries and the installed PyTorch's:
#   run dyt ARGS...  |  run dyt_kernel_check ARGS...  |  run PROGRAM_PATH ARGS...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
torch_lib=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
  { echo "run: needs python3 with torch (set PYTHON)" >&2; exit 1; }
export LD_LIBRARY_PATH="$here/lib:$torch_lib"
export DYT_HOME=${DYT_HOME:-$here}
prog=$1; shift
[[ -x $here/bin/$prog ]] && prog=$here/bin/$prog
exec "$prog" "$@"
EOF
chmod +x "$out/run"
git -C "$repo" rev-parse --short HEAD > "$out/REVISION" 2>/dev/null || true
git -C "$repo" diff --quiet 2>/dev/null || echo "(+ uncommitted changes)" >> "$out/REVISION"
size=$(du -sm "$out" | cut -f1)
say "wrote $out: $(ls "$out/lib" | wc -l) libraries (${#stubs[@]} stubbed: ${stubs[*]}), ${size} MiB"
((size < 60)) || die "bundle is ${size} MiB, over the 60 MiB a device call can carry with the tree"
