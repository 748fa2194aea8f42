//! Text sink: one line per exec, readable at a glance in a terminal.
//!
//! ```text
//! 05:26:10.123     4242     1000  alice       -  ls -la /tmp
//! ```
//!
//! Columns: time (`HH:MM:SS.mmm`, UTC, so lines from different machines
//! line up), pid and ppid right-aligned to 7, effective user left-aligned to
//! 10, privilege summary ([`privileges_summary`]), then the command line in
//! shell syntax. Non-exec events are lines starting with `#`, which a shell
//! command line rendered by [`super::escape::join_cmdline`] can never start
//! with (a leading `#` is always quoted), so they cannot be faked through
//! argv.
//!
//! An exec in a container shows a tag before the user: `[` the first 12
//! characters of the container id (or its name) `]`, with `?` before the
//! `]` when the cgroup sits in a user's delegated subtree (that user chose
//! the name). Findings are markers before the command: `RAISED(...)`,
//! `HIJACKABLE(...)`, and `incomplete(fields)` for fields behind what the
//! line shows that could not be had ([`SHOWN_FIELDS`]).
//!
//! That is the wide layout, for files, pipes, terminals at least
//! [`WIDE_FROM`] columns wide, and `-v`. Narrower terminals get the
//! compact one ([`compact`]). Each layout writes its header line, as a
//! comment, after the start line.
//!
//! Everything variable goes through [`super::escape`], so no line can carry
//! a terminal escape or a raw newline.

mod compact;

pub use compact::WIDE_FROM;

use std::io::{self, Write};

use crate::event::{Event, ExecEvent, ExitEvent, LossInfo, StartInfo};
use crate::linux::path::basename;

use super::cmdline_of;
use super::describe::{
    self, Style, exec_privileges_summary, hijack_reason, privilege_change_summary, user_display,
};
use super::escape::{display_bytes, shell_quote};
use super::time::time_hms_millis;
use super::{Sink, SinkOptions};

/// SGR sequences, the only escapes this sink ever writes. Each coloured
/// span ends with [`RESET`], so nothing leaks into the next field.
const RESET: &str = "\x1b[0m";
/// root: bold red, the user a reader looks for first.
const ROOT: &str = "\x1b[1;31m";
/// Other users: a stable colour per uid. Red is left out (it means root).
const USER_PALETTE: [&str; 6] = [
    "\x1b[32m", // green
    "\x1b[33m", // yellow
    "\x1b[34m", // blue
    "\x1b[35m", // magenta
    "\x1b[36m", // cyan
    "\x1b[94m", // bright blue
];
/// `RAISED(...)`: bold magenta.
const RAISED: &str = "\x1b[1;35m";
/// `HIJACKABLE(...)`: bold white on red, the most urgent finding.
const HIJACKABLE: &str = "\x1b[1;97;41m";
/// A non-zero exit.
const EXIT_FAILED: &str = "\x1b[33m";
/// Killed by a signal, and lost events.
const ALARM: &str = "\x1b[1;31m";

/// Writes events as human-readable lines.
pub struct TextSink {
    out: Box<dyn Write + Send>,
    color: bool,
    /// The compact layout rather than the wide one.
    compact: bool,
    /// The output was reopened since the last start line: what a
    /// continuation line says happened (else only the rules were reloaded).
    reopened: bool,
}

impl TextSink {
    /// A text sink writing to `out`, without colour.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_color(out, false)
    }

    /// A text sink writing to `out`, with ANSI colour when `color`.
    pub fn with_color(out: Box<dyn Write + Send>, color: bool) -> Self {
        TextSink {
            out,
            color,
            compact: false,
            reopened: false,
        }
    }

    /// The compact layout (see [`compact`]) when `compact`.
    pub fn compact(mut self, compact: bool) -> Self {
        self.compact = compact;
        self
    }
}

/// Whether a terminal `width` columns wide (`None`: not a terminal, or
/// the wide layout asked for) gets the compact layout.
pub fn compact_for(width: Option<u16>) -> bool {
    width.is_some_and(|w| w < WIDE_FROM)
}

/// The wide layout's header line.
fn header() -> String {
    format!(
        "# {:<10}  {:>7}  {:>7}  {:<10}  {}  {}\n",
        "time", "pid", "ppid", "user", "privileges", "command"
    )
}

