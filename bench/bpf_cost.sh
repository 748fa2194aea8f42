#!/bin/bash
# Kernel cost per exec of two procwatch builds, measured in the same run (a
# benchmark, not a test): both are attached at once and see the same execs;
# bpftool gives each exec program's run_time_ns / run_cnt
# (kernel.bpf_stats_enabled=1). Programs attached to one tracepoint run one
# after the other and the first one pays the cold caches, so the rounds
# alternate which build attaches first; compare the rounds of each order.
# The two builds' exec programs are told apart by their size: OLD's must be
# the smaller (true when NEW adds to the record).
#
#   usage (root): bench/bpf_cost.sh OLD_BINARY NEW_BINARY [ROUNDS] [EXECS_PER_WORKER]
set -eu
old_bin=$1 new_bin=$2 rounds=${3:-4} n=${4:-5000}
prev=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -q kernel.bpf_stats_enabled=1
trap 'sysctl -q kernel.bpf_stats_enabled=$prev' EXIT
progs=$(mktemp)
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then first=$old_bin second=$new_bin order=old; else first=$new_bin second=$old_bin order=new; fi
  "$first" --format jsonl -o /dev/null 2>/dev/null & p1=$!
  sleep 2
  "$second" --format jsonl -o /dev/null 2>/dev/null & p2=$!
  sleep 2
  # Two workers exec /bin/true back to back.
  python3 - "$n" <<'PY'
import os, sys
n = int(sys.argv[1])
workers = []
for _ in range(2):
    w = os.fork()
    if w == 0:
        for _ in range(n):
            c = os.fork()
            if c == 0:
                os.execv("/bin/true", ["/bin/true", "bpf-cost"])
            os.waitpid(c, 0)
        os._exit(0)
    workers.append(w)
for w in workers:
    os.waitpid(w, 0)
PY
  bpftool prog show --json > "$progs"
  kill -INT "$p1" "$p2"; wait "$p1" "$p2" || true
  python3 - "$progs" "$order" <<'PY'
import json, sys
progs = [p for p in json.load(open(sys.argv[1])) if p["name"] == "exec_btf" and p.get("run_cnt")]
progs.sort(key=lambda p: p["bytes_xlated"])
old, new = progs[0], progs[-1]
o, n = old["run_time_ns"] / old["run_cnt"], new["run_time_ns"] / new["run_cnt"]
print(f"first attached: {sys.argv[2]}  old {o:.0f} ns/exec ({old['run_cnt']} runs)  "
      f"new {n:.0f} ns/exec ({new['run_cnt']} runs)  new/old {n / o:.3f}")
PY
done
rm -f "$progs"
