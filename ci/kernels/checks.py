"""What the matrix asserts about one guest run: its console output, parsed
into procwatch's JSONL events and stderr, checked against exact values.

Each check returns (ok, detail). The guest (guest-init.sh) only runs
things; every judgement is made here.
"""

import json
import re

CHECKS = [
    ("boot", "the guest booted and ran its whole script (procwatch and the test execs)"),
    ("attach", "source ebpf attached to tp_btf/sched_process_exec, no program rejected "
               "(no warning on stderr), clean exit"),
    ("plain", "argv, exe, filename, cwd, uid/euid/suid/gid, user/group and caps of a plain "
              "exec by root and by nobody; nothing incomplete but a pending hash"),
    ("hash", "exe_sha256 of those two execs, from their late hash events (they exit "
             "before the hasher reads /proc/PID/exe, so the path is checked against the "
             "kernel's stamp): the sha256 of /bin/pwprobe"),
    ("setuid", "nobody runs a setuid-root copy: euid 0, privilege_raised setuid, pre_exec "
               "{65534, 65534, no caps}, privilege_change setuid 65534→0"),
    ("ns", "namespaces of a plain exec equal readlink /proc/self/ns/* in the guest; "
           "host user and pid namespace (ns_pid = pid, level 0), an integer cgroup id and "
           "exe_mnt_id, exe_other_mnt_ns false"),
    ("tmpfs", "exe and cwd of an exec on a tmpfs mounted at /mnt/t"),
    ("bind", "exe and cwd of the same exec through a bind mount at /mnt/b"),
    ("script", "a #! script: argv as the kernel rewrote it, exe the interpreter's file, "
               "filename the script, interpreter /bin/sh"),
    ("exits", "--exits: the exit event of a 300 ms process, exit code 7, lifetime ≥ 300 ms, "
              "same exec_id"),
    ("counters", "stop event: seen == emitted + dropped, nothing dropped; every line is JSON"),
]


class GuestRun:
    """The parsed console output of one guest."""

    def __init__(self, console):
        self.console = console
        self.lines = [l.rstrip("\r") for l in console.splitlines()]
        self.values = {}
        for l in self.lines:
            keys = ["PWM-KERNEL", "PWM-CAP-LAST", "PWM-PROBE-SHA256", "PWM-PROCWATCH-STATUS",
                    "PWM-EXIT-STATUS"] + [f"PWM-NS-{n}" for n in NS_NAMES]
            for key in keys:
                if l.startswith(key + " "):
                    self.values[key] = l[len(key) + 1:].strip()
        self.done = "PWM-DONE" in self.lines
        self.events, self.unparsed = [], []
        for l in self.block("JSONL"):
            try:
                self.events.append(json.loads(l))
            except ValueError:
                self.unparsed.append(l)
        self.stderr = self.block("STDERR")

    def block(self, name):
        try:
            start = self.lines.index(f"PWM-BEGIN-{name}")
            end = self.lines.index(f"PWM-END-{name}", start)
        except ValueError:
            return []
        return self.lines[start + 1:end]

    def kind(self, kind):
        return [e for e in self.events if e.get("event") == kind]

    def exec_with(self, argv):
        """The one exec event whose argv is exactly ARGV."""
        found = [e for e in self.kind("exec") if e.get("argv") == argv]
        if len(found) != 1:
            near = [e.get("argv") for e in self.kind("exec") if argv[-1] in json.dumps(e.get("argv"))]
            raise CheckFailed(f"{len(found)} exec events with argv {argv} (argv mentioning "
                              f"{argv[-1]!r}: {near})")
        return found[0]


class CheckFailed(Exception):
    pass


def expect(ev, want):
    """Fails with every field of EV (dotted paths) that differs from WANT."""
    bad = []
    for path, value in want.items():
        got = ev
        for k in path.split("."):
            got = got.get(k) if isinstance(got, dict) else None
        if got != value:
            bad.append(f"{path}={json.dumps(got)} (want {json.dumps(value)})")
    if bad:
        raise CheckFailed(f"pid {ev.get('pid')} argv {ev.get('argv')}: " + ", ".join(bad))


def full_mask(run):
    last = int(run.values.get("PWM-CAP-LAST", "-1"))
    if last < 0:
        raise CheckFailed("the guest did not print cap_last_cap")
    return f"0x{(1 << (last + 1)) - 1:016x}", last + 1


NO_CAPS = "0x0000000000000000"


