//! The running monitor: a reader thread drains the source into a bounded
//! queue; the calling thread enriches, renders and writes.
//!
//! The reader never blocks on output: when the queue is full the event is
//! dropped, counted, and reported in-band by a `loss` event as soon as there
//! is room again. Kernel-side drops are reported the same way.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::enrich::Enricher;
use crate::event::{Counters, Event, LossInfo, LossPlace, StartInfo, StopInfo};
use crate::sink::{self, Format};
use crate::source::{self, AttachError, Choice, Item, KernelCounters, Source};

/// Everything `run` needs, already validated by the CLI.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Choice,
    pub ebpf: source::ebpf::Options,
    /// Windows sources' settings (`--interval`).
    pub windows: source::windows::Options,
    pub format: Format,
    pub output: Option<PathBuf>,
    pub duration: Option<Duration>,
    pub poll: Duration,
    pub queue_len: usize,
    /// Test hook: the reader waits this long before its first drain.
    pub pause_reader: Duration,
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

/// Why the monitor stopped; the first reason set wins.
const STOP_NONE: u8 = 0;
const STOP_DURATION: u8 = 1;
const STOP_BROKEN_PIPE: u8 = 2;
const STOP_ERROR: u8 = 3;

/// Shared stop state: set by signals, the duration timer or a dead output.
struct Stop {
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

/// What the reader thread reports when it ends.
#[derive(Debug, Default)]
struct ReaderTotals {
    kernel: KernelCounters,
    received: u64,
    queue_dropped: u64,
    undecodable: u64,
    error: Option<io::Error>,
}

/// Runs the monitor until a signal, `--duration`, or a broken pipe.
pub fn run(cfg: Config) -> Result<(), RunError> {
    let source = source::open(cfg.source, &cfg.ebpf, &cfg.windows).map_err(RunError::Attach)?;
    let info = source.info().clone();
    let (out, header_needed) = sink::open_output(cfg.output.as_deref())?;
    let mut sink = sink::make_sink(cfg.format, out, header_needed);

    let stop = Arc::new(Stop {
        flag: Arc::new(AtomicBool::new(false)),
        reason: AtomicU8::new(STOP_NONE),
    });
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends procwatch at once, in case a flush hangs.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop.flag))?;
        signal_hook::flag::register(sig, Arc::clone(&stop.flag))?;
    }

    let start = StartInfo {
        time: SystemTime::now(),
        source: info.name.to_string(),
        attach: info.attach.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        guarantees: info.guarantees.clone(),
        can_miss: info.can_miss.clone(),
        pid: std::process::id(),
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

    let (tx, rx) = crossbeam_channel::bounded::<Event>(cfg.queue_len.max(1));
    let reader = {
        let stop = Arc::clone(&stop);
        let (poll, pause) = (cfg.poll, cfg.pause_reader);
        thread::Builder::new()
            .name("procwatch-reader".into())
            .spawn(move || read_loop(source, tx, &stop, poll, pause))?
    };

    let deadline = cfg.duration.map(|d| Instant::now() + d);
    let mut enricher = Enricher::new();
    let mut written = 0u64;
    if written_ok {
        written_ok = write_loop(
            &rx,
            sink.as_mut(),
            &mut enricher,
            &stop,
            deadline,
            &mut written,
        );
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
    let stop_event = Event::Stop(StopInfo {
        time: SystemTime::now(),
        reason: stop.reason().to_string(),
        counters: Counters {
            seen: totals.kernel.seen,
            emitted: totals.kernel.emitted,
            dropped: totals.kernel.dropped,
            truncated: totals.kernel.truncated,
            received: totals.received,
            queue_dropped: totals.queue_dropped + totals.undecodable,
            written,
        },
    });
    if written_ok && write_or_stop(sink.as_mut(), &stop_event, &stop) {
        flush_or_stop(sink.as_mut(), &stop);
    }
    match totals.error {
        Some(e) => Err(RunError::Io(e)),
        None => Ok(()),
    }
}

/// Enriches and writes events until the reader is done. Returns false if the
/// output failed (broken pipe: a clean end; anything else: an error).
fn write_loop(
    rx: &Receiver<Event>,
    sink: &mut dyn sink::Sink,
    enricher: &mut Enricher,
    stop: &Stop,
    deadline: Option<Instant>,
    written: &mut u64,
) -> bool {
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop.request(STOP_DURATION);
        }
        let ev = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return true,
        };
        let ev = match ev {
            Event::Exec(mut exec) => {
                enricher.enrich(&mut exec);
                *written += 1;
                Event::Exec(exec)
            }
            other => other,
        };
        if !write_or_stop(sink, &ev, stop) {
            return false;
        }
        // Flush whenever we have caught up, so output is live but batched
        // under load.
        if rx.is_empty() && !flush_or_stop(sink, stop) {
            return false;
        }
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
fn io_or_stop(res: io::Result<()>, stop: &Stop) -> bool {
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

/// The reader: drains the source into the queue and reports losses in-band.
fn read_loop(
    mut source: Box<dyn Source>,
    tx: Sender<Event>,
    stop: &Stop,
    poll: Duration,
    pause: Duration,
) -> ReaderTotals {
    let mut r = Reader {
        tx,
        totals: ReaderTotals::default(),
        kernel_reported: 0,
        queue_reported: 0,
    };
    let paused_until = Instant::now() + pause;
    while !stop.requested() && Instant::now() < paused_until {
        thread::sleep(Duration::from_millis(10));
    }
    while !stop.requested() {
        if let Err(e) = source.poll(poll, &mut |item| r.push(item)) {
            r.totals.error = Some(e);
            stop.request(STOP_ERROR);
            break;
        }
        r.report_losses(source.as_ref(), false);
    }
    // Detach first, then drain what is left, so the final counters add up:
    // received == emitted.
    source.detach();
    if r.totals.error.is_none()
        && let Err(e) = source.poll(Duration::ZERO, &mut |item| r.push(item))
    {
        r.totals.error = Some(e);
    }
    r.report_losses(source.as_ref(), true);
    r.totals
}

struct Reader {
    tx: Sender<Event>,
    totals: ReaderTotals,
    /// Kernel drops already reported in a loss event.
    kernel_reported: u64,
    /// Queue drops already reported in a loss event.
    queue_reported: u64,
}

impl Reader {
    fn push(&mut self, item: Item) {
        match item {
            Item::Exec(ev) => {
                self.totals.received += 1;
                match self.tx.try_send(Event::Exec(ev)) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => self.totals.queue_dropped += 1,
                }
            }
            Item::Undecodable(why) => {
                self.totals.received += 1;
                self.totals.undecodable += 1;
                eprintln!("procwatch: dropped an undecodable record: {why}");
            }
        }
    }

    /// Sends loss events for drops not yet reported. Normally it only tries
    /// (a full queue retries next round); at the end it waits for room.
    fn report_losses(&mut self, source: &dyn Source, last: bool) {
        match source.counters() {
            Ok(k) => {
                self.totals.kernel = k;
                if k.dropped > self.kernel_reported
                    && self.send_loss(
                        LossPlace::Kernel,
                        k.dropped - self.kernel_reported,
                        k.dropped,
                        last,
                    )
                {
                    self.kernel_reported = k.dropped;
                }
            }
            Err(e) => eprintln!("procwatch: cannot read the kernel counters: {e}"),
        }
        let queue = self.totals.queue_dropped + self.totals.undecodable;
        if queue > self.queue_reported
            && self.send_loss(LossPlace::Queue, queue - self.queue_reported, queue, last)
        {
            self.queue_reported = queue;
        }
    }

    fn send_loss(&self, place: LossPlace, dropped: u64, total: u64, wait: bool) -> bool {
        let ev = Event::Loss(LossInfo {
            time: SystemTime::now(),
            place,
            dropped,
            total,
        });
        if wait {
            // The writer may be gone (broken pipe); then nobody needs it.
            self.tx.send(ev).is_ok()
        } else {
            self.tx.try_send(ev).is_ok()
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
