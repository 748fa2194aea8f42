//! The raw process records the sources produce besides execs: forks and
//! exits, and the key that identifies a process. The process table
//! (`enrich::table`) consumes them.

use std::time::{Duration, SystemTime};

use super::Bytes;

/// A process identity: pid plus start time (boot-clock ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcKey {
    pub pid: u32,
    pub start_ns: u64,
}

/// A fork record: `child` was created by `parent`.
#[derive(Debug, Clone, Copy)]
pub struct Fork {
    pub child: ProcKey,
    pub parent: ProcKey,
}

/// An exit record, as the kernel reported it.
#[derive(Debug, Clone)]
pub struct Exit {
    pub key: ProcKey,
    pub ppid: u32,
    pub time: SystemTime,
    /// Wait status: `code << 8`, or the signal number (| 0x80 with a core).
    pub status: u32,
    pub comm: Bytes,
    /// Lifetime, computed by the source from the two kernel stamps.
    pub lifetime: Duration,
}
