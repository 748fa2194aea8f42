//! The sources for when eBPF cannot be used: the netlink proc connector and
//! the unprivileged /proc scanner, and `--source auto`'s fallback.
//!
//! The late sources read a process's argv from /proc after its exec, so how
//! many short-lived execs they see in full depends on the load: the counts
//! are printed (`cargo test -- --nocapture`), never held to a bound. What is
//! checked exactly is what they promise: netlink announces every exec unless
//! it reports a loss; a process alive when read is reported in full; and a
//! reported field is never wrong, a missing one is listed in `incomplete`.
//! Tests keep their processes alive until procwatch has reported them
//! (waiting in `read`), instead of hoping a sleep is long enough.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const NOBODY: &str = "--reuid=65534";

/// A copy of the binary that the nobody user can execute (the build tree
/// may sit under a private home directory). Made once per test process.
fn nobody_binary() -> String {
    static COPY: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    let (_, path) = COPY.get_or_init(|| {
        let dir = open_tempdir();
        let path = dir.path().join("procwatch");
        std::fs::copy(PROCWATCH, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = path.to_str().unwrap().to_string();
        // A child forked by another test thread while the copy was open for
        // writing holds it until it execs (ETXTBSY): wait until it runs.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ok = Command::new("setpriv")
                .args([
                    NOBODY,
                    "--regid=65534",
                    "--clear-groups",
                    &path,
                    "--version",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "{path} never ran as nobody");
            thread::sleep(Duration::from_millis(20));
        }
        (dir, path)
    });
    path.clone()
}

/// procwatch with `--source source --format jsonl` and `extra`.
fn start_source(source: &str, extra: &[&str]) -> Monitor {
    let mut args = vec!["--source", source, "--format", "jsonl"];
    args.extend_from_slice(extra);
    Monitor::start(&args)
}

/// procwatch run as nobody with `args`.
fn start_as_nobody(bin: &str, args: &[&str]) -> Monitor {
    Monitor::start_cmd(
        Command::new("setpriv")
            .args([NOBODY, "--regid=65534", "--clear-groups", bin])
            .args(args),
    )
}

fn execs(lines: &[Value]) -> impl Iterator<Item = &Value> {
    lines.iter().filter(|v| v["event"] == "exec")
}

/// For each of `procs`, the exec events that are its own (by pid and time).
fn events_of<'a>(lines: &'a [Value], procs: &[Exited]) -> Vec<Vec<&'a Value>> {
    let mut by_pid: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        by_pid.entry(u64::from(p.pid)).or_default().push(i);
    }
    let mut out = vec![Vec::new(); procs.len()];
    for v in execs(lines) {
        for &i in by_pid
            .get(&v["pid"].as_u64().unwrap())
            .into_iter()
            .flatten()
        {
            if procs[i].owns(v) {
                out[i].push(v);
            }
        }
    }
    out
}

