//! Sigma `process_creation` rules, evaluated on every exec.
//!
//! `--rules PATH` files are read once ([`load`]) into a rule model
//! ([`rule`]: YAML, modifiers, condition), bound to the platform's fields
//! ([`fields`]) and compiled into an [`Engine`]; a [`Detector`] evaluates
//! it on each exec after enrichment and before the filters, filling
//! `detections`. A prefilter ([`prefilter`]) rejects most rules by looking
//! for their literals in the exec's fields: at the value's end or start
//! for `endswith`/`startswith`, with one automaton scan for the rest.

mod condition;
mod engine;
pub mod fields;
mod load;
mod modifiers;
mod prefilter;
pub mod render;
mod rule;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use engine::{Detector, Engine};
pub use fields::Platform;
pub use load::{RuleSet, load, read_all};
pub use rule::{ReadError, RuleDoc};

use crate::event::{Detection, Level};

/// The most severe level among `d` (syslog's severity); `None` when no
/// detection has a level.
pub fn highest_level(d: &[Arc<Detection>]) -> Option<Level> {
    d.iter().filter_map(|x| x.level).max()
}
