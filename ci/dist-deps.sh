#!/usr/bin/env bash
# What the tests of dist/ need (tests/it/dist.rs): logrotate for the
# rotation test, systemd-analyze for the unit check and man for rendering
# the generated man page. Installed only when missing.
set -euo pipefail
missing=()
command -v logrotate >/dev/null || missing+=(logrotate)
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v man >/dev/null || missing+=(man-db)
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "logrotate: $(command -v logrotate); systemd-analyze: $(command -v systemd-analyze); man: $(command -v man)"
