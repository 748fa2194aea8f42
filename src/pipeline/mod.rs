//! The running monitor: a reader thread (reader.rs) drains the source into a
//! bounded queue; the calling thread (writer.rs) keeps the process table,
//! enriches, filters, renders and writes.
//!
//! The reader never blocks on output: when the queue is full the event is
//! dropped, counted, and reported in-band by a `loss` event as soon as there
//! is room again. Kernel-side drops are reported the same way.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::event::{Counters, Event, LossInfo, StartInfo, StopInfo};
use crate::filter::Filter;
use crate::sink::{self, Format};
use crate::source::{self, AttachError, Choice, Item, RecordKind};

/// Everything `run` needs, already validated by the CLI.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Choice,
    pub ebpf: source::ebpf::Options,
    /// Settings of the netlink and /proc sources.
    pub late: source::LateOptions,
    /// Windows sources' settings (`--interval`).
    pub windows: source::windows::Options,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub poll: Duration,
    pub queue_len: usize,
    /// Test hook: the reader waits this long before its first drain.
    pub pause_reader: Duration,
    /// Emit exit events.
    pub exits: bool,
    /// Which execs are shown (all are counted).
    pub filter: Filter,
    pub sink_options: sink::SinkOptions,
    /// Hash executed files up to this size; `None`: no hashing.
    pub hash_max_size: Option<u64>,
    /// Run the hijackable check.
    pub hijack_check: bool,
}

/// Messages as the reader hands them over: one batch per drain. Raw
/// records are copied into `bytes` (one block per batch, reused), so the
/// reader allocates nothing per record.
#[derive(Debug, Default)]
pub struct Batch {
    pub msgs: Vec<Msg>,
    /// The raw records of `Msg::Raw`, back to back.
    pub bytes: Vec<u8>,
}

impl Batch {
    /// An empty batch with room for `msgs` messages.
    pub fn with_capacity(msgs: usize) -> Self {
        Batch {
            msgs: Vec::with_capacity(msgs),
            bytes: Vec::new(),
        }
    }

    /// Messages in the batch (what the queue bound counts).
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.msgs.clear();
        self.bytes.clear();
    }
}

/// The bound on the reader → writer queue, in messages (batches vary in
/// size, so the channel itself is unbounded and this counts).
pub struct Queue {
    len: AtomicUsize,
    cap: usize,
}

impl Queue {
    fn new(cap: usize) -> Self {
        Queue {
            len: AtomicUsize::new(0),
            cap: cap.max(1),
        }
    }

    /// Reserves room for `n` messages; false when they do not fit.
    fn admit(&self, n: usize) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len + n <= self.cap).then_some(len + n)
            })
            .is_ok()
    }

    /// Returns the room of `n` messages the writer has taken.
    fn release(&self, n: usize) {
        self.len.fetch_sub(n, Ordering::AcqRel);
    }
}

/// What the reader hands the writer, in kernel order: the source's items
/// (never `Item::Undecodable`: the reader counts those), raw records for
/// the source's decoder, and loss reports.
#[derive(Debug)]
pub enum Msg {
    Item(Item),
    /// A raw record: `len` bytes at `start` in the batch's `bytes`.
    Raw {
        kind: RecordKind,
        start: usize,
        len: usize,
    },
    Loss(LossInfo),
}

/// Why `run` failed.
#[derive(Debug)]
pub enum RunError {
    /// No source could be attached (exit code 3).
    Attach(AttachError),
    /// Anything else (exit code 1).
    Io(io::Error),
}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        RunError::Io(e)
    }
}

mod handoff;
mod reader;
mod writer;

use reader::{ReaderTotals, read_loop};
use writer::Writer;
pub use writer::replay;

/// Why the monitor stopped; the first reason set wins.
const STOP_NONE: u8 = 0;
const STOP_DURATION: u8 = 1;
const STOP_BROKEN_PIPE: u8 = 2;
const STOP_ERROR: u8 = 3;

/// Shared stop state: set by signals, the duration timer or a dead output.
pub struct Stop {
    flag: Arc<AtomicBool>,
    reason: AtomicU8,
}

impl Stop {
    fn request(&self, reason: u8) {
        let _ = self
            .reason
            .compare_exchange(STOP_NONE, reason, Ordering::SeqCst, Ordering::SeqCst);
        self.flag.store(true, Ordering::SeqCst);
    }
    fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    fn reason(&self) -> &'static str {
        match self.reason.load(Ordering::SeqCst) {
            STOP_DURATION => "duration",
            STOP_BROKEN_PIPE => "broken_pipe",
            STOP_ERROR => "error",
            _ => "signal",
        }
    }
}

