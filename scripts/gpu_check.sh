#!/usr/bin/env bash
# One-shot check on a CUDA machine (e.g. the lent H200): build with the CUDA kernels, run the
# CUDA unit tests, then the norm and model benchmarks and the Python side-by-side, bf16.
# Results go to ${OUT:-results/reference/bench}. About 10 minutes on an H200 (build included).
#   bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-results/reference/bench}
mkdir -p "$out"
py=${PYTHON:-python3}
prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DDYT_WITH_CUDA=ON -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" > "$out/configure.log" 2>&1 ||
  { tail -30 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" --target dyt dyt_tests > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
build-gpu/dyt env | tee "$out/env.txt"
DYT_HOME=$PWD build-gpu/tests/dyt_tests --gtest_filter='FusedDyT.*:Norm.*' 2>&1 | tail -25 | tee "$out/cuda_tests.txt"
build-gpu/dyt bench norm --device cuda --dtype bf16 --csv "$out/norm_cuda_bf16.csv" | tee "$out/norm_cuda_bf16.md"
build-gpu/dyt bench norm --device cuda --dtype fp32 --shape 32768x4096 --csv "$out/norm_cuda_fp32.csv" | tee "$out/norm_cuda_fp32.md"
build-gpu/dyt bench model --device cuda --dtype bf16 --out-dir "$out" | tail -30
"$py" scripts/bench_python_norms.py --device cuda --dtype bf16 --shape 32768x4096 --shape 50432x768 --out "$out" \
  --dyt build-gpu/dyt | tail -30
