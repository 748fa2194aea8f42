//! Field values and their modifiers (`CommandLine|contains|all: [...]`),
//! compiled into the patterns the engine matches: lower-cased literals for
//! the common, case-insensitive case, regexes for wildcards and `re`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regex::{Regex, RegexBuilder};

use super::fields::lower;

/// A scalar value from the rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// A number, with its spelling in the rule.
    Num(String, f64),
    Bool(bool),
    Null,
}

/// How a pattern compares a field's value.
#[derive(Debug, Clone)]
pub enum Pat {
    Eq(String),
    Contains(String),
    Starts(String),
    Ends(String),
    /// Sigma wildcards (`*`, `?`): an anchored regex.
    Glob(Regex),
    /// `re`: matched against the value as given.
    Re(Regex),
}

/// One value to match, after the modifiers.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub pat: Pat,
    /// `cased`: compared with the value as given, not lower-cased.
    pub cased: bool,
    /// Literals (lower-cased) one of which every match contains, for the
    /// prefilter; empty when there is no such set worth looking for.
    pub needles: Vec<String>,
    /// Where in the value a match has its needle.
    pub anchor: Anchor,
}

/// Where a needle occurs in every value the pattern matches: the
/// prefilter looks for an anchored one only at that place, a few steps
/// per value instead of a scan of every byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    Anywhere,
    Start,
    End,
    /// The whole value.
    Whole,
}

impl Pattern {
    /// Whether the field's value (`orig` as given, `low` lower-cased)
    /// matches.
    pub fn matches(&self, orig: &str, low: &str) -> bool {
        let text = if self.cased { orig } else { low };
        match &self.pat {
            Pat::Eq(s) => text == s,
            Pat::Contains(s) => text.contains(s.as_str()),
            Pat::Starts(s) => text.starts_with(s.as_str()),
            Pat::Ends(s) => text.ends_with(s.as_str()),
            Pat::Glob(r) => r.is_match(text),
            Pat::Re(r) => r.is_match(orig),
        }
    }
}

/// A numeric comparison (`gt`, `gte`, `lt`, `lte`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// How one field is tested.
#[derive(Debug, Clone)]
pub enum Op {
    /// `Field: null`: the event has no value.
    Null,
    /// `Field|exists: true/false`.
    Exists(bool),
    /// String patterns: any of them (all with `all`).
    Match { pats: Vec<Pattern>, all: bool },
    /// Numbers: any of them (all with `all`).
    Num { cmps: Vec<(Cmp, f64)>, all: bool },
    /// `expand` of a placeholder procwatch has no value for (bound like
    /// an unavailable field: the rule is skipped, naming it).
    Placeholder(String),
    /// `fieldref`: compared with another field of the same event.
    FieldRef {
        others: Vec<String>,
        mode: Mode,
        cased: bool,
        all: bool,
    },
}

/// Where a string must occur in the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Eq,
    Contains,
    Starts,
    Ends,
}

/// A field's modifiers, parsed.
#[derive(Debug, Default)]
struct Mods {
    mode: Option<Mode>,
    all: bool,
    re: bool,
    re_flags: String,
    cased: bool,
    exists: bool,
    fieldref: bool,
    cmp: Option<Cmp>,
    windash: bool,
    /// `base64` (false) or `base64offset` (true).
    base64: Option<bool>,
    /// `wide`/`utf16le`, `utf16be`, `utf16` (with a byte-order mark).
    encoding: Option<&'static str>,
    expand: bool,
}

/// Compiles `Field|mods` with its values (several values: a list) into an
/// [`Op`]. `Err` names what is not supported.
pub fn compile(mods: &[&str], values: &[Value]) -> Result<Op, String> {
    let m = parse_mods(mods)?;
    if m.exists {
        return match values {
            [Value::Bool(b)] => Ok(Op::Exists(*b)),
            _ => Err("exists takes true or false".into()),
        };
    }
    if values.contains(&Value::Null) {
        if values.len() == 1 && m.mode.is_none() && !m.re && m.cmp.is_none() {
            return Ok(Op::Null);
        }
        return Err("null in a list or with a modifier".into());
    }
    if let Some(cmp) = m.cmp {
        let cmps = values
            .iter()
            .map(|v| match v {
                Value::Num(_, n) => Ok((cmp, *n)),
                _ => Err("gt/gte/lt/lte take a number".to_string()),
            })
            .collect::<Result<_, _>>()?;
        return Ok(Op::Num { cmps, all: m.all });
    }
    let strings: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::Str(s) => s.clone(),
            Value::Num(s, _) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => unreachable!("null was handled above"),
        })
        .collect();
    if m.fieldref {
        return Ok(Op::FieldRef {
            others: strings,
            mode: m.mode.unwrap_or(Mode::Eq),
            cased: m.cased,
            all: m.all,
        });
    }
    let mut pats = Vec::new();
    for s in &strings {
        if m.re {
            pats.push(regex_pattern(s, &m.re_flags)?);
            continue;
        }
        if m.expand && s.contains('%') {
            return Ok(Op::Placeholder(s.clone()));
        }
        // Base64 is compared exactly: another case decodes to other bytes.
        let cased = m.cased || m.base64.is_some();
        for variant in transform(s, &m)? {
            pats.push(pattern(variant, m.mode.unwrap_or(Mode::Eq), cased)?);
        }
    }
    // With `all`, each value's variants (windash, base64offset) are its
    // alternatives; a value that expands to several is not supported then.
    if m.all && pats.len() != strings.len() {
        return Err("all with a modifier that expands values".into());
    }
    Ok(Op::Match { pats, all: m.all })
}

