//! The reader thread: drains the source into the hand-off as fast as it can
//! and never blocks on output. The hand-off holds at most `--queue-len`
//! messages and `--queue-bytes` bytes (its bound, see `handoff`); a batch
//! that does not fit is dropped and every message in it counted. Losses at
//! each of the seven places (see [`LossPlace`]) are reported in-band by
//! `loss` events in a later batch that fits.
//!
//! Messages travel in batches (one per drain of the source): handing them
//! over one by one woke the writer for each, and those context switches
//! cost more than the work itself.

use std::io;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use std::sync::atomic::Ordering;

use super::handoff::{SendError, Sender};
use super::{Batch, Msg, STOP_ERROR, Stop};
use crate::event::{Counters, LossInfo, LossPlace};
use crate::source::{Item, KernelCounters, RecordKind, Source};

/// Most messages in one batch.
pub const BATCH_MAX: usize = 512;

/// What the reader reports when it ends.
#[derive(Debug, Default)]
pub struct ReaderTotals {
    pub kernel: KernelCounters,
    /// Exec records read from the source.
    pub received: u64,
    /// Exec records dropped because the queue was full.
    pub queue_dropped: u64,
    /// Fork/exit records dropped because the queue was full.
    pub aux_queue_dropped: u64,
    pub undecodable: u64,
    pub error: Option<io::Error>,
}

impl ReaderTotals {
    /// The counters this side knows; the writer adds its own.
    pub fn counters(&self) -> Counters {
        let k = &self.kernel;
        Counters {
            seen: k.seen,
            emitted: k.emitted,
            dropped: k.dropped,
            truncated: k.truncated,
            received: self.received,
            queue_dropped: self.queue_dropped + self.undecodable,
            aux_dropped: k.aux_dropped + self.aux_queue_dropped,
            netlink_enobufs: k.netlink_enobufs,
            proc_read_failures: k.proc_read_failures,
            too_late: k.too_late,
            ..Counters::default()
        }
    }
}

/// Runs until `stop` is requested, then detaches and drains what is left.
pub fn read_loop(
    mut source: Box<dyn Source>,
    raw: bool,
    tx: Sender,
    stop: &Stop,
    poll: Duration,
    pause: Duration,
) -> ReaderTotals {
    let batch = tx.empty_batch(BATCH_MAX);
    let mut r = Reader {
        tx,
        batch,
        totals: ReaderTotals::default(),
        reported: [0; 8],
        stats_refused: false,
    };
    let paused_until = Instant::now() + pause;
    while !stop.requested() && Instant::now() < paused_until {
        thread::sleep(Duration::from_millis(10));
    }
    while !stop.requested() {
        if let Err(e) = r.poll(source.as_mut(), raw, poll) {
            r.totals.error = Some(e);
            stop.request(STOP_ERROR);
            break;
        }
        r.report_losses(source.as_ref());
        r.send(false);
        if stop.stats.swap(false, Ordering::SeqCst) {
            // In the stream, after what was read so far: the writer's
            // counters then match the reader's exactly. A full queue
            // refuses it like any batch; it is then sent at the next poll.
            let counters = r.totals.counters();
            r.batch.msgs.push(Msg::Stats(Box::new(counters)));
            r.send(false);
            if std::mem::take(&mut r.stats_refused) {
                stop.stats.store(true, Ordering::SeqCst);
            }
        }
    }
    // Detach first, then drain what is left, so the final counters add up:
    // received == emitted.
    source.detach();
    if r.totals.error.is_none()
        && let Err(e) = r.poll(source.as_mut(), raw, Duration::ZERO)
    {
        r.totals.error = Some(e);
    }
    // The last batch goes past the bound, so nothing in it is dropped.
    r.report_losses(source.as_ref());
    r.send(true);
    r.totals
}

struct Reader {
    tx: Sender,
    batch: Batch,
    totals: ReaderTotals,
    /// Drops already reported, per place (in [`Reader::place_index`]
    /// order): kernel, kernel aux, queue, undecodable, netlink overrun,
    /// `/proc` read failure, too late.
    reported: [u64; 8],
    /// A `Msg::Stats` did not fit in the queue.
    stats_refused: bool,
}

