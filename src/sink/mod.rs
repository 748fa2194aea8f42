//! Sinks: render [`Event`]s for humans (text), spreadsheets (CSV) or
//! machines (JSON Lines).
//!
//! Every byte string in an event is attacker-controlled; all rendering goes
//! through [`escape`] so no sink can emit terminal escapes, break its own
//! framing (a CSV row, a JSON line) or lose bytes silently.

pub mod csv;
mod csv_columns;
pub mod escape;
pub mod json_writer;
pub mod jsonl;
pub mod output;
#[cfg(unix)]
pub mod output_file;
pub mod text;
#[cfg(test)]
mod windows_tests;

/// Re-exported so callers open the destination and build the sink from one
/// place (`sink::open_output` then `sink::make_sink`).
pub use output::{Output, OutputError, open_output};

pub use csv::CsvColumn;

use std::io::Write;
use std::sync::OnceLock;

use crate::event::{
    ChangeCause, Event, ExecEvent, Hijack, PrivilegeChange, Privileges, WindowsToken,
};
use crate::linux::caps::cap_names;

/// Something that renders events to a destination.
///
/// `Send` so the writer thread can own it. Implementations buffer through
/// the writer they are given; [`Sink::flush`] pushes everything out (the
/// caller flushes when its queue is drained and before exit).
pub trait Sink: Send {
    /// Renders one event. Errors are the destination's I/O errors (e.g. a
    /// broken pipe), which the caller decides how to handle.
    fn write_event(&mut self, ev: &Event) -> std::io::Result<()>;
    /// Flushes buffered output to the destination.
    fn flush(&mut self) -> std::io::Result<()>;
    /// The destination was reopened (SIGHUP); `empty`: the new file is
    /// empty, so a CSV header is due again.
    fn reopened(&mut self, _empty: bool) {}
}

/// Output format chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One aligned line per exec, for a terminal.
    Text,
    /// The seed's CSV columns, one row per exec.
    Csv,
    /// One JSON object per line, every field, lossless.
    Jsonl,
}

/// Rendering choices beyond the format. The default is what the seed
/// produced: no colour, the standard CSV columns only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkOptions {
    /// Text only: emphasise users, privilege raises, hijackable execs and
    /// failed exits with ANSI colours. The markers themselves are written
    /// either way; colour only adds emphasis.
    pub color: bool,
    /// CSV only: extra columns after the standard seven, in this order.
    pub csv_columns: Vec<CsvColumn>,
}

/// Builds the sink for a format. `header_needed` is only meaningful for CSV
/// (true when the destination is new or empty).
pub fn make_sink(
    format: Format,
    out: Box<dyn Write + Send>,
    header_needed: bool,
    opts: SinkOptions,
) -> Box<dyn Sink> {
    match format {
        Format::Text => Box::new(text::TextSink::with_color(out, opts.color)),
        Format::Csv => {
            Box::new(csv::CsvSink::new(out, header_needed).with_columns(opts.csv_columns))
        }
        Format::Jsonl => Box::new(jsonl::JsonlSink::new(out)),
    }
}

/// The effective user for human-facing formats: the enriched name, or the
/// euid as a number when the name is unknown.
///
/// Names come from NSS (possibly LDAP), so they are escaped like any other
/// untrusted string.
pub fn user_display(ev: &ExecEvent) -> String {
    match (&ev.user, ev.linux_creds()) {
        (Some(name), _) => escape::display_bytes(name.as_bytes()),
        (None, Some(creds)) => creds.euid.to_string(),
        (None, None) => "?".to_owned(),
    }
}

/// The command line as one terminal- and shell-safe string: argv quoted
/// POSIX-shell style so argument boundaries survive; a system's own
/// one-string command line (Windows) made safe; `None` when unknown.
pub fn cmdline_of(ev: &ExecEvent) -> Option<String> {
    match (&ev.argv, &ev.command_line) {
        (Some(argv), _) => Some(escape::join_cmdline(argv)),
        (None, Some(line)) => Some(escape::display_bytes(line)),
        (None, None) => None,
    }
}

