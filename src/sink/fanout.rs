//! One [`Sink`] that writes every event to several: the main output and
//! each `--syslog` destination.
//!
//! A destination that loses messages after taking them (a full queue, a
//! receiver still down at exit) says so through [`Sink::take_lost`]; the
//! fan-out turns that into `loss` events written to every sink, at most
//! once a second and always before the `stop` event, so the main output
//! accounts for every message syslog did not get.

use std::io;
use std::time::{Duration, Instant, SystemTime};

use super::Sink;
use crate::event::{Event, LossInfo, LossPlace};

/// Least time between two loss reports: during an outage every event
/// overflows, and a loss line per event would double the output.
const REPORT_EVERY: Duration = Duration::from_secs(1);

pub struct Fanout {
    sinks: Vec<Box<dyn Sink>>,
    /// Losses reported so far, per place.
    totals: Vec<(LossPlace, u64)>,
    last_report: Instant,
}

impl Fanout {
    /// Writes to `sinks`, in this order; the first one's errors are the
    /// ones that count (the others report theirs as losses).
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Fanout {
        Fanout {
            sinks,
            totals: Vec::new(),
            last_report: Instant::now(),
        }
    }

    fn write_all(&mut self, ev: &Event) -> io::Result<()> {
        let mut res = Ok(());
        for s in &mut self.sinks {
            let r = s.write_event(ev);
            if res.is_ok() {
                res = r;
            }
        }
        res
    }

    /// Writes a `loss` event for each place that lost messages since the
    /// last report.
    fn report_losses(&mut self) -> io::Result<()> {
        self.last_report = Instant::now();
        let mut new = Vec::new();
        for s in &mut self.sinks {
            if let Some(lost) = s.take_lost() {
                new.push(lost);
            }
        }
        for (place, dropped) in new {
            let i = match self.totals.iter().position(|(p, _)| *p == place) {
                Some(i) => i,
                None => {
                    self.totals.push((place, 0));
                    self.totals.len() - 1
                }
            };
            self.totals[i].1 += dropped;
            let ev = Event::Loss(LossInfo {
                time: SystemTime::now(),
                place,
                dropped,
                total: self.totals[i].1,
            });
            self.write_all(&ev)?;
        }
        Ok(())
    }

    fn report_due(&mut self) -> io::Result<()> {
        if self.last_report.elapsed() >= REPORT_EVERY {
            self.report_losses()?;
        }
        Ok(())
    }
}

impl Sink for Fanout {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        if let Event::Stop(_) = ev {
            // Everything before the stop event is delivered, or counted in
            // a loss event that precedes it.
            // One wait for all: the queues empty in parallel.
            let deadline = Instant::now() + super::syslog::DRAIN_WAIT;
            for s in &mut self.sinks {
                s.drain(deadline.saturating_duration_since(Instant::now()));
            }
            self.report_losses()?;
            return self.write_all(ev);
        }
        self.write_all(ev)?;
        self.report_due()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.report_due()?;
        let mut res = Ok(());
        for s in &mut self.sinks {
            let r = s.flush();
            if res.is_ok() {
                res = r;
            }
        }
        res
    }

    fn reopened(&mut self, empty: bool) {
        for s in &mut self.sinks {
            s.reopened(empty);
        }
    }
}
