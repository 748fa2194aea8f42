//! Helpers shared by the integration tests: run the real procwatch binary,
//! spawn real processes with unique tags, and read back what it reported.
//!
//! The host is shared and noisy: every assertion looks only at events that
//! carry the test's own tag.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const PROCWATCH: &str = env!("CARGO_BIN_EXE_procwatch");

/// True when running as root, which loading eBPF needs.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true (and says why on stderr) when the test must be skipped
/// because it is not running as root. CI runs as root, so there it runs.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI must run as root, but euid is not 0"
    );
    eprintln!("SKIPPED {test}: needs root to load the eBPF program (run the tests as root)");
    true
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
        let m = Monitor {
            child,
            stdout,
            stderr,
            readers,
        };
        m.wait_attached();
        m
    }

    fn wait_attached(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
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
            assert!(
                Instant::now() < deadline,
                "procwatch did not attach in 30 s; stderr: {err}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
        let text = std::str::from_utf8(&self.stdout).expect("JSON output is UTF-8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
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

/// The exec events whose argv contains `tag` (as a whole argument).
pub fn execs_with_tag<'a>(lines: &'a [Value], tag: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["event"] == "exec")
        .filter(|v| {
            v["argv"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(tag)))
        })
        .collect()
}

/// The argv of an exec event as raw bytes, decoding the documented base64
/// form of non-UTF-8 arguments.
pub fn argv_bytes(ev: &Value) -> Vec<Vec<u8>> {
    ev["argv"]
        .as_array()
        .expect("argv is an array")
        .iter()
        .map(json_bytes)
        .collect()
}

/// Decodes a byte-string field: a JSON string, or `{"base64": ...}`.
pub fn json_bytes(v: &Value) -> Vec<u8> {
    use base64::Engine;
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => base64::engine::general_purpose::STANDARD
            .decode(o["base64"].as_str().expect("base64 member"))
            .expect("valid base64"),
        other => panic!("not a byte-string field: {other}"),
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
    /// Everything procwatch has written to stdout so far.
    pub fn stdout_so_far(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    /// Waits up to `limit` for `needle` to appear on stdout at or after
    /// byte `from`; returns when it was seen (polled every 2 ms) and where
    /// the search may resume.
    pub fn wait_for(&self, needle: &str, from: usize, limit: Duration) -> Option<(Instant, usize)> {
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