impl Reader {
    /// One poll of the source: raw records (for the writer's decoder) or
    /// decoded items.
    fn poll(&mut self, source: &mut dyn Source, raw: bool, timeout: Duration) -> io::Result<()> {
        if raw {
            source.poll_raw(timeout, &mut |kind, rec| self.push_raw(kind, rec))
        } else {
            source.poll(timeout, &mut |item| self.push(item))
        }
    }

    fn push_raw(&mut self, kind: RecordKind, rec: &[u8]) {
        if kind == RecordKind::Exec {
            self.totals.received += 1;
        }
        let start = self.batch.bytes.len();
        self.batch.bytes.extend_from_slice(rec);
        self.batch.msgs.push(Msg::Raw {
            kind,
            start,
            len: rec.len(),
        });
        if self.batch.len() >= BATCH_MAX {
            self.send(false);
        }
    }

    fn push(&mut self, item: Item) {
        match &item {
            Item::Exec { .. } => self.totals.received += 1,
            Item::Fork(_) | Item::Exit(_) => {}
            Item::Undecodable(why) => {
                self.totals.undecodable += 1;
                eprintln!("procwatch: dropped an undecodable record: {why}");
                return;
            }
        }
        self.batch.msgs.push(Msg::Item(item));
        if self.batch.len() >= BATCH_MAX {
            self.send(false);
        }
    }

    /// Hands the batch to the writer. Normally only tries: a full hand-off
    /// drops the batch and counts what was in it (loss events in a later
    /// batch report it). The last batch (`last`) is queued past the bound
    /// instead, since no later batch could report its loss.
    fn send(&mut self, last: bool) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::replace(&mut self.batch, self.tx.empty_batch(BATCH_MAX));
        batch.weigh();
        let sent = if last {
            self.tx.send_past_bound(batch)
        } else {
            self.tx.try_send(batch)
        };
        // The writer may be gone (broken pipe); then nobody needs it.
        if let Err(SendError::Full(mut batch)) = sent {
            for msg in batch.msgs.drain(..) {
                match msg {
                    Msg::Item(Item::Exec { .. })
                    | Msg::Raw {
                        kind: RecordKind::Exec,
                        ..
                    } => self.totals.queue_dropped += 1,
                    Msg::Item(_) | Msg::Raw { .. } => self.totals.aux_queue_dropped += 1,
                    // A lost loss event is sent again: its place's count
                    // was not marked as reported.
                    Msg::Loss(l) => self.unreport(l.place, l.dropped),
                    Msg::Stats(_) => self.stats_refused = true,
                }
            }
        }
    }

    fn place_index(place: LossPlace) -> usize {
        match place {
            LossPlace::Kernel => 0,
            LossPlace::KernelAux => 1,
            LossPlace::Queue => 2,
            LossPlace::Undecodable => 3,
            LossPlace::NetlinkOverrun => 4,
            LossPlace::ProcRead => 5,
            LossPlace::TooLate => 6,
            // The writer's (the syslog sinks'): a slot all the same.
            LossPlace::Syslog => 7,
        }
    }

    fn unreport(&mut self, place: LossPlace, dropped: u64) {
        self.reported[Self::place_index(place)] -= dropped;
    }

    /// Adds loss events to the batch for drops not yet reported.
    fn report_losses(&mut self, source: &dyn Source) {
        match source.counters() {
            Ok(k) => self.totals.kernel = k,
            Err(e) => eprintln!("procwatch: cannot read the kernel counters: {e}"),
        }
        let t = &self.totals;
        let totals = [
            (LossPlace::Kernel, t.kernel.dropped),
            (LossPlace::KernelAux, t.kernel.aux_dropped),
            (LossPlace::Queue, t.queue_dropped + t.aux_queue_dropped),
            (LossPlace::Undecodable, t.undecodable),
            (LossPlace::NetlinkOverrun, t.kernel.netlink_enobufs),
            (LossPlace::ProcRead, t.kernel.proc_read_failures),
            (LossPlace::TooLate, t.kernel.too_late),
        ];
        for (place, total) in totals {
            let i = Self::place_index(place);
            if total > self.reported[i] {
                let dropped = total - self.reported[i];
                self.reported[i] = total;
                self.batch.msgs.push(Msg::Loss(LossInfo {
                    time: SystemTime::now(),
                    place,
                    dropped,
                    total,
                }));
            }
        }
    }
}
