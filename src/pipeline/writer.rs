//! The writer side: takes messages from the hand-off in kernel order, keeps the
//! process table current, enriches each exec (names, parent, privilege
//! change, hijackable check, exe hash), applies the filters and hands what
//! is shown to the sink.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use super::handoff::{Receiver, RecvError};
use super::{Batch, Config, Msg, STOP_DURATION, Stop, io_or_stop};
use crate::enrich::Enricher;
use crate::enrich::hash_pool::HashService;
use crate::enrich::hijack_pool::HijackService;
use crate::enrich::table::ProcessTable;
use crate::event::Event;
use crate::event::{HashInfo, LossInfo, LossPlace};
use crate::filter::Filter;
use crate::sink::Sink;
use crate::source::{Decoder, Item};

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
    if let Some(set) = super::rules::load(&cfg.rules, cfg.rules_strict).map_err(io::Error::other)? {
        w.use_rules(set);
    }
    for item in items {
        w.handle_item(item)?;
    }
    w.finish_hashes(FINISH_WAIT)?;
    w.sink.flush()?;
    Ok((w.written, w.filtered))
}

/// How long the end of a run waits for pending hashes before writing them
/// as not done: short, so a stuck hasher cannot delay exit much.
const FINISH_WAIT: Duration = Duration::from_secs(1);
/// Longest the writer sleeps while hashes are pending, so their `hash`
/// events follow soon after the hasher is done.
const HASH_WAIT: Duration = Duration::from_millis(20);

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
    pub hijack: Option<HijackService>,
    /// `None` with `--no-hash`.
    pub hasher: Option<HashService>,
    /// Late hashes taken from the hasher, reused between polls.
    late: Vec<HashInfo>,
    /// Decodes raw records (see `source::Decoder`); `None` when the source
    /// hands over decoded items.
    pub decoder: Option<Box<dyn Decoder>>,
    /// Exec events handed to the sink, and those the filters hid.
    pub written: u64,
    pub filtered: u64,
    /// Raw records that could not be decoded.
    pub undecodable: u64,
    /// The destination, reopened on SIGHUP (see signals.rs).
    pub output: Option<crate::sink::Output>,
    /// The run's start event, repeated into a reopened file.
    pub start: Option<crate::event::StartInfo>,
    /// Evaluates the `--rules` on each exec; `None` without them.
    pub detector: Option<crate::detect::Detector>,
    /// `--rules`, read again on SIGHUP.
    pub rule_paths: Vec<std::path::PathBuf>,
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
            hijack: cfg.hijack_check.then(HijackService::new),
            hasher: cfg.hash.map(HashService::new),
            late: Vec::new(),
            decoder: None,
            written: 0,
            filtered: 0,
            undecodable: 0,
            output: None,
            start: None,
            detector: None,
            rule_paths: cfg.rules.clone(),
        }
    }

    /// Handles messages until the reader is done. Returns false if the
    /// output failed (broken pipe: a clean end; anything else: an error).
    pub fn run(&mut self, rx: &Receiver, stop: &Stop, deadline: Option<Instant>) -> bool {
        let mut last_maintenance = Instant::now();
        loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.request(STOP_DURATION);
            }
            if !self.take_reopen(stop) {
                return false;
            }
            if last_maintenance.elapsed() >= Duration::from_secs(1) {
                self.table.maintain();
                last_maintenance = Instant::now();
            }
            // Sleep until the next batch; wake up only as often as the
            // deadline and the table's upkeep need (the reader's end of the
            // run, or of the pipe, wakes us at once).
            let idle = match &self.hasher {
                Some(h) if h.pending() > 0 => HASH_WAIT,
                _ => IDLE_WAIT,
            };
            let wait = deadline.map_or(idle, |d| {
                d.saturating_duration_since(Instant::now())
                    .clamp(Duration::from_millis(1), idle)
            });
            let mut batch = match rx.recv_timeout(wait) {
                Ok(batch) => batch,
                // Idle: retry what a failing output could not take, and
                // write the hashes that have come in since.
                Err(RecvError::Timeout) => {
                    let res = self.write_late_hashes().and_then(|()| self.sink.flush());
                    if !io_or_stop(res, stop) {
                        return false;
                    }
                    continue;
                }
                Err(RecvError::Disconnected) => {
                    return io_or_stop(self.finish_hashes(FINISH_WAIT), stop);
                }
            };
            let Batch { msgs, bytes, .. } = &mut batch;
            for msg in msgs.drain(..) {
                if !io_or_stop(self.handle(msg, bytes), stop) {
                    return false;
                }
            }
            rx.recycle(batch);
            if !io_or_stop(self.write_late_hashes(), stop) {
                return false;
            }
            // Flush whenever we have caught up, so output is live but
            // batched under load.
            if rx.is_empty() && !io_or_stop(self.sink.flush(), stop) {
                return false;
            }
        }
    }

    /// Writes the `hash` events of hashes finished since the last call.
    fn write_late_hashes(&mut self) -> io::Result<()> {
        if let Some(h) = &mut self.hasher {
            h.poll(&mut self.late);
        }
        self.write_late()
    }

    /// Waits up to `wait` for the hashes still pending and writes a `hash`
    /// event for each (those not done say so).
    fn finish_hashes(&mut self, wait: Duration) -> io::Result<()> {
        if let Some(h) = &mut self.hasher {
            h.finish(wait, &mut self.late);
        }
        self.write_late()
    }

    fn write_late(&mut self) -> io::Result<()> {
        for h in self.late.drain(..) {
            self.sink.write_event(&Event::Hash(h))?;
        }
        Ok(())
    }

    /// Applies one message to the table and writes what is to be shown.
    /// `bytes` holds the batch's raw records.
    fn handle(&mut self, msg: Msg, bytes: &[u8]) -> io::Result<()> {
        match msg {
            Msg::Item(item) => self.handle_item(item),
            Msg::Raw { start, len, .. } => {
                let rec = &bytes[start..start + len];
                let item = match &mut self.decoder {
                    Some(d) => d.decode(rec),
                    None => Item::Undecodable("a raw record without a decoder".into()),
                };
                self.handle_item(item)
            }
            Msg::Loss(l) => self.sink.write_event(&Event::Loss(l)),
            Msg::Stats(c) => self.write_stats(*c),
        }
    }

    fn handle_item(&mut self, item: Item) -> io::Result<()> {
        match item {
            Item::Fork(f) => self.table.fork(f),
            Item::Exec {
                mut ev,
                start_ns,
                parent_start_ns,
            } => {
                self.enricher.enrich(&mut ev);
                let key = self.table.exec(&mut ev, start_ns, parent_start_ns);
                if let Some(h) = &mut self.hijack {
                    h.check(&mut ev);
                }
                if let Some(d) = &mut self.detector {
                    d.detect(&mut ev);
                }
                let shown = self.filter.matches(&ev);
                let written = if shown {
                    // Only for what is shown: a cache miss reads the file.
                    if let Some(h) = &mut self.hasher {
                        h.submit(&mut ev);
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
            Item::Exit(x) => {
                let exited = self.table.exit(&x);
                if self.exits && exited.shown {
                    self.sink
                        .write_event(&Event::Exit(Box::new(exited.event(&x))))?;
                }
            }
            // Decoded here (raw records): counted and reported in-band at
            // once, like the reader does for the records it decodes.
            Item::Undecodable(why) => {
                self.undecodable += 1;
                eprintln!("procwatch: dropped an undecodable record: {why}");
                self.sink.write_event(&Event::Loss(LossInfo {
                    time: SystemTime::now(),
                    place: LossPlace::Undecodable,
                    dropped: 1,
                    total: self.undecodable,
                }))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExecEvent;
    use crate::sink::testutil::SharedBuf;
    use crate::sink::{Format, make_sink};
    use crate::source::RecordKind;
    use clap::Parser;

    /// Decodes `b"exec:<pid>"` into an exec; anything else is undecodable.
    struct ToyDecoder;

    impl Decoder for ToyDecoder {
        fn decode(&mut self, rec: &[u8]) -> Item {
            match rec.strip_prefix(b"exec:") {
                Some(pid) => {
                    let pid: u32 = std::str::from_utf8(pid).unwrap().parse().unwrap();
                    let mut ev =
                        ExecEvent::new(SystemTime::now(), pid, Some(1), format!("{pid}:1"));
                    ev.argv = Some(vec![b"/bin/toy".to_vec()]);
                    Item::Exec {
                        ev: Box::new(ev),
                        start_ns: u64::from(pid),
                        parent_start_ns: 1,
                    }
                }
                None => Item::Undecodable(format!("{} bytes of junk", rec.len())),
            }
        }
    }

    #[test]
    fn raw_records_are_decoded_in_order_and_junk_is_reported_in_band() {
        let cfg = crate::cli::Cli::try_parse_from(["procwatch", "--format", "jsonl", "--no-hash"])
            .unwrap()
            .config()
            .unwrap();
        let buf = SharedBuf::default();
        let mut sink = make_sink(
            Format::Jsonl,
            Box::new(buf.clone()),
            true,
            Default::default(),
        );
        let mut w = Writer::new(sink.as_mut(), &cfg);
        w.decoder = Some(Box::new(ToyDecoder));
        let mut batch = Batch::default();
        for rec in [&b"exec:4000001"[..], b"\xff\xfe", b"exec:4000002"] {
            let start = batch.bytes.len();
            batch.bytes.extend_from_slice(rec);
            batch.msgs.push(Msg::Raw {
                kind: RecordKind::Exec,
                start,
                len: rec.len(),
            });
        }
        let Batch { msgs, bytes, .. } = &mut batch;
        for msg in msgs.drain(..) {
            w.handle(msg, bytes).unwrap();
        }
        w.sink.flush().unwrap();
        assert_eq!((w.written, w.undecodable), (2, 1));
        let lines: Vec<serde_json::Value> = buf
            .string()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let what: Vec<(String, u64)> = lines
            .iter()
            .map(|v| {
                let n = v["pid"].as_u64().or(v["total"].as_u64()).unwrap();
                (v["event"].as_str().unwrap().to_owned(), n)
            })
            .collect();
        assert_eq!(
            what,
            [
                ("exec".to_owned(), 4_000_001),
                ("loss".to_owned(), 1),
                ("exec".to_owned(), 4_000_002)
            ]
        );
        assert_eq!(lines[1]["place"], "undecodable");
        assert_eq!(lines[1]["dropped"], 1);
    }
}
