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
use super::snapshot::{Found, Scanner};
use super::token::{current_is_elevated, read_process};
use super::wmi::Wmi;
use super::{Options, wql};
use crate::source::{AttachError, Choice, Item, KernelCounters, Source, SourceInfo};

/// A running Windows source: the mechanism now delivering, and those it
/// may fall back to if it fails while running.
struct WinSource {
    /// What the `start` record said (the mechanism chosen at start).
    info: SourceInfo,
    run: Running,
    /// Events delivered, over every mechanism of this run.
    seen: Arc<AtomicU64>,
    /// ETW losses of mechanisms already replaced.
    lost_before: u64,
    /// The candidates after the running one, for a fallback.
    rest: Vec<Kind>,
    opts: Options,
}

/// One started mechanism.
struct Running {
    kind: Kind,
    rx: Receiver<Item>,
    stop: Arc<AtomicBool>,
    etw: Option<Etw>,
    /// The WMI or snapshot thread.
    worker: Option<thread::JoinHandle<()>>,
    /// Why the mechanism stopped delivering, when it did on its own.
    failed: Receiver<String>,
}

impl Running {
    /// Stops the mechanism and waits for its thread (at most one scan or
    /// one 200 ms WMI wait), so everything it delivered is in `rx`.
    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(etw) = &mut self.etw {
            etw.stop();
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }

    fn lost(&self) -> io::Result<u64> {
        match &self.etw {
            Some(etw) => etw.events_lost().map_err(io::Error::other),
            None => Ok(0),
        }
    }
}

/// WMI calls that fail in a row before WMI counts as broken (about a
/// second: each failure waits 200 ms).
const WMI_FAILURES: u32 = 5;

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
    // ETW and WMI give no creation times for the table's keys: 0 means
    // unknown to the process table, which then keys the process by pid.
    send_keyed(
        Found {
            ev,
            start_ns: 0,
            parent_start_ns: 0,
        },
        tx,
        seen,
    );
}

