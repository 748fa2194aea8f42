//! The thread that a late source (netlink, /proc scanner) runs to observe
//! processes as early as possible, and the counters it keeps.
//!
//! The observing thread never waits for the pipeline: it hands what it saw
//! to a bounded channel and counts what did not fit, so that reading
//! `/proc` right after an exec is never delayed by output.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use super::convert::{self, Context};
use super::observed::Observed;
use super::{Item, KernelCounters, Source, SourceInfo};
use crate::event::Exit;
use crate::linux::proc_reader::Failure;

/// At most this many observations are handed over per poll.
const POLL_BATCH: usize = 256;

/// How many observations may wait for the pipeline's reader.
const CHANNEL_LEN: usize = 65536;

/// What the observing thread hands on.
#[derive(Debug)]
pub enum Seen {
    Exec(Box<Observed>),
    /// A process exit (netlink knows them; the scanner does not report any).
    Exit(Exit),
}

/// Counters shared between the observing thread and the pipeline.
#[derive(Debug, Default)]
pub struct Tally {
    /// Execs the source noticed.
    pub seen: AtomicU64,
    /// Observations handed to the pipeline.
    pub emitted: AtomicU64,
    /// Observations dropped because the pipeline's reader fell behind.
    pub dropped: AtomicU64,
    /// Exit records seen, handed on, and lost (queue full).
    pub exits_seen: AtomicU64,
    pub exits_emitted: AtomicU64,
    pub exits_dropped: AtomicU64,
    /// Netlink receive-buffer overruns (ENOBUFS): an unknown number of
    /// kernel events were lost each time.
    pub enobufs: AtomicU64,
    /// `/proc` reads that failed for a reason other than the process having
    /// already gone (permissions, malformed content, I/O).
    pub read_failures: AtomicU64,
    /// Processes that were gone (exited, zombie, pid reused) by the time we
    /// read them: their exec is reported but incomplete, or not at all for
    /// the scanner when even `stat` was gone; netlink exits of processes
    /// that could no longer be identified.
    pub too_late: AtomicU64,
}

impl Tally {
    /// Adds one to a counter.
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Counts an observation that came too late, or whose read failed.
    /// An unreadable `exe` alone is not a failure: it is the normal state
    /// for other users' processes without privileges.
    pub fn count(&self, ob: &Observed) {
        let late = |f: &Failure| matches!(f, Failure::Exited | Failure::Zombie | Failure::Reused);
        let fails = |f: &Failure| matches!(f, Failure::Denied | Failure::Malformed | Failure::Io);
        let (late_seen, failed) = match &ob.snap {
            Err(f) => (late(f), fails(f)),
            Ok(s) => {
                let main = [s.cmdline.as_ref().err(), s.status.as_ref().err()];
                let all = main.into_iter().chain([s.exe.as_ref().err()]).flatten();
                (all.clone().any(late), main.into_iter().flatten().any(fails))
            }
        };
        if ob.superseded || late_seen {
            Tally::bump(&self.too_late);
        } else if failed {
            Tally::bump(&self.read_failures);
        }
    }

    /// The counters in the pipeline's form.
    pub fn snapshot(&self) -> KernelCounters {
        KernelCounters {
            seen: Tally::get(&self.seen),
            emitted: Tally::get(&self.emitted),
            dropped: Tally::get(&self.dropped),
            truncated: 0,
            aux_seen: Tally::get(&self.exits_seen),
            aux_emitted: Tally::get(&self.exits_emitted),
            aux_dropped: Tally::get(&self.exits_dropped),
            netlink_enobufs: Tally::get(&self.enobufs),
            proc_read_failures: Tally::get(&self.read_failures),
            too_late: Tally::get(&self.too_late),
        }
    }
}

/// The observing side: hands observations on, counting drops.
pub struct Outlet {
    tx: Sender<Seen>,
    /// Shared counters.
    pub tally: Arc<Tally>,
    /// Set when the source should stop.
    pub stop: Arc<AtomicBool>,
}

impl Outlet {
    /// Sends without ever blocking.
    pub fn send(&self, ob: Observed) {
        match self.tx.try_send(Seen::Exec(Box::new(ob))) {
            Ok(()) => Tally::bump(&self.tally.emitted),
            Err(TrySendError::Full(_)) => Tally::bump(&self.tally.dropped),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Sends an exit record without ever blocking.
    pub fn send_exit(&self, x: Exit) {
        Tally::bump(&self.tally.exits_seen);
        match self.tx.try_send(Seen::Exit(x)) {
            Ok(()) => Tally::bump(&self.tally.exits_emitted),
            Err(TrySendError::Full(_)) => Tally::bump(&self.tally.exits_dropped),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// True once the source was asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The pipeline side of a running observing thread.
pub struct Worker {
    rx: Receiver<Seen>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Shared counters.
    pub tally: Arc<Tally>,
}

impl Worker {
    /// Starts `body` on a thread named `name`.
    pub fn spawn(
        name: &str,
        body: impl FnOnce(Outlet) + Send + 'static,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = bounded(CHANNEL_LEN);
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let outlet = Outlet {
            tx,
            tally: Arc::clone(&tally),
            stop: Arc::clone(&stop),
        };
        let handle = thread::Builder::new()
            .name(name.into())
            .spawn(move || body(outlet))?;
        Ok(Worker {
            rx,
            stop,
            handle: Some(handle),
            tally,
        })
    }

    /// Gathers observations for up to `timeout` (or until a batch's worth
    /// is in). Like the eBPF ring's wakeup threshold, this hands the
    /// pipeline batches rather than single events, saving a hand-off and a
    /// wakeup per event; latency stays bounded by `timeout`.
    pub fn poll(&self, timeout: Duration, out: &mut dyn FnMut(Seen)) {
        let deadline = Instant::now() + timeout;
        let mut n = 0;
        while n < POLL_BATCH {
            match self.rx.recv_deadline(deadline) {
                Ok(ob) => out(ob),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            }
            n += 1;
        }
    }

    /// Stops the thread and waits for it; queued observations stay readable.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    /// True once [`Worker::stop`] was called.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The counters in the pipeline's form.
    pub fn counters(&self) -> KernelCounters {
        self.tally.snapshot()
    }

    /// True if the thread ended by itself (an error it already reported).
    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A source that observes processes on its own thread (netlink, procfs):
/// the pipeline side is the same for both.
pub struct LateSource {
    info: SourceInfo,
    worker: Worker,
    cx: Context,
}

impl LateSource {
    /// Wraps a running observing thread.
    pub fn new(info: SourceInfo, worker: Worker, cx: Context) -> Self {
        LateSource { info, worker, cx }
    }
}

impl Source for LateSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> std::io::Result<()> {
        self.cx.clock.resync_if_due();
        let cx = self.cx;
        self.worker.poll(timeout, &mut |seen| match seen {
            Seen::Exec(ob) => out(convert::to_item(&ob, &cx)),
            Seen::Exit(x) => out(Item::Exit(x)),
        });
        if self.worker.finished() && !self.worker.stopped() {
            return Err(std::io::Error::other(format!(
                "the {} thread ended",
                self.info.name
            )));
        }
        Ok(())
    }

    fn counters(&self) -> std::io::Result<KernelCounters> {
        Ok(self.worker.counters())
    }

    fn detach(&mut self) {
        self.worker.stop();
    }
}
