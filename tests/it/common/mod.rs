//! Helpers shared by the integration tests: run the real procwatch binary,
//! spawn real processes with unique tags, and read back what it reported.
//!
//! The host is shared and noisy: every assertion looks only at events that
//! carry the test's own tag, or that belong to one of the test's own
//! processes by pid *and* time ([`Exited::owns`]), never by pid alone.
//!
//! # Tests that need root
//!
//! Declare them, and only them, with [`root_test`] and the reason:
//!
//! ```ignore
//! #[root_test("loads eBPF")]
//! fn captures_something() {
//!     // ...
//! }
//! ```
//!
//! That is `#[test]`, `#[ignore = "needs root: loads eBPF"]` and a first
//! [`require_root`] call. A plain `cargo test` then shows them as
//! `ignored, needs root: ...` when not run as root, and runs them as root:
//! before libtest starts, the test binary, if its effective uid is 0,
//! re-executes itself with `--include-ignored` ([`include_root_tests`]).
//! So `#[ignore]` in these files means "needs root" and nothing else.
//! `cargo test -- --ignored` runs only the root tests; forcing them as
//! another user fails them with "run as root". With `CI` set, a run that is
//! not root fails at once instead of ignoring them: CI must run every test.
//!
//! Wait for a condition (procwatch has reported a process, it caught a
//! signal), not for a fixed time: the machine may be loaded far beyond
//! what a sleep assumes, and waiting longer costs nothing when all is well.

use std::ffi::CStr;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use root_test::root_test;
use serde_json::Value;

mod jsonl;
#[cfg(target_os = "linux")]
pub mod output;
/// The checks of every JSONL line against schema/*.json, shared with the
/// sink's unit tests.
#[path = "../../../src/sink/jsonl/schema_check.rs"]
pub mod schema_check;

pub use jsonl::*;

pub const PROCWATCH: &str = env!("CARGO_BIN_EXE_procwatch");

/// How long a test waits for something that takes milliseconds on an idle
/// machine: generous, because it only matters when the test fails anyway.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// True when running as root, which loading eBPF needs.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Fails the calling test unless it runs as root. [`root_test`] calls it
/// first in every root test, which is also ignored when not root (see the
/// module docs), so it fires only when one is forced as another user.
pub fn require_root() {
    assert!(
        is_root(),
        "run as root: this test needs root (eBPF, setpriv, setcap or /proc of other users)"
    );
}

/// Runs before libtest's `main` (from `.init_array`), once per run of the
/// test binary. As root it re-executes the binary with
/// `--include-ignored`, so the root tests, ignored for everyone else, run.
/// glibc passes `argc` and `argv` to these functions.
#[used]
#[unsafe(link_section = ".init_array")]
static INCLUDE_ROOT_TESTS: extern "C" fn(libc::c_int, *const *const libc::c_char) =
    include_root_tests;

extern "C" fn include_root_tests(argc: libc::c_int, argv: *const *const libc::c_char) {
    if !is_root() {
        if std::env::var_os("CI").is_some() {
            eprintln!(
                "CI must run the tests as root (sudo cargo test): the root tests would be ignored"
            );
            std::process::exit(1);
        }
        return;
    }
    if argv.is_null() || argc < 1 {
        return;
    }
    // SAFETY: glibc passes the process's argc/argv, valid for its lifetime.
    let args = unsafe { std::slice::from_raw_parts(argv, argc as usize) };
    let chosen = args.iter().any(|&a| {
        // SAFETY: each argv entry is a NUL-terminated string.
        let a = unsafe { CStr::from_ptr(a) }.to_bytes();
        a == b"--ignored" || a == b"--include-ignored"
    });
    if chosen {
        return;
    }
    let mut again: Vec<*const libc::c_char> = args.to_vec();
    again.push(c"--include-ignored".as_ptr());
    again.push(std::ptr::null());
    // SAFETY: a NUL-terminated array of valid strings.
    unsafe { libc::execv(c"/proc/self/exe".as_ptr(), again.as_ptr()) };
    // Going on would ignore the root tests in a root run: stop instead.
    eprintln!(
        "could not re-run the tests with --include-ignored: {}",
        std::io::Error::last_os_error()
    );
    std::process::exit(1);
}

/// `CLOCK_BOOTTIME` now, in nanoseconds: the clock of the number after the
/// colon in an event's `exec_id`.
pub fn boot_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid, writable timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The boot-time nanoseconds in an event's `exec_id` (`"<pid>:<ns>"`): when
/// the exec happened (eBPF, netlink), or when /proc showed it (procfs).
pub fn exec_ns(ev: &Value) -> u64 {
    let id = ev["exec_id"].as_str().expect("exec_id is a string");
    id.split_once(':')
        .and_then(|(_, ns)| ns.parse().ok())
        .unwrap_or_else(|| panic!("exec_id is not <pid>:<ns>: {id}"))
}

