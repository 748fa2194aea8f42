//! procwatch: a process-creation monitor.
//!
//! The pipeline is `source → Event → enrich → sink`; each stage is a module.

pub mod cli;
pub mod config;
pub mod enrich;
pub mod event;
pub mod filter;
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
