//! Reading procwatch's JSONL output back: every line parsed here is
//! checked against its event kind's schema (schema/*.json), and byte
//! strings are decoded through the line's `raw` object.

use serde_json::Value;

use super::schema_check;

/// Parses `text` as JSON lines; every line must be valid JSON and conform
/// to its event kind's schema.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(parse_line).collect()
}

/// Parses one line of procwatch's JSONL output; it must be valid JSON and
/// conform to its event kind's schema (schema/*.json). Every test reads
/// procwatch's JSON output through here: an ECS document (`--format ecs`,
/// with `@timestamp` and `ecs`) is checked by its own tests instead.
pub fn parse_line(line: &str) -> Value {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
    if v.get("@timestamp").is_none() || v.get("ecs").is_none() {
        schema_check::assert_valid(&v);
    }
    v
}

/// The exec events whose argv contains `tag` (as a whole argument).
pub fn execs_with_tag<'a>(lines: &'a [Value], tag: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["event"] == "exec")
        .filter(|v| {
            v["argv"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(tag)))
        })
        .collect()
}

/// `--fields` for every field on every exec line.
pub fn all_fields() -> String {
    let names: Vec<String> = procwatch::sink::jsonl::FIELDS
        .iter()
        .map(|(_, name, _)| format!("+{name}"))
        .collect();
    names.join(",")
}

/// The argv of an exec event as raw bytes: each element's exact bytes from
/// `raw` when they are not UTF-8.
pub fn argv_bytes(ev: &Value) -> Vec<Vec<u8>> {
    let n = ev["argv"].as_array().expect("argv is an array").len();
    (0..n)
        .map(|i| json_bytes(ev, &format!("/argv/{i}")))
        .collect()
}

/// The exact bytes of the byte-string field at JSON Pointer `ptr` of a
/// line (`/exe`, `/argv/2`): the string itself, or, when its bytes are not
/// UTF-8, the base64 in `raw[ptr]` (the string then holds their lossy form).
pub fn json_bytes(line: &Value, ptr: &str) -> Vec<u8> {
    use base64::Engine;
    let s = line
        .pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} is not a string in {line}"));
    match line["raw"].get(ptr) {
        Some(b64) => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().expect("raw values are strings"))
                .expect("valid base64");
            assert_eq!(s, String::from_utf8_lossy(&b), "{ptr}: its lossy form");
            b
        }
        None => s.as_bytes().to_vec(),
    }
}
