//! Helpers for the output tests: a procwatch run whose stderr is
//! collected, waiting for a condition, reading back an output file.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{PROCWATCH, collect};

/// Generous: the machine is shared and slow, but a refused path must never
/// reach the attach (seconds) or hang (a FIFO).
pub const LIMIT: Duration = Duration::from_secs(30);

pub struct Ended {
    pub status: ExitStatus,
    pub stderr: String,
}

/// A procwatch whose stderr is collected; stdout is discarded.
pub struct Running {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    reader: thread::JoinHandle<()>,
}

impl Running {
    pub fn start(args: &[&str]) -> Running {
        let mut child = Command::new(PROCWATCH)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn procwatch");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let reader = collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
        Running {
            child,
            stderr,
            reader,
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill with a pid we own.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the exit; kills it and fails after [`LIMIT`].
    pub fn wait(mut self) -> Ended {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "procwatch did not end within {LIMIT:?}; stderr: {}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = Arc::clone(&self.stderr);
        self.reader.join().unwrap();
        let stderr = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
        Ended { status, stderr }
    }
}

/// Waits until `cond` holds, failing after [`LIMIT`] with `what`.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of the file at `p` that mention `tag`.
pub fn lines_with(p: &Path, tag: &str) -> usize {
    read(p).lines().filter(|l| l.contains(tag)).count()
}

pub fn read(p: &Path) -> String {
    String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned()
}