def attaches(run):
    """What attached, in words: the start event's attach point and the
    programs that stderr says were rejected."""
    starts = run.kind("start")
    if not starts:
        return "nothing (no start event)"
    rejected = []
    for l in run.stderr:
        m = re.search(r"warning: cannot attach (\S+)", l)
        if m:
            rejected.append(m.group(1))
    text = starts[0].get("attach") or "?"
    if rejected:
        text += "; rejected: " + ", ".join(rejected)
    return text


def check_boot(run):
    if not run.done:
        raise CheckFailed("the guest never printed PWM-DONE (crash, hang or timeout; see the raw output)")
    return f"kernel {run.values.get('PWM-KERNEL')}"


def check_attach(run):
    starts = run.kind("start")
    if len(starts) != 1:
        raise CheckFailed(f"{len(starts)} start events; stderr: {run.stderr}")
    expect(starts[0], {"source": "ebpf", "attach": "tp_btf/sched_process_exec"})
    warnings = [l for l in run.stderr if "warning" in l.lower()]
    if warnings:
        raise CheckFailed("; ".join(warnings))
    status = run.values.get("PWM-PROCWATCH-STATUS")
    if status != "0":
        raise CheckFailed(f"procwatch exited with status {status}; stderr: {run.stderr}")
    return starts[0]["attach"]


def check_plain(run):
    mask, ncaps = full_mask(run)
    root = run.exec_with(["/bin/pwprobe", "plain", "pwm-plain", "two words"])
    expect(root, {
        "exe": "/bin/pwprobe", "filename": "/bin/pwprobe", "cwd": "/", "interpreter": None,
        "uid": 0, "euid": 0, "suid": 0, "fsuid": 0, "gid": 0, "egid": 0,
        "user": "root", "group": "root",
        "caps_raw.effective": mask, "caps_raw.permitted": mask, "caps_raw.ambient": NO_CAPS,
        "privilege_raised": None,
    })
    # A pending hash may be listed: a hash event follows.
    allowed = {"exe_sha256": "hash_pending"}
    reasons = root.get("incomplete_reasons") or {}
    if any(allowed.get(f) != reasons.get(f) for f in root.get("incomplete") or []):
        raise CheckFailed(f"incomplete {root.get('incomplete')} {reasons}")
    # The full set (caps_raw above) is written as ["ALL"], nothing missing.
    if root["caps"]["effective"] != ["ALL"] or root["caps"]["permitted"] != ["ALL"]:
        raise CheckFailed(f"caps of root ({ncaps} capabilities): {root['caps']}")
    if not isinstance(root.get("ppid"), int):
        raise CheckFailed(f"ppid {root.get('ppid')}")
    nobody = run.exec_with(["/bin/pwprobe", "plain", "pwm-nobody"])
    expect(nobody, {
        "exe": "/bin/pwprobe", "uid": 65534, "euid": 65534, "suid": 65534, "fsuid": 65534,
        "gid": 65534, "egid": 65534, "user": "nobody", "group": "nogroup",
        "caps.effective": [], "caps.permitted": [], "caps_raw.effective": NO_CAPS,
        "privilege_raised": None, "privilege_change": None,
    })
    return f"root caps {mask}, nobody none"


def final_sha256(run, ev):
    """(sha256, reason) of exec EV: its own, or from its one late hash event."""
    if ev.get("incomplete_reasons", {}).get("exe_sha256") != "hash_pending":
        return ev.get("exe_sha256"), ev.get("incomplete_reasons", {}).get("exe_sha256")
    late = [h for h in run.kind("hash") if h.get("exec_id") == ev.get("exec_id")]
    if len(late) != 1:
        raise CheckFailed(f"{len(late)} hash events for exec {ev.get('exec_id')}")
    return late[0].get("exe_sha256"), late[0].get("reason")


def check_hash(run):
    want = run.values.get("PWM-PROBE-SHA256")
    if not want or len(want) != 64:
        raise CheckFailed(f"the guest printed no sha256 of /bin/pwprobe ({want!r})")
    for argv in (["/bin/pwprobe", "plain", "pwm-plain", "two words"],
                 ["/bin/pwprobe", "plain", "pwm-nobody"]):
        got, why = final_sha256(run, run.exec_with(argv))
        if got != want:
            raise CheckFailed(f"{argv}: exe_sha256 {got} (want {want}); reason {why}")
    return f"{want[:12]}… twice"


