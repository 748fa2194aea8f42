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
mod containers;
mod dist;
mod ebpf_variants;
mod ecs;
mod ecs_check;
mod hardening_csv;
mod hardening_hash;
mod hardening_output;
mod hardening_queue;
mod hardening_signals;
mod insight;
mod lifecycle;
mod namespaces;
mod schema;
mod sigma;
mod sources;
mod syslog;
