#!/usr/bin/env python3
"""Exec-storm benchmark for procwatch (a benchmark, not a test).

For each worker count it alternates runs of the same storm without and with
procwatch attached, and reports, from the same run:
  * the storm's exec rate without and with procwatch, and their ratio;
  * captured vs executed (tagged events in procwatch's output);
  * events dropped (kernel + queue, from the stop event);
  * procwatch's CPU time (user + sys, from wait4) per 1000 events written.

Run as root from the repository root:  python3 bench/exec_storm.py
Options: --seconds 5 --rounds 3 --workers 1,2 --binary target/release/procwatch

Builds compared in the same run (each round runs the storm without
procwatch, then with each build in turn):
  python3 bench/exec_storm.py --binaries \
    glibc=target/release/procwatch,musl=target/x86_64-unknown-linux-musl/release/procwatch

Per-source comparison (README table):
  python3 bench/exec_storm.py --source ebpf,netlink,procfs --sequential 1000 --workers 2
runs, for each source, the sequential loop (N execs of /bin/true one after
the other) and the storm, and reports the capture fraction *with full argv*,
the late sources' loss counters (too_late, netlink_enobufs, proc_read_failures)
and procwatch's CPU use.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def storm_worker(deadline, tag, counter_fd):
    """Spawns /bin/true <tag> back to back until the deadline."""
    n = 0
    argv = ["/bin/true", tag]
    while time.monotonic() < deadline:
        pid = os.posix_spawn("/bin/true", argv, {})
        os.waitpid(pid, 0)
        n += 1
    os.write(counter_fd, f"{n}\n".encode())


def storm(seconds, workers, tag):
    """Runs `workers` storm processes for `seconds`; returns (execs, elapsed)."""
    r, w = os.pipe()
    start = time.monotonic()
    deadline = start + seconds
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                storm_worker(deadline, tag, w)
            finally:
                os._exit(0)
        pids.append(pid)
    os.close(w)
    for pid in pids:
        os.waitpid(pid, 0)
    elapsed = time.monotonic() - start
    with os.fdopen(r) as f:
        total = sum(int(line) for line in f if line.strip())
    return total, elapsed


def cpu_by_thread(pid):
    """CPU time (s) of each thread of `pid` so far, by thread name, in ns
    precision (schedstat): `procwatch` is the writer (main) thread,
    `procwatch-reade` the reader."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except FileNotFoundError:
            continue
        out[name] = out.get(name, 0) + ns / 1e9
    return out


def cpu_seconds(pid):
    """CPU time of all threads of `pid` so far."""
    return sum(cpu_by_thread(pid).values())


def sequential(count, tag):
    """Runs /bin/true <tag> `count` times one after the other; returns (execs, elapsed)."""
    start = time.monotonic()
    for _ in range(count):
        pid = os.posix_spawn("/bin/true", ["/bin/true", tag], {})
        os.waitpid(pid, 0)
    return count, time.monotonic() - start


