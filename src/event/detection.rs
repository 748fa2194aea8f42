//! What a Sigma rule that matched an exec says about it (`detections`).

use std::sync::Arc;

/// A rule's `level`, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    /// The Sigma spelling, as in the rule and the output.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }

    /// The level a rule names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "informational" => Level::Informational,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return None,
        })
    }
}

/// One entry of an exec's `detections`: the matching rule's metadata,
/// shared by every exec it matches (so a match copies a pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// `id`: the rule's UUID; null when the rule has none.
    pub id: Option<String>,
    /// `title`.
    pub title: String,
    /// `level`: null when the rule has none.
    pub level: Option<Level>,
    /// `tags`: the rule's tags (ATT&CK techniques and so on), maybe empty.
    pub tags: Vec<String>,
    /// `status`: `stable`, `test`, `experimental`, ...; null when absent.
    pub status: Option<String>,
}

/// The detections of one exec: empty when no rule matched (or none is
/// loaded).
pub type Detections = Vec<Arc<Detection>>;

/// `rules_loaded` and `rules_skipped` of the `start` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesSummary {
    /// `rules_loaded`: rules compiled and evaluated on every exec.
    pub loaded: usize,
    /// `rules_skipped`: `{file, reason}` of every rule file (or YAML
    /// document) that was read but is not evaluated.
    pub skipped: Vec<SkippedRule>,
}

/// One entry of `rules_skipped`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    pub file: String,
    pub reason: String,
}
