#!/bin/sh
# Streaming stores on or off at 12608 x 384 (37 MiB of forward traffic in fp32, 18.5 MiB in bf16:
# above one Zen 1 core complex's 8 MiB L3, below the 64 MiB sysconf reports), alternated, three
# rounds. Run from the repository root: sh results/reference/bench/2026-12-02-zen1b/src/stream_12608.sh
for round in 1 2 3; do for dt in fp32 bf16; do for s in 1 0; do
  echo "== round $round, $dt, DYT_CPU_STREAM=$s"
  DYT_CPU_STREAM=$s build/dyt bench norm --threads 2 --dtype $dt --shape 12608x384 --only dyt/fused --repeats 15 \
    | grep -E '^\| (copy|dyt) '
done; done; done
