//! The writer side: takes messages from the queue in kernel order, keeps the
//! process table current, enriches each exec (names, parent, privilege
//! change, hijackable check, exe hash), applies the filters and hands what
//! is shown to the sink.

use std::io;
use std::time::{Duration, Instant};

use super::handoff::{Receiver, RecvError};
use super::{Config, Msg, Queue, STOP_DURATION, Stop, io_or_stop};
use crate::enrich::Enricher;
use crate::enrich::hash::ExeHasher;
use crate::enrich::hijack::HijackChecker;
use crate::enrich::table::ProcessTable;
use crate::event::Event;
use crate::filter::Filter;
use crate::sink::Sink;
use crate::source::Item;

/// Runs the writer stage alone over `items`, as if the reader had handed
/// them over in one go, then flushes: the per-exec cost of everything after
/// the kernel, without a kernel source (`cargo bench --bench writer`).
/// Returns the exec events written and filtered.
pub fn replay(
    cfg: &Config,
    sink: &mut dyn Sink,
    items: impl IntoIterator<Item = Item>,
) -> io::Result<(u64, u64)> {
    let mut w = Writer::new(sink, cfg);
    for item in items {
        w.handle(Msg::Item(item))?;
    }
    w.sink.flush()?;
    Ok((w.written, w.filtered))
}

/// Longest the writer sleeps without a batch: it still checks the
/// `--duration` deadline and does the table's upkeep (once a second).
const IDLE_WAIT: Duration = Duration::from_millis(250);

/// Most processes the table holds (see README for the memory this takes).
pub const TABLE_CAP: usize = 65_536;

/// What the writer needs besides the queue.
pub struct Writer<'a> {
    pub sink: &'a mut dyn Sink,
    pub enricher: Enricher,
    pub table: ProcessTable,
    /// Emit exit events (`--exits`).
    pub exits: bool,
    pub filter: Filter,
    /// `None` with `--no-hijack-check`.
    pub hijack: Option<HijackChecker>,
    /// `None` with `--no-hash`.
    pub hasher: Option<ExeHasher>,
    /// Exec events handed to the sink, and those the filters hid.
    pub written: u64,
    pub filtered: u64,
}

impl<'a> Writer<'a> {
    /// A writer with a table seeded from /proc.
    pub fn new(sink: &'a mut dyn Sink, cfg: &Config) -> Self {
        let mut enricher = Enricher::new();
        let mut table = ProcessTable::new(TABLE_CAP);
        table.seed_from_proc(enricher.names());
        Writer {
            sink,
            enricher,
            table,
            exits: cfg.exits,
            filter: cfg.filter.clone(),
            hijack: cfg.hijack_check.then(HijackChecker::new),
            hasher: cfg.hash_max_size.map(ExeHasher::new),
            written: 0,
            filtered: 0,
        }
    }

    /// Handles messages until the reader is done. Returns false if the
    /// output failed (broken pipe: a clean end; anything else: an error).
    pub fn run(
        &mut self,
        rx: &Receiver,
        queue: &Queue,
        stop: &Stop,
        deadline: Option<Instant>,
    ) -> bool {
        let mut last_maintenance = Instant::now();
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.request(STOP_DURATION);
            }
            if last_maintenance.elapsed() >= Duration::from_secs(1) {
                self.table.maintain();
                last_maintenance = Instant::now();
            }
            // Sleep until the next batch; wake up only as often as the
            // deadline and the table's upkeep need (the reader's end of the
            // run, or of the pipe, wakes us at once).
            let wait = deadline.map_or(IDLE_WAIT, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), IDLE_WAIT)
            });
            let batch = match rx.recv_timeout(wait) {
                Ok(batch) => {
                    queue.release(batch.len());
                    batch
                }
                Err(RecvError::Timeout) => continue,
                Err(RecvError::Disconnected) => return true,
            };
            let mut batch = batch;
            for msg in batch.drain(..) {
                if !io_or_stop(self.handle(msg), stop) {
                    return false;
                }
            }
            rx.recycle(batch);
            // Flush whenever we have caught up, so output is live but
            // batched under load.
            if rx.is_empty() && !io_or_stop(self.sink.flush(), stop) {
                return false;
            }
        }
    }

    /// Applies one message to the table and writes what is to be shown.
    fn handle(&mut self, msg: Msg) -> io::Result<()> {
        match msg {
            Msg::Item(Item::Fork(f)) => self.table.fork(f),
            Msg::Item(Item::Exec {
                mut ev,
                start_ns,
                parent_start_ns,
            }) => {
                self.enricher.enrich(&mut ev);
                let key = self.table.exec(&mut ev, start_ns, parent_start_ns);
                if let Some(h) = &mut self.hijack {
                    h.check(&mut ev);
                }
                let shown = self.filter.matches(&ev);
                let written = if shown {
                    // Only for what is shown: a cache miss reads the file.
                    if let Some(h) = &mut self.hasher {
                        h.hash(&mut ev);
                    }
                    self.written += 1;
                    let event = Event::Exec(ev);
                    let res = self.sink.write_event(&event);
                    let Event::Exec(back) = event else {
                        unreachable!("built as an exec just above")
                    };
                    ev = back;
                    res
                } else {
                    self.filtered += 1;
                    Ok(())
                };
                // The process's new image takes the event's fields: after
                // the write, so nothing is copied.
                self.table.commit_exec(key, &mut ev, shown);
                written?;
            }
            Msg::Item(Item::Exit(x)) => {
                let exited = self.table.exit(&x);
                if self.exits && exited.shown {
                    self.sink
                        .write_event(&Event::Exit(Box::new(exited.event(&x))))?;
                }
            }
            // The reader counts these and never forwards them.
            Msg::Item(Item::Undecodable(_)) => {}
            Msg::Loss(l) => self.sink.write_event(&Event::Loss(l))?,
        }
        Ok(())
    }
}
