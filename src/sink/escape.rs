//! Safe rendering of attacker-controlled byte strings (times: time.rs).
//!
//! argv elements, paths and `comm` come straight from whoever called
//! `execve`. They can hold commas, quotes, newlines, terminal escape
//! sequences, bidi overrides, invalid UTF-8 and megabytes of data. Every
//! sink renders them through these functions so that:
//!
//! * nothing written to a terminal can move the cursor, recolour, retitle
//!   or visually reorder the line (no raw C0/C1 controls, DEL, or Unicode
//!   format characters ever come out);
//! * the rendering is lossless: the exact bytes can be recovered (shell
//!   quoting round-trips through bash, JSON keeps the bytes in base64);
//! * the output is always valid UTF-8.

// The Windows sources format their times with it, by this path.
pub use super::time::time_rfc3339;

/// Characters that must never reach a terminal raw.
///
/// C0/C1 controls and DEL drive the terminal; the Unicode format and
/// separator characters are invisible or reorder text (bidi overrides,
/// "Trojan Source"), so a line could look like a different command than the
/// one that ran. A few blank-rendering letters (Hangul fillers) are included
/// because they are used to fake spaces.
pub(crate) fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'          // C0 controls (ESC, newline, tab, ...)
        | '\u{7f}'..='\u{9f}'       // DEL and C1 controls (CSI = U+009B)
        | '\u{ad}'                  // soft hyphen: invisible
        | '\u{34f}'                 // combining grapheme joiner: invisible
        | '\u{61c}'                 // Arabic letter mark (bidi)
        | '\u{115f}' | '\u{1160}'   // Hangul fillers: render blank
        | '\u{17b4}' | '\u{17b5}'   // Khmer invisible vowels
        | '\u{180e}'                // Mongolian vowel separator
        | '\u{200b}'..='\u{200f}'   // zero-width space/joiners, LRM, RLM
        | '\u{2028}'..='\u{202e}'   // line/paragraph separators, bidi embeddings/overrides
        | '\u{2060}'..='\u{206f}'   // word joiner, invisible operators, bidi isolates
        | '\u{3164}' | '\u{ffa0}'   // Hangul fillers
        | '\u{feff}'                // BOM / zero-width no-break space
        | '\u{fff9}'..='\u{fffb}'   // interlinear annotation controls
        | '\u{1d173}'..='\u{1d17a}' // musical format controls
        | '\u{e0000}'..='\u{e007f}' // tag characters: invisible
    )
}

/// ASCII characters that need no quoting anywhere in a shell word.
fn is_bare_ascii(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
}

/// Whether `c` may appear unquoted. Non-ASCII letters are left bare for
/// readability (bash never treats bytes >= 0x80 as syntax), but non-ASCII
/// whitespace is not: an unquoted NO-BREAK SPACE would look like two words.
fn is_bare(c: char) -> bool {
    if c.is_ascii() {
        is_bare_ascii(c)
    } else {
        !c.is_whitespace() && !needs_escape(c)
    }
}

/// Quotes one argument for a POSIX shell (bash for the `$'...'` form).
///
/// Three forms, from most to least readable:
/// * bare, when the argument is non-empty and every character is in
///   `[A-Za-z0-9_@%+=:,./-]` or is a printable non-ASCII, non-space char;
/// * `'...'` (with `'` written as `'\''`) when it is valid UTF-8 without
///   controls or format characters;
/// * bash ANSI-C quoting `$'...'` otherwise, with `\n \t \r \\ \'` and
///   `\xNN` for every other control, every invalid UTF-8 byte and every byte
///   of a Unicode format character.
///
/// Format characters are written as their UTF-8 bytes (`\xe2\x80\xae`),
/// not `\u202E`: bash expands `\uHHHH` according to the current locale and
/// leaves it as literal text in the C locale, which would break the
/// guarantee below.
///
/// Guarantee: `bash -c 'printf "%s\0" '"$quoted"` prints exactly `arg`
/// in any locale. The result is valid UTF-8 and contains no raw control
/// character. argv elements cannot contain NUL; if one is given anyway it
/// is written as `\x00`, which bash would treat as the end of the string.
pub fn shell_quote(arg: &[u8]) -> String {
    if arg.is_empty() {
        return "''".to_owned();
    }
    match std::str::from_utf8(arg) {
        Ok(s) if !s.chars().any(needs_escape) => {
            if s.chars().all(is_bare) {
                s.to_owned()
            } else {
                single_quote(s)
            }
        }
        _ => ansi_c_quote(arg),
    }
}

/// `'...'` quoting; the caller guarantees `s` has nothing to escape.
fn single_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn push_hex_byte(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\x");
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 0xf)] as char);
}

/// bash `$'...'` quoting of arbitrary bytes. Always two hex digits after
/// `\x` so a following hex-looking character is never swallowed.
fn ansi_c_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push_str("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if needs_escape(c) => {
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        push_hex_byte(&mut out, b);
                    }
                }
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            push_hex_byte(&mut out, b);
        }
    }
    out.push('\'');
    out
}

