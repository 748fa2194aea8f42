//! The hijackable check without filesystem I/O on the writer thread.
//!
//! A cache hit for the binary, keyed by the kernel's identity of the
//! executed file, is answered on the writer with no syscall. Everything
//! else (an `lstat` of a script, a walk of a path a user controls) runs on
//! a checker thread; the writer waits for it at most [`WAIT`]. A verdict not
//! ready by then is null with `hijack_pending` in `incomplete` (its walk
//! still fills the cache for the next exec). A thread whose check has not
//! returned after [`STUCK_AFTER`] (a FUSE server holding a `lookup`) is
//! abandoned and replaced, at most [`MAX_STUCK`] at once; meanwhile execs
//! that need I/O are not held up at all.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::enrich::hijack::HijackChecker;
use crate::event::ExecEvent;

/// Longest the writer waits for a check that needs I/O. A local walk takes
/// microseconds; this only bounds a slow or hostile filesystem (and a
/// scheduler delay on a loaded host).
pub const WAIT: Duration = Duration::from_millis(250);
/// A check still running this long is given up, and its thread with it.
pub const STUCK_AFTER: Duration = Duration::from_secs(2);
/// Checker threads that may be stuck in a filesystem at once.
pub const MAX_STUCK: usize = 4;
/// The field name used in `incomplete`.
const FIELD: &str = "hijackable";

struct Worker {
    jobs: Sender<(u64, Box<ExecEvent>)>,
    /// The checked copies of the events sent.
    results: Receiver<(u64, Box<ExecEvent>)>,
    /// Since when it runs a check, if it does.
    busy: Arc<Mutex<Option<Instant>>>,
    abandoned: Arc<AtomicBool>,
}

/// The writer's handle: a checker for cache hits and one checker thread.
pub struct HijackService {
    checker: HijackChecker,
    worker: Option<Worker>,
    stuck: Arc<AtomicUsize>,
    next: u64,
}

impl Default for HijackService {
    fn default() -> Self {
        Self::new()
    }
}

impl HijackService {
    pub fn new() -> Self {
        HijackService {
            checker: HijackChecker::new(),
            worker: None,
            stuck: Arc::default(),
            next: 0,
        }
    }

    /// Fills `ev.hijackable` as [`HijackChecker::check`] would, or leaves it
    /// empty with `hijack_pending` in `incomplete` when the filesystem did
    /// not answer in time.
    pub fn check(&mut self, ev: &mut ExecEvent) {
        if self.checker.check_cached(ev) {
            return;
        }
        if let Err(why) = self.run_checked(ev) {
            ev.hijackable = Vec::new();
            ev.mark_incomplete(FIELD, format!("hijack_pending: {why}"));
        }
    }