/// Runs the monitor until a signal, `--duration`, or a broken pipe.
pub fn run(cfg: Config) -> Result<(), RunError> {
    // Signals are caught before attaching (which takes a second or more), so
    // one sent meanwhile is neither lost (an inherited SIG_IGN) nor fatal: the
    // run then ends right after the start event, with a stop event.
    let stop = Arc::new(Stop {
        flag: Arc::new(AtomicBool::new(false)),
        reason: AtomicU8::new(STOP_NONE),
    });
    #[cfg(unix)]
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends procwatch at once, in case a flush hangs.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop.flag))?;
        signal_hook::flag::register(sig, Arc::clone(&stop.flag))?;
    }
    // Windows: Ctrl-C, Ctrl-Break and console close (see the module).
    #[cfg(windows)]
    source::windows::console::install(Arc::clone(&stop.flag))?;
    let source =
        source::open(cfg.source, &cfg.ebpf, &cfg.late, &cfg.windows).map_err(RunError::Attach)?;
    let info = source.info().clone();
    let (out, header_needed) = sink::open_output(cfg.output.as_deref())?;
    let mut sink = sink::make_sink(cfg.format, out, header_needed, cfg.sink_options.clone());

    let start = StartInfo {
        time: SystemTime::now(),
        source: info.name.to_string(),
        attach: info.attach.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: host_name(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        guarantees: info.guarantees.clone(),
        can_miss: info.can_miss.clone(),
        pid: std::process::id(),
        coverage: info.coverage.clone(),
    };
    if cfg.format == Format::Csv {
        eprintln!(
            "procwatch: watching execs via {} ({})",
            start.source, start.attach
        );
    }
    // Written only now that the source is attached: whatever runs after this
    // line appears is captured.
    let mut written_ok = write_or_stop(sink.as_mut(), &Event::Start(start), &stop)
        && flush_or_stop(sink.as_mut(), &stop);

    // Where the source allows it, records are decoded on the writer's
    // thread (see `source::Decoder`).
    let decoder = source.decoder();
    let (tx, rx) = handoff::handoff();
    let queue = Arc::new(Queue::new(cfg.queue_len));
    let reader = {
        let stop = Arc::clone(&stop);
        let queue = Arc::clone(&queue);
        let (poll, pause) = (cfg.poll, cfg.pause_reader);
        let raw = decoder.is_some();
        thread::Builder::new()
            .name("procwatch-reader".into())
            .spawn(move || read_loop(source, raw, tx, queue, &stop, poll, pause))?
    };

    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let mut writer = Writer::new(sink.as_mut(), &cfg);
    writer.decoder = decoder;
    if written_ok {
        written_ok = writer.run(&rx, &queue, &stop, deadline);
    }
    let (written, filtered, undecodable) = (writer.written, writer.filtered, writer.undecodable);
    // Unblock the reader if we stopped writing early (broken pipe).
    drop(rx);
    let totals = reader.join().unwrap_or_else(|_| ReaderTotals {
        error: Some(io::Error::other("the reader thread panicked")),
        ..ReaderTotals::default()
    });
    if let Some(e) = &totals.error {
        eprintln!("procwatch: reading events failed: {e}");
        stop.request(STOP_ERROR);
    }
    let stop_event = Event::Stop(StopInfo {
        time: SystemTime::now(),
        reason: stop.reason().to_string(),
        counters: Counters {
            seen: totals.kernel.seen,
            emitted: totals.kernel.emitted,
            dropped: totals.kernel.dropped,
            truncated: totals.kernel.truncated,
            received: totals.received,
            queue_dropped: totals.queue_dropped + totals.undecodable + undecodable,
            aux_dropped: totals.kernel.aux_dropped + totals.aux_queue_dropped,
            written,
            filtered,
            netlink_enobufs: totals.kernel.netlink_enobufs,
            proc_read_failures: totals.kernel.proc_read_failures,
            too_late: totals.kernel.too_late,
        },
    });
    if written_ok && write_or_stop(sink.as_mut(), &stop_event, &stop) {
        flush_or_stop(sink.as_mut(), &stop);
    }
    #[cfg(windows)]
    source::windows::console::finished();
    match totals.error {
        Some(e) => Err(RunError::Io(e)),
        None => Ok(()),
    }
}

fn write_or_stop(sink: &mut dyn sink::Sink, ev: &Event, stop: &Stop) -> bool {
    io_or_stop(sink.write_event(ev), stop)
}

fn flush_or_stop(sink: &mut dyn sink::Sink, stop: &Stop) -> bool {
    io_or_stop(sink.flush(), stop)
}

/// A broken pipe is a graceful end (`procwatch | head`); other errors are
/// reported and end the run too.
pub(crate) fn io_or_stop(res: io::Result<()>, stop: &Stop) -> bool {
    match res {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            stop.request(STOP_BROKEN_PIPE);
            false
        }
        Err(e) => {
            eprintln!("procwatch: writing output failed: {e}");
            stop.request(STOP_ERROR);
            false
        }
    }
}

/// The machine's name for the `start` record.
#[cfg(not(windows))]
fn host_name() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
}

/// Windows sets `COMPUTERNAME` for every process.
#[cfg(windows)]
fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

fn read_trimmed(path: &str) -> String {
    // Windows has no /proc (under Wine the path would reach the Linux
    // host's files): its `boot_id` stays empty.
    if cfg!(windows) {
        return String::new();
    }
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn queue_admits_up_to_its_capacity_in_messages() {
        let q = Queue::new(10);
        assert!(q.admit(6));
        assert!(!q.admit(5), "6 + 5 > 10: the whole batch is refused");
        assert!(q.admit(4));
        assert!(!q.admit(1));
        q.release(6);
        assert!(q.admit(6));
    }
}
