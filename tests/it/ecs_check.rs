//! Checks an ECS document against the ECS field reference shipped as data
//! (tests/data/ecs_fields.tsv): every field is either in the reference
//! with a JSON value of its type, or under `procwatch.*`. Shared by the
//! sink's unit tests (every event kind) and the integration tests (real
//! execs).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// The reference: field name → ECS type.
pub fn reference() -> HashMap<String, String> {
    let text = include_str!("../data/ecs_fields.tsv");
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, ty) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("bad reference line {l:?}"));
            (name.to_owned(), ty.to_owned())
        })
        .collect()
}

/// What is wrong with `doc`, one message per field; empty when it fits.
pub fn violations(doc: &Value, reference: &HashMap<String, String>) -> Vec<String> {
    let mut errs = Vec::new();
    match doc {
        Value::Object(m) => {
            for (k, v) in m {
                walk(k, v, reference, &mut errs);
            }
        }
        other => errs.push(format!("not an object: {other}")),
    }
    errs
}

fn walk(path: &str, v: &Value, reference: &HashMap<String, String>, errs: &mut Vec<String>) {
    if path == "procwatch" {
        if !v.is_object() {
            errs.push(format!("procwatch is not an object: {v}"));
        }
        return;
    }
    let ty = reference.get(path).map(String::as_str);
    match (ty, v) {
        (Some("object"), Value::Object(_)) => {}
        (Some("nested"), Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Object(m) => {
                        for (k, v) in m {
                            walk(&format!("{path}.{k}"), v, reference, errs);
                        }
                    }
                    other => errs.push(format!("{path}: nested item {other} is not an object")),
                }
            }
        }
        (None, Value::Object(m)) => {
            for (k, v) in m {
                walk(&format!("{path}.{k}"), v, reference, errs);
            }
        }
        (None, _) => errs.push(format!("{path} is not in the ECS reference (value {v})")),
        (Some(_), Value::Null) => {}
        (Some(ty), Value::Array(items)) if is_string_type(ty) => {
            for item in items {
                if !fits(ty, item) {
                    errs.push(format!("{path}: array item {item} is not a {ty}"));
                }
            }
        }
        (Some(ty), v) => {
            if !fits(ty, v) {
                errs.push(format!("{path}: {v} is not a {ty}"));
            }
        }
    }
}

fn is_string_type(ty: &str) -> bool {
    matches!(ty, "keyword" | "wildcard" | "match_only_text" | "ip")
}

fn fits(ty: &str, v: &Value) -> bool {
    match ty {
        t if is_string_type(t) => v.is_string(),
        "long" => v.is_i64() || v.is_u64(),
        "float" | "scaled_float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "date" => v.as_str().is_some_and(is_rfc3339),
        _ => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`: the form Elasticsearch's default
/// date format (`strict_date_optional_time`) takes.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b.ends_with(b"Z")
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1) && b.len() > 21))
}

/// The fields whose JSON type differs between `docs` (null aside), with
/// the types seen: every field must keep one type in every document.
pub fn mixed_types(docs: &[Value]) -> Vec<(String, Vec<&'static str>)> {
    let mut types = BTreeMap::new();
    for doc in docs {
        leaf_types("", doc, &mut types);
    }
    types.into_iter().filter(|(_, t)| t.len() > 1).collect()
}

/// The JSON type of every value, by dotted path (array items as `[]`).
fn leaf_types(path: &str, v: &Value, out: &mut BTreeMap<String, Vec<&'static str>>) {
    let ty = match v {
        Value::Null => return,
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(items) => {
            for item in items {
                leaf_types(&format!("{path}[]"), item, out);
            }
            "array"
        }
        Value::Object(m) => {
            for (k, item) in m {
                leaf_types(&format!("{path}.{k}"), item, out);
            }
            "object"
        }
    };
    let seen = out.entry(path.to_owned()).or_default();
    if !seen.contains(&ty) {
        seen.push(ty);
    }
}
