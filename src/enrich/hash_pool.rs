//! Hashing off the writer thread: an exec is never held back by its hash.
//!
//! The writer answers from the cache when the source's stamp is known there
//! (no syscall); otherwise it queues the file for a hasher thread, writes
//! the exec at once with `exe_sha256` null (`hash_pending`), and writes the
//! result later as a `hash` event. Two budgets bound what a hostile user can
//! make procwatch spend:
//!
//! - bytes per second (a token bucket): an exec beyond it is not hashed
//!   (`hash_budget`), so rewriting a large binary between execs cannot keep
//!   a CPU busy or build a backlog;
//! - time per file: a read that makes progress gives up after the timeout;
//!   a read that never returns (a FUSE server that holds it) is abandoned by
//!   the writer's watchdog: its exec gets its `hash` event with the reason,
//!   and a fresh thread takes over. At most [`MAX_STUCK`] threads may be
//!   stuck at once; beyond that nothing is hashed until one returns. A stuck
//!   thread is never joined, so it cannot hold up exit.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::enrich::hash::{ExeHasher, FIELD, HashCache, HashTarget, Hashed};
use crate::event::{ExecEvent, HashInfo};
use crate::linux::file_key::FileKey;

/// Default bytes per second the hasher may read: a few large binaries a
/// second, a small share of one CPU with SHA-NI.
pub const DEFAULT_RATE: u64 = 32 << 20;
/// Hasher threads that may be stuck in a filesystem at once.
pub const MAX_STUCK: usize = 4;
/// Execs waiting for a hash at most; more are not hashed (`hash_budget`).
const MAX_PENDING: usize = 4096;
/// A thread is declared stuck this long after its file's own timeout: the
/// read loop checks the timeout between reads, so only a read that never
/// returns gets here.
const STUCK_GRACE: Duration = Duration::from_secs(1);

/// The hasher's settings (`--hash-max-size`, `--hash-rate`,
/// `--hash-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashOptions {
    pub max_size: u64,
    /// Bytes per second read at most (averaged by a bucket of
    /// `max(max_size, rate)` bytes).
    pub rate: u64,
    /// Longest one file may take.
    pub timeout: Duration,
}

struct Job {
    id: u64,
    target: HashTarget,
}

struct Done {
    id: u64,
    result: Result<Hashed, String>,
}

#[derive(Default)]
struct Queues {
    jobs: VecDeque<Job>,
    done: Vec<Done>,
    shutdown: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    work: Condvar,
    /// Abandoned threads still inside a read.
    stuck: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One hasher thread as the watchdog sees it.
struct Slot {
    /// The job it is on, and since when.
    busy: Mutex<Option<(u64, Instant)>>,
    abandoned: AtomicBool,
}

/// Execs waiting for one file's hash.
struct Pending {
    execs: Vec<(String, u32)>,
    key: Option<FileKey>,
    /// Bytes charged at submission (the stamp's size), or none yet.
    charged: bool,
}

/// The writer's handle on the hasher threads. Dropping it lets idle
/// threads end; a stuck one ends when its read returns.
pub struct HashService {
    opts: HashOptions,
    cache: HashCache,
    shared: Arc<Shared>,
    worker: Option<Arc<Slot>>,
    next_job: u64,
    pending: HashMap<u64, Pending>,
    pending_execs: usize,
    by_key: HashMap<FileKey, u64>,
    /// The byte budget's bucket, and when it was last filled.
    tokens: f64,
    filled: Instant,
}

impl HashService {
    /// A service with one hasher thread (started on first use).
    pub fn new(opts: HashOptions) -> Self {
        HashService {
            opts,
            cache: HashCache::default(),
            shared: Arc::new(Shared {
                queues: Mutex::new(Queues::default()),
                work: Condvar::new(),
                stuck: AtomicUsize::new(0),
            }),
            worker: None,
            next_job: 0,
            pending: HashMap::new(),
            pending_execs: 0,
            by_key: HashMap::new(),
            tokens: bucket_size(&opts),
            filled: Instant::now(),
        }
    }

