//! Lifecycle and accounting: start and stop events, exit codes, output
//! files, broken pipes, loss reporting, and the error when not permitted.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[root_test("loads eBPF")]
fn start_first_stop_last_and_sigint_is_a_clean_end() {
    let tag = unique_tag("life");
    let mon = Monitor::start(&["--format", "jsonl"]);
    run_ok(Command::new("/bin/true").arg(&tag));
    let out = mon.stop();
    out.assert_clean_exit();
    let lines = out.json_lines();
    let start = &lines[0];
    assert_eq!(start["event"], "start");
    assert_eq!(start["source"], "ebpf");
    assert_eq!(start["attach"], "tp_btf/sched_process_exec");
    assert_eq!(start["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        start["boot_id"],
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap()
            .trim()
    );
    assert_eq!(
        start["hostname"],
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["reason"], "signal");
    assert_eq!(u(stop, "seen"), u(stop, "emitted") + u(stop, "dropped"));
    assert_eq!(
        u(stop, "received"),
        u(stop, "emitted"),
        "everything emitted was read"
    );
    let execs = lines.iter().filter(|l| l["event"] == "exec").count() as u64;
    assert_eq!(u(stop, "written"), execs);
    assert_eq!(execs_with_tag(&lines, &tag).len(), 1);
}

#[root_test("loads eBPF")]
fn duration_ends_the_run_by_itself() {
    let t0 = Instant::now();
    let mon = Monitor::start(&["--format", "jsonl", "--duration", "1"]);
    let out = mon.wait();
    out.assert_clean_exit();
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let lines = out.json_lines();
    assert_eq!(lines.last().unwrap()["reason"], "duration");
}

#[root_test("loads eBPF")]
fn sigterm_is_a_clean_end_too() {
    let mon = Monitor::start(&["--format", "jsonl"]);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(mon.pid() as i32, libc::SIGTERM) };
    let out = mon.wait();
    out.assert_clean_exit();
    assert_eq!(out.json_lines().last().unwrap()["event"], "stop");
}

#[root_test("loads eBPF")]
fn broken_pipe_is_a_clean_end() {
    let mut child = Command::new(PROCWATCH)
        .args(["--format", "text"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap(); // the start line has begun: attached
    drop(stdout); // like `procwatch | head -1`
    let tag = unique_tag("pipe");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        run_ok(Command::new("/bin/true").arg(&tag));
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "procwatch did not notice the broken pipe"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "broken pipe must exit 0, got {status}; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[root_test("loads eBPF")]
fn output_file_is_private_and_csv_header_written_once() {
    let dir = open_tempdir();
    let path = dir.path().join("log.csv");
    let p = path.to_str().unwrap();
    let mut tags = Vec::new();
    for round in 0..2 {
        let tag = unique_tag(&format!("file{round}"));
        let mon = Monitor::start(&["--format", "csv", "-o", p]);
        run_ok(Command::new("/bin/true").arg(&tag));
        let out = mon.stop();
        out.assert_clean_exit();
        assert!(out.stdout.is_empty(), "with -o nothing goes to stdout");
        tags.push(tag);
    }
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a new log is private to its owner");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.matches("CommandLine,Time,Executable,Parent PID,PID,User,Privileges")
            .count(),
        1
    );
    assert!(text.starts_with("CommandLine,"));
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    for tag in &tags {
        assert_eq!(
            rows.iter().filter(|r| r[0].contains(tag.as_str())).count(),
            1,
            "appended, not replaced"
        );
    }
}

#[root_test("loads eBPF")]
fn kernel_drops_are_counted_and_reported_in_band() {
    let tag = unique_tag("loss");
    // A one-page ring and a reader that sleeps: the ring must overflow.
    let mut mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--ring-size",
        "4K",
        "--debug-pause-reader-ms",
        "1500",
    ]);
    const N: usize = 300;
    for i in 0..N {
        run_ok(Command::new("/bin/true").arg(&tag).arg(i.to_string()));
    }
    // The reader wakes up and reports the loss while still running.
    mon.wait_for("\"loss\"", |v| v["event"] == "loss");
    let out = mon.stop();
    out.assert_clean_exit();
    let lines = out.json_lines();
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    let (seen, emitted, dropped) = (u(stop, "seen"), u(stop, "emitted"), u(stop, "dropped"));
    assert_eq!(seen, emitted + dropped, "seen == emitted + dropped");
    assert!(dropped > 0, "a 4 KiB ring cannot hold {N} events");
    assert_eq!(u(stop, "received"), emitted);
    let losses: Vec<&Value> = lines.iter().filter(|l| l["event"] == "loss").collect();
    assert!(!losses.is_empty(), "loss events appear in-band");
    let reported = |place: &str| -> u64 {
        losses
            .iter()
            .filter(|l| l["place"] == place)
            .map(|l| u(l, "dropped"))
            .sum()
    };
    assert_eq!(reported("kernel"), dropped, "every exec drop is reported");
    // Fork and exit records share the ring: their drops are reported too.
    assert_eq!(reported("kernel_fork_exit"), u(stop, "aux_dropped"));
    assert_eq!(reported("queue"), 0);
    // The first loss event comes before the stop line, not only at exit.
    let first_loss = lines.iter().position(|l| l["event"] == "loss").unwrap();
    assert!(first_loss < lines.len() - 1);
    let tagged = execs_with_tag(&lines, &tag).len();
    assert!(tagged < N, "some tagged execs were dropped");
    let execs = lines.iter().filter(|l| l["event"] == "exec").count() as u64;
    assert_eq!(execs, emitted, "every emitted event was written");
}

