//! The one platform-neutral event model.
//!
//! Every source (eBPF, netlink, the /proc scanner, Windows) produces these
//! values, and every sink renders only these values. Field names used in the
//! JSON output are named once, in the doc comments; the sinks follow them.
//!
//! The stream-level events (start, loss, hash, stop, stats) are here; one
//! process's exec and exit in [`process`], the raw fork/exit records the
//! sources hand to the process table in [`raw`], and the Windows token in
//! [`windows`]. Everything is re-exported, so `crate::event::X` names each.

use std::time::SystemTime;

mod detection;
mod namespace;
mod process;
mod raw;
mod windows;

pub use detection::*;
pub use namespace::*;
pub use process::*;
pub use raw::*;
pub use windows::*;

/// A byte string taken from the kernel: argv elements, paths, comm.
///
/// These are attacker-controlled and need not be UTF-8, so they are kept as
/// raw bytes until a sink decides how to render them safely.
pub type Bytes = Vec<u8>;

/// Everything that flows from a source to the sinks, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// Written once, after the source is attached: anything exec'd after this
    /// event is emitted is captured.
    Start(StartInfo),
    /// One successful exec.
    Exec(Box<ExecEvent>),
    /// A process ended (only with `--exits`).
    Exit(Box<ExitEvent>),
    /// Events were dropped somewhere (kernel ring buffer or a user-space queue).
    Loss(LossInfo),
    /// The late `exe_sha256` of an exec written with `hash_pending`.
    Hash(HashInfo),
    /// Written last, on exit, with the final counters.
    Stop(StopInfo),
    /// The counters so far, on SIGUSR1 (`{"event":"stats",...}`).
    Stats(StatsInfo),
}

/// `{"event":"hash",...}`: the result of a hash that was still pending when
/// its exec was written. Exactly one follows each `hash_pending` exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashInfo {
    pub time: SystemTime,
    /// `exec_id` and `pid` of the exec it belongs to.
    pub exec_id: String,
    pub pid: u32,
    /// `exe_sha256`: the hash, or null when it could not be had.
    pub exe_sha256: Option<String>,
    /// `reason`: why `exe_sha256` is null; null when it is set.
    pub reason: Option<String>,
}

/// `{"event":"start",...}`
#[derive(Debug, Clone)]
pub struct StartInfo {
    pub time: SystemTime,
    /// `source`: the mechanism in use, e.g. `"ebpf"`.
    pub source: String,
    /// `attach`: how the source is attached, e.g. `"tp_btf/sched_process_exec"`.
    pub attach: String,
    /// `version`: procwatch's version.
    pub version: String,
    pub hostname: String,
    pub boot_id: String,
    /// `guarantees`: what the source promises, in words.
    pub guarantees: String,
    /// `can_miss`: what the source can miss, in words.
    pub can_miss: String,
    /// `pid` of procwatch itself.
    pub pid: u32,
    /// `short_lived_complete`, `poll_interval_ms`, `unavailable`: the
    /// source's guarantees in machine-readable form.
    pub coverage: Coverage,
    /// `continuation`: this start line opens a file reopened on SIGHUP (log
    /// rotation) in a run that had started before; false at the run's
    /// start.
    pub continuation: bool,
    /// `rules_loaded`, `rules_skipped`: the Sigma rules given with
    /// `--rules` (0 and empty without).
    pub rules: RulesSummary,
}

/// What a source guarantees, for the `start` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `short_lived_complete`: every exec is reported with its argv, however
    /// briefly the process lives.
    pub short_lived_complete: bool,
    /// `poll_interval_ms`: the scan interval of a polling source.
    pub poll_interval_ms: Option<u64>,
    /// `unavailable`: exec fields this source can never fill (always null).
    pub unavailable: Vec<&'static str>,
}

