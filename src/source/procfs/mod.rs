//! The unprivileged `/proc` scanner: needs no rights at all, and sees what
//! the current user may see of other users' processes (everything, unless
//! `/proc` is mounted with `hidepid`).
//!
//! It scans on an interval, and at once when inotify reports activity in
//! directories that usually precede an exec. A process that lives and dies
//! between two scans is missed; the miss window is stated in the start
//! event, and processes caught too late to read are counted.

mod inotify;
mod scan;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::convert::{Context, NEVER_AVAILABLE};
use super::observed::{self, Observed};
use super::worker::{LateSource, Outlet, Tally, Worker};
use super::{AttachError, LateOptions, SourceInfo};
use crate::event::Coverage;
use crate::linux::clock::{BootClock, SyncedClock};
use crate::linux::proc_reader;

/// After an inotify trigger, scans are at least this far apart, so a busy
/// directory cannot turn the scanner into a busy loop.
const MIN_GAP: Duration = Duration::from_millis(5);
/// Upper bound on one wait, so a stop request is noticed promptly.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The /proc scanner; [`ProcfsSource::attach`] starts it.
pub struct ProcfsSource;

impl ProcfsSource {
    /// Takes a first inventory of `/proc` (not reported: those processes
    /// predate procwatch), sets up the inotify triggers and starts scanning.
    pub fn attach(opts: &LateOptions) -> Result<LateSource, AttachError> {
        std::fs::read("/proc/self/stat").map_err(|e| AttachError {
            what: format!("cannot read /proc: {e}"),
            hint: "mount procfs at /proc".into(),
        })?;
        let clock = SyncedClock::new().map_err(|e| AttachError {
            what: format!("cannot read the clocks: {e}"),
            hint: "this should not happen on Linux".into(),
        })?;
        let dirs = inotify::directories(std::env::var_os("PATH").as_deref(), &opts.watch);
        let triggers = inotify::Triggers::new(&dirs, &opts.watch).map_err(|e| AttachError {
            what: format!("cannot create an inotify instance: {e}"),
            hint: "raise fs.inotify.max_user_instances".into(),
        })?;
        let hidden = hidepid();
        if let Some(h) = &hidden {
            eprintln!("procwatch: {h}");
        }
        let mut table = scan::Table::default();
        table.scan("/proc", false, &mut |_| {});
        let interval = opts.interval;
        let watched = triggers.watched.len();
        let worker = Worker::spawn("procwatch-procfs", move |out| {
            scan_loop(&out, table, &triggers, interval)
        })
        .map_err(|e| AttachError {
            what: format!("cannot start the scanner thread: {e}"),
            hint: "check the thread limits".into(),
        })?;
        let ms = interval.as_millis() as u64;
        let mut can_miss = format!(
            "processes that start and end within one scan interval ({ms} ms, shorter when \
             inotify sees activity in watched directories); argv rewritten or exe/cwd of other \
             users' processes (not readable without privileges); credentials are those at \
             scan time; exec time is the time of the scan; filename, interpreter and \
             exec_tid are never available"
        );
        if let Some(h) = &hidden {
            can_miss.push_str("; ");
            can_miss.push_str(h);
        }
        Ok(LateSource::new(
            SourceInfo {
                name: "procfs",
                attach: format!("/proc scan every {ms} ms + inotify on {watched} directories"),
                guarantees: format!(
                    "processes alive at a scan (every {ms} ms at most) are reported, keyed by \
                     pid + start time (pid reuse is detected), including exec without fork; \
                     what could not be read is null and listed in `incomplete`"
                ),
                can_miss,
                coverage: Coverage {
                    short_lived_complete: false,
                    poll_interval_ms: Some(ms),
                    unavailable: NEVER_AVAILABLE.to_vec(),
                },
            },
            worker,
            Context {
                clock,
                hz: proc_reader::ticks_per_second(),
            },
        ))
    }
}

/// Says whether `/proc` hides other users' processes from us, if it does.
fn hidepid() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // Even without the option visible, not seeing pid 1 means hidden.
    hidden_by(&mounts, !PathBuf::from("/proc/1").exists())
}

/// The hidepid verdict from `/proc/self/mountinfo` text and whether pid 1
/// is invisible.
fn hidden_by(mountinfo: &str, no_init: bool) -> Option<String> {
    let opt = mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some("/proc"))
        .flat_map(|l| l.rsplit(' ').next().unwrap_or("").split(','))
        .find(|o| o.starts_with("hidepid=") && !o.ends_with("=0") && !o.ends_with("=off"))
        .map(str::to_string);
    match (opt, no_init) {
        (Some(o), _) => Some(format!(
            "/proc is mounted with {o}: other users' processes are hidden from this user"
        )),
        (None, true) => Some(
            "pid 1 is not visible in /proc: other users' processes are hidden from this user"
                .into(),
        ),
        (None, false) => None,
    }
}

/// The scanner thread: waits for the interval or an inotify trigger, scans,
/// and hands on what it found.
fn scan_loop(
    out: &Outlet,
    mut table: scan::Table,
    triggers: &inotify::Triggers,
    interval: Duration,
) {
    let mut last_scan = Instant::now();
    let mut triggered = false;
    while !out.stopping() {
        let now = Instant::now();
        let due = if triggered {
            last_scan + MIN_GAP
        } else {
            last_scan + interval
        };
        if now < due {
            let wait = (due - now).min(STOP_CHECK);
            if wait_readable(triggers.raw_fd(), wait) {
                triggered |= triggers.drain();
            }
            continue;
        }
        triggered = false;
        last_scan = Instant::now();
        let vanished_before = table.vanished;
        table.scan("/proc", true, &mut |f| {
            let ppid = f.snap.as_ref().ok().map(|s| s.stat.ppid);
            let ob = Observed {
                pid: f.pid,
                exec_boot_ns: None,
                seen_boot_ns: BootClock::now_boot_ns(),
                ppid: None,
                snap: f.snap,
                superseded: false,
                exec_without_fork: f.exec_without_fork,
                parent_start_ticks: ppid.and_then(observed::parent_start_ticks),
            };
            Tally::bump(&out.tally.seen);
            out.tally.count(&ob);
            out.send(ob);
        });
        for _ in vanished_before..table.vanished {
            Tally::bump(&out.tally.too_late);
        }
    }
}

/// Polls one fd; false on timeout or interruption.
fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, 60_000) as libc::c_int;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

#[cfg(test)]
mod tests {
    use super::hidden_by;

    const PLAIN: &str =
        "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n";
    const HIDDEN: &str =
        "22 1 0:21 / /proc rw,relatime shared:12 - proc proc rw,hidepid=invisible\n";

    #[test]
    fn hidepid_detection() {
        assert_eq!(hidden_by(PLAIN, false), None);
        assert!(
            hidden_by(HIDDEN, false)
                .unwrap()
                .contains("hidepid=invisible")
        );
        assert!(hidden_by(&PLAIN.replace("rw\n", "rw,hidepid=0\n"), false).is_none());
        assert!(
            hidden_by(PLAIN, true)
                .unwrap()
                .contains("pid 1 is not visible")
        );
    }
}
