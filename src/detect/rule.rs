//! One Sigma rule file (YAML) read into the rule model: its metadata,
//! logsource, searches and condition. What the model cannot express is an
//! error naming the construct, and the rule is skipped with it.

use yaml_rust2::{Yaml, YamlLoader};

use super::condition::{self, Cond};
use super::fields::Field;
use super::modifiers::{self, Op, Pattern, Value};
use crate::event::{Detection, Level};

/// A rule read from YAML, before it is bound to a platform.
#[derive(Debug)]
pub struct RuleDoc {
    pub info: Detection,
    /// `logsource.product` and `logsource.category`.
    pub product: Option<String>,
    pub category: Option<String>,
    /// The search identifiers, in file order, and their searches.
    pub names: Vec<String>,
    pub searches: Vec<Search>,
    pub cond: Cond,
}

/// One search identifier's content.
#[derive(Debug)]
pub enum Search {
    /// A map (every item must match) or a list of maps (any map).
    Maps(Vec<Vec<Item>>),
    /// Values with no field: any must occur in any field (`contains`).
    Keywords(Vec<Pattern>),
}

/// `Field|modifiers: values` in a map.
#[derive(Debug)]
pub struct Item {
    pub name: String,
    /// The field, when procwatch knows the name (platform aside).
    pub field: Option<Field>,
    pub op: Op,
}

/// Why a file was not loaded.
#[derive(Debug)]
pub enum ReadError {
    /// Not YAML, or not a Sigma rule at all: an error to report.
    Malformed(String),
    /// A rule procwatch does not evaluate (another logsource, a construct
    /// it does not support): listed in `rules_skipped`.
    Skipped(String),
}

/// Parses the text of a rule file. With `product`, a rule for another
/// product is skipped as such before its detection is read.
pub fn parse(text: &str, product: Option<&str>) -> Result<RuleDoc, ReadError> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| ReadError::Malformed(e.to_string()))?;
    let doc = match docs.as_slice() {
        [d] => d,
        [] => return Err(ReadError::Malformed("empty file".into())),
        _ => {
            return Err(ReadError::Skipped(
                "several YAML documents (rule collections) are not supported".into(),
            ));
        }
    };
    if doc.as_hash().is_none() {
        return Err(ReadError::Malformed("not a YAML mapping".into()));
    }
    let title = doc["title"]
        .as_str()
        .ok_or_else(|| ReadError::Malformed("no title".into()))?
        .to_string();
    if !doc["correlation"].is_badvalue() {
        return Err(ReadError::Skipped("a correlation rule".into()));
    }
    let level = match doc["level"].as_str() {
        Some(l) => Some(
            Level::parse(l).ok_or_else(|| ReadError::Malformed(format!("unknown level {l:?}")))?,
        ),
        None => None,
    };
    let tags = match &doc["tags"] {
        Yaml::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let info = Detection {
        id: doc["id"].as_str().map(str::to_string),
        title,
        level,
        tags,
        status: doc["status"].as_str().map(str::to_string),
    };
    let logsource = &doc["logsource"];
    let product_of = logsource["product"].as_str().map(str::to_string);
    let category = logsource["category"].as_str().map(str::to_string);
    if category.as_deref() != Some("process_creation") {
        return Err(ReadError::Skipped(format!(
            "logsource category {} is not process_creation",
            category.as_deref().unwrap_or("(none)")
        )));
    }
    if let Some(want) = product
        && product_of.as_deref() != Some(want)
    {
        return Err(ReadError::Skipped(format!(
            "logsource product {} is not {want}",
            product_of.as_deref().unwrap_or("(none)")
        )));
    }
    let Some(detection) = doc["detection"].as_hash() else {
        return Err(ReadError::Malformed("no detection".into()));
    };
    let skip = ReadError::Skipped;
    let mut names = Vec::new();
    let mut searches = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in detection {
        let Some(key) = k.as_str() else {
            return Err(ReadError::Malformed(
                "a detection key is not a string".into(),
            ));
        };
        match key {
            "condition" => match v {
                Yaml::String(s) => conditions.push(s.clone()),
                Yaml::Array(a) => {
                    for c in a {
                        let s = c.as_str().ok_or_else(|| {
                            ReadError::Malformed("a condition is not a string".into())
                        })?;
                        conditions.push(s.to_string());
                    }
                }
                _ => return Err(ReadError::Malformed("condition is not a string".into())),
            },
            "timeframe" => return Err(skip("timeframe (a correlation) is not supported".into())),
            _ => {
                names.push(key.to_string());
                searches.push(search(v).map_err(|e| skip(format!("search {key}: {e}")))?);
            }
        }
    }
    if conditions.is_empty() {
        return Err(ReadError::Malformed("no condition".into()));
    }
    // Several conditions: any of them (Sigma 1.x rule files).
    let mut conds = Vec::new();
    for c in &conditions {
        conds.push(condition::parse(c, &names).map_err(skip)?);
    }
    let cond = if conds.len() == 1 {
        conds.pop().expect("one")
    } else {
        Cond::Or(conds)
    };
    Ok(RuleDoc {
        info,
        product: product_of,
        category,
        names,
        searches,
        cond,
    })
}

fn search(v: &Yaml) -> Result<Search, String> {
    match v {
        Yaml::Hash(_) => Ok(Search::Maps(vec![map(v)?])),
        Yaml::Array(a) if a.iter().all(|x| x.as_hash().is_some()) && !a.is_empty() => {
            Ok(Search::Maps(a.iter().map(map).collect::<Result<_, _>>()?))
        }
        Yaml::Array(a) => {
            let values = a.iter().map(scalar).collect::<Result<Vec<_>, _>>()?;
            keywords(&values)
        }
        other => keywords(&[scalar(other)?]),
    }
}

fn keywords(values: &[Value]) -> Result<Search, String> {
    match modifiers::compile(&["contains"], values)? {
        Op::Match { pats, .. } => Ok(Search::Keywords(pats)),
        _ => Err("keywords that are not strings".into()),
    }
}

fn map(v: &Yaml) -> Result<Vec<Item>, String> {
    let Some(h) = v.as_hash() else {
        return Err("not a map".into());
    };
    let mut items = Vec::new();
    for (k, v) in h {
        let key = match k {
            Yaml::String(s) => s.as_str(),
            _ => return Err("a field name is not a string".into()),
        };
        let mut parts = key.split('|');
        let name = parts.next().unwrap_or("");
        if name.is_empty() {
            return Err(format!(
                "{key:?}: keywords with modifiers are not supported"
            ));
        }
        let mods: Vec<&str> = parts.collect();
        let values = match v {
            Yaml::Array(a) => a.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar(other)?],
        };
        if values.is_empty() {
            return Err(format!("{key}: an empty list of values"));
        }
        let op = modifiers::compile(&mods, &values).map_err(|e| format!("{key}: {e}"))?;
        items.push(Item {
            name: name.to_string(),
            field: Field::by_name(name),
            op,
        });
    }
    Ok(items)
}

fn scalar(v: &Yaml) -> Result<Value, String> {
    Ok(match v {
        Yaml::String(s) => Value::Str(s.clone()),
        Yaml::Integer(i) => Value::Num(i.to_string(), *i as f64),
        Yaml::Real(r) => Value::Num(r.clone(), r.parse().map_err(|_| format!("number {r}"))?),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Null => Value::Null,
        _ => return Err("a value that is not a string, number, boolean or null".into()),
    })
}
