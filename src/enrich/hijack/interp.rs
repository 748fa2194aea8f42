//! Interpreter argv: which argument of `sh x.sh` or `python3 -u x.py` is
//! the script that runs, under each interpreter's option rules.

use crate::event::ExecEvent;
use crate::linux::path::basename;

/// How an interpreter's command line names its script.
struct Syntax {
    /// Short options meaning the program is not a file (inline code, a
    /// module, stdin).
    inline: &'static [u8],
    /// Short options taking a value, attached or as the next argument.
    value: &'static [u8],
    /// Short options taking only an attached value (the rest of the cluster).
    attached: &'static [u8],
    /// Short options whose value is the script file (`php -f x.php`).
    script: &'static [u8],
    /// Long options meaning the program is not a file.
    long_inline: &'static [&'static [u8]],
    /// Long options taking the next argument as value when written without `=`.
    long_value: &'static [&'static [u8]],
    /// Long options whose value is the script file.
    long_script: &'static [&'static [u8]],
    /// A lone `-` reads the program from stdin (otherwise it ends options).
    dash_is_stdin: bool,
    /// Options are whole words (`tclsh -encoding x`), not letter clusters.
    words: bool,
    /// `+x` options exist and are parsed like `-x` (`sh +o posix x.sh`).
    plus: bool,
}

const NONE: &[&[u8]] = &[];

/// No options of any kind; `-` is stdin. The others differ from it.
const PLAIN: Syntax = Syntax {
    inline: b"",
    value: b"",
    attached: b"",
    script: b"",
    long_inline: NONE,
    long_value: NONE,
    long_script: NONE,
    dash_is_stdin: true,
    words: false,
    plus: false,
};

/// sh, bash, dash, zsh, ksh, mksh, ash: `+o name` is handled like `-o name`.
const SHELL: Syntax = Syntax {
    inline: b"cs",
    value: b"oO",
    long_value: &[b"--rcfile", b"--init-file"],
    dash_is_stdin: false,
    plus: true,
    ..PLAIN
};
const PYTHON: Syntax = Syntax {
    inline: b"cm",
    value: b"WX",
    long_value: &[b"--check-hash-based-pycs"],
    ..PLAIN
};
const PERL: Syntax = Syntax {
    inline: b"eE",
    value: b"I",
    attached: b"MmixdDCl0V",
    ..PLAIN
};
const RUBY: Syntax = Syntax {
    inline: b"e",
    value: b"ICEr",
    attached: b"xFTKW0",
    ..PLAIN
};
const PHP: Syntax = Syntax {
    inline: b"rBRESa",
    value: b"cdzt",
    script: b"fF",
    long_inline: &[
        b"--run",
        b"--process-begin",
        b"--process-code",
        b"--process-end",
        b"--server",
        b"--interactive",
    ],
    long_value: &[b"--php-ini", b"--define", b"--zend-extension", b"--docroot"],
    long_script: &[b"--file", b"--process-file"],
    ..PLAIN
};
const NODE: Syntax = Syntax {
    inline: b"ep",
    value: b"rC",
    long_inline: &[b"--eval", b"--print"],
    long_value: &[
        b"--require",
        b"--import",
        b"--loader",
        b"--experimental-loader",
        b"--conditions",
        b"--input-type",
        b"--env-file",
        b"--title",
    ],
    ..PLAIN
};
const LUA: Syntax = Syntax {
    inline: b"e",
    value: b"l",
    ..PLAIN
};
const TCL: Syntax = Syntax {
    long_value: &[b"-encoding"],
    words: true,
    ..PLAIN
};
const RSCRIPT: Syntax = Syntax {
    inline: b"e",
    ..PLAIN
};

/// Interpreter names; a version suffix of digits and dots is accepted too
/// (`python3.12`, `perl5.36.0`, `lua5.4`, `tclsh8.6`).
const INTERPRETERS: &[(&[u8], &Syntax)] = &[
    (b"sh", &SHELL),
    (b"bash", &SHELL),
    (b"dash", &SHELL),
    (b"zsh", &SHELL),
    (b"ksh", &SHELL),
    (b"mksh", &SHELL),
    (b"ash", &SHELL),
    (b"python", &PYTHON),
    (b"pypy", &PYTHON),
    (b"perl", &PERL),
    (b"ruby", &RUBY),
    (b"php", &PHP),
    (b"node", &NODE),
    (b"nodejs", &NODE),
    (b"lua", &LUA),
    (b"luajit", &LUA),
    (b"tclsh", &TCL),
    (b"Rscript", &RSCRIPT),
];

fn syntax_of(name: &[u8]) -> Option<&'static Syntax> {
    INTERPRETERS.iter().find_map(|(base, syn)| {
        let rest = name.strip_prefix(*base)?;
        let versioned = rest.first().is_some_and(u8::is_ascii_digit)
            && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.');
        (rest.is_empty() || versioned).then_some(*syn)
    })
}

/// The script a known interpreter was asked to run, as written in argv.
pub(super) fn interpreter_arg(ev: &ExecEvent) -> Option<&[u8]> {
    let argv = ev.argv.as_deref()?;
    let exe = ev.exe.as_deref().map(basename);
    let arg0 = argv.first().map(|a| basename(a));
    // busybox runs the applet named by argv[0] (a symlink) or by argv[1].
    if arg0 == Some(b"busybox") {
        let applet = basename(argv.get(1)?);
        return script_arg(syntax_of(applet)?, argv.get(2..)?);
    }
    let syn = exe
        .and_then(syntax_of)
        .or_else(|| arg0.and_then(syntax_of))?;
    script_arg(syn, argv.get(1..)?)
}

