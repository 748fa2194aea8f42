//! What a late source (netlink, the /proc scanner) learned about one exec:
//! the observing thread fills it, [`super::convert`] turns it into an item.

use crate::linux::proc_reader::{Failure, ProcDir, Snapshot};

/// What a late source learned about one exec.
#[derive(Debug)]
pub struct Observed {
    pub pid: u32,
    /// `CLOCK_BOOTTIME` ns of the exec, when the source knows it (netlink);
    /// the /proc scanner only knows when it saw the process.
    pub exec_boot_ns: Option<u64>,
    /// `CLOCK_BOOTTIME` ns when the process was seen (read from /proc).
    pub seen_boot_ns: u64,
    /// The parent, when known independently of `/proc` (netlink fork events).
    pub ppid: Option<u32>,
    /// What `/proc/<pid>` showed, or why it could not be read.
    pub snap: Result<Snapshot, Failure>,
    /// The process had already exec'd again (or exited) when we got to it,
    /// so `/proc` shows something later than this exec: its argv, exe and
    /// comm must not be attributed to this exec.
    pub superseded: bool,
    /// The pid exec'd again without forking (detected by the /proc scanner).
    pub exec_without_fork: bool,
    /// Start time (ticks) of the parent, read after the process itself, to
    /// key the parent in the process table.
    pub parent_start_ticks: Option<u64>,
}

/// The start time (ticks) of `ppid`, read after the important reads.
pub fn parent_start_ticks(ppid: u32) -> Option<u64> {
    ProcDir::open("/proc", ppid)
        .and_then(|d| d.stat())
        .ok()
        .map(|s| s.start_ticks)
}
