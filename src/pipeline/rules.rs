//! The `--rules` set: loaded before the source is attached (a path that
//! cannot be read fails the start), evaluated by the writer on each exec,
//! and reloaded on SIGHUP, keeping the old set when the new one is broken.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::writer::Writer;
use crate::detect::{self, Detector, Platform, RuleSet};
use crate::event::RulesSummary;

/// Reads the rules `cfg` names, for this platform, and says on stderr how
/// many loaded and why the others did not. `Ok(None)` without `--rules`;
/// `Err` when a path cannot be read or, with `--rules-strict`, a file is
/// malformed.
pub fn load(paths: &[PathBuf], strict: bool) -> Result<Option<RuleSet>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let set = detect::load(paths, Platform::host())?;
    for m in &set.malformed {
        eprintln!("procwatch: rule file {}: {}", m.file, m.reason);
    }
    if strict && !set.malformed.is_empty() {
        return Err(format!(
            "--rules-strict: {} malformed rule file(s), the first {}",
            set.malformed.len(),
            set.malformed[0].file
        ));
    }
    eprintln!("procwatch: {}", describe(&set));
    Ok(Some(set))
}

/// `rules: N loaded (M always evaluated), K skipped: counts by reason`.
fn describe(set: &RuleSet) -> String {
    let s = &set.summary;
    let mut line = format!(
        "rules: {} loaded ({} always evaluated), {} skipped",
        s.loaded,
        s.loaded - set.engine.prefiltered(),
        s.skipped.len()
    );
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &s.skipped {
        *by_reason.entry(&r.reason).or_default() += 1;
    }
    for (i, (reason, n)) in by_reason.iter().enumerate() {
        line.push_str(if i == 0 { ": " } else { "; " });
        line.push_str(&format!("{n}× {reason}"));
    }
    if !s.skipped.is_empty() {
        line.push_str(" (each file is in the start event's rules_skipped)");
    }
    line
}

impl Writer<'_> {
    /// Starts evaluating `set` on every exec.
    pub fn use_rules(&mut self, set: RuleSet) -> RulesSummary {
        self.detector = Some(Detector::new(Arc::new(set.engine)));
        set.summary
    }

    /// SIGHUP: reads the rules again. A set that cannot be read, or has a
    /// malformed file, is not used: the old one stays and stderr says why.
    /// Returns false when no rules are in use.
    pub(super) fn reload_rules(&mut self) -> bool {
        let Some(detector) = &mut self.detector else {
            return false;
        };
        let old = detector.engine().len();
        let res = detect::load(&self.rule_paths, Platform::host());
        match res {
            Ok(set) if set.malformed.is_empty() => {
                eprintln!("procwatch: SIGHUP: {}", describe(&set));
                detector.replace(Arc::new(set.engine));
                if let Some(start) = &mut self.start {
                    start.rules = set.summary;
                }
            }
            Ok(set) => {
                for m in &set.malformed {
                    eprintln!("procwatch: rule file {}: {}", m.file, m.reason);
                }
                eprintln!(
                    "procwatch: SIGHUP: rules not reloaded: {} malformed rule file(s); still using the {old} rules loaded before",
                    set.malformed.len()
                );
            }
            Err(e) => eprintln!(
                "procwatch: SIGHUP: rules not reloaded: {e}; still using the {old} rules loaded before"
            ),
        }
        true
    }
}