/// The first argument that is the script file under `syn`'s option rules,
/// or `None` when the program does not come from a file.
fn script_arg<'a>(syn: &Syntax, args: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let a = a.as_slice();
        i += 1;
        if a == b"--" {
            return args.get(i).map(Vec::as_slice);
        }
        if a == b"-" {
            if syn.dash_is_stdin {
                return None;
            }
            return args.get(i).map(Vec::as_slice);
        }
        let is_plus = syn.plus && a.first() == Some(&b'+');
        if a.first() != Some(&b'-') && !is_plus {
            return Some(a);
        }
        if a.starts_with(b"--") || (syn.words && !is_plus) {
            let (name, value) = match a.iter().position(|&b| b == b'=') {
                Some(eq) => (&a[..eq], Some(&a[eq + 1..])),
                None => (a, None),
            };
            if syn.long_inline.contains(&name) {
                return None;
            }
            if syn.long_script.contains(&name) {
                return value.or_else(|| args.get(i).map(Vec::as_slice));
            }
            if syn.long_value.contains(&name) && value.is_none() {
                i += 1;
            }
            continue;
        }
        let cluster = &a[1..];
        for (k, c) in cluster.iter().enumerate() {
            let rest = &cluster[k + 1..];
            if syn.inline.contains(c) {
                return None;
            }
            if syn.script.contains(c) {
                if rest.is_empty() {
                    return args.get(i).map(Vec::as_slice);
                }
                return Some(rest);
            }
            if syn.value.contains(c) {
                if rest.is_empty() {
                    i += 1;
                }
                break;
            }
            if syn.attached.contains(c) {
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    /// (exe, argv split at spaces, the script interpreter_arg should find).
    type ArgCase = (&'static str, &'static str, Option<&'static str>);

    const ARG_CASES: &[ArgCase] = &[
        ("/bin/bash", "bash x.sh", Some("x.sh")),
        ("/bin/bash", "bash -e x.sh", Some("x.sh")),
        ("/bin/bash", "bash -ec echo", None),
        ("/bin/dash", "sh -c x y.sh", None),
        ("/bin/bash", "bash -s a", None),
        ("/bin/bash", "bash -o pipefail x.sh", Some("x.sh")),
        ("/bin/bash", "bash +o posix x.sh", Some("x.sh")),
        ("/bin/bash", "bash --rcfile rc x.sh", Some("x.sh")),
        ("/bin/sh", "sh -- -x.sh", Some("-x.sh")),
        ("/bin/sh", "sh", None),
        ("/usr/bin/python3", "python3 -m http.server", None),
        ("/usr/bin/python3", "python3 -c print()", None),
        ("/usr/bin/python3", "python3 -Bc 1", None),
        ("/usr/bin/python3", "python3 - x.py", None),
        ("/usr/bin/python3", "python3 -X dev x.py", Some("x.py")),
        ("/usr/bin/python3", "python3 -Wignore x.py", Some("x.py")),
        ("/usr/bin/perl", "perl -ne print", None),
        ("/usr/bin/perl", "perl -Mstrict -w x.pl", Some("x.pl")),
        ("/usr/bin/perl", "perl -I lib x.pl", Some("x.pl")),
        ("/usr/bin/ruby", "ruby -e 1", None),
        ("/usr/bin/ruby", "ruby -r json x.rb", Some("x.rb")),
        ("/usr/bin/php8.2", "php -r 1;", None),
        ("/usr/bin/php", "php -f x.php", Some("x.php")),
        ("/usr/bin/php", "php -c php.ini x.php", Some("x.php")),
        ("/usr/bin/node", "node -e 1", None),
        ("/usr/bin/node", "node --eval=1", None),
        ("/usr/bin/node", "node --require m x.js", Some("x.js")),
        ("/usr/bin/node", "node --import=m x.js", Some("x.js")),
        ("/usr/bin/lua5.4", "lua -e x=1", None),
        (
            "/usr/bin/tclsh8.6",
            "tclsh -encoding utf-8 x.tcl",
            Some("x.tcl"),
        ),
        ("/usr/bin/Rscript", "Rscript -e 1", None),
        ("/usr/bin/Rscript", "Rscript --vanilla x.R", Some("x.R")),
        // busybox: by argv[0] (a symlink) or argv[1] (the applet name).
        ("/bin/busybox", "sh x.sh", Some("x.sh")),
        ("/bin/busybox", "busybox ash x.sh", Some("x.sh")),
        ("/bin/busybox", "busybox ls x", None),
        // Not interpreters: their argv names no script.
        ("/usr/bin/cat", "cat x.sh", None),
        ("/usr/bin/shred", "shred x", None),
        ("/usr/bin/python3-config", "x y", None),
    ];

    #[test]
    fn interpreter_arg_parsing() {
        for (exe, argv, want) in ARG_CASES {
            let argv: Vec<&[u8]> = argv.split(' ').map(str::as_bytes).collect();
            let mut ev = ExecEvent::new(SystemTime::UNIX_EPOCH, 1, Some(1), "1:1".into());
            ev.exe = Some(exe.as_bytes().to_vec());
            ev.argv = Some(argv.iter().map(|a| a.to_vec()).collect());
            let got = interpreter_arg(&ev);
            assert_eq!(got, want.map(str::as_bytes), "{exe} {argv:?}");
        }
    }
}
