//! Test support: checks JSONL lines against the committed JSON Schemas
//! (`schema/<event>.json`, draft 2020-12). The sink's unit tests and the
//! integration tests' line parser (tests/it/common, which includes this
//! file) pass every line they read through [`assert_valid`], so a field
//! that changes type or is not documented fails the suite.

use std::sync::OnceLock;

use serde_json::Value;

/// Every event kind and its schema.
pub const SCHEMAS: [(&str, &str); 7] = [
    ("exec", include_str!("../../../schema/exec.json")),
    ("exit", include_str!("../../../schema/exit.json")),
    ("hash", include_str!("../../../schema/hash.json")),
    ("loss", include_str!("../../../schema/loss.json")),
    ("start", include_str!("../../../schema/start.json")),
    ("stats", include_str!("../../../schema/stats.json")),
    ("stop", include_str!("../../../schema/stop.json")),
];

fn validators() -> &'static [(&'static str, jsonschema::Validator)] {
    static V: OnceLock<Vec<(&'static str, jsonschema::Validator)>> = OnceLock::new();
    V.get_or_init(|| {
        SCHEMAS
            .iter()
            .map(|(kind, text)| {
                let schema: Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("schema/{kind}.json is not JSON: {e}"));
                let v = jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("schema/{kind}.json is not a valid schema: {e}"));
                (*kind, v)
            })
            .collect()
    })
}

/// Checks one parsed line against the schema of its `event` kind; the
/// errors, one per line, when it does not conform.
pub fn check(line: &Value) -> Result<(), String> {
    let kind = line["event"]
        .as_str()
        .ok_or_else(|| "no \"event\" string".to_owned())?;
    let (_, v) = validators()
        .iter()
        .find(|(k, _)| *k == kind)
        .ok_or_else(|| format!("no schema for event kind {kind:?}"))?;
    let errors: Vec<String> = v
        .iter_errors(line)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Panics, naming the line and what does not conform, unless `line`
/// conforms to its kind's schema.
pub fn assert_valid(line: &Value) {
    if let Err(e) = check(line) {
        panic!("line does not conform to schema/: {e}\nline: {line}");
    }
}
