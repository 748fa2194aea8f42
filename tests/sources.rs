//! The sources for when eBPF cannot be used: the netlink proc connector and
//! the unprivileged /proc scanner, and `--source auto`'s fallback.
//!
//! The racy sources are held to documented lower bounds, never to 100%;
//! each test prints its actual counts (`cargo test -- --nocapture`). What
//! is checked exactly is honesty: a reported field is never wrong, and a
//! missing one is listed in `incomplete`.

// These run procwatch against the Linux kernel (eBPF, netlink, /proc).
#![cfg(target_os = "linux")]

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// netlink: share of the sequential execs that must be announced at all.
/// Delivery is complete unless the socket overruns, which 1000 sequential
/// execs cannot cause with a 32 MiB buffer; 1% slack for a noisy host.
const NETLINK_DELIVERED_MIN: f64 = 0.99;
/// netlink: share that must also carry the full argv. /bin/true lives
/// about a millisecond; during the test suite (other tests running beside
/// it) we measured 53–89% here, and the issue measured down to 30% on a
/// busy host.
const NETLINK_ARGV_MIN: f64 = 0.20;
/// procfs: share of the sequential execs seen with full argv. A /bin/true
/// is usually over before any scan; inotify triggers (ld.so opening libc)
/// catch some: 3–11% measured here as nobody. The bound only proves the
/// triggers work at all.
const PROCFS_ARGV_MIN: f64 = 0.005;

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
        for _ in 0..100 {
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

/// The exec events of the given pids.
fn execs_of<'a>(lines: &'a [Value], pids: &HashSet<u32>) -> Vec<&'a Value> {
    execs(lines)
        .filter(|v| pids.contains(&(v["pid"].as_u64().unwrap() as u32)))
        .collect()
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

/// An exec event of one of our `/bin/true <tag>` pids has either exactly
/// that argv, or none (null and listed in `incomplete`). pids wrap on a busy
/// host, so another test's `/bin/true <its tag>` may carry one of our pids:
/// that is a whole other tag, never a cut or foreign argv.
fn assert_honest_argv(v: &Value, tag: &str) {
    if v["argv"].is_null() {
        assert!(incomplete(v).contains(&"argv"), "{v}");
        return;
    }
    let argv = argv_bytes(v);
    assert_eq!(argv.len(), 2, "{v}");
    assert_eq!(argv[0], b"/bin/true", "{v}");
    let other_test = argv[1].starts_with(b"pwtest-") && !tag.as_bytes().starts_with(&argv[1]);
    assert!(argv[1] == tag.as_bytes() || other_test, "{v}");
}

/// Runs `/bin/true <tag>` n times, one after the other; returns the pids.
fn sequential(n: usize, tag: &str) -> HashSet<u32> {
    (0..n)
        .map(|_| {
            let mut c = Command::new("/bin/true").arg(tag).spawn().unwrap();
            let pid = c.id();
            c.wait().unwrap();
            pid
        })
        .collect()
}

#[test]
fn netlink_sequential_loop() {
    if skip_unless_root("netlink_sequential_loop") {
        return;
    }
    let tag = unique_tag("nl-seq");
    let m = start_source("netlink", &[]);
    let pids = sequential(1000, &tag);
    thread::sleep(Duration::from_millis(300));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine = execs_of(&lines, &pids);
    let delivered: HashSet<u64> = mine.iter().map(|v| v["pid"].as_u64().unwrap()).collect();
    let with_argv = mine
        .iter()
        .filter(|v| !v["argv"].is_null())
        .filter(|v| argv_bytes(v) == vec![b"/bin/true".to_vec(), tag.as_bytes().to_vec()])
        .count();
    for v in &mine {
        assert_honest_argv(v, &tag);
    }
    let stop = stop_of(&lines);
    eprintln!(
        "netlink sequential: 1000 execs, {} announced, {with_argv} with full argv; stop: {stop}",
        delivered.len()
    );
    assert!(delivered.len() as f64 >= 1000.0 * NETLINK_DELIVERED_MIN);
    assert!(with_argv as f64 >= 1000.0 * NETLINK_ARGV_MIN);
}