/// `[0123456789ab] ` for an exec in a container (`?` before the `]` when a
/// user's delegated cgroup holds it), else empty.
fn container_tag(ev: &ExecEvent) -> String {
    let Some(c) = ev.ns.container.as_deref() else {
        return String::new();
    };
    let short: String = c.id.chars().take(12).collect();
    let forged = if c.delegated_uid.is_some() { "?" } else { "" };
    format!("[{}{forged}] ", display_bytes(short.as_bytes()))
}

/// What the line claims, by `incomplete` field name: a field missing from
/// these changes what a reader concludes (no `HIJACKABLE` marker because
/// nothing was checked, no container tag because the cgroup is unknown).
const SHOWN_FIELDS: [&str; 13] = [
    "argv",
    "command_line",
    "exe",
    "ppid",
    "user",
    "credentials",
    "caps",
    "token",
    "privilege_raised",
    "hijackable",
    "in_host_userns",
    "container",
    "cgroup_path",
];

/// The fields of `incomplete` this view reports: those of
/// [`SHOWN_FIELDS`], less a command line form the line does not need
/// (argv on Windows, where the one-string command line is shown).
fn incomplete_fields(ev: &ExecEvent) -> Vec<&'static str> {
    ev.incomplete
        .iter()
        .map(|i| i.field)
        .filter(|f| SHOWN_FIELDS.contains(f))
        .filter(|f| match *f {
            "argv" => ev.command_line.is_none(),
            "command_line" => ev.argv.is_none(),
            _ => true,
        })
        .collect()
}