#[root_test("drops to nobody with setpriv")]
fn unprivileged_run_fails_with_a_clear_message() {
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            PROCWATCH,
            // auto would fall back to an unprivileged source.
            "--source",
            "ebpf",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "cannot attach → exit 3; stderr: {err}"
    );
    assert!(err.contains("root"), "says what to do: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(PROCWATCH)
        .args(["--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(PROCWATCH)
        .args(["--ring-size", "5000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
}

#[root_test("loads eBPF")]
fn a_slow_sink_overflows_the_queue_and_it_is_counted() {
    // Nobody reads stdout for a while: the pipe fills, the writer blocks,
    // and the reader must keep draining the kernel into a small queue.
    let mut child = Command::new(PROCWATCH)
        .args(["--format", "jsonl", "--queue-len", "64", "--no-hash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap(); // attached
    let tag = unique_tag("slow");
    // Long argv makes each line big, so the 64 KiB pipe fills fast.
    let long = "x".repeat(4000);
    for _ in 0..400 {
        run_ok(Command::new("/bin/true").arg(&tag).arg(&long));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let mut text = first.to_vec();
    text.extend(rest);
    let lines: Vec<Value> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(parse_line)
        .collect();
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    let queue_dropped = u(stop, "queue_dropped");
    assert!(
        queue_dropped > 0,
        "a 64-message queue behind a blocked pipe must overflow: {stop}"
    );
    assert_eq!(u(stop, "dropped"), 0, "the kernel side kept up");
    assert_eq!(
        u(stop, "received"),
        u(stop, "written") + queue_dropped + u(stop, "filtered")
    );
    let reported: u64 = lines
        .iter()
        .filter(|l| l["event"] == "loss" && l["place"] == "queue")
        .map(|l| u(l, "dropped"))
        .sum();
    assert!(
        reported >= queue_dropped,
        "queue losses are reported in-band (fork/exit drops included)"
    );
    assert_eq!(reported, queue_dropped + u(stop, "aux_dropped"));
}

/// Whether `pid` catches `sig` (its bit in `SigCgt` in /proc/<pid>/status).
fn catches(pid: u32, sig: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
}

#[root_test("loads eBPF")]
fn sigint_while_attaching_ends_the_run_cleanly_even_if_inherited_ignored() {
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};

    // A shell's background job starts with SIGINT ignored. procwatch must
    // take the signal over before attaching (which loads and verifies the
    // BPF programs), so a SIGINT sent meanwhile still ends the run, after a
    // start and a stop event.
    let mut cmd = Command::new(PROCWATCH);
    cmd.args(["--format", "jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn procwatch");
    let out = Arc::new(Mutex::new(Vec::new()));
    let reader = collect(child.stdout.take().unwrap(), Arc::clone(&out));
    // SIGINT's handler is installed in two steps (exit on a second signal,
    // then set the stop flag), and SIGTERM's after both: once SIGTERM is
    // caught, SIGINT is fully handled.
    let deadline = Instant::now() + PATIENCE;
    while !(catches(child.id(), libc::SIGINT) && catches(child.id(), libc::SIGTERM)) {
        assert!(Instant::now() < deadline, "procwatch never caught SIGINT");
        std::thread::sleep(Duration::from_millis(1));
    }
    let attached_before_handlers = !out.lock().unwrap().is_empty();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("procwatch ignored a SIGINT sent while it was attaching");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    assert!(
        !attached_before_handlers,
        "SIGINT was only caught once attached: a signal during the attach was lost"
    );
    assert!(status.success(), "{status:?}");
    let out = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = out.lines().map(parse_line).collect();
    assert_eq!(lines.first().unwrap()["event"], "start");
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["reason"], "signal");
}
