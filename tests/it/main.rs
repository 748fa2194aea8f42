//! The integration tests: one test binary, one module per area. They run
//! the real procwatch binary against the Linux kernel (eBPF, netlink,
//! /proc) and spawn real, uniquely tagged processes; `common` says how a
//! test that needs root is declared and run.

#![cfg(target_os = "linux")]

mod common;
mod fuse;

mod awkward;
mod capture;
mod cgroup;
mod ebpf_variants;
mod hardening_csv;
mod hardening_hash;
mod hardening_output;
mod hardening_queue;
mod hardening_signals;
mod insight;
mod lifecycle;
mod namespaces;
mod sigma;
mod sources;
