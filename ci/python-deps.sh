#!/usr/bin/env bash
# Python modules the tests use: duckdb, which reads the JSONL output back in
# tests/it/schema.rs (argv typed as a list of strings). Installed only when
# missing; Debian's python3 is "externally managed", hence the flag.
set -euo pipefail
if python3 -c 'import duckdb' 2>/dev/null; then
  echo "duckdb present"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-pip >/dev/null
fi
python3 -m pip install -q --break-system-packages duckdb
python3 -c 'import duckdb; print("duckdb", duckdb.__version__)'