/// Where a loss happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossPlace {
    /// The kernel could not reserve space in the ring buffer (exec records).
    Kernel,
    /// The same, for fork and exit records: parent snapshots and exit
    /// events may be missing for the processes concerned.
    KernelAux,
    /// The user-space queue between reader and writer was full.
    Queue,
    /// A record could not be decoded (a program/loader mismatch; never
    /// expected, but counted rather than hidden).
    Undecodable,
    /// `netlink_enobufs`: the proc connector socket overflowed; each count is
    /// one overrun that lost an unknown number of events.
    NetlinkOverrun,
    /// `proc_read_failed`: reading `/proc/<pid>` failed (permissions,
    /// malformed content): the exec is reported with fields missing.
    ProcRead,
    /// `too_late`: the process had exited or exec'd again before `/proc`
    /// could be read.
    TooLate,
    /// `syslog`: messages a `--syslog` destination could not take (its
    /// buffer was full) or never received (undelivered at exit).
    Syslog,
}

impl LossPlace {
    /// What a count at this place means, for human-readable sinks: events
    /// lost outright, events reported with fields missing, or overruns
    /// that each lost an unknown number of events.
    pub fn describe(self, n: u64) -> String {
        match self {
            LossPlace::NetlinkOverrun => format!(
                "LOST an unknown number of events in {n} socket overrun{}",
                if n == 1 { "" } else { "s" }
            ),
            LossPlace::ProcRead => {
                format!("INCOMPLETE {n} events: reading /proc failed, fields are missing")
            }
            LossPlace::TooLate => format!(
                "INCOMPLETE {n} events: the process was gone before /proc was read, fields are missing"
            ),
            LossPlace::Kernel
            | LossPlace::KernelAux
            | LossPlace::Queue
            | LossPlace::Undecodable
            | LossPlace::Syslog => format!("LOST {n} events"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LossPlace::Kernel => "kernel",
            LossPlace::KernelAux => "kernel_fork_exit",
            LossPlace::Queue => "queue",
            LossPlace::Undecodable => "undecodable",
            LossPlace::NetlinkOverrun => "netlink_enobufs",
            LossPlace::ProcRead => "proc_read_failed",
            LossPlace::TooLate => "too_late",
            LossPlace::Syslog => "syslog",
        }
    }
}

/// `{"event":"loss","dropped":N,...}`: N events were dropped since the last
/// loss event of the same place.
#[derive(Debug, Clone)]
pub struct LossInfo {
    pub time: SystemTime,
    pub place: LossPlace,
    pub dropped: u64,
    /// Total dropped at this place so far.
    pub total: u64,
}

/// Counters reported in the `stop` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `seen`: execs the kernel program saw.
    pub seen: u64,
    /// `emitted`: events the kernel put in the ring buffer.
    pub emitted: u64,
    /// `dropped`: events the kernel could not put in the ring buffer.
    /// Invariant: `seen == emitted + dropped`.
    pub dropped: u64,
    /// `truncated`: events whose argv or a path was truncated.
    pub truncated: u64,
    /// `received`: events read from the ring buffer.
    pub received: u64,
    /// `queue_dropped`: events dropped because the writer fell behind.
    pub queue_dropped: u64,
    /// `aux_dropped`: fork and exit records lost (kernel or queue).
    pub aux_dropped: u64,
    /// `written`: exec events handed to the sink.
    pub written: u64,
    /// `filtered`: exec events the filters did not show (still counted).
    pub filtered: u64,
    /// `netlink_enobufs`: proc connector socket overruns (netlink source).
    pub netlink_enobufs: u64,
    /// `proc_read_failures`: failed `/proc` reads (netlink, procfs).
    pub proc_read_failures: u64,
    /// `too_late`: processes gone before `/proc` could be read (netlink,
    /// procfs).
    pub too_late: u64,
    /// `write_errors`: failed writes to the output (each retried later).
    pub write_errors: u64,
    /// `output_dropped`: lines given up because the output kept failing.
    pub output_dropped: u64,
}

/// `{"event":"stop",...}`
#[derive(Debug, Clone)]
pub struct StopInfo {
    pub time: SystemTime,
    /// `reason`: `"signal"`, `"duration"`, `"broken_pipe"` or `"error"`.
    pub reason: String,
    pub counters: Counters,
}

/// `{"event":"stats",...}`: the stop event's counters, mid-run.
#[derive(Debug, Clone)]
pub struct StatsInfo {
    pub time: SystemTime,
    pub counters: Counters,
}
