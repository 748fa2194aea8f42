#!/usr/bin/env bash
# procwatch.exe under Wine: builds the Windows binary, runs the library's
# tests under Wine, then runs procwatch.exe end to end (default source,
# JSONL and CSV) against a tagged Windows process and stops it with SIGINT,
# which Wine turns into a console Ctrl-C.
#
# Everything runs in a fresh prefix on one persistent wineserver, removed at
# the end. Wine's own stderr is never compared: only procwatch's lines are.
# Needs root for apt-get only when wine, wine64, mingw or python3 is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'wine.sh: %s\n' "$*"; }
fail() {
  printf 'wine.sh: FAIL: %s\n' "$*" >&2
  exit 1
}
began=$SECONDS

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s wine wine64 gcc-mingw-w64-x86-64 python3 >/dev/null 2>&1; then
  say "installing wine, wine64, gcc-mingw-w64-x86-64, python3"
  # Other jobs on the machine may hold the dpkg lock for a while.
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq wine wine64 gcc-mingw-w64-x86-64 python3 >/dev/null
fi
# The target's standard library may already be there even when rustup's
# bookkeeping disagrees (two concurrent installs leave it so); use it then.
libdir=$(rustc --print target-libdir --target x86_64-pc-windows-gnu 2>/dev/null || true)
if ! compgen -G "$libdir/libstd-*.rlib" >/dev/null && ! rustup target add x86_64-pc-windows-gnu; then
  echo "SKIPPED: 'rustup target add x86_64-pc-windows-gnu' failed; procwatch.exe was not run under Wine" >&2
  exit 0
fi

export CARGO_TARGET_DIR=target/windows-gnu
say "building procwatch.exe"
cargo build --target x86_64-pc-windows-gnu
exe=$PWD/target/windows-gnu/x86_64-pc-windows-gnu/debug/procwatch.exe

work=$(mktemp -d /tmp/procwatch-wine.XXXXXX)
export WINEPREFIX=$work/prefix WINEARCH=win64 WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml="
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wineserver -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$WINEPREFIX"

say "creating a fresh prefix (a cold machine takes minutes)"
# One persistent server for the whole run: every wine command below, and the
# processes they start, see each other.
wineserver -p
timeout 900 wine wineboot --init >"$work/wineboot.log" 2>&1 || {
  tail -20 "$work/wineboot.log" >&2
  fail "wineboot --init"
}

# Rust's standard library imports bcryptprimitives!ProcessPrng; Wine before
# 8.13 has no such DLL (or one without the export). The shim is only built
# when no Wine DLL on this machine exports it.
if ! find /usr/lib /usr/lib64 /opt -path '*wine*' -name bcryptprimitives.dll 2>/dev/null |
  xargs -r grep -l ProcessPrng | grep -q .; then
  say "$(wine --version 2>/dev/null) lacks ProcessPrng: installing ci/bcryptprimitives.c into the prefix"
  x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -Wl,--entry,DllMain \
    -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    ci/bcryptprimitives.c -ladvapi32
  export WINEDLLOVERRIDES="$WINEDLLOVERRIDES;bcryptprimitives=n,b"
fi
version=$(timeout 120 wine "$exe" --version 2>"$work/version.err") || {
  cat "$work/version.err" >&2
  fail "procwatch.exe --version did not run"
}
[[ $version == "procwatch "* ]] || fail "procwatch.exe --version printed: $version"
say "prefix ready after $((SECONDS - began)) s: $version"

say "library tests under Wine"
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine cargo test --target x86_64-pc-windows-gnu --lib

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local secs=$1
  shift
  local until=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < until)) || return 1
    sleep 0.2
  done
}

# Whether file $2 has a line for cmd.exe with tag $1 (Wine's start.exe,
# which launches it, carries the tag too).
reported() {
  grep -F "$1" "$2" | grep -iE 'system32\\+cmd\.exe' >/dev/null
}

