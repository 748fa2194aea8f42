//! The signals that do not end the run, and what becomes of the output at
//! its end.
//!
//! * SIGHUP with `-o`: the writer flushes, reopens the path with the same
//!   checks as at start (logrotate's `create`: the old file was renamed) and
//!   writes a `start` line with `"continuation": true` into the new file.
//!   Writing to standard output, SIGHUP means the terminal went away: the
//!   run ends like on SIGTERM, with its stop event.
//! * SIGUSR1: a `stats` event with the counters so far, in the stream.
//!
//! Neither loses an event: the flags are only read between events.

use std::io;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::writer::Writer;
use super::{Stop, io_or_stop};
use crate::event::{Counters, Event, StatsInfo};
use crate::sink::{Format, Output};

/// Catches SIGINT and SIGTERM (end the run; a second one ends it at once,
/// in case a flush hangs), SIGHUP and SIGUSR1. Done before attaching, so a
/// signal sent meanwhile is kept for later instead of killing procwatch.
pub(super) fn register(stop: &Stop) -> io::Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        use std::sync::Arc;
        // Each ending signal gets two handlers, and one arriving between
        // their installs would be swallowed: hold the signals blocked until
        // both are in place, then take any pending one with both.
        let blocked = Blocked::new(&[SIGINT, SIGTERM, SIGHUP, SIGUSR1])?;
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop.flag))?;
            signal_hook::flag::register(sig, Arc::clone(&stop.flag))?;
        }
        signal_hook::flag::register(SIGHUP, Arc::clone(&stop.reopen))?;
        signal_hook::flag::register(SIGUSR1, Arc::clone(&stop.stats))?;
        drop(blocked);
    }
    #[cfg(not(unix))]
    let _ = stop;
    Ok(())
}

/// Signals blocked in the calling thread until dropped.
#[cfg(unix)]
struct Blocked(libc::sigset_t);

#[cfg(unix)]
impl Blocked {
    fn new(sigs: &[libc::c_int]) -> io::Result<Blocked> {
        // SAFETY: sigemptyset/sigaddset initialise the set they are given;
        // pthread_sigmask only changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &sig in sigs {
                libc::sigaddset(&mut set, sig);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            // Unblock only what was not blocked before.
            let mut unblock: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut unblock);
            for &sig in sigs {
                if libc::sigismember(&old, sig) == 0 {
                    libc::sigaddset(&mut unblock, sig);
                }
            }
            Ok(Blocked(unblock))
        }
    }
}

#[cfg(unix)]
impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restores this thread's mask for the signals it blocked.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
    }
}

impl Writer<'_> {
    /// Adds the writer's counters (and the output's failures) to the
    /// reader's.
    pub fn add_counters(&self, c: &mut Counters) {
        c.written = self.written;
        c.filtered = self.filtered;
        c.queue_dropped += self.undecodable;
        if let Some(out) = &self.output {
            let s = out.stats();
            c.write_errors = s.write_errors;
            c.output_dropped = s.lines_dropped;
        }
    }

    /// Writes the `stats` event for the reader's counters `c`.
    pub(super) fn write_stats(&mut self, mut c: Counters) -> io::Result<()> {
        self.add_counters(&mut c);
        self.sink.write_event(&Event::Stats(StatsInfo {
            time: SystemTime::now(),
            counters: c,
        }))?;
        self.sink.flush()
    }

    /// Acts on a pending SIGHUP. Returns false if the output failed.
    pub(super) fn take_reopen(&mut self, stop: &Stop) -> bool {
        if !stop.reopen.swap(false, Ordering::SeqCst) {
            return true;
        }
        let rules = self.reload_rules();
        let Some(out) = self.output.clone() else {
            return true;
        };
        if out.is_stdout() {
            if rules {
                return self.write_continuation(stop);
            }
            stop.flag.store(true, Ordering::SeqCst);
            return true;
        }
        if !io_or_stop(self.sink.flush(), stop) {
            return false;
        }
        match out.reopen() {
            Ok(empty) => {
                eprintln!("procwatch: SIGHUP: reopened {}", out.name());
                self.sink.reopened(empty);
                self.write_continuation(stop)
            }
            Err(e) => {
                eprintln!("procwatch: SIGHUP: {e}; still writing to the file opened before");
                // The rules in force changed: say so in the stream.
                !rules || self.write_continuation(stop)
            }
        }
    }

    /// Writes the run's `start` line again, with `"continuation": true`
    /// and the rules now in force, and flushes.
    fn write_continuation(&mut self, stop: &Stop) -> bool {
        if let Some(start) = &self.start {
            let mut start = start.clone();
            start.time = SystemTime::now();
            start.continuation = true;
            if !io_or_stop(self.sink.write_event(&Event::Start(start)), stop) {
                return false;
            }
        }
        io_or_stop(self.sink.flush(), stop)
    }
}

/// At the end of the run: if the output could not take everything (its
/// stop event included: `stop_written` false), says so on stderr with the
/// stop counters, and
/// returns the message for a non-zero exit. Also when writes failed on the
/// way, even if the output recovered.
pub(super) fn report_unwritten(
    output: &Output,
    stop: &Event,
    stop_written: bool,
    format: Format,
) -> Option<String> {
    let stats = output.stats();
    let pending = output.pending();
    // A broken pipe is the reader leaving (`procwatch | head`): a clean end.
    let broken_pipe = matches!(stop, Event::Stop(s) if s.reason == "broken_pipe");
    if !broken_pipe && (!stop_written || pending > 0 || output.mid_line()) {
        eprintln!(
            "procwatch: {} could not take the last {pending} bytes{}",
            output.name(),
            if output.mid_line() {
                "; it ends with a partial line (the next run starts a new line)"
            } else {
                ""
            }
        );
        // CSV already sent its counters to stderr.
        if let (Event::Stop(s), false) = (stop, format == Format::Csv) {
            eprintln!("{}", crate::sink::csv::stop_message(s));
        }
    }
    (stats.write_errors > 0 || stats.lines_dropped > 0).then(|| {
        format!(
            "{} failed writes to {} ({} lines dropped)",
            stats.write_errors,
            output.name(),
            stats.lines_dropped
        )
    })
}
