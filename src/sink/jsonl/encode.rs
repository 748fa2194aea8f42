//! The JSON encoder of every JSONL line: a small, fast object writer.
//!
//! Building a `serde_json::Value` tree per exec line cost ~18 µs; writing
//! the text directly costs a small fraction of that. Strings are escaped so the
//! output is both valid JSON and terminal-safe: besides what JSON requires,
//! characters a terminal would act on (DEL, C1 controls, bidi and invisible
//! format characters; see [`needs_escape`]) are written as `\uXXXX`, which
//! decodes to the same value.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::sink::escape::needs_escape;

/// Appends `s` as a JSON string literal.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    if is_plain(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut clean_from = 0;
    for (i, c) in s.char_indices() {
        // Fast path: printable ASCII other than the two JSON metacharacters.
        if matches!(c, ' '..='~') && c != '"' && c != '\\' {
            continue;
        }
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 || needs_escape(c) => None,
            _ => continue,
        };
        out.push_str(&s[clean_from..i]);
        clean_from = i + c.len_utf8();
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push_str(&s[clean_from..]);
    out.push('"');
}

/// Printable ASCII other than `"` and `\\`: written as is, no escaping.
/// Most strings are. A branch-free fold (no early exit) lets the compiler
/// vectorise the scan; it is much cheaper than the char loop of `push_str`.
#[inline]
fn is_plain(b: &[u8]) -> bool {
    !b.iter().fold(false, |acc, &c| {
        acc | !(0x20..0x7f).contains(&c) | (c == b'"') | (c == b'\\')
    })
}

/// Appends a byte string as a JSON string, always: the string itself when
/// it is valid UTF-8; otherwise its lossy form (U+FFFD for each invalid
/// sequence), and the exact bytes go into `raw` under the JSON Pointer
/// that `ptr` writes.
pub fn push_text(out: &mut String, b: &[u8], raw: &mut Raw, ptr: impl FnOnce(&mut String)) {
    if is_plain(b) {
        out.push('"');
        // SAFETY: `is_plain` admits only bytes below 0x80, which are valid
        // UTF-8 on their own (one scan instead of validating, then escaping).
        out.push_str(unsafe { std::str::from_utf8_unchecked(b) });
        out.push('"');
        return;
    }
    match std::str::from_utf8(b) {
        Ok(s) => push_str(out, s),
        Err(_) => {
            push_str(out, &String::from_utf8_lossy(b));
            raw.add(b, ptr);
        }
    }
}

/// The members of a line's `raw` object: for every byte string that is
/// not UTF-8, the JSON Pointer (RFC 6901) of its lossy string in the line
/// and the base64 of its exact bytes, e.g. `"/argv/2":"/w=="`.
#[derive(Debug, Default, Clone)]
pub struct Raw {
    members: String,
}

impl Raw {
    /// Records `b` under the pointer that `ptr` writes.
    pub fn add(&mut self, b: &[u8], ptr: impl FnOnce(&mut String)) {
        if !self.members.is_empty() {
            self.members.push(',');
        }
        // Pointers are built from the code's own keys and indices: no
        // character needs escaping.
        self.members.push('"');
        ptr(&mut self.members);
        self.members.push_str("\":\"");
        base64::engine::general_purpose::STANDARD.encode_string(b, &mut self.members);
        self.members.push('"');
    }

    /// Adds the members of `other` (a part rendered once and reused).
    pub fn extend(&mut self, other: &Raw) {
        if other.members.is_empty() {
            return;
        }
        if !self.members.is_empty() {
            self.members.push(',');
        }
        self.members.push_str(&other.members);
    }

    pub fn clear(&mut self) {
        self.members.clear();
    }

    /// Writes `"raw":{...}` (`{}` when every string was UTF-8).
    pub fn write(&self, o: &mut Obj) {
        let buf = o.key("raw");
        buf.push('{');
        buf.push_str(&self.members);
        buf.push('}');
    }
}

/// A JSON Pointer writer for `ptr` arguments: `<prefix>/<index>`, the
/// prefix already a pointer (`/argv`).
pub fn at_index(prefix: &'static str, i: usize) -> impl FnOnce(&mut String) {
    move |p: &mut String| {
        p.push_str(prefix);
        p.push('/');
        push_int(p, i);
    }
}

/// Appends `[a,b,...]`, each item written by `each`.
#[inline]
pub fn push_array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

/// Appends an integer in decimal (itoa: no `fmt` machinery).
#[inline]
pub fn push_int(out: &mut String, v: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends `v` as `0x` and `digits` lowercase hex digits (zero-padded).
pub fn push_hex(out: &mut String, v: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("0x");
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xf) as usize] as char);
    }
}