/// A child process of the test, with the boot time just before it was
/// forked. Its pid is its own from then until it is reaped.
pub struct Spawned {
    pub child: Child,
    born_ns: u64,
}

/// A reaped child of the test: its pid and the boot-time window during
/// which nothing else could hold that pid.
#[derive(Debug, Clone, Copy)]
pub struct Exited {
    pub pid: u32,
    pub status: ExitStatus,
    born_ns: u64,
    gone_ns: u64,
}

impl Spawned {
    pub fn spawn(cmd: &mut Command) -> Spawned {
        let born_ns = boot_ns();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        Spawned { child, born_ns }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether `ev` is about this process, which has not been reaped: the
    /// same pid, after it was forked.
    pub fn owns(&self, ev: &Value) -> bool {
        ev["pid"].as_u64() == Some(u64::from(self.pid())) && exec_ns(ev) >= self.born_ns
    }

    /// Writes a line to the child's stdin (spawned as a pipe), so that a
    /// process waiting in `read` goes on: a process kept alive until
    /// procwatch has reported it.
    pub fn release(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin is a pipe");
        writeln!(stdin, "go").expect("write to the child's stdin");
    }

    /// Waits for the child to exit and reaps it. The window closes after
    /// the exit but before the reap, while the zombie still holds the pid:
    /// a process that gets the pid later falls outside it.
    pub fn wait(mut self) -> Exited {
        let pid = self.child.id();
        loop {
            // SAFETY: waitid on our own child, with a zeroed out-struct;
            // WNOWAIT leaves it to be reaped by Child::wait below.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let rc =
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if rc == 0 {
                break;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "waitid: {err}");
        }
        let gone_ns = boot_ns();
        let status = self.child.wait().expect("reap the child");
        Exited {
            pid,
            status,
            born_ns: self.born_ns,
            gone_ns,
        }
    }
}

impl Exited {
    /// Whether `ev` is about this process: the same pid, at a time when the
    /// pid was this process's. A pid on a busy host is reused within
    /// milliseconds (pid_max may be 32768, and tests set ns_last_pid), so
    /// the pid alone would pick up other tests' processes.
    pub fn owns(&self, ev: &Value) -> bool {
        ev["pid"].as_u64() == Some(u64::from(self.pid))
            && (self.born_ns..=self.gone_ns).contains(&exec_ns(ev))
    }
}

/// Forks `cmd` as pid `want`, by setting the kernel's last pid just below
/// it. Another process on the host may take the pid first: the child is
/// then killed and the fork retried, so `cmd` must wait (e.g. in `read` on
/// a piped stdin) before it does anything a test looks for.
pub fn spawn_with_pid(want: u32, cmd: &mut Command) -> Spawned {
    for _ in 0..1000 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string())
            .expect("write ns_last_pid");
        let mut p = Spawned::spawn(cmd);
        if p.pid() == want {
            return p;
        }
        p.child.kill().expect("kill the child on the wrong pid");
        p.child.wait().expect("reap it");
    }
    panic!("could not get pid {want} back through ns_last_pid in 1000 tries");
}

/// Runs `cmd` to its end as a [`Spawned`] child and insists it succeeded.
pub fn run_tracked(cmd: &mut Command) -> Exited {
    let done = Spawned::spawn(cmd).wait();
    assert!(done.status.success(), "{cmd:?} failed: {}", done.status);
    done
}