/// `text` wrapped in `sgr` … reset when colouring, else unchanged.
fn paint(color: bool, sgr: &str, text: &str) -> String {
    if color {
        format!("{sgr}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// The colour of the user column: by effective uid; none when unknown.
fn user_color(ev: &ExecEvent) -> Option<&'static str> {
    let euid = ev.linux_creds()?.euid;
    Some(if euid == 0 {
        ROOT
    } else {
        USER_PALETTE[euid as usize % USER_PALETTE.len()]
    })
}

/// The `RAISED(...)` and `HIJACKABLE(...)` markers, space-separated, or
/// empty. Written with or without colour: they are the findings.
fn markers(ev: &ExecEvent, color: bool) -> String {
    let mut found = Vec::new();
    if let Some(pc) = &ev.privilege_change {
        let m = format!("RAISED({})", privilege_change_summary(pc, Style::Text));
        found.push(paint(color, RAISED, &m));
    }
    for h in &ev.hijackable {
        let m = format!("HIJACKABLE({}: {})", shell_quote(&h.path), hijack_reason(h));
        found.push(paint(color, HIJACKABLE, &m));
    }
    if !ev.detections.is_empty() {
        let alerts = crate::detect::render::alerts(&ev.detections);
        found.push(paint(color, HIJACKABLE, &display_bytes(alerts.as_bytes())));
    }
    let missing = incomplete_fields(ev);
    if !missing.is_empty() {
        found.push(format!("incomplete({})", missing.join(",")));
    }
    found.join(" ")
}

/// Whether argv[0] names a different program than the one that ran.
///
/// argv[0] is chosen freely by the caller, so a binary can pose as `sshd`;
/// when the basenames differ the real exe is shown. One leading `-` is
/// ignored because login shells are started as `-bash`.
fn argv0_misleading(ev: &ExecEvent) -> bool {
    let Some(exe) = &ev.exe else {
        return false;
    };
    match ev.argv.as_ref().and_then(|a| a.first()) {
        None => true,
        Some(a0) => {
            let a0 = basename(a0);
            let a0 = a0.strip_prefix(b"-").unwrap_or(a0);
            a0 != basename(exe)
        }
    }
}

fn exec_line(ev: &ExecEvent, color: bool) -> String {
    let privs = exec_privileges_summary(ev);
    // Padded before painting, so escapes do not count towards the width.
    let user = format!("{:<10}", user_display(ev));
    let user = match user_color(ev) {
        Some(sgr) => paint(color, sgr, &user),
        None => user,
    };
    let mut marks = markers(ev, color);
    if !marks.is_empty() {
        marks.insert_str(0, "  ");
    }
    let mut line = format!(
        "{}  {:>7}  {:>7}  {}{user}  {privs}{marks}  ",
        time_hms_millis(ev.time),
        ev.pid,
        ev.ppid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
        container_tag(ev),
    );
    line.push_str(&command_tail(ev));
    line
}

/// The command line, what shows it was cut or is not what ran, and the
/// newline: the end of every exec line.
fn command_tail(ev: &ExecEvent) -> String {
    // The parenthesised words are unambiguous: join_cmdline would quote a
    // bare `(`.
    let mut line = match cmdline_of(ev) {
        None => "(argv unknown)".to_owned(),
        Some(c) if c.is_empty() => "(empty argv)".to_owned(),
        Some(c) => c,
    };
    if ev.argv_truncated {
        match ev.argv_size {
            Some(n) => line.push_str(&format!(" [argv truncated, {n} bytes]")),
            None => line.push_str(" [argv truncated]"),
        }
    }
    if argv0_misleading(ev) {
        // shell_quote rather than the raw path so a path containing ") ..."
        // cannot forge the rest of the line.
        line.push_str(" (exe: ");
        if ev.exe_truncated {
            line.push_str("...");
        }
        line.push_str(&shell_quote(ev.exe.as_deref().unwrap_or_default()));
        line.push(')');
    }
    line.push('\n');
    line
}

fn exit_line(x: &ExitEvent, color: bool) -> String {
    let how = match (x.exit_code, x.signal) {
        (_, Some(sig)) if x.core_dumped => paint(
            color,
            ALARM,
            &format!("killed by signal {sig} (core dumped)"),
        ),
        (_, Some(sig)) => paint(color, ALARM, &format!("killed by signal {sig}")),
        (Some(0), None) => "exited 0".to_owned(),
        (Some(code), None) => paint(color, EXIT_FAILED, &format!("exited {code}")),
        (None, None) => "ended".to_owned(),
    };
    let lifetime = x
        .lifetime
        .map_or_else(String::new, |d| format!(" after {:.3}s", d.as_secs_f64()));
    let comm = x
        .comm
        .as_deref()
        .map_or_else(String::new, |c| format!(" {}", display_bytes(c)));
    format!(
        "{}  {:>7}  {:>7}  exit: {how}{lifetime}{comm}\n",
        time_hms_millis(x.time),
        x.pid,
        x.ppid
    )
}

/// The start line; `reopened`: a continuation line follows a reopening of
/// the output (SIGHUP also reloads the rules, which is all it does on
/// standard output).
fn start_line(s: &StartInfo, reopened: bool) -> String {
    let rules = !s.rules.skipped.is_empty() || s.rules.loaded > 0;
    let continued = match (s.continuation, reopened, rules) {
        (false, ..) => String::new(),
        (true, true, false) => " (continued: the output was reopened)".to_owned(),
        (true, true, true) => format!(
            " (continued: the output was reopened and the rules reloaded, {} loaded)",
            s.rules.loaded
        ),
        (true, false, _) => format!(
            " (continued: the rules were reloaded, {} loaded)",
            s.rules.loaded
        ),
    };
    format!(
        "# procwatch {} watching execs via {} ({}) on {}{continued}\n",
        display_bytes(s.version.as_bytes()),
        display_bytes(s.source.as_bytes()),
        display_bytes(s.attach.as_bytes()),
        display_bytes(s.hostname.as_bytes()),
    )
}

fn loss_line(l: &LossInfo, color: bool) -> String {
    paint(
        color,
        ALARM,
        &format!("# {}", describe::loss(l, Style::Text)),
    ) + "\n"
}

/// The text sink of the registry (see [`super::Build`]): coloured when
/// asked, compact on a narrow terminal.
pub fn build(out: Box<dyn Write + Send>, _header_needed: bool, opts: SinkOptions) -> Box<dyn Sink> {
    Box::new(TextSink::with_color(out, opts.color).compact(compact_for(opts.text_width)))
}

impl Sink for TextSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        let line = match ev {
            Event::Start(s) => {
                let first = start_line(s, std::mem::take(&mut self.reopened));
                first
                    + &if self.compact {
                        compact::header()
                    } else {
                        header()
                    }
            }
            Event::Exec(e) if self.compact => compact::exec_line(e, self.color),
            Event::Exec(e) => exec_line(e, self.color),
            Event::Exit(x) => exit_line(x, self.color),
            Event::Loss(l) => loss_line(l, self.color),
            // The text view shows no hashes, so neither late ones.
            Event::Hash(_) => return Ok(()),
            Event::Stop(s) => format!("# {}\n", describe::stop(s, Style::Text)),
            Event::Stats(s) => format!("# {}\n", describe::stats(&s.counters, Style::Text)),
        };
        self.out.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn reopened(&mut self, _empty: bool) {
        self.reopened = true;
    }
}

#[cfg(test)]
mod tests;
