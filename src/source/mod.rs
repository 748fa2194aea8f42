//! Event sources: one module per kernel or OS mechanism, all producing the
//! same [`ExecEvent`]s.
//!
//! A source says what it guarantees and what it can miss; the pipeline puts
//! that into the `start` event and on stderr.

#[cfg(target_os = "linux")]
pub mod convert;
pub mod ebpf;
#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod observed;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod windows;
#[cfg(target_os = "linux")]
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use crate::event::{Coverage, ExecEvent};
use crate::event::{Exit, Fork};

/// What a source is and what it promises.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// Short name: `"ebpf"`.
    pub name: &'static str,
    /// How it is attached, e.g. `"tp_btf/sched_process_exec"`.
    pub attach: String,
    pub guarantees: String,
    pub can_miss: String,
    /// Machine-readable guarantees for the `start` event.
    pub coverage: Coverage,
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
    /// Proc connector socket overruns (netlink).
    pub netlink_enobufs: u64,
    /// Failed `/proc` reads (netlink, procfs).
    pub proc_read_failures: u64,
    /// Processes gone before `/proc` could be read (netlink, procfs).
    pub too_late: u64,
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

/// What a raw record is, known without decoding it: the reader's loss
/// accounting counts exec records apart from fork and exit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Exec,
    /// Fork, exit, or a record too broken to say (the decoder reports it).
    Aux,
}

/// Decodes a source's raw records into items on the writer's thread.
///
/// The eBPF reader only copies records out of the ring; decoding (which
/// allocates the event's strings) happens where the events are consumed
/// and freed. Allocating on one thread and freeing on another kept glibc's
/// allocator on its slow path: half of the reader's time was `malloc`.
pub trait Decoder: Send {
    fn decode(&mut self, rec: &[u8]) -> Item;
}

/// A running, attached source.
pub trait Source: Send {
    fn info(&self) -> &SourceInfo;
    /// Waits up to `timeout` for records, then hands every available one to
    /// `out`, in kernel order.
    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> std::io::Result<()>;
    /// A decoder for [`Source::poll_raw`]'s records, for sources that can
    /// hand records over undecoded; `None` (the default) for the others.
    fn decoder(&self) -> Option<Box<dyn Decoder>> {
        None
    }
    /// Like [`Source::poll`], but hands each record over raw, with its
    /// kind, for [`Source::decoder`]'s decoder. Only called when that gave
    /// one.
    fn poll_raw(
        &mut self,
        timeout: Duration,
        out: &mut dyn FnMut(RecordKind, &[u8]),
    ) -> std::io::Result<()> {
        let _ = (timeout, out);
        Err(std::io::Error::other(
            "this source hands over decoded items only",
        ))
    }
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
    /// The netlink proc connector (Linux).
    Netlink,
    /// The /proc scanner (Linux, unprivileged).
    Procfs,
    /// Windows WMI (trace events when elevated, else polling).
    Wmi,
    /// Windows ETW kernel process events.
    Etw,
    /// Windows: the process list every interval (Toolhelp).
    Snapshot,
}

/// Settings of the sources that observe processes after the fact.
#[derive(Debug, Clone)]
pub struct LateOptions {
    /// netlink: run the reading thread at real-time priority (SCHED_FIFO).
    pub realtime: bool,
    /// procfs: the scan interval.
    pub interval: Duration,
    /// procfs: extra directories whose activity triggers a scan.
    pub watch: Vec<PathBuf>,
    /// For tests: `auto` behaves as if eBPF were unavailable.
    pub disable_ebpf: bool,
    /// For tests: the observing thread waits this long before its first
    /// read, so that short-lived processes are gone when it looks.
    pub pause: Duration,
}

impl Default for LateOptions {
    fn default() -> Self {
        LateOptions {
            realtime: false,
            interval: Duration::from_millis(100),
            watch: Vec::new(),
            disable_ebpf: false,
            pause: Duration::ZERO,
        }
    }
}

/// Environment variable that makes `auto` skip eBPF, for tests of the
/// fallback on machines where eBPF works.
pub const DISABLE_EBPF_ENV: &str = "PROCWATCH_DISABLE_EBPF";

/// What the sources' constructors read: each takes the part it needs.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub ebpf: &'a ebpf::Options,
    pub late: &'a LateOptions,
    pub windows: &'a windows::Options,
}

