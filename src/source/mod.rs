//! Event sources: one module per kernel or OS mechanism, all producing the
//! same [`ExecEvent`]s.
//!
//! A source says what it guarantees and what it can miss; the pipeline puts
//! that into the `start` event and on stderr.

pub mod ebpf;
pub mod windows;

use std::time::Duration;

use crate::enrich::table::{Exit, Fork};
use crate::event::ExecEvent;

/// What a source is and what it promises.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Short name: `"ebpf"`.
    pub name: &'static str,
    /// How it is attached, e.g. `"tp_btf/sched_process_exec"`.
    pub attach: String,
    pub guarantees: String,
    pub can_miss: String,
}

/// The kernel-side counters. For eBPF, `seen == emitted + dropped` exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub seen: u64,
    pub emitted: u64,
    pub dropped: u64,
    pub truncated: u64,
    /// Fork and exit records: `aux_seen == aux_emitted + aux_dropped`.
    pub aux_seen: u64,
    pub aux_emitted: u64,
    pub aux_dropped: u64,
}

/// One item a source hands to the pipeline.
#[derive(Debug)]
pub enum Item {
    /// An exec, with the process's and its real parent's start times (boot
    /// clock ns) when the source knows them: keys for the process table.
    Exec {
        ev: Box<ExecEvent>,
        start_ns: u64,
        parent_start_ns: u64,
    },
    /// A new process.
    Fork(Fork),
    /// A process ended.
    Exit(Exit),
    /// A record that could not be decoded: counted and reported, not hidden.
    Undecodable(String),
}

/// A running, attached source.
pub trait Source: Send {
    fn info(&self) -> &SourceInfo;
    /// Waits up to `timeout` for records, then hands every available one to
    /// `out`, in kernel order.
    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> std::io::Result<()>;
    /// Reads the kernel counters.
    fn counters(&self) -> std::io::Result<KernelCounters>;
    /// Stops producing new records; records already queued can still be
    /// polled, so a final drain after this is complete.
    fn detach(&mut self);
}

/// Why no source could be attached. Maps to exit code 3.
#[derive(Debug)]
pub struct AttachError {
    /// What went wrong.
    pub what: String,
    /// What the user can do about it.
    pub hint: String,
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nhint: {}", self.what, self.hint)
    }
}

impl std::error::Error for AttachError {}

/// Which source the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Ebpf,
    /// Windows WMI (trace events when elevated, else polling).
    Wmi,
    /// Windows ETW kernel process events.
    Etw,
}

/// Opens the chosen source. `auto` currently has only eBPF to choose from;
/// it says so on stderr, with what the source can miss.
pub fn open(
    choice: Choice,
    opts: &ebpf::Options,
    win: &windows::Options,
) -> Result<Box<dyn Source>, AttachError> {
    if matches!(choice, Choice::Wmi | Choice::Etw) || cfg!(windows) {
        return open_windows(choice, win);
    }
    let source = ebpf::EbpfSource::attach(opts)?;
    if choice == Choice::Auto {
        let info = source.info();
        eprintln!(
            "procwatch: using source {} ({}); it can miss: {}",
            info.name, info.attach, info.can_miss
        );
    }
    Ok(Box::new(source))
}

/// Windows: the source chosen among ETW and WMI (see `windows::select`).
#[cfg(windows)]
fn open_windows(choice: Choice, win: &windows::Options) -> Result<Box<dyn Source>, AttachError> {
    windows::source::open(choice, win)
}

/// Elsewhere the CLI already rejects `--source wmi|etw`; this is the
/// library's own guard.
#[cfg(not(windows))]
fn open_windows(choice: Choice, _: &windows::Options) -> Result<Box<dyn Source>, AttachError> {
    Err(AttachError {
        what: format!("source {choice:?} is only available on Windows"),
        hint: "use --source auto or --source ebpf".into(),
    })
}