#[test]
fn netlink_marks_incomplete_when_process_already_exited() {
    if skip_unless_root("netlink_marks_incomplete") {
        return;
    }
    // The reading thread waits 1.5 s before its first read: by then every
    // process below is gone (reaped), so /proc has nothing to offer.
    let m = start_source("netlink", &["--debug-pause-reader-ms", "1500"]);
    let pids = sequential(20, &unique_tag("nl-gone"));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let mine = execs_of(&lines, &pids);
    assert_eq!(mine.len(), 20, "every exec is still announced");
    for v in &mine {
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
        // The parent is known from the fork event, without /proc.
        assert_eq!(v["ppid"], std::process::id(), "{v}");
    }
    assert!(stop_of(&lines)["too_late"].as_u64().unwrap() >= 20);
    let loss: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "loss" && v["place"] == "too_late")
        .collect();
    assert!(!loss.is_empty(), "too_late is reported in a loss event");
}

#[test]
fn procfs_sequential_loop_unprivileged() {
    if skip_unless_root("procfs_sequential_loop") {
        return;
    }
    let bin = nobody_binary();
    let tag = unique_tag("pf-seq");
    let m = start_as_nobody(&bin, &["--source", "procfs", "--format", "jsonl"]);
    let pids = sequential(1000, &tag);
    thread::sleep(Duration::from_millis(300));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let seen = execs_of(&lines, &pids).len();
    let with_argv = execs_with_tag(&lines, &tag).len();
    // Never a wrong argv: not even the parent's, from before the exec.
    for v in execs_of(&lines, &pids) {
        assert_honest_argv(v, &tag);
    }
    let stop = stop_of(&lines);
    eprintln!(
        "procfs sequential (as nobody): 1000 execs, {seen} seen, {with_argv} with full argv; stop: {stop}"
    );
    assert!(with_argv as f64 >= 1000.0 * PROCFS_ARGV_MIN);
}

/// A long enough root process: `sh` stays (it has more to do after sleep).
fn root_shell(script: &str, tag: &str) -> std::process::Child {
    Command::new("/bin/sh")
        .args(["-c", script, tag])
        .spawn()
        .unwrap()
}

/// Runs root `sh -c script tag` to its end under procfs run as nobody;
/// returns what procwatch wrote and the shell's pid.
fn root_shell_under_nobody_procfs(script: &str, tag: &str) -> (Vec<Value>, u32) {
    let bin = nobody_binary();
    let m = start_as_nobody(&bin, &["--source", "procfs", "--format", "jsonl"]);
    let mut c = root_shell(script, tag);
    c.wait().unwrap();
    let done = m.stop();
    done.assert_clean_exit();
    (done.json_lines(), c.id())
}

#[test]
fn procfs_unprivileged_sees_root_process() {
    if skip_unless_root("procfs_sees_root") {
        return;
    }
    let tag = unique_tag("pf-root");
    let (lines, pid) = root_shell_under_nobody_procfs("sleep 0.5; :", &tag);
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
    assert_eq!(ev["pid"], pid);
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
}

#[test]
fn procfs_exec_without_fork() {
    if skip_unless_root("procfs_exec_without_fork") {
        return;
    }
    let tag = unique_tag("pf-nofork");
    // sh shows itself first, then replaces itself by sleep: same pid.
    let secs = format!("1.{}", std::process::id());
    let (lines, pid) =
        root_shell_under_nobody_procfs(&format!("sleep 0.4; exec sleep {secs}"), &tag);
    let mine: Vec<&Value> = execs(&lines).filter(|v| v["pid"] == pid).collect();
    let argvs: Vec<Vec<Vec<u8>>> = mine.iter().map(|v| argv_bytes(v)).collect();
    assert_eq!(mine.len(), 2, "{argvs:?}");
    assert_eq!(argvs[0].last().unwrap(), tag.as_bytes());
    assert_eq!(argvs[1], vec![b"sleep".to_vec(), secs.into_bytes()]);
    assert_eq!(mine[0]["process_start"], mine[1]["process_start"]);
    assert_ne!(mine[0]["exec_id"], mine[1]["exec_id"]);
}

