//! How detections read in the text view and the CSV cell (the JSONL
//! sink writes each field).

use crate::event::Detection;
use std::sync::Arc;

/// `ALERT(level: title)` for each detection, space-separated (empty when
/// there is none). The title is the rule author's text: the caller makes
/// the line safe for a terminal as it does for argv.
pub fn alerts(d: &[Arc<Detection>]) -> String {
    let mut out = String::new();
    for (i, det) in d.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str("ALERT(");
        out.push_str(det.level.map_or("unknown", |l| l.as_str()));
        out.push_str(": ");
        out.push_str(&det.title);
        out.push(')');
    }
    out
}

/// The CSV `detections` cell: `level:id` of each detection joined with
/// `|` (the rule id, or its title when it has none).
pub fn csv_cell(d: &[Arc<Detection>]) -> String {
    let mut out = String::new();
    for (i, det) in d.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        out.push_str(det.level.map_or("unknown", |l| l.as_str()));
        out.push(':');
        out.push_str(det.id.as_deref().unwrap_or(&det.title));
    }
    out
}
