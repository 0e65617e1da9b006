#!/bin/sh
# A/B of the AVX2 kernels in one run: v0 = commit 3dae5e5 (degree-4 fp32 fit, bf16 pairs by
# unpacks and 32-bit integer rounding), v1 = commit 2616ac1 (degree-3 monic fp32 fit, degree-2
# monic bf16 fit, bf16 pairs as even/odd lanes rounded on 16-bit lanes), v2 = v1 with two rows
# per backward pass sharing the dweight/dbias slot loads and stores (row_pairs.patch; tried, not
# adopted). Three rounds, the variants in turn. Run from this folder: sh kernel_ab.sh
set -e
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
for v in v0 v1 v2; do mkdir -p $tmp/$v/models/norm; done
for f in dyt_cpu.h dyt_cpu_avx2.cpp dyt_cpu_impl.h; do
  git -C $root show 3dae5e5:models/norm/$f > $tmp/v0/models/norm/$f
  git -C $root show 2616ac1:models/norm/$f > $tmp/v1/models/norm/$f
  cp $tmp/v1/models/norm/$f $tmp/v2/models/norm/$f
done
patch -s $tmp/v2/models/norm/dyt_cpu_impl.h row_pairs.patch
for v in v0 v1 v2; do
  g++ -O3 -std=c++17 -mavx2 -mfma -fopenmp -DVARIANT="\"$v\"" -I$tmp/$v kernel_ab.cpp \
    -x c++ $tmp/$v/models/norm/dyt_cpu_avx2.cpp -o $tmp/ab_$v
done
for round in 1 2 3; do for v in v0 v1 v2; do $tmp/ab_$v; done; done
rm -rf $tmp