/// Forks a `sh` whose pid is `want`, by setting the kernel's last pid just
/// below it. Other processes on the host may take the pid first; retried.
fn spawn_with_pid(want: u32, script: &str, tag: &str) -> Option<std::process::Child> {
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).ok()?;
        let c = root_shell(script, tag);
        if c.id() == want {
            return Some(c);
        }
        let mut c = c;
        c.kill().ok();
        c.wait().ok();
    }
    None
}

#[test]
fn procfs_reused_pid_is_a_new_process() {
    if skip_unless_root("procfs_reused_pid") {
        return;
    }
    let bin = nobody_binary();
    let m = start_as_nobody(&bin, &["--source", "procfs", "--format", "jsonl"]);
    let (tag1, tag2) = (unique_tag("pf-reuse1"), unique_tag("pf-reuse2"));
    let mut first = root_shell("sleep 0.4; :", &tag1);
    let pid = first.id();
    first.wait().unwrap();
    let Some(mut second) = spawn_with_pid(pid, "sleep 0.4; :", &tag2) else {
        m.stop();
        eprintln!("SKIPPED procfs_reused_pid: could not get pid {pid} again on this busy host");
        return;
    };
    second.wait().unwrap();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let (a, b) = (execs_with_tag(&lines, &tag1), execs_with_tag(&lines, &tag2));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a[0]["pid"], b[0]["pid"]);
    assert_ne!(a[0]["process_start"], b[0]["process_start"]);
    assert_ne!(a[0]["exec_id"], b[0]["exec_id"]);
}

#[test]
fn auto_falls_back_when_ebpf_is_forbidden() {
    if skip_unless_root("auto_fallback") {
        return;
    }
    let m = Monitor::start_cmd(
        Command::new(PROCWATCH)
            .args(["--format", "jsonl"])
            .env("PROCWATCH_DISABLE_EBPF", "1"),
    );
    let tag = unique_tag("auto");
    let mut c = root_shell("sleep 0.2; :", &tag);
    c.wait().unwrap();
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

#[test]
fn bad_input_setproctitle_zombies_kernel_threads() {
    if skip_unless_root("bad_input") {
        return;
    }
    let m = start_source("procfs", &["--interval", "0.02"]);
    let tag = unique_tag("bad");
    // Rewrites its own argv area after a while, without exec'ing; then it
    // leaves a zombie child behind for a while (the shell does not reap
    // a background child before it execs sleep).
    let renamed = format!("renamed-{tag}");
    let mut perl = Command::new("perl")
        .args([
            "-e",
            "select(undef, undef, undef, 0.3); $0 = $ARGV[1]; select(undef, undef, undef, 0.5)",
            &tag,
            &renamed,
        ])
        .spawn()
        .unwrap();
    let mut zombie_maker = root_shell("/bin/true & exec sleep 0.6", &tag);
    perl.wait().unwrap();
    zombie_maker.wait().unwrap();
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let perl_events: Vec<&Value> = execs(&lines).filter(|v| v["pid"] == perl.id()).collect();
    // The rename is not an exec: reported once, as it was when seen.
    assert_eq!(perl_events.len(), 1, "{perl_events:?}");
    let argv = argv_bytes(perl_events[0]);
    assert!(
        argv.iter().any(|a| a == tag.as_bytes()) || argv.iter().any(|a| a.starts_with(b"renamed-")),
        "{argv:?}"
    );
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

#[test]
fn netlink_reports_exits() {
    if skip_unless_root("netlink_reports_exits") {
        return;
    }
    let m = start_source("netlink", &["--exits"]);
    let tag = unique_tag("nl-exit");
    let mut c = root_shell("sleep 0.2; exit 3", &tag);
    c.wait().unwrap();
    thread::sleep(Duration::from_millis(200));
    let done = m.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let exec = execs_with_tag(&lines, &tag);
    assert_eq!(exec.len(), 1);
    let exits: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "exit" && v["pid"] == c.id())
        .collect();
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(exits[0]["exit_code"], 3);
    assert_eq!(exits[0]["exec_id"], exec[0]["exec_id"]);
    assert_eq!(exits[0]["comm"], "sh");
}