fn parse_mods(mods: &[&str]) -> Result<Mods, String> {
    let mut m = Mods::default();
    let set_mode = |m: &mut Mods, mode| {
        if m.mode.replace(mode).is_some() {
            return Err("two of contains/startswith/endswith".to_string());
        }
        Ok(())
    };
    for &name in mods {
        match name {
            "contains" => set_mode(&mut m, Mode::Contains)?,
            "startswith" => set_mode(&mut m, Mode::Starts)?,
            "endswith" => set_mode(&mut m, Mode::Ends)?,
            "all" => m.all = true,
            "re" => m.re = true,
            "i" | "m" | "s" if m.re => m.re_flags.push_str(name),
            "cased" => m.cased = true,
            "exists" => m.exists = true,
            "fieldref" => m.fieldref = true,
            "gt" => m.cmp = Some(Cmp::Gt),
            "gte" => m.cmp = Some(Cmp::Gte),
            "lt" => m.cmp = Some(Cmp::Lt),
            "lte" => m.cmp = Some(Cmp::Lte),
            "windash" => m.windash = true,
            "base64" => m.base64 = Some(false),
            "base64offset" => m.base64 = Some(true),
            "wide" | "utf16le" => m.encoding = Some("utf16le"),
            "utf16be" => m.encoding = Some("utf16be"),
            "utf16" => m.encoding = Some("utf16"),
            "expand" => m.expand = true,
            other => return Err(format!("modifier {other} is not supported")),
        }
    }
    if m.re && (m.mode.is_some() || m.base64.is_some() || m.windash) {
        return Err("re combined with a string modifier".into());
    }
    if m.encoding.is_some() && m.base64.is_none() {
        return Err("an encoding modifier without base64".into());
    }
    Ok(m)
}

/// A value's variants after `windash` and `base64`/`base64offset`, each
/// still in Sigma's wildcard syntax.
fn transform(s: &str, m: &Mods) -> Result<Vec<String>, String> {
    let mut out = if m.windash {
        windash(s)
    } else {
        vec![s.to_string()]
    };
    if let Some(offset) = m.base64 {
        let mut encoded = Vec::new();
        for v in &out {
            let parts = parse_wildcards(v);
            let [Part::Lit(lit)] = parts.as_slice() else {
                return Err("base64 of a value with wildcards".into());
            };
            let bytes = encode(lit, m.encoding);
            if offset {
                encoded.extend(base64_offsets(&bytes).into_iter().map(|e| escape(&e)));
            } else {
                encoded.push(escape(&STANDARD.encode(&bytes)));
            }
        }
        out = encoded;
    }
    Ok(out)
}

fn encode(s: &str, encoding: Option<&str>) -> Vec<u8> {
    match encoding {
        Some("utf16le") => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Some("utf16be") => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        Some(_) => [0xff, 0xfe]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        None => s.as_bytes().to_vec(),
    }
}

/// The three base64 forms of `b` at each offset within a longer encoded
/// string, trimmed of the characters that depend on its neighbours (as
/// pySigma computes them).
fn base64_offsets(b: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(b);
            let e = STANDARD.encode(&padded);
            let end = e.len() - END[(b.len() + i) % 3];
            e.get(START[i]..end).unwrap_or("").to_string()
        })
        .collect()
}

/// `windash`: the value as written, and with each dash or slash that
/// starts an option replaced by `-`, `/`, en dash, em dash and horizontal
/// bar (Windows programs accept them all).
fn windash(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let starts: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            matches!(chars[i], '-' | '/')
                && (i == 0 || !is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|&c| is_word(c))
        })
        .collect();
    let mut out = vec![s.to_string()];
    if starts.is_empty() {
        return out;
    }
    for dash in ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'] {
        let mut v = chars.clone();
        for &i in &starts {
            v[i] = dash;
        }
        let v: String = v.into_iter().collect();
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A piece of a value in Sigma's wildcard syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Star,
    Question,
}

