//! Kernel facts and readers shared by the sources, enrichment and the
//! sinks: the boot-time clock, capability names, the `/proc/<pid>` reader,
//! file identity, path bytes, and the hasher for maps keyed by kernel ids.
//!
//! This layer sits just above the event model: it may import
//! [`crate::event`] and nothing else of the crate, so every other layer can
//! use it without an import circle. Capability names, paths and the id
//! hasher are compiled everywhere (sinks render Linux events on any platform); the
//! rest needs Linux.

pub mod caps;
pub mod id_hash;
pub mod ns;
pub mod path;

#[cfg(target_os = "linux")]
pub mod cgroup;
#[cfg(target_os = "linux")]
pub mod clock;
#[cfg(target_os = "linux")]
pub mod file_key;
#[cfg(target_os = "linux")]
pub mod mountinfo;
#[cfg(target_os = "linux")]
pub mod proc_reader;
