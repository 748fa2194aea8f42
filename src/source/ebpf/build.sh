#!/bin/sh
# Rebuilds procwatch.bpf.o from procwatch.bpf.c with Debian's clang.
# The output is deterministic for the same clang and command line, so CI
# rebuilds it and fails if it differs from the committed object.
#   usage: src/source/ebpf/build.sh [OUTPUT]   (default: procwatch.bpf.o beside this script)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/procwatch.bpf.o}
cd "$here"
# -g keeps BTF (needed for CO-RE); relative paths keep the object free of the
# checkout's location; -fdebug-prefix-map makes it independent of it too.
clang -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror \
  -fdebug-prefix-map="$here"=. -fno-ident \
  -I. -c procwatch.bpf.c -o "$out"
# Drop DWARF but keep BTF/BTF.ext: smaller object, same program.
llvm-strip -g "$out"