fn incomplete(ev: &Value) -> Vec<&str> {
    ev["incomplete"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn stop_of(lines: &[Value]) -> &Value {
    lines
        .last()
        .filter(|v| v["event"] == "stop")
        .expect("stop event last")
}

/// Execs lost on the way and counted: in the kernel or the socket, or in a
/// queue.
fn counted_losses(stop: &Value) -> u64 {
    ["dropped", "queue_dropped", "netlink_enobufs"]
        .iter()
        .map(|k| stop[k].as_u64().unwrap_or_else(|| panic!("{k} in {stop}")))
        .sum()
}

/// The exec event of one of our `/bin/true <tag>` processes has exactly
/// that argv, or none (null and listed in `incomplete`).
fn assert_honest_argv(v: &Value, tag: &str) {
    if v["argv"].is_null() {
        assert!(incomplete(v).contains(&"argv"), "{v}");
        return;
    }
    assert_eq!(
        argv_bytes(v),
        [b"/bin/true".to_vec(), tag.as_bytes().to_vec()],
        "{v}"
    );
}

/// Runs `/bin/true <tag>` n times, one after the other.
fn sequential(n: usize, tag: &str) -> Vec<Exited> {
    (0..n)
        .map(|_| run_tracked(Command::new("/bin/true").arg(tag)))
        .collect()
}

/// Root's `sh -c script tag` with its stdin a pipe, so that `read` in the
/// script waits until [`Spawned::release`].
fn held_shell(script: &str, tag: &str) -> Spawned {
    Spawned::spawn(
        Command::new("/bin/sh")
            .args(["-c", script, tag])
            .stdin(Stdio::piped()),
    )
}

/// Starts a held process tagged `tag`, waits until `m` has reported its
/// exec, lets it end, and returns that event. The process is alive when
/// the source reads it, so its argv must be complete. Everything the source
/// saw before it has been handled by then: the late sources keep order.
fn marker(m: &mut Monitor, tag: &str) -> Value {
    let mut p = held_shell("read x", tag);
    let ev = m.wait_for(&format!("\"pid\":{}", p.pid()), |v| {
        v["event"] == "exec" && p.owns(v)
    });
    p.release();
    assert!(p.wait().status.success());
    assert_eq!(
        argv_bytes(&ev),
        [
            b"/bin/sh".to_vec(),
            b"-c".to_vec(),
            b"read x".to_vec(),
            tag.as_bytes().to_vec()
        ],
        "a live process is read in full: {ev}"
    );
    ev
}

#[root_test("listens to the netlink proc connector")]
fn netlink_sequential_loop() {
    let tag = unique_tag("nl-seq");
    let mut m = start_source("netlink", &[]);
    let procs = sequential(1000, &tag);
    marker(&mut m, &unique_tag("nl-seq-end"));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine = events_of(&lines, &procs);
    for evs in &mine {
        assert!(evs.len() <= 1, "one exec, one event: {evs:?}");
        for v in evs {
            assert_honest_argv(v, &tag);
        }
    }
    let delivered = mine.iter().filter(|e| !e.is_empty()).count();
    let with_argv = mine
        .iter()
        .filter(|e| e.iter().any(|v| !v["argv"].is_null()))
        .count();
    let stop = stop_of(&lines);
    eprintln!(
        "netlink sequential: 1000 execs, {delivered} announced, {with_argv} with full argv; stop: {stop}"
    );
    // The proc connector announces every exec; only an overrun socket or
    // a full queue loses one, and then it is counted.
    if counted_losses(stop) == 0 {
        assert_eq!(
            delivered, 1000,
            "no loss reported, so every exec is announced"
        );
    } else {
        assert!(
            lines.iter().any(|v| v["event"] == "loss"),
            "losses are reported in-band"
        );
    }
}

#[root_test("listens to the netlink proc connector")]
fn netlink_marks_incomplete_when_process_already_exited() {
    // The netlink thread waits before its first read; the processes that
    // were reaped by then have nothing left in /proc to offer.
    const PAUSE: Duration = Duration::from_secs(2);
    let asked = Instant::now();
    let mut m = start_source(
        "netlink",
        &["--debug-pause-reader-ms", &PAUSE.as_millis().to_string()],
    );
    let procs = sequential(20, &unique_tag("nl-gone"));
    // On a slow machine the last ones may outlive the pause: those are not
    // certain to be gone when read.
    let gone_in_time = if asked.elapsed() < PAUSE { 20 } else { 0 };
    marker(&mut m, &unique_tag("nl-gone-end"));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine = events_of(&lines, &procs);
    let lossless = counted_losses(stop_of(&lines)) == 0;
    for evs in &mine {
        assert!(evs.len() <= 1, "one exec, one event: {evs:?}");
        assert!(
            !evs.is_empty() || !lossless,
            "no loss reported, so every exec is announced"
        );
    }
    for v in mine.iter().take(gone_in_time).flatten() {
        for f in ["argv", "exe", "caps", "comm", "filename"] {
            assert!(incomplete(v).contains(&f), "{f} not listed in {v}");
        }
        assert!(
            v["argv"].is_null() && v["exe"].is_null() && v["euid"].is_null(),
            "{v}"
        );
        let why = v["incomplete_reasons"]["argv"].as_str().unwrap();
        assert!(
            ["exited", "zombie", "pid_reused"]
                .iter()
                .any(|w| why.starts_with(w)),
            "{why}"
        );
    }
    for v in mine.iter().flatten() {
        // The parent is known from the fork event, without /proc.
        assert_eq!(v["ppid"], std::process::id(), "{v}");
    }
    eprintln!("netlink too late: {gone_in_time} of 20 checked as gone before the read");
    let too_late = stop_of(&lines)["too_late"].as_u64().unwrap();
    assert!(too_late >= gone_in_time as u64, "too_late {too_late}");
    if gone_in_time > 0 {
        assert!(
            lines
                .iter()
                .any(|v| v["event"] == "loss" && v["place"] == "too_late"),
            "too_late is reported in a loss event"
        );
    }
}

#[root_test("runs procwatch as nobody with setpriv")]
fn procfs_sequential_loop_unprivileged() {
    let bin = nobody_binary();
    let tag = unique_tag("pf-seq");
    let mut m = start_as_nobody(&bin, &["--source", "procfs", "--format", "jsonl"]);
    let procs = sequential(1000, &tag);
    marker(&mut m, &unique_tag("pf-seq-end"));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine = events_of(&lines, &procs);
    // Never a wrong argv: not even the parent's, from before the exec.
    for v in mine.iter().flatten() {
        assert_honest_argv(v, &tag);
    }
    let seen = mine.iter().filter(|e| !e.is_empty()).count();
    let with_argv = execs_with_tag(&lines, &tag).len();
    let stop = stop_of(&lines);
    eprintln!(
        "procfs sequential (as nobody): 1000 execs, {seen} seen, {with_argv} with full argv; stop: {stop}"
    );
}

/// procwatch's procfs source run as nobody.
fn nobody_procfs() -> Monitor {
    start_as_nobody(
        &nobody_binary(),
        &["--source", "procfs", "--format", "jsonl"],
    )
}

#[root_test("runs procwatch as nobody with setpriv")]
fn procfs_unprivileged_sees_root_process() {
    let tag = unique_tag("pf-root");
    let mut m = nobody_procfs();
    let mut sh = held_shell("read x", &tag);
    m.wait_for_exec(&tag);
    sh.release();
    let sh = sh.wait();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let start = &lines[0];
    assert_eq!(start["source"], "procfs");
    assert_eq!(start["short_lived_complete"], false);
    assert_eq!(start["poll_interval_ms"], 100);
    assert!(
        start["unavailable"]
            .as_array()
            .unwrap()
            .contains(&"filename".into())
    );
    let hits = execs_with_tag(&lines, &tag);
    assert_eq!(hits.len(), 1, "{hits:?}");
    let ev = hits[0];
    assert!(sh.owns(ev), "{ev}");
    assert_eq!(ev["euid"], 0);
    assert_eq!(ev["user"], "root");
    // nobody may not read another user's exe link: null and listed, not guessed.
    assert!(ev["exe"].is_null(), "{ev}");
    assert!(incomplete(ev).contains(&"exe"));
    assert!(
        ev["incomplete_reasons"]["exe"]
            .as_str()
            .unwrap()
            .starts_with("permission_denied")
    );
    // A root exec whose files nobody cannot examine: no finding, and the
    // empty list is marked as not checked rather than looking safe.
    assert!(ev["hijackable"].is_null(), "{ev}");
    assert_eq!(
        ev["incomplete_reasons"]["hijackable"], "not checked: the executed file's path is unknown",
        "{ev}"
    );
}

#[root_test("runs procwatch as nobody with setpriv")]
fn procfs_exec_without_fork() {
    let tag = unique_tag("pf-nofork");
    let after = format!("{tag}-after");
    let mut m = nobody_procfs();
    // sh shows itself first, then replaces itself by bash: same pid. As
    // nobody, procwatch may not read a root process's memory layout, so
    // the new comm is what tells it an exec happened.
    let mut sh = held_shell("read x; exec /bin/bash -c 'read y' \"$0-after\"", &tag);
    m.wait_for_exec(&tag);
    sh.release();
    m.wait_for_exec(&after);
    sh.release();
    let sh = sh.wait();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine: Vec<&Value> = execs(&lines).filter(|v| sh.owns(v)).collect();
    let argvs: Vec<Vec<Vec<u8>>> = mine.iter().map(|v| argv_bytes(v)).collect();
    assert_eq!(mine.len(), 2, "{argvs:?}");
    assert_eq!(argvs[0].last().unwrap(), tag.as_bytes());
    let want: Vec<&[u8]> = vec![b"/bin/bash", b"-c", b"read y", after.as_bytes()];
    assert_eq!(argvs[1], want);
    assert_eq!(mine[0]["process_start"], mine[1]["process_start"]);
    assert_ne!(mine[0]["exec_id"], mine[1]["exec_id"]);
}

#[root_test("runs procwatch as nobody, sets ns_last_pid")]
fn procfs_reused_pid_is_a_new_process() {
    let mut m = nobody_procfs();
    let (tag1, tag2) = (unique_tag("pf-reuse1"), unique_tag("pf-reuse2"));
    let mut first = held_shell("read x", &tag1);
    m.wait_for_exec(&tag1);
    first.release();
    let pid = first.wait().pid;
    // procwatch tells processes apart by pid and start time, which /proc
    // gives in clock ticks (10 ms at USER_HZ 100): the second must start
    // in a later tick than the first, which may have lived for less.
    thread::sleep(Duration::from_millis(50));
    let mut second = spawn_with_pid(
        pid,
        Command::new("/bin/sh")
            .args(["-c", "read x", &tag2])
            .stdin(Stdio::piped()),
    );
    m.wait_for_exec(&tag2);
    second.release();
    second.wait();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let (a, b) = (execs_with_tag(&lines, &tag1), execs_with_tag(&lines, &tag2));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0]["pid"], b[0]["pid"]);
    assert_ne!(a[0]["process_start"], b[0]["process_start"]);
    assert_ne!(a[0]["exec_id"], b[0]["exec_id"]);
}