/// Splits a value at its wildcards: `*` any run, `?` one character; `\*`,
/// `\?` and `\\` are the characters themselves, and any other backslash is
/// literal (Windows paths).
fn parse_wildcards(s: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?' | '\\')) => {
                lit.push(chars.next().expect("peeked"));
            }
            '*' | '?' => {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(if c == '*' { Part::Star } else { Part::Question });
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() || parts.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

/// `s` with Sigma's special characters escaped (a literal made by a
/// modifier).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One value in wildcard syntax, compared as `mode` says.
fn pattern(value: String, mode: Mode, cased: bool) -> Result<Pattern, String> {
    let mut parts = parse_wildcards(&value);
    if matches!(mode, Mode::Contains | Mode::Ends) && parts.first() != Some(&Part::Star) {
        parts.insert(0, Part::Star);
    }
    if matches!(mode, Mode::Contains | Mode::Starts) && parts.last() != Some(&Part::Star) {
        parts.push(Part::Star);
    }
    let fold = |s: &str| if cased { s.to_string() } else { lower(s) };
    let pat = match parts.as_slice() {
        [Part::Lit(s)] => Some(Pat::Eq(fold(s))),
        [Part::Star, Part::Lit(s), Part::Star] => Some(Pat::Contains(fold(s))),
        [Part::Lit(s), Part::Star] => Some(Pat::Starts(fold(s))),
        [Part::Star, Part::Lit(s)] => Some(Pat::Ends(fold(s))),
        _ => None,
    };
    // The longest literal piece; at equal length the last, which for
    // `endswith` and most globs is anchored at the end.
    let lits = parts.iter().enumerate().filter_map(|(i, p)| match p {
        Part::Lit(s) => Some((i, s)),
        _ => None,
    });
    let (needles, anchor) = match lits.max_by_key(|(_, s)| s.len()) {
        // The prefilter separates values with NUL (see fields::Record).
        Some((i, s)) if !s.is_empty() && !s.contains('\0') => {
            let anchor = match (i == 0, i + 1 == parts.len()) {
                (true, true) => Anchor::Whole,
                (true, false) => Anchor::Start,
                (false, true) => Anchor::End,
                (false, false) => Anchor::Anywhere,
            };
            (vec![lower(s)], anchor)
        }
        _ => (Vec::new(), Anchor::Anywhere),
    };
    let pat = match pat {
        Some(p) => p,
        None => {
            let mut re = String::from("^");
            for p in &parts {
                match p {
                    Part::Lit(s) => re.push_str(&regex::escape(&fold(s))),
                    Part::Star => re.push_str(".*"),
                    Part::Question => re.push('.'),
                }
            }
            re.push('$');
            // Matched against the lower-cased value with the pieces
            // lower-cased (unless `cased`), as the other forms and the
            // prefilter compare, rather than with the regex's Unicode
            // folding, which also equates `K` (Kelvin) with `k` and `ſ`
            // with `s`: the two would disagree and a rule be skipped.
            let r = RegexBuilder::new(&re)
                .dot_matches_new_line(true)
                .build()
                .map_err(|e| format!("wildcard value {value:?}: {e}"))?;
            Pat::Glob(r)
        }
    };
    Ok(Pattern {
        pat,
        cased,
        needles,
        anchor,
    })
}

/// `re` with its `i`, `m`, `s` flags. Rust's regex has no look-around or
/// back-references: a rule using them is skipped with the error.
fn regex_pattern(s: &str, flags: &str) -> Result<Pattern, String> {
    let r = RegexBuilder::new(s)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .map_err(|e| {
            let first = e
                .to_string()
                .lines()
                .last()
                .unwrap_or("")
                .trim()
                .to_string();
            format!("re {s:?}: {first}")
        })?;
    Ok(Pattern {
        pat: Pat::Re(r),
        cased: true,
        needles: regex_literals(s, flags),
        anchor: Anchor::Anywhere,
    })
}

/// Literals (lower-cased) one of which every match of the regex `s`
/// starts with, as regex-syntax extracts them; empty when there is no
/// small set of them (a class, a repetition or an empty alternative at the
/// start).
fn regex_literals(s: &str, flags: &str) -> Vec<String> {
    use regex_syntax::hir::literal::Extractor;
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .parse(s)
    else {
        return Vec::new();
    };
    let seq = Extractor::new().extract(&hir);
    let Some(lits) = seq.literals() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for lit in lits {
        // A literal that is empty, not whole UTF-8 characters or holds the
        // NUL the prefilter cannot look for gives no required set.
        match std::str::from_utf8(lit.as_bytes()) {
            Ok(t) if !t.is_empty() && !t.contains('\0') => out.push(lower(t)),
            _ => return Vec::new(),
        }
    }
    out.sort_unstable();
    out.dedup();
    // Case-insensitive prefixes fold to a few literals; a set still large
    // would mostly add scan work.
    if out.len() > 16 {
        return Vec::new();
    }
    out
}