/// Text summary of a Windows token: the integrity level, then the enabled
/// privileges without the `Se`/`Privilege` decoration (`debug,backup`), or
/// `-` when none; `?` for what could not be read.
fn windows_summary(t: &WindowsToken) -> String {
    let integrity = t.integrity.map_or_else(|| "?".to_owned(), |i| i.name());
    let privs = match &t.privileges {
        None => "?".to_owned(),
        Some(_) if t.enabled_names().is_empty() => "-".to_owned(),
        Some(_) => t
            .enabled_names()
            .iter()
            .map(|n| {
                let short = n.strip_prefix("Se").unwrap_or(n);
                short
                    .strip_suffix("Privilege")
                    .unwrap_or(short)
                    .to_ascii_lowercase()
            })
            .collect::<Vec<_>>()
            .join(","),
    };
    escape::display_bytes(format!("{integrity}:{privs}").as_bytes())
}

/// Mask of the capabilities the caps table knows by name.
///
/// Derived from `cap_names` rather than hard-coded so that "all caps"
/// follows the table when new capabilities are added there.
fn known_caps_mask() -> u64 {
    static MASK: OnceLock<u64> = OnceLock::new();
    *MASK.get_or_init(|| {
        (0..64)
            .map(|bit| 1u64 << bit)
            .filter(|&m| cap_names(m).first().is_some_and(|n| n.starts_with("CAP_")))
            .fold(0, |acc, m| acc | m)
    })
}

/// Short privilege summary for the text format.
///
/// Effective capabilities: `caps=ALL` when (nearly) every known capability
/// is effective (the root case, kept short on purpose), followed by
/// ` -name,...` for the few that are missing and ` +N` for unknown bits;
/// `-` when none;
/// otherwise the names without `CAP_`, lowercased, joined by `,` (unknown
/// bits as numbers). Then ` [setuid]`, ` [setgid]` or ` [file_caps]` when
/// the exec itself raised privileges, because that is what a reader scans
/// for.
pub fn privileges_summary(p: &Privileges) -> String {
    match p {
        Privileges::Windows(token) => windows_summary(token),
        Privileges::Linux { caps, raised, .. } => {
            let mut s = if caps.effective == 0 {
                "-".to_owned()
            } else {
                caps_short(caps.effective)
            };
            if let Some(r) = raised {
                s.push_str(" [");
                s.push_str(r.as_str());
                s.push(']');
            }
            s
        }
    }
}

