//! `cargo bench --bench enrich`: per-event CPU cost of the hijackable check
//! and the exe hash, on cache hits and misses, for a root exec of /bin/true
//! and of a root-owned `#!` script. Every measured step clones the event
//! first (the checks mutate it), so the baseline is that clone, measured in
//! the same run; the report gives ns per event, the ratio to the baseline
//! and the cost added on top of it.

// The hijackable check and the exe hash exist only on Linux
// (src/enrich/mod.rs); elsewhere this bench does nothing.
#[cfg(target_os = "linux")]
#[path = "../common/mod.rs"]
mod common;
#[cfg(target_os = "linux")]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}
