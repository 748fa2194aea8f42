#!/usr/bin/env bash
# The kernel matrix: boots Debian kernels (5.10, 6.1, 6.12, 6.18, newest 7.x)
# under QEMU (TCG) with the static procwatch in a busybox initramfs that has
# no libc, and checks what procwatch reports there. Run as root from anywhere:
#
#   ci/kernels/matrix.sh                          # all kernels, builds the static binary
#   ci/kernels/matrix.sh --kernel 6.1 --binary target/x86_64-unknown-linux-musl/release/procwatch
#   ci/kernels/matrix.sh --kernel 6.1 --kernel 6.12 --raw always
#   ci/kernels/matrix.sh --markdown ci/kernels/last-run.md --update-readme
#
# --kernel SERIES (repeatable): 5.10 6.1 6.12 6.18 7. --binary PATH: the
# procwatch to test (default: build the static musl binary); it must be
# static, e.g. also RUSTFLAGS='-C target-feature=+crt-static' cargo build
# --release --target x86_64-unknown-linux-gnu. Prints, per
# kernel, PASS/FAIL for each check with the reason, the raw guest console
# on failure (or always for one kernel), and a table; exits 1 on any failure.
#
# Kernels are cached in /var/cache/procwatch-kernels/ (PROCWATCH_KERNEL_CACHE
# overrides); its README says which file is which package. The newest
# package of each series is looked up at every run; with no network the
# cached ones are used.
#
# Installs qemu-system-x86, busybox-static and cpio if missing. On this
# machine image qemu-system-x86 replaces the preinstalled qemu-utils
# (Debian's bookworm qemu conflicts with the backported one); CI accepts that.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The guest has no libc, so /bin/busybox must be busybox-static (ldd fails on
# a static binary); installing it replaces a dynamic busybox.
if ! command -v qemu-system-x86_64 >/dev/null || [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1 \
   || ! command -v cpio >/dev/null || ! command -v gcc >/dev/null || [ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static cpio gcc libc6-dev >/dev/null
fi

args=("$@")
have_binary=no
for a in "$@"; do
  case "$a" in --binary|--binary=*) have_binary=yes ;; esac
done
if [ "$have_binary" = no ]; then
  # The static binary the README documents.
  rustup target add x86_64-unknown-linux-musl >/dev/null
  (cd "$repo" && cargo build --release --target x86_64-unknown-linux-musl)
  args+=(--binary "$repo/target/x86_64-unknown-linux-musl/release/procwatch")
fi

exec python3 -B "$here/matrix.py" --cache "${PROCWATCH_KERNEL_CACHE:-/var/cache/procwatch-kernels}" "${args[@]}"
