//! procwatch: a process-creation monitor.
//!
//! The pipeline is `source → Event → enrich → sink`; each stage is a module.

pub mod cli;
pub mod enrich;
pub mod event;
pub mod filter;
pub mod pipeline;
pub mod sink;
pub mod source;