    /// Execs whose hash is still to come.
    pub fn pending(&self) -> usize {
        self.pending_execs
    }

    /// Sets `ev.exe_sha256` from the cache, or queues the file and marks
    /// the field `hash_pending` (a `hash` event follows from [`poll`]), or
    /// says why it will not be hashed.
    ///
    /// [`poll`]: HashService::poll
    pub fn submit(&mut self, ev: &mut ExecEvent) {
        ev.exe_sha256 = None;
        let key = FileKey::of_exe(ev);
        if let Some(h) = key.and_then(|k| self.cache.get(&k)) {
            ev.exe_sha256 = Some(h);
            return;
        }
        let target = match HashTarget::of(ev) {
            Ok(t) => t,
            Err(why) => return ev.mark_incomplete(FIELD, why),
        };
        if let Some(k) = key
            && k.stamp.size > self.opts.max_size
        {
            return ev.mark_incomplete(FIELD, format!("larger than {} bytes", self.opts.max_size));
        }
        let exec = (ev.exec_id.clone(), ev.pid);
        // The same file already queued: one read answers both.
        if let Some(id) = key.and_then(|k| self.by_key.get(&k))
            && let Some(p) = self.pending.get_mut(id)
            && self.pending_execs < MAX_PENDING
        {
            p.execs.push(exec);
            self.pending_execs += 1;
            return ev.mark_incomplete(FIELD, "hash_pending");
        }
        if let Err(why) = self.admit(key) {
            return ev.mark_incomplete(FIELD, format!("hash_budget: {why}"));
        }
        let id = self.next_job;
        self.next_job += 1;
        self.pending.insert(
            id,
            Pending {
                execs: vec![exec],
                key,
                charged: key.is_some(),
            },
        );
        self.pending_execs += 1;
        if let Some(k) = key {
            self.by_key.insert(k, id);
        }
        self.shared.lock().jobs.push_back(Job { id, target });
        self.shared.work.notify_one();
        ev.mark_incomplete(FIELD, "hash_pending");
    }

    /// Whether a new file may be queued now; charges its size if known.
    fn admit(&mut self, key: Option<FileKey>) -> Result<(), String> {
        if self.pending_execs >= MAX_PENDING {
            return Err(format!("{MAX_PENDING} execs already wait for a hash"));
        }
        self.ensure_worker();
        if self.worker.is_none() {
            return Err(format!(
                "{} hasher threads are stuck in a filesystem",
                self.shared.stuck.load(Ordering::SeqCst)
            ));
        }
        self.refill();
        let cost = key.map_or(0.0, |k| k.stamp.size as f64);
        if self.tokens < cost || self.tokens < 0.0 {
            return Err(format!("over {} bytes per second", self.opts.rate));
        }
        self.tokens -= cost;
        Ok(())
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let add = now.duration_since(self.filled).as_secs_f64() * self.opts.rate as f64;
        self.tokens = (self.tokens + add).min(bucket_size(&self.opts));
        self.filled = now;
    }

    /// Starts a hasher thread if there is none and not too many are stuck.
    fn ensure_worker(&mut self) {
        if self.worker.is_some() || self.shared.stuck.load(Ordering::SeqCst) >= MAX_STUCK {
            return;
        }
        let slot = Arc::new(Slot {
            busy: Mutex::new(None),
            abandoned: AtomicBool::new(false),
        });
        let (shared, s, cache, opts) = (
            Arc::clone(&self.shared),
            Arc::clone(&slot),
            self.cache.clone(),
            self.opts,
        );
        let spawned = thread::Builder::new()
            .name("procwatch-hash".into())
            .spawn(move || work(&shared, &s, cache, opts));
        match spawned {
            Ok(_) => self.worker = Some(slot),
            Err(e) => eprintln!("procwatch: cannot start a hasher thread: {e}"),
        }
    }

