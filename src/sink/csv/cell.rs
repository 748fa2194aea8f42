//! One CSV cell: guarded against spreadsheet formulas, then quoted as
//! RFC 4180 asks.

use crate::sink::escape::join_cmdline;

/// Whether a spreadsheet would read a cell starting with `c` as a formula.
fn formula_start(c: u8) -> bool {
    matches!(c, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
}

/// Guards a plain CSV cell (a path, a user name, anything that is not
/// shell words) against spreadsheet formula injection.
///
/// A cell starting with `=`, `+`, `-`, `@`, TAB or CR gets a single `'`
/// prepended (the OWASP recommendation), so spreadsheets show it as text;
/// so does a cell starting with `'` itself, which makes the undo exact:
/// strip one leading `'` when there is one. RFC 4180 quoting is done
/// separately by the CSV sink.
pub(super) fn csv_cell(s: &str) -> String {
    match s.as_bytes().first() {
        Some(&c) if formula_start(c) || c == b'\'' => {
            let mut out = String::with_capacity(s.len() + 1);
            out.push('\'');
            out.push_str(s);
            out
        }
        _ => s.to_owned(),
    }
}

/// argv as a CSV cell of shell words: [`join_cmdline`], with the first word
/// single-quoted when it would start the cell with a formula character
/// (`-bash` → `'-bash'`). Nothing else is altered, so the cell stays exact
/// shell: `bash -c "printf '%s\n' $cell"` gives back argv.
///
/// Only a bare first word can start with such a character (a quoted one
/// starts with `'` or `$'`), and a bare word holds no space or quote, so
/// quoting it is wrapping it in `'...'`.
pub(super) fn csv_cmdline(argv: &[Vec<u8>]) -> String {
    let mut s = join_cmdline(argv);
    if s.as_bytes().first().is_some_and(|&c| formula_start(c)) {
        let end = s.find(' ').unwrap_or(s.len());
        s.insert(end, '\'');
        s.insert(0, '\'');
    }
    s
}

/// RFC 4180 quoting of one field.
pub(super) fn quote_field(s: &str) -> std::borrow::Cow<'_, str> {
    let needs = s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ');
    if needs {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            if c == '"' {
                q.push('"');
            }
            q.push(c);
        }
        q.push('"');
        q.into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cmdline_quotes_a_formula_like_first_word() {
        let argv = |a: &[&str]| a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(csv_cmdline(&argv(&["-bash"])), "'-bash'");
        assert_eq!(csv_cmdline(&argv(&["-bash", "-x", "y"])), "'-bash' -x y");
        assert_eq!(csv_cmdline(&argv(&["@x", "=y"])), "'@x' =y");
        assert_eq!(csv_cmdline(&argv(&["+1"])), "'+1'");
        assert_eq!(csv_cmdline(&argv(&["=1"])), "'=1'");
        assert_eq!(csv_cmdline(&argv(&["ls", "-la"])), "ls -la");
        assert_eq!(csv_cmdline(&argv(&["a b"])), "'a b'");
        assert_eq!(csv_cmdline(&[b"\t-x".to_vec()]), "$'\\t-x'");
        assert_eq!(csv_cmdline(&[]), "");
    }

    #[test]
    fn csv_cell_guards_formulas_only() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-bash"), "'-bash");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "'\rx");
        assert_eq!(csv_cell("ls -la"), "ls -la");
        assert_eq!(csv_cell("'quoted'"), "''quoted'");
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_cell(""), "");
    }
}
