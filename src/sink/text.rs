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
//! Everything variable goes through [`super::escape`], so no line can carry
//! a terminal escape or a raw newline.

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
}

impl TextSink {
    /// A text sink writing to `out`, without colour.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self::with_color(out, false)
    }

    /// A text sink writing to `out`, with ANSI colour when `color`.
    pub fn with_color(out: Box<dyn Write + Send>, color: bool) -> Self {
        TextSink { out, color }
    }
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
    // The parenthesised words are unambiguous: join_cmdline would quote a
    // bare `(`.
    let cmdline = match cmdline_of(ev) {
        None => "(argv unknown)".to_owned(),
        Some(c) if c.is_empty() => "(empty argv)".to_owned(),
        Some(c) => c,
    };
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
        "{}  {:>7}  {:>7}  {user}  {privs}{marks}  {cmdline}",
        time_hms_millis(ev.time),
        ev.pid,
        ev.ppid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
    );
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

fn start_line(s: &StartInfo) -> String {
    format!(
        "# procwatch {} watching execs via {} ({}) on {}{}\n",
        display_bytes(s.version.as_bytes()),
        display_bytes(s.source.as_bytes()),
        display_bytes(s.attach.as_bytes()),
        display_bytes(s.hostname.as_bytes()),
        if s.continuation {
            " (continued: the output was reopened)"
        } else {
            ""
        },
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
/// asked.
pub fn build(out: Box<dyn Write + Send>, _header_needed: bool, opts: SinkOptions) -> Box<dyn Sink> {
    Box::new(TextSink::with_color(out, opts.color))
}

impl Sink for TextSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        let line = match ev {
            Event::Start(s) => start_line(s),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        CapSets, ChangeCause, Hijack, HijackRole, LossPlace, PrivilegeChange, PrivilegeRaise,
        Privileges,
    };
    use crate::sink::escape::join_cmdline;
    use crate::sink::testutil::*;

    fn render(ev: &Event) -> String {
        let buf = SharedBuf::default();
        let mut s = TextSink::new(Box::new(buf.clone()));
        s.write_event(ev).unwrap();
        s.flush().unwrap();
        buf.string()
    }

    fn exec(ev: ExecEvent) -> String {
        render(&Event::Exec(Box::new(ev)))
    }

    /// No raw control anywhere except the final newline.
    fn assert_one_safe_line(s: &str) {
        let body = s.strip_suffix('\n').expect("ends with newline");
        assert!(
            !body.bytes().any(|b| b < 0x20 || b == 0x7f),
            "raw control in {body:?}"
        );
        assert!(
            !body.chars().any(crate::sink::escape::needs_escape),
            "{body:?}"
        );
    }

    #[test]
    fn plain_exec_line() {
        assert_eq!(
            exec(exec_event()),
            "05:26:10.123     4242     1000  alice       -  ls -la /tmp\n"
        );
    }

    #[test]
    fn columns_are_padded() {
        let mut ev = exec_event();
        ev.pid = 1;
        ev.ppid = Some(4_194_304);
        ev.user = None;
        assert_eq!(
            exec(ev),
            "05:26:10.123        1  4194304  1001        -  ls -la /tmp\n"
        );
    }

    #[test]
    fn privileges_are_summarised() {
        let mut ev = exec_event();
        ev.argv = Some(vec![b"sudo".to_vec(), b"id".to_vec()]);
        ev.exe = Some(b"/usr/bin/sudo".to_vec());
        ev.user = Some("root".into());
        let Some(Privileges::Linux { caps, raised, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        *caps = CapSets {
            effective: (1 << 41) - 1,
            ..CapSets::default()
        };
        *raised = Some(PrivilegeRaise::Setuid);
        assert_eq!(
            exec(ev),
            "05:26:10.123     4242     1000  root        caps=ALL [setuid]  sudo id\n"
        );
    }

    #[test]
    fn hostile_exec_is_one_terminal_safe_line() {
        let ev = hostile_exec();
        let line = exec(ev.clone());
        assert_one_safe_line(&line);
        assert!(line.contains(&join_cmdline(ev.argv.as_deref().unwrap())));
        assert!(line.contains("$'bob\\x1b[0m'"));
        assert!(line.contains("(exe: $'/tmp/\\x1b[2Jevil,\"dir\"\\n/\\xc3(x')"));
    }

    #[test]
    fn exe_shown_when_argv0_differs() {
        let mut ev = exec_event();
        ev.argv.as_mut().unwrap()[0] = b"sshd".to_vec();
        ev.exe = Some(b"/tmp/x/miner".to_vec());
        assert!(exec(ev).ends_with("  sshd -la /tmp (exe: /tmp/x/miner)\n"));

        // Same basename, different spelling of the path: not shown.
        let mut ev = exec_event();
        ev.argv.as_mut().unwrap()[0] = b"/bin/ls".to_vec();
        assert!(exec(ev).ends_with("  /bin/ls -la /tmp\n"));

        // Login shell convention.
        let mut ev = exec_event();
        ev.argv = Some(vec![b"-bash".to_vec()]);
        ev.exe = Some(b"/usr/bin/bash".to_vec());
        assert!(exec(ev).ends_with("  -bash\n"));

        // Script: the interpreter is what ran.
        let mut ev = exec_event();
        ev.argv = Some(vec![b"./deploy.sh".to_vec()]);
        ev.exe = Some(b"/usr/bin/bash".to_vec());
        assert!(exec(ev).ends_with("  ./deploy.sh (exe: /usr/bin/bash)\n"));

        // A path with spaces and a fake ")" is quoted.
        let mut ev = exec_event();
        ev.exe = Some(b"/tmp/a) b".to_vec());
        assert!(exec(ev).ends_with("(exe: '/tmp/a) b')\n"));
    }

    #[test]
    fn empty_argv_and_truncation_are_visible() {
        let mut ev = exec_event();
        ev.argv = Some(Vec::new());
        ev.exe_truncated = true;
        ev.exe = Some(b"/very/long/ls".to_vec());
        assert_eq!(
            exec(ev),
            "05:26:10.123     4242     1000  alice       -  (empty argv) (exe: .../very/long/ls)\n"
        );
        let mut ev = exec_event();
        ev.argv_truncated = true;
        ev.argv_size = Some(300_000);
        assert!(exec(ev).ends_with("ls -la /tmp [argv truncated, 300000 bytes]\n"));
    }

    #[test]
    fn argv_cannot_forge_a_comment_line() {
        let mut ev = exec_event();
        ev.argv = Some(vec![b"# LOST 0 events".to_vec()]);
        let line = exec(ev);
        assert!(line.contains("'# LOST 0 events'"));
        assert_one_safe_line(&line);
    }

    #[test]
    fn start_loss_stop_lines() {
        assert_eq!(
            render(&Event::Start(start_info())),
            "# procwatch 0.1.0 watching execs via ebpf (tp_btf/sched_process_exec) on host1\n"
        );
        assert_eq!(
            render(&Event::Loss(loss_info())),
            "# LOST 12 events (kernel), total 40\n"
        );
        let mut q = loss_info();
        q.place = LossPlace::Queue;
        assert_eq!(
            render(&Event::Loss(q)),
            "# LOST 12 events (queue), total 40\n"
        );
        assert_eq!(
            render(&Event::Stop(stop_info())),
            "# stop (signal): seen 100, emitted 88, dropped 12, queue_dropped 5, written 83, filtered 4\n"
        );
    }

    #[test]
    fn hostile_start_fields_are_escaped() {
        let mut s = start_info();
        s.hostname = "h\x1b]0;x\x07".to_owned();
        let line = render(&Event::Start(s));
        assert_one_safe_line(&line);
        assert!(line.ends_with("on $'h\\x1b]0;x\\x07'\n"));
    }

    fn render_color(ev: &Event) -> String {
        let buf = SharedBuf::default();
        let mut s = TextSink::with_color(Box::new(buf.clone()), true);
        s.write_event(ev).unwrap();
        s.flush().unwrap();
        buf.string()
    }

    fn exec_color(ev: ExecEvent) -> String {
        render_color(&Event::Exec(Box::new(ev)))
    }

    /// The line with every escape this sink may add removed; whatever
    /// remains must be as safe as an uncoloured line.
    fn strip_ours(s: &str) -> String {
        let mut ours = vec![RESET, ROOT, RAISED, HIJACKABLE, EXIT_FAILED, ALARM];
        ours.extend(USER_PALETTE);
        ours.iter()
            .fold(s.to_owned(), |acc, sgr| acc.replace(sgr, ""))
    }

    fn set_euid(ev: &mut ExecEvent, euid: u32) {
        let Some(Privileges::Linux { creds, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        creds.euid = euid;
    }

    fn exit_event() -> ExitEvent {
        ExitEvent {
            time: t0(),
            pid: 4242,
            ppid: 1000,
            exec_id: Some("4242:1".to_owned()),
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            lifetime: Some(std::time::Duration::from_millis(1500)),
            comm: Some(b"ls".to_vec()),
        }
    }

    #[test]
    fn markers_are_plain_text_without_colour() {
        let mut ev = exec_event();
        ev.privilege_change = Some(setuid_change());
        assert_eq!(
            exec(ev.clone()),
            "05:26:10.123     4242     1000  alice       -  RAISED(setuid 1000→0)  ls -la /tmp\n"
        );
        ev.hijackable.push(hijack_dir());
        let mut h = hijack_dir();
        h.path = b"/opt/x y".to_vec();
        h.writable = h.path.clone();
        h.writers = vec!["others".to_owned()];
        ev.hijackable.push(h);
        let line = exec(ev);
        assert_eq!(
            line,
            "05:26:10.123     4242     1000  alice       -  RAISED(setuid 1000→0) \
             HIJACKABLE(/opt/job.sh: dir /opt writable by user alice) \
             HIJACKABLE('/opt/x y': file writable by others)  ls -la /tmp\n"
        );
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn hostile_marker_fields_cannot_forge_or_escape() {
        let mut ev = hostile_exec();
        ev.hijackable.push(Hijack {
            path: b"/tmp/a) RAISED(x\x1b[2J".to_vec(),
            role: HijackRole::Binary,
            writable: b"/tmp".to_vec(),
            writers: vec!["user \x1b]0;t\x07".to_owned()],
        });
        ev.privilege_change = Some(PrivilegeChange {
            cause: ChangeCause::Launcher,
            launcher: Some(b"/x/\x9b31m)".to_vec()),
            ..setuid_change()
        });
        let plain = exec(ev.clone());
        assert_one_safe_line(&plain);
        assert!(plain.contains(
            "HIJACKABLE($'/tmp/a) RAISED(x\\x1b[2J': dir /tmp writable by user $'\\x1b]0;t\\x07')"
        ));
        assert!(plain.contains("RAISED(launcher $'\\x9b31m)': 1000→0)"));
        assert_eq!(plain.matches("RAISED(").count(), 2, "one real, one quoted");

        let colored = exec_color(ev);
        assert_one_safe_line(&strip_ours(&colored));
        // Colour adds escapes and nothing else.
        assert_eq!(strip_ours(&colored), plain);
    }

    #[test]
    fn user_column_colours() {
        let mut ev = exec_event();
        set_euid(&mut ev, 0);
        ev.user = Some("root".into());
        let line = exec_color(ev.clone());
        // Padding inside the colour, so columns still line up.
        assert!(
            line.contains("  \x1b[1;31mroot      \x1b[0m  -  ls"),
            "{line:?}"
        );
        // Other users: a palette colour fixed by uid.
        set_euid(&mut ev, 1001);
        ev.user = Some("alice".into());
        let a = exec_color(ev.clone());
        assert!(a.contains(&format!("{}alice     {RESET}", USER_PALETTE[1001 % 6])));
        assert_eq!(exec_color(ev.clone()), a, "stable");
        set_euid(&mut ev, 1002);
        assert_ne!(exec_color(ev.clone()), a);
        assert!(!exec_color(ev.clone()).contains(ROOT));
        // Unknown credentials: no colour at all on a plain exec.
        ev.privileges = None;
        assert!(!exec_color(ev).contains('\x1b'));
        // Same text as without colour, once our escapes are removed.
        let mut ev = exec_event();
        ev.privilege_change = Some(setuid_change());
        ev.hijackable.push(hijack_dir());
        let c = exec_color(ev.clone());
        assert!(c.contains(&format!("{RAISED}RAISED(setuid 1000→0){RESET}")));
        assert!(c.contains(&format!("{HIJACKABLE}HIJACKABLE(/opt/job.sh: ")));
        assert_eq!(strip_ours(&c), exec(ev));
    }

    #[test]
    fn exit_lines() {
        let x = exit_event();
        let line = |x: &ExitEvent| render(&Event::Exit(Box::new(x.clone())));
        let color = |x: &ExitEvent| render_color(&Event::Exit(Box::new(x.clone())));
        assert_eq!(
            line(&x),
            "05:26:10.123     4242     1000  exit: exited 0 after 1.500s ls\n"
        );
        assert_eq!(color(&x), line(&x), "a clean exit stays plain");
        let mut failed = x.clone();
        failed.exit_code = Some(3);
        assert!(line(&failed).contains("exit: exited 3 after"));
        assert!(color(&failed).contains(&format!("exit: {EXIT_FAILED}exited 3{RESET} after")));
        let mut killed = x.clone();
        killed.exit_code = None;
        killed.signal = Some(9);
        assert!(color(&killed).contains(&format!("{ALARM}killed by signal 9{RESET}")));
        killed.core_dumped = true;
        assert!(line(&killed).contains("killed by signal 9 (core dumped)"));
        let mut hostile = x;
        hostile.comm = Some(b"\x1b[31m".to_vec());
        hostile.lifetime = None;
        assert_one_safe_line(&line(&hostile));
        assert_one_safe_line(&strip_ours(&color(&hostile)));
    }

    #[test]
    fn loss_is_red_with_colour_only() {
        let ev = Event::Loss(loss_info());
        assert_eq!(render(&ev), "# LOST 12 events (kernel), total 40\n");
        // Late sources: what was reported with fields missing is not "lost".
        let mut late = loss_info();
        late.place = LossPlace::TooLate;
        assert!(
            render(&Event::Loss(late)).starts_with("# INCOMPLETE 12 events: the process was gone"),
        );
        assert_eq!(
            render_color(&ev),
            format!("{ALARM}# LOST 12 events (kernel), total 40{RESET}\n")
        );
        // Start and stop are never coloured.
        assert_eq!(
            render_color(&Event::Stop(stop_info())),
            render(&Event::Stop(stop_info()))
        );
    }
}
