//! The reader thread: drains the source into the bounded queue as fast as it
//! can and never blocks on output. When the queue is full a message is
//! dropped and counted; drops (the kernel's and the queue's) are reported
//! in-band by `loss` events as soon as there is room.

use std::io;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Sender, TrySendError};

use super::{Msg, STOP_ERROR, Stop};
use crate::event::{LossInfo, LossPlace};
use crate::source::{Item, KernelCounters, Source};

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

/// Runs until `stop` is requested, then detaches and drains what is left.
pub fn read_loop(
    mut source: Box<dyn Source>,
    tx: Sender<Msg>,
    stop: &Stop,
    poll: Duration,
    pause: Duration,
) -> ReaderTotals {
    let mut r = Reader {
        tx,
        totals: ReaderTotals::default(),
        reported: [0; 4],
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
    tx: Sender<Msg>,
    totals: ReaderTotals,
    /// Drops already reported, per place: kernel, kernel aux, queue,
    /// undecodable.
    reported: [u64; 4],
}

impl Reader {
    fn push(&mut self, item: Item) {
        let (msg, is_exec) = match item {
            Item::Exec {
                ev,
                start_ns,
                parent_start_ns,
            } => {
                self.totals.received += 1;
                (
                    Msg::Exec {
                        ev,
                        start_ns,
                        parent_start_ns,
                    },
                    true,
                )
            }
            Item::Fork(f) => (Msg::Fork(f), false),
            Item::Exit(x) => (Msg::Exit(x), false),
            Item::Undecodable(why) => {
                self.totals.undecodable += 1;
                eprintln!("procwatch: dropped an undecodable record: {why}");
                return;
            }
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(msg) {
            if is_exec {
                self.totals.queue_dropped += 1;
            } else {
                self.totals.aux_queue_dropped += 1;
            }
        }
    }

    /// Sends loss events for drops not yet reported. Normally it only tries
    /// (a full queue retries next round); at the end it waits for room.
    fn report_losses(&mut self, source: &dyn Source, last: bool) {
        match source.counters() {
            Ok(k) => self.totals.kernel = k,
            Err(e) => eprintln!("procwatch: cannot read the kernel counters: {e}"),
        }
        let t = &self.totals;
        let totals = [
            (LossPlace::Kernel, t.kernel.dropped),
            (LossPlace::KernelAux, t.kernel.aux_dropped),
            (
                LossPlace::Queue,
                t.queue_dropped + t.aux_queue_dropped + t.undecodable,
            ),
        ];
        for (i, (place, total)) in totals.into_iter().enumerate() {
            if total > self.reported[i]
                && self.send_loss(place, total - self.reported[i], total, last)
            {
                self.reported[i] = total;
            }
        }
    }

    fn send_loss(&self, place: LossPlace, dropped: u64, total: u64, wait: bool) -> bool {
        let msg = Msg::Loss(LossInfo {
            time: SystemTime::now(),
            place,
            dropped,
            total,
        });
        if wait {
            // The writer may be gone (broken pipe); then nobody needs it.
            self.tx.send(msg).is_ok()
        } else {
            self.tx.try_send(msg).is_ok()
        }
    }
}