def check_setuid(run):
    mask, _ = full_mask(run)
    ev = run.exec_with(["/bin/suid-probe", "plain", "pwm-setuid"])
    expect(ev, {
        "exe": "/bin/suid-probe", "uid": 65534, "euid": 0, "suid": 0, "gid": 65534,
        "user": "root", "file.mode": "04755", "file.uid": 0,
        "caps_raw.effective": mask, "privilege_raised": "setuid",
        "pre_exec.uid": 65534, "pre_exec.euid": 65534, "pre_exec.caps_effective": NO_CAPS,
        "privilege_change.cause": "setuid", "privilege_change.from_euid": 65534,
        "privilege_change.to_euid": 0,
    })
    return "raised setuid 65534→0"


NS_NAMES = ["pid", "pid_for_children", "mnt", "net", "user", "uts", "ipc", "cgroup"]


def check_ns(run):
    want = {}
    for name in NS_NAMES:
        link = run.values.get(f"PWM-NS-{name}", "")
        m = re.fullmatch(r"[a-z_]+:\[(\d+)\]", link)
        if not m:
            raise CheckFailed(f"the guest printed no namespace link for {name} ({link!r})")
        want[f"namespaces.{name}"] = int(m.group(1))
    ev = run.exec_with(["/bin/pwprobe", "plain", "pwm-plain", "two words"])
    want.update({"ns_pid": ev.get("pid"), "pidns_level": 0, "in_host_userns": True,
                 "userns_owner_uid": None, "userns_level": 0, "exe_other_mnt_ns": False,
                 "cgroup.path": "/", "container": None})
    expect(ev, want)
    for path in ("cgroup.id", "exe_mnt_id"):
        got = ev
        for k in path.split("."):
            got = got.get(k) if isinstance(got, dict) else None
        if not isinstance(got, int) or isinstance(got, bool) or got <= 0:
            raise CheckFailed(f"{path}={json.dumps(got)} (want a positive integer)")
    return f"mnt {want['namespaces.mnt']}, cgroup id {ev['cgroup']['id']}, mnt id {ev['exe_mnt_id']}"


def check_tmpfs(run):
    ev = run.exec_with(["/mnt/t/t1", "plain", "pwm-tmpfs"])
    expect(ev, {"exe": "/mnt/t/t1", "filename": "/mnt/t/t1", "cwd": "/mnt/t/d", "exe_truncated": False})
    return "/mnt/t/t1 in /mnt/t/d"


def check_bind(run):
    ev = run.exec_with(["/mnt/b/t1", "plain", "pwm-bind"])
    expect(ev, {"exe": "/mnt/b/t1", "filename": "/mnt/b/t1", "cwd": "/mnt/b/d", "exe_truncated": False})
    return "/mnt/b/t1 in /mnt/b/d"


def check_script(run):
    ev = run.exec_with(["/bin/sh", "/bin/pw-script", "pwm-script"])
    expect(ev, {"exe": "/bin/busybox", "filename": "/bin/pw-script", "interpreter": "/bin/sh"})
    return "exe /bin/busybox via /bin/sh"


def check_exits(run):
    ex = run.exec_with(["/bin/pwprobe", "exit", "7", "300", "pwm-exit"])
    mine = [e for e in run.kind("exit") if e.get("exec_id") == ex.get("exec_id")]
    if len(mine) != 1:
        raise CheckFailed(f"{len(mine)} exit events with exec_id {ex.get('exec_id')} "
                          f"({len(run.kind('exit'))} exit events in all)")
    expect(mine[0], {"pid": ex["pid"], "exit_code": 7, "signal": None})
    life = mine[0].get("lifetime_ms")
    if not isinstance(life, (int, float)) or not 300 <= life < 120000:
        raise CheckFailed(f"lifetime_ms {life} (want ≥ 300)")
    return f"exit 7 after {life:.0f} ms"


def check_counters(run):
    stops = run.kind("stop")
    if len(stops) != 1:
        raise CheckFailed(f"{len(stops)} stop events")
    if run.unparsed:
        raise CheckFailed(f"{len(run.unparsed)} output lines are not JSON, first: {run.unparsed[0][:200]}")
    s = stops[0]
    if s.get("seen") != s.get("emitted", 0) + s.get("dropped", 0):
        raise CheckFailed(f"seen {s.get('seen')} != emitted {s.get('emitted')} + dropped {s.get('dropped')}")
    expect(s, {"dropped": 0, "queue_dropped": 0})
    return f"seen {s['seen']} = emitted {s['emitted']} + dropped {s['dropped']}"


def run_checks(run):
    """{check name: (ok, detail)} for one guest run."""
    results = {}
    for name, _ in CHECKS:
        fn = globals()["check_" + name]
        try:
            results[name] = (True, fn(run))
        except CheckFailed as e:
            results[name] = (False, str(e))
        except (KeyError, TypeError, ValueError) as e:
            results[name] = (False, f"malformed output: {e!r}")
    return results
