//! procwatch: a process-creation monitor.
//!
//! The pipeline is `source → event → enrich → detect → filter → sink`; each stage is
//! a module, and `linux` holds the kernel helpers several stages share.
//! `ARCHITECTURE.md` draws it; the import rules are checked by `layers`.

pub mod cli;
pub mod config;
pub mod detect;
pub mod enrich;
pub mod event;
pub mod filter;
// Reads the source tree, which only the Linux test run has at hand.
#[cfg(all(test, target_os = "linux"))]
mod layers;
pub mod linux;
pub mod pipeline;
pub mod sink;
pub mod source;

/// The allocator of the static (musl) build, and of its tests and benches
/// so they measure what ships: musl's own malloc made each event's
/// allocations several times slower than glibc's. Other builds keep the
/// system allocator.
#[cfg(all(target_os = "linux", target_env = "musl"))]
#[global_allocator]
static ALLOCATOR: rlsf::GlobalTlsf = rlsf::GlobalTlsf::new();