    /// Late results: finished hashes, and files given up on (stuck reads,
    /// no thread left). Appends one `hash` event per waiting exec.
    pub fn poll(&mut self, out: &mut Vec<HashInfo>) {
        let done = std::mem::take(&mut self.shared.lock().done);
        for d in done {
            if let Some(bytes) = d.result.as_ref().ok().map(|h| h.bytes_read)
                && self.pending.get(&d.id).is_some_and(|p| !p.charged)
            {
                // Unknown size at submission: charged now, so the bucket
                // may go below zero and holds back the next files.
                self.tokens -= bytes as f64;
            }
            self.answer(d.id, d.result.map(|h| h.hex), out);
        }
        self.watchdog(out);
    }

    /// Abandons a thread whose read has not returned in time, and answers
    /// queued jobs when no thread is left to take them.
    fn watchdog(&mut self, out: &mut Vec<HashInfo>) {
        if let Some(slot) = &self.worker {
            let busy = *slot.busy.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((id, since)) = busy
                && since.elapsed() > self.opts.timeout + STUCK_GRACE
                && !slot.abandoned.swap(true, Ordering::SeqCst)
            {
                self.shared.stuck.fetch_add(1, Ordering::SeqCst);
                self.worker = None;
                let why = format!(
                    "hash_budget: a read did not return within {:?} (slow or hostile filesystem)",
                    self.opts.timeout
                );
                self.answer(id, Err(why), out);
            }
        }
        self.ensure_worker();
        if self.worker.is_none() {
            let jobs = std::mem::take(&mut self.shared.lock().jobs);
            let why = format!(
                "hash_budget: {} hasher threads are stuck in a filesystem",
                self.shared.stuck.load(Ordering::SeqCst)
            );
            for j in jobs {
                self.answer(j.id, Err(why.clone()), out);
            }
        }
    }

    fn answer(&mut self, id: u64, result: Result<String, String>, out: &mut Vec<HashInfo>) {
        let Some(p) = self.pending.remove(&id) else {
            // Already answered (a thread that came back after being given up).
            return;
        };
        if let Some(k) = p.key
            && self.by_key.get(&k) == Some(&id)
        {
            self.by_key.remove(&k);
        }
        self.pending_execs -= p.execs.len();
        let time = SystemTime::now();
        for (exec_id, pid) in p.execs {
            let (exe_sha256, reason) = match &result {
                Ok(h) => (Some(h.clone()), None),
                Err(why) => (None, Some(why.clone())),
            };
            out.push(HashInfo {
                time,
                exec_id,
                pid,
                exe_sha256,
                reason,
            });
        }
    }

    /// Waits up to `wait` for the hashes still pending, then answers the
    /// rest as not done; for the end of a run.
    pub fn finish(&mut self, wait: Duration, out: &mut Vec<HashInfo>) {
        let deadline = Instant::now() + wait;
        loop {
            self.poll(out);
            if self.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            let why = "hash_pending: procwatch stopped before the hash was done".to_string();
            self.answer(id, Err(why), out);
        }
    }
}

impl Drop for HashService {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.shutdown = true;
        q.jobs.clear();
        drop(q);
        self.shared.work.notify_all();
    }
}

fn bucket_size(opts: &HashOptions) -> f64 {
    opts.max_size.max(opts.rate) as f64
}