/// A non-empty capability mask for the text format: `caps=ALL` (with
/// ` -name,...` for missing known caps and ` +N` for unknown bits) when
/// nearly every known capability is set, otherwise the names without
/// `CAP_`, lowercased, joined by `,`.
fn caps_short(mask: u64) -> String {
    let known = known_caps_mask();
    let short = |mask: u64| {
        cap_names(mask)
            .iter()
            .map(|n| n.strip_prefix("CAP_").unwrap_or(n).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    let missing = known & !mask;
    if known != 0 && missing.count_ones() * 4 < known.count_ones() {
        // Nearly everything: name what is missing, which is what stands
        // out (e.g. a container's root without sys_admin).
        let mut s = "caps=ALL".to_owned();
        if missing != 0 {
            s.push_str(" -");
            s.push_str(&short(missing));
        }
        if mask & !known != 0 {
            s.push_str(" +");
            s.push_str(&short(mask & !known));
        }
        s
    } else {
        short(mask)
    }
}

/// Who reads a description: the text view (short, `→`) or a CSV cell
/// (complete, ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Text,
    Csv,
}

/// A privilege change in a few words: the cause (with the launcher for a
/// launcher), the euid change when there is one, and the gained
/// capabilities, e.g. `setuid 1000→0`, `launcher sudo: +net_raw`; in CSV
/// `setuid 1000->0 +CAP_NET_RAW`, `launcher /usr/bin/sudo: 1000->0`.
///
/// The launcher path is shell-quoted so that a crafted name cannot close
/// the text marker early or fake a second one.
pub(crate) fn privilege_change_summary(pc: &PrivilegeChange, style: Style) -> String {
    let mut s = pc.cause.as_str().to_owned();
    if let (ChangeCause::Launcher, Some(l)) = (pc.cause, &pc.launcher) {
        let shown = match style {
            Style::Text => crate::linux::path::basename(l),
            Style::Csv => l,
        };
        s.push(' ');
        s.push_str(&escape::shell_quote(shown));
        s.push(':');
    }
    if pc.from_euid != pc.to_euid {
        let arrow = match style {
            Style::Text => "→",
            Style::Csv => "->",
        };
        s.push_str(&format!(" {}{arrow}{}", pc.from_euid, pc.to_euid));
    }
    if pc.gained_caps != 0 {
        s.push_str(" +");
        match style {
            Style::Text => s.push_str(&caps_short(pc.gained_caps)),
            Style::Csv => s.push_str(&cap_names(pc.gained_caps).join("|")),
        }
    }
    s
}

/// What can be modified and by whom, e.g. `dir /opt writable by user
/// alice`, `file writable by others`, or the symlink's path when it is
/// neither the file nor a directory above it. Paths and names are
/// shell-quoted, so none can fake the punctuation around them.
pub(crate) fn hijack_reason(h: &Hijack) -> String {
    let w = h.writable.as_slice();
    let what = if w == h.path.as_slice() {
        "file".to_owned()
    } else if h.path.starts_with(w) && (w.ends_with(b"/") || h.path.get(w.len()) == Some(&b'/')) {
        format!("dir {}", escape::shell_quote(w))
    } else {
        escape::shell_quote(w)
    };
    if h.writers.is_empty() {
        return format!("{what} writable");
    }
    let writers: Vec<String> = h
        .writers
        .iter()
        .map(|w| match w.split_once(' ') {
            // "user alice": keep the readable shape, quote each half.
            Some((kind, name)) => format!(
                "{} {}",
                escape::shell_quote(kind.as_bytes()),
                escape::shell_quote(name.as_bytes())
            ),
            None => escape::shell_quote(w.as_bytes()),
        })
        .collect();
    format!("{what} writable by {}", writers.join(", "))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures for the sink tests.

    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::event::*;

    /// A `Write + Send` whose contents the test can read after the sink
    /// (which owns a boxed clone) has written to it.
    #[derive(Clone, Default)]
    pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

    impl SharedBuf {
        pub fn bytes(&self) -> Vec<u8> {
            self.0.lock().unwrap().clone()
        }
        pub fn string(&self) -> String {
            String::from_utf8(self.bytes()).expect("sink output is UTF-8")
        }
    }

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// 2026-11-26T05:26:10.123456789Z
    pub fn t0() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_795_670_770, 123_456_789)
    }

    pub fn exec_event() -> ExecEvent {
        let mut ev = ExecEvent::new(t0(), 4242, Some(1000), "4242:123456789".to_owned());
        ev.tid = Some(4242);
        ev.exec_tid = Some(4243);
        ev.process_start = Some(t0() - Duration::from_secs(2));
        ev.exe = Some(b"/usr/bin/ls".to_vec());
        ev.filename = Some(b"/bin/ls".to_vec());
        ev.argv = Some(vec![b"ls".to_vec(), b"-la".to_vec(), b"/tmp".to_vec()]);
        ev.argv_size = Some(12);
        ev.cwd = Some(b"/home/alice".to_vec());
        ev.comm = Some(b"ls".to_vec());
        ev.privileges = Some(Privileges::Linux {
            creds: Credentials {
                uid: 1000,
                euid: 1001,
                suid: 1002,
                fsuid: 1003,
                gid: 100,
                egid: 101,
                sgid: 102,
                fsgid: 103,
                login_uid: Some(1000),
                session_id: Some(7),
            },
            caps: CapSets::default(),
            secureexec: Some(false),
            file: Some(FileInfo {
                mode: 0o100755,
                uid: 0,
                gid: 0,
            }),
            raised: None,
        });
        ev.user = Some("alice".into());
        ev.group = Some("users".into());
        ev.login_user = Some("alice".into());
        ev
    }

    /// setuid from uid 1000 to root, no capability named.
    pub fn setuid_change() -> PrivilegeChange {
        PrivilegeChange {
            cause: ChangeCause::Setuid,
            from_euid: 1000,
            from_caps: 0,
            to_euid: 0,
            gained_caps: 0,
            launcher: None,
        }
    }

    /// A root job running `sh /opt/job.sh` where alice can write /opt.
    pub fn hijack_dir() -> Hijack {
        Hijack {
            path: b"/opt/job.sh".to_vec(),
            role: HijackRole::InterpreterArg,
            writable: b"/opt".to_vec(),
            writers: vec!["user alice".to_owned()],
        }
    }

    /// An exec whose every byte field is hostile.
    pub fn hostile_exec() -> ExecEvent {
        let mut ev = exec_event();
        ev.argv = Some(vec![
            b"-sh".to_vec(),
            b"-c".to_vec(),
            b"echo \x1b]0;pwned\x07; rm -rf / # \xff\xfe".to_vec(),
            b"a,b\"c\r\nd".to_vec(),
            "\u{202e}txt.exe".as_bytes().to_vec(),
            "=HYPERLINK(\"x\")".as_bytes().to_vec(),
            b"".to_vec(),
            "\u{9b}2J\x7f".as_bytes().to_vec(),
        ]);
        ev.exe = Some(b"/tmp/\x1b[2Jevil,\"dir\"\n/\xc3(x".to_vec());
        ev.filename = Some(b"./\xff".to_vec());
        ev.interpreter = Some(b"/bin/\x1bsh".to_vec());
        ev.cwd = Some(b"/tmp/\r\n".to_vec());
        ev.comm = Some(b"\x1b[31m".to_vec());
        ev.user = Some("bob\x1b[0m".into());
        ev
    }

    pub fn start_info() -> StartInfo {
        StartInfo {
            time: t0(),
            source: "ebpf".to_owned(),
            attach: "tp_btf/sched_process_exec".to_owned(),
            version: "0.1.0".to_owned(),
            hostname: "host1".to_owned(),
            boot_id: "0f0e-boot".to_owned(),
            guarantees: "every exec after start".to_owned(),
            can_miss: "execs when the ring buffer is full (reported as loss)".to_owned(),
            pid: 99,
            coverage: Default::default(),
            continuation: false,
        }
    }

    pub fn loss_info() -> LossInfo {
        LossInfo {
            time: t0(),
            place: LossPlace::Kernel,
            dropped: 12,
            total: 40,
        }
    }

    pub fn stop_info() -> StopInfo {
        StopInfo {
            time: t0(),
            reason: "signal".to_owned(),
            counters: Counters {
                seen: 100,
                emitted: 88,
                dropped: 12,
                truncated: 3,
                received: 88,
                queue_dropped: 5,
                aux_dropped: 0,
                written: 83,
                filtered: 0,
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::event::{CapSets, PrivilegeRaise};

    fn with_caps(effective: u64, raised: Option<PrivilegeRaise>) -> Privileges {
        let mut ev = exec_event();
        let Some(Privileges::Linux {
            caps, raised: r, ..
        }) = &mut ev.privileges
        else {
            unreachable!()
        };
        *caps = CapSets {
            effective,
            permitted: effective,
            ..CapSets::default()
        };
        *r = raised;
        ev.privileges.unwrap()
    }

    #[test]
    fn unknown_ppid_is_null_not_zero_in_every_format() {
        let mut ev = exec_event();
        ev.ppid = None;
        ev.mark_incomplete("ppid", "the process exited before its parent was known");
        let render = |format| {
            let buf = SharedBuf::default();
            let mut sink = make_sink(format, Box::new(buf.clone()), true, Default::default());
            sink.write_event(&Event::Exec(Box::new(ev.clone())))
                .unwrap();
            sink.flush().unwrap();
            buf.string()
        };
        let json: serde_json::Value = serde_json::from_str(render(Format::Jsonl).trim()).unwrap();
        assert_eq!(json["ppid"], serde_json::Value::Null);
        let csv = render(Format::Csv);
        let row = csv.lines().nth(1).unwrap();
        let mut cells = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(row.as_bytes());
        let rec = cells.records().next().unwrap().unwrap();
        assert_eq!(&rec[3], "", "Parent PID: an empty cell");
        let text = render(Format::Text);
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields[2], "?", "{text}");
    }

    #[test]
    fn privileges_summary_variants() {
        assert_eq!(privileges_summary(&with_caps(0, None)), "-");
        let all = (1u64 << 41) - 1;
        assert_eq!(privileges_summary(&with_caps(all, None)), "caps=ALL");
        assert_eq!(
            privileges_summary(&with_caps(all, Some(PrivilegeRaise::Setuid))),
            "caps=ALL [setuid]"
        );
        assert_eq!(
            privileges_summary(&with_caps(all | 1 << 41, None)),
            "caps=ALL +41"
        );
        assert_eq!(
            privileges_summary(&with_caps(1 | 1 << 13, Some(PrivilegeRaise::FileCaps))),
            "chown,net_raw [file_caps]"
        );
        assert_eq!(privileges_summary(&with_caps(1 << 45, None)), "45");
        assert_eq!(
            privileges_summary(&with_caps(0, Some(PrivilegeRaise::Setgid))),
            "- [setgid]"
        );
        assert_eq!(
            privileges_summary(&with_caps(all & !(1 << 24), None)),
            "caps=ALL -sys_resource"
        );
        // Below three quarters of the known set, the names are listed.
        let half = (1u64 << 20) - 1;
        assert_eq!(
            privileges_summary(&with_caps(half, None))
                .split(',')
                .count(),
            20
        );
    }

    #[test]
    fn make_sink_applies_options() {
        let mut ev = exec_event();
        ev.privilege_change = Some(setuid_change());
        let ev = Event::Exec(Box::new(ev));
        let opts = SinkOptions {
            color: true,
            csv_columns: vec![CsvColumn::ExecId],
        };
        let render = |format, opts: SinkOptions| {
            let buf = SharedBuf::default();
            let mut sink = make_sink(format, Box::new(buf.clone()), true, opts);
            sink.write_event(&ev).unwrap();
            sink.flush().unwrap();
            buf.string()
        };
        let text = render(Format::Text, opts.clone());
        assert!(text.contains("\x1b[") && text.contains("RAISED(setuid"));
        let plain = render(Format::Text, SinkOptions::default());
        assert!(!plain.contains('\x1b') && plain.contains("RAISED(setuid"));
        let csv = render(Format::Csv, opts.clone());
        assert!(
            csv.starts_with(&format!("{},Exec ID\n", csv::HEADER)),
            "{csv}"
        );
        assert!(csv.trim_end().ends_with(",4242:123456789"), "{csv}");
        // JSONL ignores both (it always carries every field, uncoloured).
        assert!(!render(Format::Jsonl, opts).contains('\x1b'));
    }

    #[test]
    fn privilege_change_text_and_csv() {
        let mut pc = setuid_change();
        assert_eq!(privilege_change_summary(&pc, Style::Text), "setuid 1000→0");
        assert_eq!(privilege_change_summary(&pc, Style::Csv), "setuid 1000->0");
        pc.gained_caps = 1 << 13;
        assert_eq!(
            privilege_change_summary(&pc, Style::Csv),
            "setuid 1000->0 +CAP_NET_RAW"
        );
        pc.gained_caps = (1 << 41) - 1;
        assert_eq!(
            privilege_change_summary(&pc, Style::Text),
            "setuid 1000→0 +caps=ALL"
        );

        let launcher = PrivilegeChange {
            cause: ChangeCause::Launcher,
            from_euid: 0,
            from_caps: 0,
            to_euid: 0,
            gained_caps: 1 << 13 | 1 << 12,
            launcher: Some(b"/usr/bin/sudo".to_vec()),
        };
        assert_eq!(
            privilege_change_summary(&launcher, Style::Text),
            "launcher sudo: +net_admin,net_raw"
        );
        assert_eq!(
            privilege_change_summary(&launcher, Style::Csv),
            "launcher /usr/bin/sudo: +CAP_NET_ADMIN|CAP_NET_RAW"
        );

        let file_caps = PrivilegeChange {
            cause: ChangeCause::FileCaps,
            from_euid: 1000,
            to_euid: 1000,
            gained_caps: 1 << 13,
            launcher: None,
            ..launcher.clone()
        };
        assert_eq!(
            privilege_change_summary(&file_caps, Style::Text),
            "file_caps +net_raw"
        );
        let setgid = PrivilegeChange {
            cause: ChangeCause::Setgid,
            gained_caps: 0,
            ..file_caps
        };
        assert_eq!(privilege_change_summary(&setgid, Style::Text), "setgid");

        // An unknown launcher is just the cause.
        let unknown = PrivilegeChange {
            launcher: None,
            from_euid: 1000,
            gained_caps: 0,
            ..launcher.clone()
        };
        assert_eq!(
            privilege_change_summary(&unknown, Style::Text),
            "launcher 1000→0"
        );

        // A hostile launcher name cannot close the marker or fake text.
        let hostile = PrivilegeChange {
            launcher: Some(b"/tmp/x) HIJACKABLE(\x1b[0m".to_vec()),
            ..unknown
        };
        let s = privilege_change_summary(&hostile, Style::Text);
        assert_eq!(s, "launcher $'x) HIJACKABLE(\\x1b[0m': 1000→0");
        assert!(!s.contains('\x1b'));
    }

    #[test]
    fn hijack_reason_shapes() {
        let mut h = hijack_dir();
        assert_eq!(hijack_reason(&h), "dir /opt writable by user alice");
        h.writable = h.path.clone();
        h.writers = vec!["others".into(), "group staff".into()];
        assert_eq!(hijack_reason(&h), "file writable by others, group staff");
        // "/" is a directory above everything.
        h.writable = b"/".to_vec();
        assert_eq!(hijack_reason(&h), "dir / writable by others, group staff");
        // Not a prefix at a component boundary: shown as a path.
        h.writable = b"/op".to_vec();
        h.writers = vec![];
        assert_eq!(hijack_reason(&h), "/op writable");
        h.writable = b"/usr/local/bin/job".to_vec();
        assert_eq!(hijack_reason(&h), "/usr/local/bin/job writable");
        // Names and paths are quoted, so neither can fake punctuation.
        h.writable = b"/opt/a b".to_vec();
        h.path = b"/opt/a b/c".to_vec();
        h.writers = vec!["user ev)il, x".into(), "odd\x1b".into()];
        assert_eq!(
            hijack_reason(&h),
            "dir '/opt/a b' writable by user 'ev)il, x', $'odd\\x1b'"
        );
    }

    #[test]
    fn user_display_falls_back_to_euid_and_escapes() {
        let mut ev = exec_event();
        assert_eq!(user_display(&ev), "alice");
        ev.user = None;
        assert_eq!(user_display(&ev), "1001");
        ev.user = Some("x\x1by".into());
        assert_eq!(user_display(&ev), "$'x\\x1by'");
    }

    #[test]
    fn make_sink_builds_each_format() {
        let ev = Event::Exec(Box::new(exec_event()));
        for (format, check) in [
            (Format::Text, "ls -la /tmp"),
            (Format::Csv, "CommandLine,Time"),
            (Format::Jsonl, "\"event\":\"exec\""),
        ] {
            let buf = SharedBuf::default();
            let mut sink = make_sink(format, Box::new(buf.clone()), true, SinkOptions::default());
            sink.write_event(&ev).unwrap();
            sink.flush().unwrap();
            assert!(buf.string().contains(check), "{format:?}: {}", buf.string());
        }
    }
}