def peak_rss_kib(pid):
    """Peak resident memory of `pid` (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def with_procwatch(binary, seconds, workers, tag, extra_args=(), seq=0):
    """One storm (or, with seq > 0, one sequential loop of `seq` execs) with
    procwatch attached; returns a dict of measurements."""
    out = tempfile.NamedTemporaryFile(prefix="procwatch-bench-", suffix=".jsonl", delete=False)
    out.close()
    os.unlink(out.name)
    proc = subprocess.Popen(
        [binary, "--format", "jsonl", "-o", out.name, *extra_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Attached once the start line is in the file.
    t0 = time.monotonic()
    while True:
        try:
            with open(out.name) as f:
                if f.readline().endswith("\n"):
                    break
        except FileNotFoundError:
            pass
        if proc.poll() is not None or time.monotonic() - t0 > 30:
            sys.exit(f"procwatch did not start: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    # CPU spent on start-up (loading BPF) is not per-event cost: measure from here.
    threads_before = cpu_by_thread(proc.pid)
    if seq:
        execs, elapsed = sequential(seq, tag)
    else:
        execs, elapsed = storm(seconds, workers, tag)
    # Let procwatch drain what is queued (the late sources report a little
    # after the exec), then take the CPU it spent on the workload; exit-time
    # work (unloading, freeing the ring) is not per-event.
    time.sleep(0.5)
    threads = {k: v - threads_before.get(k, 0) for k, v in cpu_by_thread(proc.pid).items()}
    cpu = sum(threads.values())
    rss_kib = peak_rss_kib(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, status, _ = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    captured = 0
    stop = None
    with open(out.name, "rb") as f:
        for line in f:
            ev = json.loads(line)
            if ev["event"] == "exec" and ev.get("argv") == ["/bin/true", tag]:
                captured += 1
            elif ev["event"] == "stop":
                stop = ev
    os.unlink(out.name)
    if stop is None:
        sys.exit("procwatch wrote no stop event")
    return {
        "execs": execs,
        "rate": execs / elapsed,
        "captured": captured,
        "dropped": stop["dropped"] + stop["queue_dropped"],
        "written": stop["written"],
        "too_late": stop.get("too_late", 0),
        "enobufs": stop.get("netlink_enobufs", 0),
        "read_failures": stop.get("proc_read_failures", 0),
        "cpu_s": cpu,
        "writer_s": threads.get("procwatch", 0),
        "reader_s": threads.get("procwatch-reade", 0),
        "elapsed": elapsed,
        "rss_kib": rss_kib,
    }


def per_source(args):
    """The README table: each source on the sequential loop and the storm."""
    print(f"per-source comparison: sequential loop of {args.sequential} execs, "
          f"storms of {args.seconds:g} s with {args.workers} workers, {args.rounds} rounds each")
    print()
    print("| source | workload | execs | captured with full argv | too_late | ENOBUFS | read failures "
          "| procwatch CPU (% of one CPU) | CPU per exec |")
    print("|---|---|---|---|---|---|---|---|---|")
    workloads = [("sequential", 0)] if args.sequential else []
    workloads += [(f"storm x{w}", int(w)) for w in args.workers.split(",")]
    for source in args.source.split(","):
        for name, workers in workloads:
            runs = [
                with_procwatch(args.binary, args.seconds, workers, "pwbench-" + uuid.uuid4().hex,
                               ("--source", *source.split()), 0 if workers else args.sequential)
                for _ in range(args.rounds)
            ]
            execs = sum(r["execs"] for r in runs)
            captured = sum(r["captured"] for r in runs)
            cpu = sum(r["cpu_s"] for r in runs)
            elapsed = sum(r["elapsed"] for r in runs)
            print(
                f"| {source} | {name} | {execs} | {captured} ({100 * captured / execs:.1f}%) "
                f"| {sum(r['too_late'] for r in runs)} | {sum(r['enobufs'] for r in runs)} "
                f"| {sum(r['read_failures'] for r in runs)} | {100 * cpu / elapsed:.1f}% "
                f"| {cpu * 1e6 / execs:.1f} µs |",
                flush=True,
            )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/procwatch")
    ap.add_argument("--binaries", default=None,
                    help="comma-separated LABEL=PATH builds to compare in the same run "
                         "(instead of --binary); keep each file named procwatch, since the "
                         "writer/reader split finds the threads by that name")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument(
        "--variants",
        default="default",
        help="comma list of procwatch configurations to compare: default (hash and hijack check on), "
        "no-hash, no-hijack, bare (both off), sigma (--rules with the corpus's Linux rules), "
        "sigma-all (--rules with the whole corpus)",
    )
    ap.add_argument("--sigma", default="../shared/sigma",
                    help="the Sigma corpus for the sigma variants")
    ap.add_argument("--source", default=None,
                    help="comma-separated sources to compare, each optionally with extra "
                         "options, e.g. 'ebpf,netlink,netlink --realtime,procfs'; "
                         "without it, the with/without storm-rate table per variant")
    ap.add_argument("--sequential", type=int, default=1000,
                    help="with --source: length of the sequential loop (0 to skip)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: procwatch needs it to load eBPF")
    if not os.path.exists(args.binary):
        subprocess.run(["cargo", "build", "--release"], check=True)
    if args.source:
        per_source(args)
        return

    variant_args = {
        "default": (),
        "no-hash": ("--no-hash",),
        "no-hijack": ("--no-hijack-check",),
        "bare": ("--no-hash", "--no-hijack-check"),
        # The SigmaHQ corpus beside the repository: its Linux rules, and the
        # whole corpus (the Windows rules are read and skipped).
        "sigma": ("--rules", os.path.join(args.sigma, "rules", "linux")),
        "sigma-all": ("--rules", args.sigma),
    }
    # Each entry: (label, binary, extra arguments).
    if args.binaries:
        builds = [b.split("=", 1) for b in args.binaries.split(",")]
        many = len(args.variants.split(",")) > 1
        variants = [(f"{label}/{v}" if many else label, path, variant_args[v])
                    for label, path in builds for v in args.variants.split(",")]
    else:
        variants = [(v, args.binary, variant_args[v]) for v in args.variants.split(",")]
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        base_rates, runs = [], {v[0]: [] for v in variants}
        for _ in range(args.rounds):
            execs, elapsed = storm(args.seconds, workers, "pwbench-base-" + uuid.uuid4().hex)
            base_rates.append(execs / elapsed)
            for label, binary, extra in variants:
                tag = "pwbench-" + uuid.uuid4().hex
                runs[label].append(with_procwatch(binary, args.seconds, workers, tag, extra))
        base = statistics.median(base_rates)
        for v, _, _ in variants:
            rs = runs[v]
            rate = statistics.median(r["rate"] for r in rs)
            execs = sum(r["execs"] for r in rs)
            captured = sum(r["captured"] for r in rs)
            dropped = sum(r["dropped"] for r in rs)
            written = sum(r["written"] for r in rs)
            cpu = sum(r["cpu_s"] for r in rs)
            writer = sum(r["writer_s"] for r in rs)
            reader = sum(r["reader_s"] for r in rs)
            rss = max(r["rss_kib"] for r in rs)
            per = 1e6 / max(written, 1)
            rows.append((workers, v, base, rate, execs, captured, dropped, cpu * per,
                         writer * per, reader * per, rss))

    print(f"exec storm, {args.rounds} rounds x {args.seconds:g} s each, medians of rates")
    print()
    print(
        "| workers | procwatch | execs/s without | execs/s with | with/without | captured / executed"
        " | dropped | procwatch CPU per event | writer / reader thread | procwatch peak RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workers, v, base, rate, execs, captured, dropped, us, w_us, r_us, rss in rows:
        print(
            f"| {workers} | {v} | {base:,.0f} | {rate:,.0f} | {rate / base:.3f} | {captured} / {execs}"
            f" ({100 * captured / execs:.2f}%) | {dropped} | {us:.2f} µs | {w_us:.2f} / {r_us:.2f} µs"
            f" | {rss / 1024:.1f} MiB |"
        )


if __name__ == "__main__":
    main()