/// A tag no other process on the host will carry.
pub fn unique_tag(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "pwtest-{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A running procwatch whose stdout and stderr are collected.
pub struct Monitor {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

/// What a finished procwatch left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Copies everything `from` yields into `into`, on a thread of its own.
pub fn collect(
    mut from: impl Read + Send + 'static,
    into: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl Monitor {
    /// Starts procwatch with `args` and waits until it has attached: the
    /// start line (jsonl/text) or the stderr notice (csv) has appeared.
    pub fn start(args: &[&str]) -> Monitor {
        Monitor::start_cmd(Command::new(PROCWATCH).args(args))
    }

    /// Like [`Monitor::start`] for a prepared command (e.g. under setpriv).
    pub fn start_cmd(cmd: &mut Command) -> Monitor {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn procwatch");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        let mut m = Monitor {
            child,
            stdout,
            stderr,
            readers,
        };
        m.wait_attached();
        m
    }

    /// Fails the test at once if procwatch has exited: waiting on would
    /// only turn its error into a timeout.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait procwatch") {
            thread::sleep(Duration::from_millis(100)); // the rest of stderr
            panic!(
                "procwatch exited early with {status}; stderr: {}",
                String::from_utf8_lossy(&self.stderr.lock().unwrap())
            );
        }
    }

    fn wait_attached(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let out = self.stdout.lock().unwrap().clone();
            let err = self.stderr.lock().unwrap().clone();
            let out = String::from_utf8_lossy(&out);
            let err = String::from_utf8_lossy(&err);
            if out.starts_with("{\"") && out.contains('\n')
                || out.starts_with("# procwatch")
                || err.contains("watching execs via")
            {
                return;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "procwatch did not attach in {PATIENCE:?}; stderr: {err}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until procwatch (run with `--format jsonl`) has written an
    /// event on a line containing `needle` for which `pred` holds; returns
    /// it. Lets a test keep its process alive exactly until it was seen.
    pub fn wait_for(&mut self, needle: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        let mut from = 0;
        loop {
            {
                let out = self.stdout.lock().unwrap();
                let end = out.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1);
                for line in out[from.min(end)..end].split(|&c| c == b'\n') {
                    let line = String::from_utf8_lossy(line);
                    if !line.contains(needle) {
                        continue;
                    }
                    let v = parse_line(&line);
                    if pred(&v) {
                        return v;
                    }
                }
                from = end;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "procwatch wrote no matching event for {needle:?} in {PATIENCE:?}; stderr: {}",
                String::from_utf8_lossy(&self.stderr.lock().unwrap())
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until procwatch has written the exec event of a process whose
    /// argv holds `tag`; returns it.
    pub fn wait_for_exec(&mut self, tag: &str) -> Value {
        self.wait_for(tag, |v| {
            !execs_with_tag(std::slice::from_ref(v), tag).is_empty()
        })
    }

    /// Sends SIGINT and collects everything procwatch wrote.
    pub fn stop(self) -> Finished {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        self.wait()
    }

    /// Waits for procwatch to exit by itself (e.g. --duration).
    pub fn wait(mut self) -> Finished {
        let status = self.child.wait().expect("wait procwatch");
        for r in self.readers {
            r.join().unwrap();
        }
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        let stderr = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Finished {
    /// Parses stdout as JSON lines; every line must be valid JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        json_lines(std::str::from_utf8(&self.stdout).expect("JSON output is UTF-8"))
    }

    pub fn assert_clean_exit(&self) {
        assert!(
            self.status.success(),
            "procwatch exited with {}; stderr:\n{}",
            self.status,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "procwatch panicked:\n{}",
            self.stderr
        );
    }
}

/// `std::fs::canonicalize` as bytes.
pub fn canonical(path: &str) -> String {
    std::fs::canonicalize(path)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

/// A scratch directory that other users can traverse (for setuid/nobody tests).
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("procwatch-test-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Copies /bin/true into `dir` as `name`, owned by the test's user, with
/// `mode`; returns its path.
pub fn copy_true(dir: &std::path::Path, name: &str, mode: u32) -> String {
    copy_program("/bin/true", dir, name, mode)
}

/// Copies the program `from` into `dir` as `name`, owned by the test's
/// user, with `mode`; returns its path.
pub fn copy_program(from: &str, dir: &std::path::Path, name: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::copy(from, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs a command to completion and insists that it succeeded.
pub fn run_ok(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed: {st}");
}

/// The final `exe_sha256` of exec `ev` and why it is null: from its own
/// line, or, when that says `hash_pending`, from the one `hash` event with
/// its `exec_id` (which must exist).
pub fn final_sha256(lines: &[Value], ev: &Value) -> (Value, Value) {
    let why = &ev["incomplete_reasons"]["exe_sha256"];
    if why.as_str() != Some("hash_pending") {
        return (ev["exe_sha256"].clone(), why.clone());
    }
    let late: Vec<&Value> = lines
        .iter()
        .filter(|v| v["event"] == "hash" && v["exec_id"] == ev["exec_id"])
        .collect();
    assert_eq!(late.len(), 1, "one hash event for {}", ev["exec_id"]);
    assert_eq!(late[0]["pid"], ev["pid"]);
    (late[0]["exe_sha256"].clone(), late[0]["reason"].clone())
}

impl Monitor {
    /// Waits up to `limit` for `needle` to appear on stdout at or after
    /// byte `from`; returns when it was seen (polled every 2 ms) and where
    /// the search may resume.
    pub fn wait_for_text(
        &self,
        needle: &str,
        from: usize,
        limit: Duration,
    ) -> Option<(Instant, usize)> {
        let deadline = Instant::now() + limit;
        let mut at = from;
        loop {
            {
                let out = self.stdout.lock().unwrap();
                if let Some(i) = out[at.min(out.len())..]
                    .windows(needle.len())
                    .position(|w| w == needle.as_bytes())
                {
                    return Some((Instant::now(), at + i + needle.len()));
                }
                at = out.len().saturating_sub(needle.len()).max(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends SIGTERM and collects everything procwatch wrote, with how long
    /// it took to exit.
    pub fn terminate(self) -> (Finished, Duration) {
        let t = Instant::now();
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let done = self.wait();
        (done, t.elapsed())
    }

    /// CPU time (user + system) procwatch has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised comm: utime and stime are the 12th
        // and 13th of them, in clock ticks.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }
}

/// The lowercase hex SHA-256 of a file, by `sha256sum`.
pub fn sha256_of(path: &str) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success(), "sha256sum {path}");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}
