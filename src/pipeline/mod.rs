//! The running monitor: a reader thread (reader.rs) drains the source into
//! the bounded hand-off (handoff.rs); the calling thread (writer.rs) keeps
//! the process table, enriches, filters, renders and writes.
//!
//! The reader never blocks on output: when the hand-off is full the batch is
//! dropped, counted, and reported in-band by a `loss` event in a later batch
//! that fits. Kernel-side drops are reported the same way.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Instant, SystemTime};

pub use crate::config::Config;
use crate::event::{Counters, Event, LossInfo, StartInfo, StopInfo};
use crate::sink::{self, Format};
use crate::source::{self, AttachError, Item, RecordKind};

/// Messages as the reader hands them over: one batch per drain. Raw
/// records are copied into `bytes` (one block per batch, reused), so the
/// reader allocates nothing per record.
#[derive(Debug, Default)]
pub struct Batch {
    pub msgs: Vec<Msg>,
    /// The raw records of `Msg::Raw`, back to back.
    pub bytes: Vec<u8>,
    /// What the queue's byte bound counts for this batch, fixed when it is
    /// sent (see [`Batch::weigh`]) so that taking it out returns exactly
    /// what was reserved.
    pub weight: usize,
}

impl Batch {
    /// An empty batch with room for `msgs` messages.
    pub fn with_capacity(msgs: usize) -> Self {
        Batch {
            msgs: Vec::with_capacity(msgs),
            bytes: Vec::new(),
            weight: 0,
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
        self.weight = 0;
    }

    /// Sets and returns `weight`: the memory the batch holds, in bytes — its
    /// raw records, its messages, and what decoded events own on the heap
    /// (argv above all, up to 16 KiB each).
    pub fn weigh(&mut self) -> usize {
        let heap: usize = self.msgs.iter().map(msg_heap).sum();
        self.weight = self.bytes.capacity() + self.msgs.capacity() * size_of::<Msg>() + heap;
        self.weight
    }
}

/// Heap bytes owned by one message (beyond the message itself).
fn msg_heap(m: &Msg) -> usize {
    let Msg::Item(Item::Exec { ev, .. }) = m else {
        return 0;
    };
    let bytes = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, Vec::capacity);
    let argv = ev.argv.as_ref().map_or(0, |a| {
        a.iter().map(|x| x.capacity() + size_of::<Vec<u8>>()).sum()
    });
    size_of::<crate::event::ExecEvent>()
        + argv
        + bytes(&ev.exe)
        + bytes(&ev.filename)
        + bytes(&ev.cwd)
        + bytes(&ev.interpreter)
        + ev.incomplete
            .iter()
            .map(|i| i.reason.capacity() + 32)
            .sum::<usize>()
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
    /// SIGUSR1: the reader's counters at this point of the stream; the
    /// writer adds its own and writes a `stats` event.
    Stats(Box<Counters>),
}

/// Why `run` failed.
#[derive(Debug)]
pub enum RunError {
    /// No source could be attached (exit code 3).
    Attach(AttachError),
    /// The output file was refused (exit code 2).
    Output(sink::OutputError),
    /// Writes to the output failed during the run, which otherwise ended
    /// cleanly (exit code 1).
    WriteErrors(String),
    /// Anything else (exit code 1).
    Io(io::Error),
    /// `--rules` could not be read, or `--rules-strict` refused a file
    /// (exit code 2).
    Rules(String),
}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        RunError::Io(e)
    }
}