/// Writes the members of one JSON object, in call order.
pub struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    #[inline]
    pub fn open(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }

    /// Writes `"key":` and returns the buffer for the value. Keys are the
    /// code's own identifiers (never input), written without escaping.
    #[inline]
    pub fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(
            key.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
            "{key:?} is not a plain key"
        );
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        self.out
    }

    #[inline]
    pub fn str(&mut self, key: &'static str, v: &str) {
        push_str(self.key(key), v);
    }

    #[inline]
    pub fn opt_str(&mut self, key: &'static str, v: Option<&str>) {
        match v {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// A byte string at `key` of an object whose own pointer is `prefix`
    /// (`""` for the line itself, `/parent` for its parent), its exact
    /// bytes into `raw` when they are not UTF-8.
    #[inline]
    pub fn text(&mut self, prefix: &'static str, key: &'static str, v: &[u8], raw: &mut Raw) {
        push_text(self.key(key), v, raw, |p| {
            p.push_str(prefix);
            p.push('/');
            p.push_str(key);
        });
    }

    #[inline]
    pub fn opt_text(
        &mut self,
        prefix: &'static str,
        key: &'static str,
        v: Option<&[u8]>,
        raw: &mut Raw,
    ) {
        match v {
            Some(v) => self.text(prefix, key, v, raw),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn num(&mut self, key: &'static str, v: impl itoa::Integer) {
        push_int(self.key(key), v);
    }

    #[inline]
    pub fn opt_num(&mut self, key: &'static str, v: Option<impl itoa::Integer>) {
        match v {
            Some(v) => self.num(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn bool(&mut self, key: &'static str, v: bool) {
        self.key(key).push_str(if v { "true" } else { "false" });
    }

    #[inline]
    pub fn opt_bool(&mut self, key: &'static str, v: Option<bool>) {
        match v {
            Some(v) => self.bool(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub fn null(&mut self, key: &'static str) {
        self.key(key).push_str("null");
    }

    /// Writes an already-serialized JSON value.
    #[inline]
    pub fn raw(&mut self, key: &'static str, json: &str) {
        self.key(key).push_str(json);
    }

    /// Closes the object.
    #[inline]
    pub fn close(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testutil::nasty_inputs;

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("invalid JSON {s:?}: {e}"))
    }

    #[test]
    fn strings_round_trip_and_are_terminal_safe() {
        let nasty = "q\"b\\s\n\r\t\x00\x07\x1b[31m\x7f\u{85}\u{202e}\u{2028}ü😀";
        let mut out = String::new();
        push_str(&mut out, nasty);
        assert_eq!(parse(&out), nasty);
        assert!(
            !out.chars().any(|c| (c as u32) < 0x20 || needs_escape(c)),
            "{out:?}"
        );
        assert!(out.contains("ü😀"), "ordinary non-ASCII stays readable");
    }

    #[test]
    fn invalid_utf8_is_a_lossy_string_with_its_bytes_in_raw() {
        let mut out = String::new();
        let mut raw = Raw::default();
        push_text(&mut out, b"a\xffb", &mut raw, at_index("/argv", 3));
        assert_eq!(parse(&out), "a\u{fffd}b");
        let mut line = String::new();
        let mut o = Obj::open(&mut line);
        raw.write(&mut o);
        o.close();
        assert_eq!(
            parse(&line),
            serde_json::json!({"raw": {"/argv/3": "Yf9i"}})
        );
    }

    #[test]
    fn object_members_in_order() {
        let mut out = String::new();
        let mut o = Obj::open(&mut out);
        o.str("s", "x");
        o.opt_str("n", None);
        o.num("i", 42u32);
        o.opt_num("m", None::<u64>);
        o.bool("b", true);
        o.opt_bool("ob", Some(false));
        let mut raw = Raw::default();
        o.text("", "y", b"\xfe", &mut raw);
        o.raw("r", "[1,2]");
        raw.write(&mut o);
        o.close();
        assert!(out.starts_with("{\"s\":\"x\",\"n\":null,\"i\":42,"));
        let v = parse(&out);
        assert_eq!(v["m"], serde_json::Value::Null);
        assert_eq!(v["ob"], false);
        assert_eq!(v["r"], serde_json::json!([1, 2]));
        assert_eq!(v["y"], "\u{fffd}");
        assert_eq!(v["raw"]["/y"], "/g==");
    }

    /// A byte string as the JSON encoder writes it, parsed back, and the
    /// raw members it added.
    fn json_bytes(b: &[u8]) -> (String, serde_json::Value, serde_json::Value) {
        let mut text = String::new();
        let mut raw = Raw::default();
        push_text(&mut text, b, &mut raw, at_index("/argv", 0));
        let v = serde_json::from_str(&text).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&format!("{{{}}}", raw.members)).unwrap();
        (text, v, raw)
    }

    #[test]
    fn json_bytes_utf8_is_a_string() {
        assert_eq!(json_bytes(b"/bin/ls").1, serde_json::json!("/bin/ls"));
        assert_eq!(json_bytes(b"").1, serde_json::json!(""));
        let (text, v, raw) = json_bytes(b"a\x1b\n");
        assert_eq!(v.as_str(), Some("a\x1b\n"));
        assert_eq!(text, "\"a\\u001b\\n\"");
        assert_eq!(raw, serde_json::json!({}));
    }

    #[test]
    fn json_bytes_non_utf8_round_trips_via_raw() {
        for input in nasty_inputs() {
            let (_, v, raw) = json_bytes(&input);
            let s = v.as_str().expect("always a string");
            let back = match raw.get("/argv/0") {
                Some(b64) => {
                    assert!(std::str::from_utf8(&input).is_err());
                    assert_eq!(s, String::from_utf8_lossy(&input));
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.as_str().unwrap())
                        .unwrap()
                }
                None => s.as_bytes().to_vec(),
            };
            assert_eq!(back, input);
        }
        let (_, v, raw) = json_bytes(b"\xff\xfe");
        assert_eq!(v, serde_json::json!("\u{fffd}\u{fffd}"));
        assert_eq!(raw, serde_json::json!({"/argv/0": "//4="}));
    }
}
