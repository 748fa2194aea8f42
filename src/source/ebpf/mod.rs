//! The Linux eBPF source: loads `procwatch.bpf.o` (built from
//! `procwatch.bpf.c` beside this file) with aya, attaches it to
//! `sched_process_exec`, and reads records from its ring buffer.

// The record format and the loader (aya, setrlimit, tracefs, poll) exist
// only on Linux; the options stay so the CLI and config are the same
// everywhere.
#[cfg(target_os = "linux")]
pub mod abi;
#[cfg(target_os = "linux")]
mod attach;
#[cfg(target_os = "linux")]
mod loader;
#[cfg(target_os = "linux")]
pub mod record;

#[cfg(target_os = "linux")]
pub use loader::EbpfSource;

/// Which attach point to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attach {
    /// tp_btf, falling back to the classic tracepoint.
    #[default]
    Auto,
    /// Only the classic tracepoint (for testing the fallback).
    Tracepoint,
}

/// Settings for the eBPF source.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ring buffer size in bytes: a power of two, a multiple of the page size.
    pub ring_size: u32,
    /// The kernel wakes the reader once this many bytes are queued.
    pub wakeup_bytes: u64,
    pub attach: Attach,
    /// For tests: use only the program variants made for older kernels
    /// (no `bpf_loop`, exit without `group_dead`, pre-exec with probe
    /// reads), to check on a new kernel that they give the same events.
    pub legacy: bool,
}