/// A hasher thread: takes jobs until shut down or abandoned.
fn work(shared: &Shared, slot: &Slot, cache: HashCache, opts: HashOptions) {
    let mut hasher = ExeHasher::with_cache(cache, opts.max_size, opts.timeout);
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if slot.abandoned.load(Ordering::SeqCst) {
                    shared.stuck.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                if q.shutdown {
                    return;
                }
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        *slot.busy.lock().unwrap_or_else(|e| e.into_inner()) = Some((job.id, Instant::now()));
        let result = hasher.hash_target(&job.target);
        *slot.busy.lock().unwrap_or_else(|e| e.into_inner()) = None;
        shared.lock().done.push(Done { id: job.id, result });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;
    use std::process::Command;

    /// Above any pid_max: the process is gone, so the path is used.
    const NO_PID: u32 = 4_999_999;

    fn opts(rate: u64) -> HashOptions {
        HashOptions {
            max_size: 1 << 20,
            rate,
            timeout: Duration::from_secs(5),
        }
    }

    fn exec_of(p: &Path, n: u32) -> ExecEvent {
        let m = fs::metadata(p).unwrap();
        let mut ev = ExecEvent::new(SystemTime::now(), NO_PID, Some(1), format!("{NO_PID}:{n}"));
        ev.exe = Some(p.as_os_str().as_bytes().to_vec());
        ev.exe_dev_ino = Some((m.dev(), m.ino()));
        ev.exe_stamp = Some(crate::event::FileStamp::of(&m));
        ev
    }

    fn reason(ev: &ExecEvent) -> &str {
        &ev.incomplete
            .iter()
            .find(|i| i.field == FIELD)
            .unwrap()
            .reason
    }

    fn late(s: &mut HashService, want: usize) -> Vec<HashInfo> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.len() < want && Instant::now() < deadline {
            s.poll(&mut out);
            thread::sleep(Duration::from_millis(2));
        }
        out
    }

    #[test]
    fn pending_then_late_event_then_cache_hit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, b"late hash").unwrap();
        let out = Command::new("sha256sum").arg(&f).output().unwrap();
        let want = String::from_utf8(out.stdout).unwrap()[..64].to_string();
        let mut s = HashService::new(opts(DEFAULT_RATE));
        let (mut a, mut b) = (exec_of(&f, 1), exec_of(&f, 2));
        s.submit(&mut a);
        s.submit(&mut b);
        for ev in [&a, &b] {
            assert_eq!(ev.exe_sha256, None);
            assert_eq!(reason(ev), "hash_pending");
        }
        assert_eq!(s.pending(), 2);
        let got = late(&mut s, 2);
        let ids: Vec<&str> = got.iter().map(|h| h.exec_id.as_str()).collect();
        assert_eq!(ids, [a.exec_id.as_str(), b.exec_id.as_str()]);
        assert!(
            got.iter()
                .all(|h| h.exe_sha256.as_deref() == Some(want.as_str()))
        );
        assert!(got.iter().all(|h| h.reason.is_none() && h.pid == NO_PID));
        assert_eq!(s.pending(), 0);
        assert_eq!(s.cache.files_read(), 1, "one read answered both");
        let mut c = exec_of(&f, 3);
        s.submit(&mut c);
        assert_eq!(c.exe_sha256.as_deref(), Some(want.as_str()));
        assert!(c.incomplete.is_empty());
    }

    #[test]
    fn over_the_byte_budget_is_not_queued() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, vec![7u8; 1000]).unwrap();
        // A bucket of max_size (1 MiB) refilled at 1 byte/s: one file fits.
        let mut s = HashService::new(opts(1));
        let mut a = exec_of(&f, 1);
        s.submit(&mut a);
        assert_eq!(reason(&a), "hash_pending");
        assert_eq!(late(&mut s, 1).len(), 1);
        fs::write(&f, vec![8u8; 1 << 20]).unwrap();
        let mut b = exec_of(&f, 2);
        s.submit(&mut b);
        assert!(
            reason(&b).starts_with("hash_budget: over 1 bytes per second"),
            "{}",
            reason(&b)
        );
        assert_eq!(s.pending(), 0, "no hash event follows");
    }

    #[test]
    fn finish_answers_every_pending_exec() {
        let mut s = HashService::new(opts(DEFAULT_RATE));
        let mut out = Vec::new();
        s.finish(Duration::ZERO, &mut out);
        assert!(out.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, b"x").unwrap();
        let mut a = exec_of(&f, 1);
        s.submit(&mut a);
        s.finish(Duration::from_secs(10), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(s.pending(), 0);
    }
}
