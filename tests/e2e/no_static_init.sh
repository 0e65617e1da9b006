#!/usr/bin/env bash
# Fails when an object file compiled for AVX2 / AVX-512 has a dynamic initialiser (.init_array):
# such code would run vector instructions at program load, before the ISA dispatch.
#   no_static_init.sh "obj1;obj2;..."
set -euo pipefail
IFS=';' read -ra objs <<< "$1"
bad=0
for o in "${objs[@]}"; do
  case $o in *avx2*|*avx512*) ;; *) continue ;; esac
  if objdump -h "$o" | grep -qE '\.init_array|\.ctors'; then
    echo "FAIL $o has a static initialiser (.init_array)"; bad=1
  else
    echo "ok   $o"
  fi
done
exit $bad