# Runs procwatch.exe with --format $1 against one tagged process.
e2e() {
  local fmt=$1
  local out=$work/out.$fmt err=$work/err.$fmt tag="pw-wine-$fmt-$$-$RANDOM$RANDOM"
  wine "$exe" --format "$fmt" >"$out" 2>"$err" &
  local pid=$!
  pids+=("$pid")
  # The start record is written once the source runs: the first line of
  # JSONL; for CSV, procwatch's "watching" notice on stderr.
  if [ "$fmt" = jsonl ]; then
    wait_for 300 grep -q '"event":"start"' "$out" || fail "$fmt: no start line: $(cat "$err")"
  else
    wait_for 300 grep -q '^procwatch: watching execs via' "$err" || fail "$fmt: no start notice: $(cat "$err")"
  fi
  # Lives about 2 s: ping waits a second between its 3 pings.
  timeout 120 wine cmd /c "ping -n 3 127.0.0.1 >nul & rem $tag" >/dev/null 2>&1 ||
    fail "$fmt: the tagged cmd did not run"
  wait_for 60 reported "$tag" "$out" || fail "$fmt: the tagged cmd.exe was not reported: $(cat "$err")"
  kill -INT "$pid"
  local rc=0
  # A hung procwatch must fail the step, not the whole CI run.
  (sleep 60 && kill -KILL "$pid" 2>/dev/null) &
  local watchdog=$!
  wait "$pid" || rc=$?
  kill "$watchdog" 2>/dev/null || true
  [ "$rc" = 0 ] || fail "$fmt: procwatch exited $rc after SIGINT: $(cat "$err")"
  python3 - "$fmt" "$out" "$err" "$tag" <<'EOF'
import csv, json, re, sys

fmt, out, err, tag = sys.argv[1:]
text = open(out, encoding="utf-8").read()
stderr = open(err, encoding="utf-8", errors="replace").read()
owner = re.compile(r"^[^\\]+\\[^\\]+$")

def check(cond, what):
    if not cond:
        sys.exit(f"wine.sh: FAIL: {fmt}: {what}\n--- output ---\n{text[-4000:]}\n--- stderr ---\n{stderr[-2000:]}")

def is_tagged_cmd(cmdline, exe):
    return tag in (cmdline or "") and (exe or "").lower().endswith("\\cmd.exe")

if fmt == "jsonl":
    lines = [json.loads(l) for l in text.splitlines()]
    check(lines and lines[0]["event"] == "start", "the first line is not the start record")
    start = lines[0]
    check(isinstance(start["hostname"], str) and start["hostname"], f"hostname {start['hostname']!r}")
    if start["source"] in ("snapshot", "wmi-poll"):
        check("shorter than" in start["can_miss"], f"can_miss {start['can_miss']!r}")
    check(lines[-1]["event"] == "stop" and lines[-1]["reason"] == "signal",
          "the last line is not a stop record for the signal")
    hits = [e for e in lines if e["event"] == "exec" and is_tagged_cmd(e["command_line"], e["exe"])]
    check(len(hits) == 1, f"expected one exec of cmd.exe with the tag, got {len(hits)}")
    e = hits[0]
    check(isinstance(e["ppid"], int) and e["ppid"] > 0, f"ppid {e['ppid']!r}")
    check(isinstance(e["user"], str) and owner.match(e["user"]), f"user {e['user']!r} is not DOMAIN\\user")
    privs = e["token"]["privileges"]
    check(isinstance(privs, list) and all(isinstance(p["name"], str) and isinstance(p["enabled"], bool)
                                         for p in privs), f"token.privileges {privs!r}")
    check(any(p["name"] == "SeChangeNotifyPrivilege" and p["enabled"] for p in privs),
          "SeChangeNotifyPrivilege is not listed as enabled")
    check(isinstance(e["token"]["integrity"], str), f"token.integrity {e['token']['integrity']!r}")
    print(f"wine.sh: jsonl ok: source {lines[0]['source']}, pid {e['pid']} ppid {e['ppid']} "
          f"user {e['user']} integrity {e['token']['integrity']}, {len(privs)} privileges")
else:
    check(text.startswith("CommandLine,Time,Executable,Parent PID,PID,User,Privileges\n"),
          "the CSV does not start with its header row")
    rows = list(csv.reader(text.splitlines()[1:]))
    hits = [r for r in rows if is_tagged_cmd(r[0], r[2])]
    check(len(hits) == 1, f"expected one row of cmd.exe with the tag, got {len(hits)}")
    r = hits[0]
    check(r[3].isdigit() and int(r[3]) > 0, f"Parent PID {r[3]!r}")
    check(r[4].isdigit(), f"PID {r[4]!r}")
    check(owner.match(r[5]) is not None, f"User {r[5]!r} is not DOMAIN\\user")
    check("SeChangeNotifyPrivilege" in r[6].split("|"), f"Privileges {r[6]!r}")
    check(re.search(r"^procwatch: stop \(signal\): ", stderr, re.M) is not None,
          "no stop line on stderr")
    print(f"wine.sh: csv ok: pid {r[4]} ppid {r[3]} user {r[5]} privileges {r[6]}")
EOF
}

say "procwatch.exe end to end"
e2e jsonl
e2e csv
say "done in $((SECONDS - began)) s"
