//! The `--exe` and `--exclude-exe` globs, matched against raw path bytes.

/// One piece of a compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// This character exactly.
    Char(char),
    /// `?`: any one character (or one byte that is not valid UTF-8).
    Any,
    /// `*`: any run, including `/` and the empty run.
    Star,
    /// `[...]`: inclusive ranges; `negated` for `[!...]` / `[^...]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A unit of the subject: paths need not be UTF-8, so a byte that does not
/// start a valid character stands alone.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Char(char),
    Byte,
}

impl Token {
    fn matches(&self, u: Unit) -> bool {
        match (self, u) {
            (Token::Star, _) => true,
            (Token::Any, _) => true,
            (Token::Char(c), Unit::Char(d)) => *c == d,
            (Token::Char(_), Unit::Byte) => false,
            (Token::Class { negated, ranges }, u) => {
                let inside = match u {
                    Unit::Char(d) => ranges.iter().any(|&(lo, hi)| lo <= d && d <= hi),
                    Unit::Byte => false,
                };
                inside != *negated
            }
        }
    }
}

/// The unit starting at byte `i` of `s`, and its length in bytes.
fn unit_at(s: &[u8], i: usize) -> (Unit, usize) {
    let len = match s[i] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return (Unit::Byte, 1),
    };
    match s.get(i..i + len).map(std::str::from_utf8) {
        Some(Ok(t)) => (Unit::Char(t.chars().next().unwrap_or_default()), len),
        _ => (Unit::Byte, 1),
    }
}

/// A shell-style glob over a path: `*` (any run, `/` included), `?`,
/// `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`), and `\` to take the next
/// character literally. The whole path must match. A pattern without `/`
/// is matched against the last path component only, so `--exe bash`
/// matches `/usr/bin/bash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    basename_only: bool,
}

impl Glob {
    /// Compiles `pattern`; errors on an unterminated `[` or a trailing `\`.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    // `**` means the same as `*`; one token keeps
                    // backtracking linear in the number of stars.
                    if tokens.last() == Some(&Token::Star) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::Any,
                '\\' => Token::Char(chars.next().ok_or("trailing backslash")?),
                '[' => parse_class(&mut chars)?,
                c => Token::Char(c),
            });
        }
        Ok(Glob {
            tokens,
            basename_only: !pattern.contains('/'),
        })
    }

    /// Whether the glob matches `path` (its last component for a pattern
    /// without `/`).
    pub fn matches_path(&self, path: &[u8]) -> bool {
        if self.basename_only {
            let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            self.matches(&path[start..])
        } else {
            self.matches(path)
        }
    }

    /// Whether the glob matches all of `s`.
    ///
    /// Classic wildcard matching: on a mismatch, retry from the last `*`
    /// with one more unit swallowed. Only the last star needs revisiting,
    /// which bounds the work by pattern × subject length.
    fn matches(&self, s: &[u8]) -> bool {
        let toks = &self.tokens;
        let (mut p, mut i) = (0, 0);
        // (token after the last star, subject position it was tried at)
        let mut retry: Option<(usize, usize)> = None;
        loop {
            if p < toks.len() {
                if toks[p] == Token::Star {
                    retry = Some((p + 1, i));
                    p += 1;
                    continue;
                }
                if i < s.len() {
                    let (u, n) = unit_at(s, i);
                    if toks[p].matches(u) {
                        p += 1;
                        i += n;
                        continue;
                    }
                }
            } else if i == s.len() {
                return true;
            }
            match retry {
                Some((rp, ri)) if ri < s.len() => {
                    let next = ri + unit_at(s, ri).1;
                    retry = Some((rp, next));
                    p = rp;
                    i = next;
                }
                _ => return false,
            }
        }
    }
}