/// Words bash would not run as a command name if pasted bare in first
/// position (reserved words that are plain identifiers).
const RESERVED: &[&str] = &[
    "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
    "select", "then", "time", "until", "while",
];

/// Quotes the command word (argv[0]) so a pasted command line runs the same
/// program: a bare `A=b` would be an assignment, `%1` a job spec and `time`
/// a keyword, so those get single quotes even though they are "safe".
fn quote_command_word(arg: &[u8]) -> String {
    let q = shell_quote(arg);
    if q.as_bytes() == arg
        && (q.contains('=') || q.starts_with('%') || RESERVED.contains(&q.as_str()))
    {
        single_quote(&q)
    } else {
        q
    }
}

/// Renders argv as one shell command line: each element quoted with
/// [`shell_quote`] (the first one slightly more strictly, see below),
/// joined by single spaces.
///
/// Pasting the result into bash runs the same argv (modulo aliases and
/// functions); the first word is quoted when it would otherwise be read as
/// an assignment, job spec or keyword. Terminal-safe like `shell_quote`.
pub fn join_cmdline(argv: &[Vec<u8>]) -> String {
    let mut out = String::new();
    join_cmdline_into(&mut out, argv);
    out
}

/// Appends [`join_cmdline`] of `argv` to `out`.
pub fn join_cmdline_into(out: &mut String, argv: &[Vec<u8>]) {
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Fast path, the common case: a non-empty word of bare ASCII is
        // written as is (as the first word, only if it is no assignment,
        // job spec or keyword).
        let bare = !arg.is_empty() && arg.iter().all(|&b| is_bare_ascii(char::from(b)));
        let plain_command = || {
            !arg.contains(&b'=')
                && arg[0] != b'%'
                && !RESERVED.iter().any(|r| r.as_bytes() == arg.as_slice())
        };
        if bare && (i > 0 || plain_command()) {
            // Bare ASCII is valid UTF-8: the fallback is never taken.
            out.push_str(std::str::from_utf8(arg).unwrap_or_default());
        } else if i == 0 {
            out.push_str(&quote_command_word(arg));
        } else {
            out.push_str(&shell_quote(arg));
        }
    }
}