fn send_keyed(f: Found, tx: &Sender<Item>, seen: &AtomicU64) {
    seen.fetch_add(1, Ordering::Relaxed);
    let _ = tx.send(Item::Exec {
        ev: Box::new(f.ev),
        start_ns: f.start_ns,
        parent_start_ns: f.parent_start_ns,
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

fn start(kind: Kind, opts: &Options, seen: &Arc<AtomicU64>) -> Result<Running, String> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (fail_tx, failed) = crossbeam_channel::bounded(1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut etw = None;
    let worker;
    if kind == Kind::Etw {
        worker = None;
        let (tx, seen) = (tx.clone(), Arc::clone(seen));
        etw = Some(Etw::start(
            move |raw| deliver(kind, &raw, &tx, &seen),
            move |why| {
                let _ = fail_tx.send(why);
            },
        )?);
    } else if kind == Kind::Snapshot {
        // The first list is taken here, so a failure is a failure to start.
        let scanner = Scanner::new()?;
        let (seen, stop, interval) = (Arc::clone(seen), Arc::clone(&stop), opts.interval_for(kind));
        worker = Some(
            thread::Builder::new()
                .name("procwatch-snapshot".into())
                .spawn(move || scan_loop(scanner, interval, &stop, &tx, &seen))
                .map_err(|e| e.to_string())?,
        );
    } else {
        // COM objects stay on the thread that made them; the connection
        // result comes back before `start` returns.
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let (seen, stop, interval) = (Arc::clone(seen), Arc::clone(&stop), opts.interval_for(kind));
        let handle = thread::Builder::new()
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
                let mut failures = 0;
                while !stop.load(Ordering::Relaxed) {
                    match wmi.next(Duration::from_millis(200)) {
                        Ok(Some(raw)) => {
                            failures = 0;
                            deliver(kind, &raw, &tx, &seen);
                        }
                        Ok(None) => failures = 0,
                        Err(e) => {
                            failures += 1;
                            if failures >= WMI_FAILURES {
                                let _ = fail_tx.send(format!("{failures} calls in a row: {e}"));
                                return;
                            }
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
        worker = Some(handle);
    }
    Ok(Running {
        kind,
        rx,
        stop,
        etw,
        worker,
        failed,
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
    let seen = Arc::new(AtomicU64::new(0));
    let chosen = select::choose(req, current_is_elevated(), |kind| start(kind, opts, &seen))
        .map_err(|why| AttachError {
            what: format!("no Windows process source could be started: {why}"),
            hint: "run from an elevated (Administrator) prompt for etw and WMI trace events".into(),
        })?;
    eprintln!("procwatch: {}", chosen.why);
    let all = select::candidates(req);
    let after = all
        .iter()
        .position(|&k| k == chosen.kind)
        .map_or(all.len(), |i| i + 1);
    Ok(Box::new(WinSource {
        info: info(chosen.kind, opts),
        run: chosen.source,
        seen,
        lost_before: 0,
        rest: all[after..].to_vec(),
        opts: opts.clone(),
    }))
}

impl WinSource {
    /// The running mechanism failed: hand on what it delivered, then start
    /// the next candidate that starts, saying why on stderr. With none
    /// left, the run ends with the reasons (exit 1).
    fn fall_back(&mut self, why: &str, out: &mut dyn FnMut(Item)) -> io::Result<()> {
        let failed = format!("{} failed while running: {why}", self.run.kind.name());
        self.run.halt();
        self.lost_before += self.run.lost().unwrap_or(0);
        while let Ok(item) = self.run.rx.try_recv() {
            out(item);
        }
        let rest = std::mem::take(&mut self.rest);
        let (opts, seen) = (&self.opts, &self.seen);
        match select::choose_from(&rest, current_is_elevated(), |k| start(k, opts, seen)) {
            Ok(c) => {
                eprintln!("procwatch: {failed}; {}", c.why);
                let after = rest
                    .iter()
                    .position(|&k| k == c.kind)
                    .map_or(rest.len(), |i| i + 1);
                self.rest = rest[after..].to_vec();
                self.run = c.source;
                Ok(())
            }
            Err(e) if e.is_empty() => Err(io::Error::other(failed)),
            Err(e) => Err(io::Error::other(format!("{failed}; {e}"))),
        }
    }
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
        if let Err(e) = scanner.scan(&mut |f| send_keyed(f, tx, seen)) {
            let _ = tx.send(Item::Undecodable(format!("process list: {e}")));
        }
        // A scan longer than the interval starts the next at once, without
        // a burst of catch-up scans. The wait is cut into short sleeps so a
        // stop is seen soon even with a long --interval.
        let now = std::time::Instant::now();
        if next < now {
            next = now;
        }
        while let Some(wait) = next.checked_duration_since(std::time::Instant::now()) {
            if wait.is_zero() || stop.load(Ordering::Relaxed) {
                break;
            }
            thread::sleep(wait.min(Duration::from_millis(100)));
        }
    }
}

impl Source for WinSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> io::Result<()> {
        if self.run.stop.load(Ordering::Relaxed) {
            // Detached: the final drain. The workers are ending, which is
            // no failure.
            while let Ok(item) = self.run.rx.try_recv() {
                out(item);
            }
            return Ok(());
        }
        if let Ok(why) = self.run.failed.try_recv() {
            return self.fall_back(&why, out);
        }
        match self.run.rx.recv_timeout(timeout) {
            Ok(item) => out(item),
            Err(RecvTimeoutError::Timeout) => return Ok(()),
            Err(RecvTimeoutError::Disconnected) => {
                // A worker that gave up says why before it ends.
                let why = self
                    .run
                    .failed
                    .try_recv()
                    .unwrap_or_else(|_| "its thread ended".to_owned());
                return self.fall_back(&why, out);
            }
        }
        while let Ok(item) = self.run.rx.try_recv() {
            out(item);
        }
        Ok(())
    }

    fn counters(&self) -> io::Result<KernelCounters> {
        let emitted = self.seen.load(Ordering::Relaxed);
        let dropped = self.lost_before + self.run.lost()?;
        Ok(KernelCounters {
            seen: emitted + dropped,
            emitted,
            dropped,
            ..KernelCounters::default()
        })
    }

    fn detach(&mut self) {
        self.run.halt();
    }
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use std::os::windows::process::CommandExt;
    use std::process::Command;
    use std::time::Instant;

    /// A source whose running mechanism (WMI polling) has just reported a
    /// failure, after delivering one item.
    fn failing(rest: Vec<Kind>) -> WinSource {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (fail_tx, failed) = crossbeam_channel::bounded(1);
        tx.send(Item::Undecodable("delivered before".into()))
            .unwrap();
        fail_tx.send("5 calls in a row: 0x80041001".into()).unwrap();
        let opts = Options::default();
        WinSource {
            info: info(Kind::WmiPoll, &opts),
            run: Running {
                kind: Kind::WmiPoll,
                rx,
                stop: Arc::new(AtomicBool::new(false)),
                etw: None,
                worker: None,
                failed,
            },
            seen: Arc::new(AtomicU64::new(0)),
            lost_before: 0,
            rest,
            opts,
        }
    }

    #[test]
    fn a_mechanism_failing_while_running_is_replaced_by_the_next() {
        let mut src = failing(vec![Kind::Snapshot]);
        let mut got = Vec::new();
        src.poll(Duration::ZERO, &mut |i| got.push(i)).unwrap();
        assert!(
            matches!(&got[..], [Item::Undecodable(s)] if s == "delivered before"),
            "{got:?}"
        );
        assert_eq!(src.run.kind, Kind::Snapshot);
        assert!(src.rest.is_empty());
        // The replacement delivers.
        let mut child = Command::new("cmd.exe")
            .raw_arg("/c ping -n 2 127.0.0.1 >nul")
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut found = false;
        while !found && Instant::now() < deadline {
            src.poll(Duration::from_millis(100), &mut |i| {
                found |= matches!(i, Item::Exec { ref ev, .. } if ev.pid == child.id());
            })
            .unwrap();
        }
        child.wait().unwrap();
        src.detach();
        assert!(found, "the snapshot never reported pid {}", child.id());
        // After detach the final drain is no failure.
        src.poll(Duration::ZERO, &mut |_| {}).unwrap();
    }

    #[test]
    fn with_nothing_left_the_failure_ends_the_run() {
        let mut src = failing(Vec::new());
        let mut n = 0;
        let e = src.poll(Duration::ZERO, &mut |_| n += 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "wmi-poll failed while running: 5 calls in a row: 0x80041001"
        );
        assert_eq!(n, 1, "what was delivered before the failure is kept");
    }
}