#[root_test("falls back to the netlink proc connector")]
fn auto_falls_back_when_ebpf_is_forbidden() {
    let mut m = Monitor::start_cmd(
        Command::new(PROCWATCH)
            .args(["--format", "jsonl"])
            .env("PROCWATCH_DISABLE_EBPF", "1"),
    );
    let tag = unique_tag("auto");
    let mut sh = held_shell("read x", &tag);
    m.wait_for_exec(&tag);
    sh.release();
    sh.wait();
    let done = m.stop();
    done.assert_clean_exit();
    assert!(
        done.stderr.contains("using source netlink"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("not using ebpf: disabled"),
        "{}",
        done.stderr
    );
    let lines = done.json_lines();
    assert_eq!(lines[0]["source"], "netlink");
    assert_eq!(lines[0]["short_lived_complete"], false);
    assert_eq!(execs_with_tag(&lines, &tag).len(), 1);

    // The hidden flag does the same.
    let m = Monitor::start(&["--format", "jsonl", "--debug-disable-ebpf"]);
    let lines = m.stop().json_lines();
    assert_eq!(lines[0]["source"], "netlink");
}

#[root_test("reads every process in /proc")]
fn bad_input_setproctitle_zombies_kernel_threads() {
    let mut m = start_source("procfs", &["--interval", "0.02"]);
    let tag = unique_tag("bad");
    // Rewrites its own argv area once it was seen, without exec'ing.
    let renamed = format!("renamed-{tag}");
    let script = "<STDIN>; $0 = $ARGV[1]; <STDIN>";
    let mut perl = Spawned::spawn(
        Command::new("perl")
            .args(["-e", script, &tag, &renamed])
            .stdin(Stdio::piped()),
    );
    m.wait_for_exec(&tag);
    perl.release();
    // A zombie child for a while: the shell does not reap a background
    // child before it execs.
    let mut zombie_maker = held_shell("/bin/true & exec head -n 1", &tag);
    // Once procwatch reports a process started after the rename, it has
    // scanned /proc since: the renamed perl and the zombie were there.
    marker(&mut m, &unique_tag("bad-end"));
    perl.release();
    zombie_maker.release();
    let perl = perl.wait();
    zombie_maker.wait();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let perl_events: Vec<&Value> = execs(&lines).filter(|v| perl.owns(v)).collect();
    // The rename is not an exec: reported once, as it was when seen.
    assert_eq!(perl_events.len(), 1, "{perl_events:?}");
    let want: Vec<&[u8]> = vec![
        b"perl",
        b"-e",
        script.as_bytes(),
        tag.as_bytes(),
        renamed.as_bytes(),
    ];
    assert_eq!(argv_bytes(perl_events[0]), want);
    for v in execs(&lines) {
        // Kernel threads never exec and are never reported.
        assert_ne!(v["ppid"], 2, "{v}");
        assert_ne!(v["pid"], 2, "{v}");
        // A reported argv is never empty-by-accident: null when unknown.
        if v["argv"].is_null() {
            assert!(incomplete(v).contains(&"argv"), "{v}");
        }
    }
}

#[root_test("listens to the netlink proc connector")]
fn netlink_reports_exits() {
    let mut m = start_source("netlink", &["--exits"]);
    let tag = unique_tag("nl-exit");
    let mut sh = held_shell("read x; exit 3", &tag);
    let exec = m.wait_for_exec(&tag);
    sh.release();
    let id = exec["exec_id"].as_str().unwrap().to_string();
    m.wait_for(&id, |v| v["event"] == "exit" && v["exec_id"] == id.as_str());
    let sh = sh.wait();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    assert!(sh.owns(&exec), "{exec}");
    assert_eq!(execs_with_tag(&lines, &tag).len(), 1);
    let exits: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "exit" && v["exec_id"] == id.as_str())
        .collect();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(exits[0]["pid"], sh.pid);
    assert_eq!(exits[0]["exit_code"], 3);
    assert_eq!(exits[0]["comm"], "sh");
}

#[root_test("runs procwatch as nobody with setpriv")]
fn unprivileged_messages_say_what_to_do() {
    let bin = nobody_binary();
    let m = start_as_nobody(&bin, &["--format", "jsonl", "--realtime"]);
    let done = m.stop();
    done.assert_clean_exit();
    // eBPF's own error is cryptic for a non-root user; the line says why.
    assert!(
        done.stderr.contains("not using ebpf: ")
            && done.stderr.contains(
                "(run procwatch as root (sudo procwatch), or grant it CAP_BPF and CAP_PERFMON)"
            ),
        "{}",
        done.stderr
    );
    // SCHED_FIFO was refused: said once, with the remedy, and not claimed.
    assert!(
        done.stderr.contains("--realtime: cannot use SCHED_FIFO")
            && done.stderr.contains("run as root or grant CAP_SYS_NICE"),
        "{}",
        done.stderr
    );
    let lines = done.json_lines();
    assert_eq!(lines[0]["source"], "netlink");
    assert_eq!(lines[0]["attach"], "NETLINK_CONNECTOR proc connector");
}