/// Renders a single-value field (a path, `comm`) for humans.
///
/// Returned unchanged when it is valid UTF-8 without controls or format
/// characters (spaces and quotes are kept as is, since the field stands
/// alone); otherwise the `$'...'` form of [`shell_quote`], which is
/// lossless. Always terminal-safe and valid UTF-8. Because a clean value
/// is never altered, a value starting with `$'` is ambiguous only if the
/// original itself started with `$'`, which JSON output can settle.
pub fn display_bytes(s: &[u8]) -> String {
    match std::str::from_utf8(s) {
        Ok(v) if !v.chars().any(needs_escape) => v.to_owned(),
        _ => ansi_c_quote(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testutil::nasty_inputs;
    #[cfg(unix)]
    use std::process::Command;

    /// Asserts the terminal-safety invariants of a rendered string.
    fn assert_terminal_safe(s: &str) {
        for c in s.chars() {
            assert!(!needs_escape(c), "raw unsafe char {c:?} in {s:?}");
        }
    }

    /// Runs `printf '%s\0' <words>` in bash under `locale` and splits the
    /// output back into the arguments bash saw.
    #[cfg(unix)]
    fn bash_printf(words: &str, locale: &str) -> Vec<Vec<u8>> {
        let out = Command::new("/bin/bash")
            .arg("-c")
            .arg(format!("printf '%s\\0' {words}"))
            .env("LC_ALL", locale)
            .output()
            .expect("run /bin/bash");
        assert!(out.status.success(), "bash failed: {out:?}");
        let mut parts: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
        assert_eq!(parts.pop(), Some(Vec::new()), "output ends with NUL");
        parts
    }

    #[cfg(unix)] // runs /bin/bash
    #[test]
    fn shell_quote_round_trips_through_bash_in_every_locale() {
        let inputs = nasty_inputs();
        let words: Vec<String> = inputs.iter().map(|a| shell_quote(a)).collect();
        for w in &words {
            assert_terminal_safe(w);
        }
        let line = words.join(" ");
        for locale in ["C", "C.UTF-8"] {
            let got = bash_printf(&line, locale);
            assert_eq!(got.len(), inputs.len(), "locale {locale}");
            for (i, (g, want)) in got.iter().zip(&inputs).enumerate() {
                assert_eq!(g, want, "input #{i} quoted as {:?} in {locale}", words[i]);
            }
        }
    }

    #[cfg(unix)] // runs /bin/bash
    #[test]
    fn join_cmdline_runs_the_same_argv_in_bash() {
        // The command line itself, pasted, must reproduce argv exactly.
        let mut argv: Vec<Vec<u8>> = vec![b"printf".to_vec(), b"%s\\0".to_vec()];
        argv.extend(nasty_inputs());
        let line = join_cmdline(&argv);
        assert_terminal_safe(&line);
        let out = Command::new("/bin/bash")
            .arg("-c")
            .arg(&line)
            .env("LC_ALL", "C")
            .output()
            .expect("run /bin/bash");
        assert!(out.status.success());
        let mut parts: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
        parts.pop();
        assert_eq!(parts, argv[2..].to_vec());
    }

    #[test]
    fn shell_quote_forms() {
        assert_eq!(shell_quote(b""), "''");
        assert_eq!(shell_quote(b"ls"), "ls");
        assert_eq!(shell_quote(b"/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(shell_quote(b"-la"), "-la");
        assert_eq!(shell_quote(b"a=b,c:d@e%f+g"), "a=b,c:d@e%f+g");
        assert_eq!(shell_quote("café".as_bytes()), "café");
        assert_eq!(shell_quote(b"a b"), "'a b'");
        assert_eq!(shell_quote(b"it's"), "'it'\\''s'");
        assert_eq!(shell_quote(b"$(id)"), "'$(id)'");
        assert_eq!(shell_quote(b"*"), "'*'");
        assert_eq!(shell_quote(b"~"), "'~'");
        assert_eq!(shell_quote("nb\u{a0}sp".as_bytes()), "'nb\u{a0}sp'");
        assert_eq!(shell_quote(b"a\nb"), "$'a\\nb'");
        assert_eq!(shell_quote(b"\t\r"), "$'\\t\\r'");
        assert_eq!(shell_quote(b"\x1b[31m"), "$'\\x1b[31m'");
        assert_eq!(shell_quote(b"\x7f"), "$'\\x7f'");
        assert_eq!(shell_quote(b"\xff'\\"), "$'\\xff\\'\\\\'");
        assert_eq!(shell_quote("\u{202e}x".as_bytes()), "$'\\xe2\\x80\\xaex'");
        assert_eq!(shell_quote("\u{9b}".as_bytes()), "$'\\xc2\\x9b'");
        assert_eq!(shell_quote(b"\x01a"), "$'\\x01a'");
    }

    #[test]
    fn quoted_output_is_valid_utf8_without_controls() {
        for input in nasty_inputs() {
            let q = shell_quote(&input);
            assert_terminal_safe(&q);
            assert!(!q.bytes().any(|b| b < 0x20 || b == 0x7f), "{q:?}");
            let d = display_bytes(&input);
            assert_terminal_safe(&d);
        }
    }

    #[test]
    fn join_cmdline_quotes_command_word_strictly() {
        let argv = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(join_cmdline(&[]), "");
        assert_eq!(join_cmdline(&argv(&["ls", "-la", "/tmp"])), "ls -la /tmp");
        assert_eq!(join_cmdline(&argv(&["A=b", "x=y"])), "'A=b' x=y");
        assert_eq!(join_cmdline(&argv(&["%1"])), "'%1'");
        assert_eq!(join_cmdline(&argv(&["time", "time"])), "'time' time");
        assert_eq!(join_cmdline(&argv(&["echo", "", "a b"])), "echo '' 'a b'");
        assert_eq!(
            join_cmdline(&[b"sh".to_vec(), b"-c".to_vec(), b"x\ny".to_vec()]),
            "sh -c $'x\\ny'"
        );
    }

    #[test]
    fn display_bytes_is_lossless_for_clean_values() {
        assert_eq!(
            display_bytes(b"/home/a b/it's \"x\""),
            "/home/a b/it's \"x\""
        );
        assert_eq!(display_bytes(b""), "");
        assert_eq!(display_bytes("naïve".as_bytes()), "naïve");
        assert_eq!(display_bytes(b"/tmp/\x1b[2J"), "$'/tmp/\\x1b[2J'");
        assert_eq!(display_bytes(b"/tmp/\xff"), "$'/tmp/\\xff'");
        assert_eq!(display_bytes(b"a\nb"), "$'a\\nb'");
        assert_eq!(
            display_bytes("x\u{2067}y".as_bytes()),
            "$'x\\xe2\\x81\\xa7y'"
        );
    }

    #[cfg(unix)] // runs /bin/bash
    #[test]
    fn display_bytes_round_trips_through_bash_when_escaped() {
        let inputs: Vec<Vec<u8>> = nasty_inputs()
            .into_iter()
            .filter(|i| display_bytes(i).starts_with("$'"))
            .collect();
        assert!(inputs.len() > 40);
        let line: Vec<String> = inputs.iter().map(|i| display_bytes(i)).collect();
        assert_eq!(bash_printf(&line.join(" "), "C"), inputs);
    }

    #[test]
    fn megabyte_argument_is_handled() {
        let big = vec![b'a'; 4 << 20];
        assert_eq!(shell_quote(&big).len(), big.len());
        let mut hostile = vec![0x1bu8; 1 << 20];
        hostile.push(0xff);
        let q = shell_quote(&hostile);
        assert_eq!(q.len(), 3 + 4 * hostile.len());
    }
}