    fn run_checked(&mut self, ev: &mut ExecEvent) -> Result<(), String> {
        self.reap();
        let w = self.worker()?;
        if w.busy.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Err(
                "the file check before this one has not finished (slow or hostile filesystem)"
                    .into(),
            );
        }
        let id = self.next;
        self.next += 1;
        let job = Box::new(check_input(ev));
        let w = self.worker.as_ref().expect("just ensured");
        if w.jobs.send((id, job)).is_err() {
            self.worker = None;
            return Err("the checker thread is gone".into());
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match w.results.recv_timeout(left) {
                // A late answer to an earlier exec: its walk filled the cache.
                Ok((got, _)) if got != id => continue,
                Ok((_, mut checked)) => {
                    ev.hijackable = std::mem::take(&mut checked.hijackable);
                    for i in checked.incomplete.drain(..).filter(|i| i.field == FIELD) {
                        ev.mark_incomplete(i.field, i.reason);
                    }
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("the file check took longer than {WAIT:?}"));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.worker = None;
                    return Err("the checker thread is gone".into());
                }
            }
        }
    }

    /// Gives up a thread stuck in a check for too long.
    fn reap(&mut self) {
        let Some(w) = &self.worker else { return };
        let since = *w.busy.lock().unwrap_or_else(|e| e.into_inner());
        if since.is_some_and(|t| t.elapsed() > STUCK_AFTER)
            && !w.abandoned.swap(true, Ordering::SeqCst)
        {
            self.stuck.fetch_add(1, Ordering::SeqCst);
            self.worker = None;
        }
    }

    /// The checker thread, started if needed and allowed.
    fn worker(&mut self) -> Result<&Worker, String> {
        if self.worker.is_none() {
            let stuck = self.stuck.load(Ordering::SeqCst);
            if stuck >= MAX_STUCK {
                return Err(format!("{stuck} checker threads are stuck in a filesystem"));
            }
            self.worker = Some(
                self.spawn()
                    .map_err(|e| format!("no checker thread: {e}"))?,
            );
        }
        Ok(self.worker.as_ref().expect("just set"))
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<(u64, Box<ExecEvent>)>();
        let (res_tx, results) = mpsc::channel();
        let busy = Arc::new(Mutex::new(None));
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut checker = self.checker.sharing();
        let (b, a, stuck) = (
            Arc::clone(&busy),
            Arc::clone(&abandoned),
            Arc::clone(&self.stuck),
        );
        thread::Builder::new()
            .name("procwatch-hijack".into())
            .spawn(move || {
                // Ends when the writer drops the sender, or after being
                // abandoned (counted out of `stuck` once back).
                for (id, mut ev) in job_rx {
                    *b.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                    checker.check(&mut ev);
                    *b.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    if a.load(Ordering::SeqCst) {
                        stuck.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                    if res_tx.send((id, ev)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Worker {
            jobs,
            results,
            busy,
            abandoned,
        })
    }
}

/// What the check reads of an exec: its files, command line and
/// privileges (not its names, parent or hash).
fn check_input(ev: &ExecEvent) -> ExecEvent {
    let mut c = ExecEvent::new(ev.time, ev.pid, ev.ppid, String::new());
    c.exe.clone_from(&ev.exe);
    c.exe_truncated = ev.exe_truncated;
    c.filename.clone_from(&ev.filename);
    c.interpreter.clone_from(&ev.interpreter);
    c.argv.clone_from(&ev.argv);
    c.cwd.clone_from(&ev.cwd);
    c.privileges.clone_from(&ev.privileges);
    c.exe_dev_ino = ev.exe_dev_ino;
    c.exe_stamp = ev.exe_stamp;
    c.ns.user_ns = ev.ns.user_ns;
    c.ns.exe_other_mnt_ns = ev.ns.exe_other_mnt_ns;
    c.ns.namespaces = ev.ns.namespaces;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FileStamp;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn root_exec(exe: &[u8], argv: &[&[u8]]) -> ExecEvent {
        crate::enrich::hijack::tests::exec(0, 0, exe, argv)
    }

    #[test]
    fn same_verdict_as_the_checker_and_no_io_on_a_stamped_hit() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("job.sh");
        fs::write(&script, b"#!/bin/sh\ntrue\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o777)).unwrap();
        let s = script.as_os_str().as_bytes();
        let mut ev = root_exec(b"/bin/sh", &[b"/bin/sh", s]);
        ev.interpreter = Some(b"/bin/sh".to_vec());
        ev.filename = Some(s.to_vec());
        let mut svc = HijackService::new();
        let mut via_thread = ev.clone();
        svc.check(&mut via_thread);
        assert!(
            via_thread.incomplete.is_empty(),
            "{:?}",
            via_thread.incomplete
        );
        let mut inline = ev.clone();
        HijackChecker::new().check(&mut inline);
        assert_eq!(via_thread.hijackable, inline.hijackable);
        assert!(
            via_thread
                .hijackable
                .iter()
                .any(|h| h.writable == s && h.writers.iter().any(|w| w == "others")),
            "{:?}",
            via_thread.hijackable
        );

        // The binary with the kernel's identity: walked once on the checker
        // thread, then answered from the cache on this one.
        let exe = fs::canonicalize("/bin/true").unwrap();
        let m = fs::metadata(&exe).unwrap();
        let mut bin = root_exec(exe.as_os_str().as_bytes(), &[b"true"]);
        bin.exe_dev_ino = Some((m.dev(), m.ino()));
        bin.exe_stamp = Some(FileStamp::of(&m));
        svc.check(&mut bin.clone());
        let walks = svc.checker.walks();
        let mut again = bin.clone();
        assert!(svc.checker.check_cached(&mut again), "a hit needs no I/O");
        svc.check(&mut again);
        assert_eq!(svc.checker.walks(), walks);
        assert!(again.incomplete.is_empty());
    }
}