/// Parses a bracket expression after its `[`. A `]` right after `[` or
/// `[!` is a member, as is a `-` first or last.
fn parse_class(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, String> {
    const UNTERMINATED: &str = "unterminated [ (write \\[ for a literal [)";
    let negated = matches!(chars.peek(), Some('!' | '^'));
    if negated {
        chars.next();
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = match chars.next().ok_or(UNTERMINATED)? {
            ']' if !first => break,
            '\\' => chars.next().ok_or(UNTERMINATED)?,
            c => c,
        };
        first = false;
        let mut ahead = chars.clone();
        if ahead.next() == Some('-') && !matches!(ahead.peek(), Some(']') | None) {
            chars.next();
            let hi = match chars.next().ok_or(UNTERMINATED)? {
                '\\' => chars.next().ok_or(UNTERMINATED)?,
                h => h,
            };
            if hi < c {
                return Err(format!("empty range {c}-{hi}"));
            }
            ranges.push((c, hi));
        } else {
            ranges.push((c, c));
        }
    }
    Ok(Token::Class { negated, ranges })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    fn m(p: &str, s: &[u8]) -> bool {
        glob(p).matches_path(s)
    }

    #[test]
    fn glob_literals_and_star() {
        assert!(m("/usr/bin/ls", b"/usr/bin/ls"));
        assert!(!m("/usr/bin/ls", b"/usr/bin/lsx"));
        assert!(!m("/usr/bin/ls", b"/usr/bin/l"));
        assert!(m("/usr/*", b"/usr/bin/ls"), "* crosses /");
        assert!(m("/usr/*", b"/usr/"));
        assert!(!m("/usr/*", b"/usr"));
        assert!(m("*", b"/anything/at/all"));
        assert!(m("/tmp/*.sh", b"/tmp/a/b/c.sh"));
        assert!(!m("/tmp/*.sh", b"/tmp/a.shx"));
        assert!(m("/*/bin/*sh", b"/usr/bin/bash"));
        assert!(m("/a*b*c", b"/aXbYbZc"));
        assert!(!m("/a*b*c", b"/aXbYbZ"));
        assert!(m("/**", b"/x"));
        assert!(m("", b""));
        assert!(!m("/x", b""));
    }

    #[test]
    fn glob_without_slash_matches_basename() {
        assert!(m("bash", b"/usr/bin/bash"));
        assert!(m("python3*", b"/usr/bin/python3.12"));
        assert!(!m("bash", b"/usr/bin/rbash"));
        assert!(!m("bin", b"/usr/bin/bash"));
        assert!(m("ls", b"ls"));
        // With a slash the whole path must match.
        assert!(!m("bin/bash", b"/usr/bin/bash"));
        assert!(m("*/bin/bash", b"/usr/bin/bash"));
    }

    #[test]
    fn glob_question_mark_is_one_character() {
        assert!(m("/bin/?s", b"/bin/ls"));
        assert!(!m("/bin/?s", b"/bin/s"));
        assert!(!m("/bin/?s", b"/bin/lls"));
        // One character even when it takes several bytes, and one byte
        // when the bytes are not UTF-8.
        assert!(m("/tmp/?", "/tmp/é".as_bytes()));
        assert!(m("/tmp/?", b"/tmp/\xff"));
        assert!(!m("/tmp/?", b"/tmp/\xff\xfe"));
        assert!(m("/tmp/??", b"/tmp/\xff\xfe"));
        assert!(m("/tmp/?x", b"/tmp/\xc3x"), "truncated sequence is a byte");
    }

    #[test]
    fn glob_classes() {
        assert!(m("/bin/[abc]sh", b"/bin/bsh"));
        assert!(!m("/bin/[abc]sh", b"/bin/zsh"));
        assert!(m("/v[0-9]", b"/v7"));
        assert!(!m("/v[0-9]", b"/vx"));
        assert!(m("/v[!0-9]", b"/vx"));
        assert!(!m("/v[!0-9]", b"/v5"));
        assert!(m("/v[^0-9]", b"/vx"));
        assert!(m("/v[!0-9]", b"/v\xff"), "a raw byte is outside any class");
        assert!(!m("/v[\u{0}-\u{10ffff}]", b"/v\xff"));
        assert!(m("/[]]", b"/]"));
        assert!(m("/[!]]", b"/a"));
        assert!(!m("/[!]]", b"/]"));
        assert!(m("/[a-]", b"/-"));
        assert!(m("/[-a]", b"/-"));
        assert!(m("/[\\]x]", b"/]"));
        assert!(m("/[é-ë]", "/ê".as_bytes()));
        assert!(m("/[a-cx-z]", b"/y"));
    }

    #[test]
    fn glob_escapes() {
        assert!(m("/tmp/\\*", b"/tmp/*"));
        assert!(!m("/tmp/\\*", b"/tmp/a"));
        assert!(m("/tmp/\\?", b"/tmp/?"));
        assert!(m("/tmp/\\[x]", b"/tmp/[x]"));
        assert!(m("/tmp/a\\\\b", b"/tmp/a\\b"));
    }

    #[test]
    fn glob_errors() {
        assert!(Glob::new("/tmp/[abc").is_err());
        assert!(Glob::new("/tmp/[").is_err());
        assert!(Glob::new("/tmp/[!").is_err());
        assert!(Glob::new("/tmp/x\\").is_err());
        assert!(Glob::new("/tmp/[z-a]").is_err());
        assert!(Glob::new("/tmp/[a-\\").is_err());
    }

    #[test]
    fn glob_many_stars_stay_fast() {
        let p = format!("/{}b", "*a".repeat(50));
        let s = format!("/{}", "a".repeat(5000));
        assert!(!m(&p, s.as_bytes()));
    }
}
