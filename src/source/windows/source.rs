//! The Windows [`Source`]: whichever of ETW, WMI trace events, WMI polling
//! or the process-list snapshot [`select::choose`] picked, behind one
//! channel.
//!
//! Each mechanism delivers on its own thread (ferrisetw's, a worker that
//! owns the COM objects, or the snapshot's scanner); that thread reads the
//! token at once and sends the finished event, so `poll` only drains a
//! channel.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::etw::Etw;
use super::record::{RawStart, to_exec_event};
use super::select::{self, Kind, Request};
use super::snapshot::Scanner;
use super::token::{current_is_elevated, read_process};
use super::wmi::Wmi;
use super::{Options, wql};
use crate::source::{AttachError, Choice, Item, KernelCounters, Source, SourceInfo};

/// A running Windows source.
struct WinSource {
    info: SourceInfo,
    rx: Receiver<Item>,
    seen: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    etw: Option<Etw>,
}

/// Reads the process behind a start and sends the event.
fn deliver(kind: Kind, raw: &RawStart, tx: &Sender<Item>, seen: &AtomicU64) {
    let snap = read_process(raw.pid);
    send(
        to_exec_event(raw, snap, kind.name(), SystemTime::now()),
        tx,
        seen,
    );
}

fn send(ev: crate::event::ExecEvent, tx: &Sender<Item>, seen: &AtomicU64) {
    seen.fetch_add(1, Ordering::Relaxed);
    // Windows gives no boot-clock start times: 0 means unknown to the
    // process table, which then keys the process by pid alone.
    let _ = tx.send(Item::Exec {
        ev: Box::new(ev),
        start_ns: 0,
        parent_start_ns: 0,
    });
}

fn info(kind: Kind, opts: &Options) -> SourceInfo {
    let interval = opts.interval_for(kind);
    let (attach, guarantees, can_miss) = match kind {
        Kind::Etw => (
            "kernel logger, process events".to_owned(),
            "every process start after start, with its command line",
            "events ETW drops when its buffers are full (reported as loss)".to_owned(),
        ),
        Kind::WmiTrace => (
            wql::START_TRACE.to_owned(),
            "every process start after start",
            "the command line and path of processes that exit before they are read".to_owned(),
        ),
        Kind::WmiPoll => (
            wql::creation_poll(interval),
            "processes alive at one of WMI's snapshots",
            format!(
                "any process shorter than the {} s polling interval",
                wql::seconds(interval)
            ),
        ),
        Kind::Snapshot => (
            format!(
                "CreateToolhelp32Snapshot every {} s",
                wql::seconds(interval)
            ),
            "processes alive at one of the snapshots, each read at once from the process itself",
            format!(
                "any process shorter than the {} s snapshot interval",
                wql::seconds(interval)
            ),
        ),
    };
    SourceInfo {
        name: kind.name(),
        attach,
        guarantees: guarantees.to_owned(),
        can_miss,
        coverage: crate::event::Coverage {
            short_lived_complete: kind == Kind::Etw,
            poll_interval_ms: kind.polls().then_some(interval.as_millis() as u64),
            unavailable: Vec::new(),
        },
    }
}

fn start(kind: Kind, opts: &Options) -> Result<WinSource, String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut etw = None;
    if kind == Kind::Etw {
        let (tx, seen) = (tx.clone(), Arc::clone(&seen));
        etw = Some(Etw::start(move |raw| deliver(kind, &raw, &tx, &seen))?);
    } else if kind == Kind::Snapshot {
        // The first list is taken here, so a failure is a failure to start.
        let scanner = Scanner::new()?;
        let (seen, stop, interval) = (
            Arc::clone(&seen),
            Arc::clone(&stop),
            opts.interval_for(kind),
        );
        thread::Builder::new()
            .name("procwatch-snapshot".into())
            .spawn(move || scan_loop(scanner, interval, &stop, &tx, &seen))
            .map_err(|e| e.to_string())?;
    } else {
        // COM objects stay on the thread that made them; the connection
        // result comes back before `start` returns.
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let (seen, stop, interval) = (
            Arc::clone(&seen),
            Arc::clone(&stop),
            opts.interval_for(kind),
        );
        thread::Builder::new()
            .name("procwatch-wmi".into())
            .spawn(move || {
                let wmi = match Wmi::connect(kind == Kind::WmiTrace, interval) {
                    Ok(w) => {
                        let _ = ready_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    match wmi.next(Duration::from_millis(200)) {
                        Ok(Some(raw)) => deliver(kind, &raw, &tx, &seen),
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Item::Undecodable(e));
                            thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv()
            .map_err(|_| "WMI worker ended".to_owned())??;
    }
    Ok(WinSource {
        info: info(kind, opts),
        rx,
        seen,
        stop,
        etw,
    })
}

/// Opens the Windows source for `choice` and says on stderr which one was
/// chosen and why (and, for polling, what it can miss).
pub fn open(choice: Choice, opts: &Options) -> Result<Box<dyn Source>, AttachError> {
    let req = match choice {
        Choice::Auto => Request::Auto,
        Choice::Etw => Request::Etw,
        Choice::Wmi => Request::Wmi,
        Choice::Snapshot => Request::Snapshot,
        Choice::Ebpf | Choice::Netlink | Choice::Procfs => {
            return Err(AttachError {
                what: "the eBPF, netlink and procfs sources are Linux-only".into(),
                hint: "use --source auto, etw, wmi or snapshot".into(),
            });
        }
    };
    let chosen =
        select::choose(req, current_is_elevated(), |kind| start(kind, opts)).map_err(|why| {
            AttachError {
                what: format!("no Windows process source could be started: {why}"),
                hint: "run from an elevated (Administrator) prompt for etw and WMI trace events"
                    .into(),
            }
        })?;
    eprintln!("procwatch: {}", chosen.why);
    Ok(Box::new(chosen.source))
}

/// Scans every `interval` until `stop`; a scan that fails is reported
/// in-band and the next one tried.
fn scan_loop(
    mut scanner: Scanner,
    interval: Duration,
    stop: &AtomicBool,
    tx: &Sender<Item>,
    seen: &AtomicU64,
) {
    let mut next = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        next += interval;
        if let Err(e) = scanner.scan(&mut |ev| send(ev, tx, seen)) {
            let _ = tx.send(Item::Undecodable(format!("process list: {e}")));
        }
        // A scan longer than the interval starts the next at once, without
        // a burst of catch-up scans.
        let now = std::time::Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => thread::sleep(wait),
            None => next = now,
        }
    }
}

impl Source for WinSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> io::Result<()> {
        match self.rx.recv_timeout(timeout) {
            Ok(item) => out(item),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("the Windows event source stopped"));
            }
        }
        while let Ok(item) = self.rx.try_recv() {
            out(item);
        }
        Ok(())
    }

    fn counters(&self) -> io::Result<KernelCounters> {
        let emitted = self.seen.load(Ordering::Relaxed);
        let dropped = match &self.etw {
            Some(etw) => etw.events_lost().map_err(io::Error::other)?,
            None => 0,
        };
        Ok(KernelCounters {
            seen: emitted + dropped,
            emitted,
            dropped,
            ..KernelCounters::default()
        })
    }

    fn detach(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(etw) = &mut self.etw {
            etw.stop();
        }
    }
}