mod handoff;
mod reader;
mod rules;
mod signals;
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
/// Also carries the requests of the signals that do not stop the run.
pub struct Stop {
    flag: Arc<AtomicBool>,
    reason: AtomicU8,
    /// SIGUSR1: the reader sends its counters in-band, the writer writes a
    /// `stats` event.
    stats: Arc<AtomicBool>,
    /// SIGHUP: the writer reopens the output file.
    reopen: Arc<AtomicBool>,
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
        stats: Arc::new(AtomicBool::new(false)),
        reopen: Arc::new(AtomicBool::new(false)),
    });
    signals::register(&stop)?;
    // Windows: Ctrl-C, Ctrl-Break and console close (see the module).
    #[cfg(windows)]
    source::windows::console::install(Arc::clone(&stop.flag))?;
    // The output is opened and checked before attaching, so a refused path
    // fails in milliseconds.
    let (output, header_needed) = sink::Output::open(
        cfg.output.as_deref(),
        cfg.force_output,
        cfg.exit_on_write_error,
    )
    .map_err(RunError::Output)?;
    let rules = rules::load(&cfg.rules, cfg.rules_strict).map_err(RunError::Rules)?;
    let source = source::open(
        cfg.source,
        &source::Settings {
            ebpf: &cfg.ebpf,
            late: &cfg.late,
            windows: &cfg.windows,
        },
    )
    .map_err(RunError::Attach)?;
    let info = source.info().clone();
    let sink = sink::make_sink(
        cfg.format,
        Box::new(output.clone()),
        header_needed,
        cfg.sink_options.clone(),
    );

    let start = StartInfo {
        time: SystemTime::now(),
        source: info.name.to_string(),
        attach: info.attach.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: crate::sink::host_name(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        guarantees: info.guarantees.clone(),
        can_miss: info.can_miss.clone(),
        pid: std::process::id(),
        coverage: info.coverage.clone(),
        continuation: false,
        rules: rules
            .as_ref()
            .map(|r| r.summary.clone())
            .unwrap_or_default(),
    };
    // Every event goes to the --syslog destinations too.
    let mut sink = sink::syslog::attach(sink, &cfg.syslog, &start.hostname)?;
    if cfg.format == Format::Csv {
        eprintln!(
            "procwatch: watching execs via {} ({})",
            start.source, start.attach
        );
    }
    // Written only now that the source is attached: whatever runs after this
    // line appears is captured.
    let mut written_ok = write_or_stop(sink.as_mut(), &Event::Start(start.clone()), &stop)
        && flush_or_stop(sink.as_mut(), &stop);

    // Where the source allows it, records are decoded on the writer's
    // thread (see `source::Decoder`).
    let decoder = source.decoder();
    let (tx, rx) = handoff::handoff(cfg.queue_len, cfg.queue_bytes);
    let reader = {
        let stop = Arc::clone(&stop);
        let (poll, pause) = (cfg.poll, cfg.pause_reader);
        let raw = decoder.is_some();
        thread::Builder::new()
            .name("procwatch-reader".into())
            .spawn(move || read_loop(source, raw, tx, &stop, poll, pause))?
    };

    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let mut writer = Writer::new(sink.as_mut(), &cfg);
    writer.decoder = decoder;
    writer.output = Some(output.clone());
    writer.start = Some(start);
    if let Some(set) = rules {
        writer.use_rules(set);
    }
    if written_ok {
        written_ok = writer.run(&rx, &stop, deadline);
    }
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
    let mut counters = totals.counters();
    writer.add_counters(&mut counters);
    let stop_event = Event::Stop(StopInfo {
        time: SystemTime::now(),
        reason: stop.reason().to_string(),
        counters,
    });
    let stop_written = written_ok
        && write_or_stop(sink.as_mut(), &stop_event, &stop)
        && flush_or_stop(sink.as_mut(), &stop);
    drop(sink);
    #[cfg(windows)]
    source::windows::console::finished();
    let failures = signals::report_unwritten(&output, &stop_event, stop_written, cfg.format);
    match (totals.error, failures) {
        (Some(e), _) => Err(RunError::Io(e)),
        (None, Some(msg)) => Err(RunError::WriteErrors(msg)),
        (None, None) => Ok(()),
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
    use super::{Batch, Msg};

    #[test]
    fn weight_counts_raw_bytes_and_decoded_argv() {
        let mut b = Batch::with_capacity(4);
        b.bytes.extend_from_slice(&[0u8; 20_000]);
        let raw = b.weigh();
        assert!(raw >= 20_000, "{raw}");
        let mut ev =
            crate::event::ExecEvent::new(std::time::SystemTime::now(), 1, None, "1:1".into());
        ev.argv = Some(vec![vec![b'a'; 16_384]]);
        b.msgs.push(Msg::Item(crate::source::Item::Exec {
            ev: Box::new(ev),
            start_ns: 1,
            parent_start_ns: 0,
        }));
        let w = b.weigh();
        assert!(w >= raw + 16_384, "{w}");
        assert_eq!(b.weight, w);
    }
}