/// One Linux source: the `--source` value that names it, and how to attach
/// it. A new source is its module plus one line in [`REGISTRY`].
#[derive(Clone, Copy)]
pub struct Entry {
    pub choice: Choice,
    /// The name `auto` reports when this source cannot be attached.
    pub name: &'static str,
    pub attach: fn(&Settings) -> Result<Box<dyn Source>, AttachError>,
}

/// The Linux sources, best first: `auto` tries them in this order.
#[cfg(target_os = "linux")]
pub const REGISTRY: &[Entry] = &[
    Entry {
        choice: Choice::Ebpf,
        name: "ebpf",
        attach: |s| Ok(Box::new(ebpf::EbpfSource::attach(s.ebpf)?)),
    },
    Entry {
        choice: Choice::Netlink,
        name: "netlink",
        attach: |s| Ok(Box::new(netlink::NetlinkSource::attach(s.late)?)),
    },
    Entry {
        choice: Choice::Procfs,
        name: "procfs",
        attach: |s| Ok(Box::new(procfs::ProcfsSource::attach(s.late)?)),
    },
];

/// No Linux sources elsewhere.
#[cfg(not(target_os = "linux"))]
pub const REGISTRY: &[Entry] = &[];

/// Opens the chosen source. `auto` tries the [`REGISTRY`] in order (eBPF,
/// then netlink, then the /proc scanner), and says on stderr which one it
/// chose, why the better ones were unavailable, and what the chosen one can
/// miss. On Windows the Windows sources choose among themselves.
pub fn open(choice: Choice, settings: &Settings) -> Result<Box<dyn Source>, AttachError> {
    if matches!(choice, Choice::Wmi | Choice::Etw | Choice::Snapshot) || cfg!(windows) {
        return open_windows(choice, settings.windows);
    }
    if choice == Choice::Auto && cfg!(target_os = "linux") {
        return open_auto(settings);
    }
    match REGISTRY.iter().find(|e| e.choice == choice) {
        Some(e) => (e.attach)(settings),
        None => Err(AttachError {
            what: format!("source {choice:?} is only available on Linux"),
            hint: "use --source auto, wmi or etw".into(),
        }),
    }
}

fn open_auto(settings: &Settings) -> Result<Box<dyn Source>, AttachError> {
    let mut why_not = Vec::new();
    let disabled =
        settings.late.disable_ebpf || std::env::var_os(DISABLE_EBPF_ENV).is_some_and(|v| v == "1");
    let mut found = None;
    for e in REGISTRY {
        if e.choice == Choice::Ebpf && disabled {
            why_not.push(format!("ebpf: disabled ({DISABLE_EBPF_ENV}=1)"));
            continue;
        }
        match (e.attach)(settings) {
            Ok(s) => {
                found = Some(s);
                break;
            }
            // With the hint: as an unprivileged user the error alone ("failed
            // to create map") does not say that root would get eBPF.
            Err(err) => why_not.push(format!("{}: {} ({})", e.name, err.what, err.hint)),
        }
    }
    let Some(source) = found else {
        return Err(AttachError {
            what: format!("no event source could be attached: {}", why_not.join("; ")),
            hint: "run as root for eBPF, or make /proc readable".into(),
        });
    };
    let info = source.info();
    eprintln!(
        "procwatch: using source {} ({}); it can miss: {}",
        info.name, info.attach, info.can_miss
    );
    for reason in &why_not {
        eprintln!("procwatch: not using {reason}");
    }
    Ok(source)
}

/// Windows: the source chosen among ETW, WMI and the snapshot (see
/// `windows::select`).
#[cfg(windows)]
fn open_windows(choice: Choice, win: &windows::Options) -> Result<Box<dyn Source>, AttachError> {
    windows::source::open(choice, win)
}

/// Elsewhere the CLI already rejects `--source wmi|etw|snapshot`; this is the
/// library's own guard.
#[cfg(not(windows))]
fn open_windows(choice: Choice, _: &windows::Options) -> Result<Box<dyn Source>, AttachError> {
    Err(AttachError {
        what: format!("source {choice:?} is only available on Windows"),
        hint: "use --source auto or --source ebpf".into(),
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::{Choice, REGISTRY};

    #[test]
    fn registry_names_each_source_once_best_first() {
        let order: Vec<_> = REGISTRY.iter().map(|e| (e.choice, e.name)).collect();
        assert_eq!(
            order,
            [
                (Choice::Ebpf, "ebpf"),
                (Choice::Netlink, "netlink"),
                (Choice::Procfs, "procfs")
            ]
        );
    }
}
