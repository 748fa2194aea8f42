//! CSV sink: one row per exec, seven standard columns then the extra ones
//! asked for. The seven are what a reader scans first (the command line
//! and when, the program, parent and pid, then who ran it with which
//! privileges); they never change, so scripts can index them.
//!
//! The pieces: this file (the sink: header, rows, stderr messages),
//! `columns` (the extra columns) and `cell` (formula guard and RFC 4180
//! quoting of one cell).
//!
//! Format choices, all deliberate:
//! * header `CommandLine,Time,Executable,Parent PID,PID,User,Privileges`,
//!   written once, before the first row, and only when the destination was
//!   empty (appending to an existing file must not repeat it);
//! * RFC 4180 quoting (fields containing `,` `"` CR LF or a leading or
//!   trailing space are quoted, `"` doubled), done by hand because the
//!   `csv` crate is only a dev-dependency;
//! * records end with `\n`, not RFC 4180's `\r\n`: this is a Unix tool,
//!   line-oriented tools (`wc -l`, `tail -f`, `grep`) expect `\n`, and every
//!   CSV reader accepts it;
//! * every cell is passed through `cell::csv_cell` so spreadsheets never
//!   evaluate an attacker's argv as a formula.
//!
//! Extra columns ([`CsvColumn`], `--csv-columns`) come after the seven, in
//! the order asked for, so readers that index the standard seven keep
//! working.
//!
//! Only exec events become rows. Loss and stop events must not vanish, but
//! they do not fit the columns, so they are reported as one-line messages on
//! a diagnostics stream (stderr). Start is announced on stderr by the caller
//! and ignored here.

use std::io::{self, Write};

use crate::event::{Event, ExecEvent, Privileges, StopInfo};
use crate::linux::caps::cap_names;

mod cell;
mod columns;

pub use columns::CsvColumn;

use super::describe::{self, Style, cmdline_of, user_display};
use super::escape::display_bytes;
use super::time::time_rfc3339;
use super::{Sink, SinkOptions};
use cell::{csv_cell, csv_cmdline, quote_field};

/// The header line, without the line ending.
pub const HEADER: &str = "CommandLine,Time,Executable,Parent PID,PID,User,Privileges";

/// Writes exec events as CSV rows; loss/stop go to the diagnostics stream.
pub struct CsvSink {
    out: Box<dyn Write + Send>,
    diag: Box<dyn Write + Send>,
    header_pending: bool,
    columns: Vec<CsvColumn>,
}

impl CsvSink {
    /// A CSV sink whose loss/stop messages go to stderr.
    pub fn new(out: Box<dyn Write + Send>, header_needed: bool) -> Self {
        Self::with_diagnostics(out, header_needed, Box::new(io::stderr()))
    }

    /// A CSV sink with an explicit diagnostics stream (used by tests, and by
    /// callers that want the messages elsewhere).
    pub fn with_diagnostics(
        out: Box<dyn Write + Send>,
        header_needed: bool,
        diag: Box<dyn Write + Send>,
    ) -> Self {
        CsvSink {
            out,
            diag,
            header_pending: header_needed,
            columns: Vec::new(),
        }
    }

    /// Adds `columns` after the standard seven, in this order.
    pub fn with_columns(mut self, columns: Vec<CsvColumn>) -> Self {
        self.columns = columns;
        self
    }

    /// Writes the header if it is still owed. Done on the first event rather
    /// than at construction so that building a sink has no side effects and
    /// cannot fail.
    fn ensure_header(&mut self) -> io::Result<()> {
        if self.header_pending {
            let mut line = HEADER.to_owned();
            for c in &self.columns {
                line.push(',');
                line.push_str(&quote_field(c.header()));
            }
            line.push('\n');
            self.out.write_all(line.as_bytes())?;
            self.header_pending = false;
        }
        Ok(())
    }
}

/// The seven cells of an exec row, before RFC 4180 quoting.
fn row_cells(ev: &ExecEvent) -> [String; 7] {
    let privs = match &ev.privileges {
        Some(Privileges::Linux { caps, .. }) => cap_names(caps.effective).join("|"),
        // Enabled privilege names joined with `|`, like the Linux
        // capability names.
        Some(Privileges::Windows(token)) => {
            csv_cell(&display_bytes(token.enabled_names().join("|").as_bytes()))
        }
        None => String::new(),
    };
    [
        command_line_cell(ev),
        time_rfc3339(ev.time),
        csv_cell(&ev.exe.as_deref().map(display_bytes).unwrap_or_default()),
        ev.ppid.map(|p| p.to_string()).unwrap_or_default(),
        ev.pid.to_string(),
        csv_cell(&user_display(ev)),
        privs,
    ]
}

/// The CommandLine cell. From argv (Linux): shell words (see
/// [`csv_cmdline`]), followed when argv was cut by ` …[truncated N bytes]`,
/// N being argv's bytes (NULs included) that were not captured. No shell
/// word can end the cell that way (`[` and `]` are always quoted), so the
/// marker is unambiguous. A system's own one-string command line
/// (Windows) is a plain cell.
fn command_line_cell(ev: &ExecEvent) -> String {
    let Some(argv) = &ev.argv else {
        return csv_cell(&cmdline_of(ev).unwrap_or_default());
    };
    let mut cell = csv_cmdline(argv);
    if ev.argv_truncated {
        let shown: usize = argv.iter().map(Vec::len).sum::<usize>() + argv.len().saturating_sub(1);
        let missing = ev.argv_size.unwrap_or(0).saturating_sub(shown as u64);
        cell.push_str(&format!(" {TRUNCATED_MARK}{missing} bytes]"));
    }
    cell
}

/// The start of the marker ending a truncated CommandLine.
pub const TRUNCATED_MARK: &str = "…[truncated ";

/// The stderr line for a stop event in CSV mode (and for the counters of
/// a run whose output could not take its stop event).
pub(crate) fn stop_message(s: &StopInfo) -> String {
    format!("procwatch: {}", describe::stop(s, Style::Csv))
}

/// The CSV sink of the registry (see [`super::Build`]): a header when the
/// destination needs one, the extra columns asked for.
pub fn build(out: Box<dyn Write + Send>, header_needed: bool, opts: SinkOptions) -> Box<dyn Sink> {
    Box::new(CsvSink::new(out, header_needed).with_columns(opts.csv_columns))
}

impl Sink for CsvSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        self.ensure_header()?;
        match ev {
            // One row per new process: exits are only in
            // the text and JSONL formats.
            Event::Start(_) | Event::Exit(_) => Ok(()),
            Event::Exec(e) => {
                let cells = row_cells(e)
                    .into_iter()
                    .chain(self.columns.iter().map(|c| c.cell(e)));
                let mut line = String::new();
                for (i, cell) in cells.enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&quote_field(&cell));
                }
                line.push('\n');
                self.out.write_all(line.as_bytes())
            }
            Event::Loss(l) => writeln!(self.diag, "procwatch: {}", describe::loss(l, Style::Csv)),
            Event::Stats(s) => writeln!(
                self.diag,
                "procwatch: {}",
                describe::stats(&s.counters, Style::Csv)
            ),
            // Only when the rows carry hashes (the SHA256 column).
            Event::Hash(h) if self.columns.contains(&CsvColumn::Sha256) => {
                writeln!(self.diag, "procwatch: {}", describe::hash_notice(h))
            }
            Event::Hash(_) => Ok(()),
            Event::Stop(s) => {
                // Rows before the summary: a reader of both streams sees the
                // data complete before the final counters.
                self.out.flush()?;
                writeln!(self.diag, "{}", stop_message(s))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.diag.flush()
    }

    fn reopened(&mut self, empty: bool) {
        self.header_pending = empty;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        CapSets, ChangeCause, Hijack, HijackRole, LossPlace, ParentInfo, PrivilegeChange,
    };
    use crate::sink::escape::shell_quote;
    use crate::sink::testutil::*;

    fn sink(header: bool) -> (CsvSink, SharedBuf, SharedBuf) {
        let out = SharedBuf::default();
        let diag = SharedBuf::default();
        let s = CsvSink::with_diagnostics(Box::new(out.clone()), header, Box::new(diag.clone()));
        (s, out, diag)
    }

    fn read_all(text: &str, has_headers: bool) -> Vec<Vec<String>> {
        ::csv::ReaderBuilder::new()
            .has_headers(has_headers)
            .from_reader(text.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    #[test]
    fn header_then_row() {
        let (mut s, out, diag) = sink(true);
        s.write_event(&Event::Start(start_info())).unwrap();
        s.write_event(&Event::Exec(Box::new(exec_event()))).unwrap();
        s.flush().unwrap();
        assert_eq!(
            out.string(),
            "CommandLine,Time,Executable,Parent PID,PID,User,Privileges\n\
             ls -la /tmp,2026-11-26T05:26:10.123456Z,/usr/bin/ls,1000,4242,alice,\n"
        );
        assert_eq!(diag.string(), "");
    }

    #[test]
    fn header_written_once_and_only_when_needed() {
        let (mut s, out, _) = sink(true);
        for _ in 0..3 {
            s.write_event(&Event::Exec(Box::new(exec_event()))).unwrap();
        }
        assert_eq!(out.string().matches("CommandLine").count(), 1);
        assert_eq!(out.string().lines().count(), 4);

        let (mut s, out, _) = sink(false);
        s.write_event(&Event::Exec(Box::new(exec_event()))).unwrap();
        assert!(!out.string().contains("CommandLine"));
        assert_eq!(out.string().lines().count(), 1);
    }

    #[test]
    fn no_event_no_output() {
        let (mut s, out, _) = sink(true);
        s.flush().unwrap();
        assert_eq!(out.string(), "");
    }

    #[test]
    fn loss_and_stop_go_to_diagnostics_not_rows() {
        let (mut s, out, diag) = sink(false);
        s.write_event(&Event::Loss(loss_info())).unwrap();
        let mut q = loss_info();
        q.place = LossPlace::Queue;
        q.dropped = 1;
        q.total = 2;
        s.write_event(&Event::Loss(q)).unwrap();
        s.write_event(&Event::Stop(stop_info())).unwrap();
        assert_eq!(out.string(), "");
        assert_eq!(
            diag.string(),
            "procwatch: LOST 12 events (kernel, total 40)\n\
             procwatch: LOST 1 events (queue, total 2)\n\
             procwatch: stop (signal): seen 100, emitted 88, dropped 12, truncated 3, received 88, queue_dropped 5, written 83, filtered 4, write_errors 0, output_dropped 0\n"
        );
    }

    #[test]
    fn hostile_row_parses_back_with_csv_crate() {
        let (mut s, out, _) = sink(true);
        let ev = hostile_exec();
        s.write_event(&Event::Exec(Box::new(ev.clone()))).unwrap();
        let text = out.string();
        // One physical line per record: controls were escaped before quoting.
        assert_eq!(text.matches('\n').count(), 2);
        assert!(!text.bytes().any(|b| (b < 0x20 && b != b'\n') || b == 0x7f));
        let rows = read_all(&text, true);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.len(), 7);
        // `-sh` starts with '-': quoted as a shell word, nothing else altered.
        assert_eq!(r[0], csv_cmdline(ev.argv.as_deref().unwrap()));
        assert!(r[0].starts_with("'-sh' -c $'echo \\x1b]0;pwned\\x07; rm -rf / # \\xff\\xfe'"));
        assert_eq!(r[1], "2026-11-26T05:26:10.123456Z");
        assert_eq!(r[2], display_bytes(ev.exe.as_deref().unwrap()));
        assert!(r[2].starts_with("$'/tmp/\\x1b[2Jevil,\"dir\"\\n/\\xc3(x'"));
        assert_eq!(r[3], "1000");
        assert_eq!(r[4], "4242");
        assert_eq!(r[5], "$'bob\\x1b[0m'");
        assert_eq!(r[6], "");
        // The cmdline cell still names every argument losslessly.
        assert!(r[0].contains(&shell_quote("=HYPERLINK(\"x\")".as_bytes())));
    }

    #[test]
    fn formula_cells_are_guarded() {
        let (mut s, out, _) = sink(false);
        let mut ev = exec_event();
        ev.argv = Some(vec![b"+1".to_vec(), b"=2".to_vec()]);
        ev.exe = Some(b"@evil".to_vec());
        ev.user = Some("-x".into());
        s.write_event(&Event::Exec(Box::new(ev.clone()))).unwrap();
        // A quoted argv[0] already starts with `'`, which spreadsheets read
        // as text, so no extra guard is added.
        ev.argv = Some(vec![b"=cmd|' /C calc'!A0".to_vec()]);
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        let rows = read_all(&out.string(), false);
        assert_eq!(rows[0][0], "'+1' =2");
        assert_eq!(rows[0][2], "'@evil");
        assert_eq!(rows[0][5], "'-x");
        assert_eq!(rows[1][0], "'=cmd|'\\'' /C calc'\\''!A0'");
    }

    #[test]
    fn user_falls_back_to_euid_and_caps_joined_by_pipe() {
        let (mut s, out, _) = sink(false);
        let mut ev = exec_event();
        ev.user = None;
        let Some(Privileges::Linux { caps, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        *caps = CapSets {
            effective: 1 | 1 << 21 | 1 << 50,
            ..CapSets::default()
        };
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        let r = &read_all(&out.string(), false)[0];
        assert_eq!(r[5], "1001");
        assert_eq!(r[6], "CAP_CHOWN|CAP_SYS_ADMIN|50");
    }

    #[test]
    fn quote_field_rules() {
        assert_eq!(quote_field("plain"), "plain");
        assert_eq!(quote_field(""), "");
        assert_eq!(quote_field("a,b"), "\"a,b\"");
        assert_eq!(quote_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_field("a\nb"), "\"a\nb\"");
        assert_eq!(quote_field("a\rb"), "\"a\rb\"");
        assert_eq!(quote_field(" lead"), "\" lead\"");
        assert_eq!(quote_field("trail "), "\"trail \"");
        assert_eq!(quote_field("in side"), "in side");
        assert_eq!(quote_field("it's"), "it's");
    }

    #[test]
    fn quoted_fields_round_trip_through_csv_crate() {
        let cells = ["a,b", "\"", "\"\"", " x ", "a\r\nb", "", "x'y", "é,\"ü\""];
        let line: Vec<_> = cells.iter().map(|c| quote_field(c).into_owned()).collect();
        let text = format!("{}\n", line.join(","));
        let rows = read_all(&text, false);
        assert_eq!(
            rows,
            vec![cells.iter().map(|c| c.to_string()).collect::<Vec<_>>()]
        );
    }

    fn sink_with(columns: Vec<CsvColumn>) -> (CsvSink, SharedBuf) {
        let (s, out, _) = sink(true);
        (s.with_columns(columns), out)
    }

    /// An exec with every enrichment filled in.
    fn enriched() -> ExecEvent {
        let mut ev = exec_event();
        ev.parent = Some(ParentInfo {
            pid: 1000,
            start: None,
            image: std::sync::Arc::new(crate::event::ProcessImage {
                exec_id: Some("1000:5".to_owned()),
                exe: Some(b"/usr/bin/bash".to_vec()),
                argv: Some(vec![b"bash".to_vec(), b"-c".to_vec(), b"ls -la".to_vec()]),
                user: Some("alice".into()),
                euid: Some(1000),
                caps_effective: Some(0),
            }),
        });
        ev.privilege_change = Some(PrivilegeChange {
            gained_caps: 1 << 13,
            ..setuid_change()
        });
        ev.hijackable = vec![hijack_dir(), {
            let mut h = hijack_dir();
            h.path = b"/usr/bin/ls".to_vec();
            h.role = HijackRole::Binary;
            h.writable = h.path.clone();
            h.writers = vec!["group staff".to_owned(), "others".to_owned()];
            h
        }];
        ev.exe_sha256 = Some("ab".repeat(32));
        let id = "0a".repeat(32);
        ev.ns.cgroup_path = Some(format!("/system.slice/docker-{id}.scope").into_bytes());
        ev.ns.container = Some(std::sync::Arc::new(crate::event::Container {
            id,
            runtime: "docker",
            delegated_uid: None,
            nested: false,
        }));
        ev.ns.ns_pid = Some(7);
        ev.ns.user_ns = Some(crate::event::UserNs {
            level: 1,
            owner_uid: 1000,
        });
        ev
    }

    #[test]
    fn all_extra_columns() {
        let (mut s, out) = sink_with(CsvColumn::ALL.to_vec());
        s.write_event(&Event::Exec(Box::new(enriched()))).unwrap();
        let text = out.string();
        assert!(text.starts_with(
            "CommandLine,Time,Executable,Parent PID,PID,User,Privileges,\
             Parent Executable,Parent CommandLine,Privilege Change,Hijackable,SHA256,Exec ID,\
             Argv Truncated,Argv Size,Container,NS PID,Cgroup,User Namespace,Detections\n"
        ));
        let rows = read_all(&text, true);
        let r = &rows[0];
        assert_eq!(r.len(), 20);
        // The standard seven are unchanged.
        assert_eq!(
            r[..7],
            [
                "ls -la /tmp",
                "2026-11-26T05:26:10.123456Z",
                "/usr/bin/ls",
                "1000",
                "4242",
                "alice",
                ""
            ]
        );
        assert_eq!(r[7], "/usr/bin/bash");
        assert_eq!(r[8], "bash -c 'ls -la'");
        assert_eq!(r[9], "setuid 1000->0 +CAP_NET_RAW");
        assert_eq!(
            r[10],
            "/opt/job.sh (interpreter_arg): dir /opt writable by user alice; \
             /usr/bin/ls (binary): file writable by group staff, others"
        );
        assert_eq!(r[11], "ab".repeat(32));
        assert_eq!(r[12], "4242:123456789");
        assert_eq!(r[13], "false");
        assert_eq!(r[14], "12");
        assert_eq!(r[15], format!("docker:{}", "0a".repeat(32)));
        assert_eq!(r[16], "7");
        assert_eq!(
            r[17],
            format!("/system.slice/docker-{}.scope", "0a".repeat(32))
        );
        assert_eq!(r[18], "level 1 owner 1000");
    }

    #[test]
    fn columns_in_the_order_given() {
        let (mut s, out) = sink_with(vec![CsvColumn::ExecId, CsvColumn::ParentExe]);
        s.write_event(&Event::Exec(Box::new(enriched()))).unwrap();
        let rows = read_all(&out.string(), false);
        assert_eq!(
            rows[0][7..],
            ["Exec ID", "Parent Executable"].map(String::from)
        );
        assert_eq!(
            rows[1][7..],
            ["4242:123456789", "/usr/bin/bash"].map(String::from)
        );
        // No header owed: rows only, still with the extra cells.
        let (s, out, _) = sink(false);
        let mut s = s.with_columns(vec![CsvColumn::Sha256]);
        s.write_event(&Event::Exec(Box::new(enriched()))).unwrap();
        let rows = read_all(&out.string(), false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].len(), 8);
    }

    #[test]
    fn unknown_values_are_empty_cells() {
        let (mut s, out) = sink_with(CsvColumn::ALL.to_vec());
        s.write_event(&Event::Exec(Box::new(exec_event()))).unwrap();
        let r = &read_all(&out.string(), true)[0];
        assert_eq!(r[7..12], ["", "", "", "", ""]);
        assert_eq!(r[12], "4242:123456789");
        assert_eq!(r[15..], ["", "", "", "", ""]);
        let mut ev = exec_event();
        ev.ns.user_ns = Some(crate::event::UserNs {
            level: 0,
            owner_uid: 0,
        });
        let (mut s, out) = sink_with(vec![CsvColumn::Userns]);
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        assert_eq!(read_all(&out.string(), true)[0][7], "host");
        // A parent known without exe or argv.
        let mut ev = exec_event();
        ev.parent = Some(ParentInfo {
            pid: 1000,
            ..ParentInfo::default()
        });
        let (mut s, out) = sink_with(vec![CsvColumn::ParentExe, CsvColumn::ParentCmdline]);
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        assert_eq!(read_all(&out.string(), true)[0][7..], ["", ""]);
    }

    #[test]
    fn hostile_extra_cells_are_escaped_guarded_and_quoted() {
        let mut ev = enriched();
        let p = ev.parent.as_mut().unwrap();
        let img = std::sync::Arc::make_mut(&mut p.image);
        img.exe = Some(b"=cmd|\x1b[2J,\"x\"\n".to_vec());
        img.argv = Some(vec![b"-c".to_vec(), b"a\r\nb,\"".to_vec()]);
        ev.privilege_change = Some(PrivilegeChange {
            cause: ChangeCause::Launcher,
            launcher: Some(b"/tmp/,\"\n".to_vec()),
            ..setuid_change()
        });
        ev.hijackable = vec![Hijack {
            path: b"-x; /y (binary): file".to_vec(),
            role: HijackRole::Script,
            writable: b"@z".to_vec(),
            writers: vec!["user \x07bell".to_owned()],
        }];
        ev.exe_sha256 = Some("+\x1b".to_owned());
        ev.exec_id = "=1".to_owned();
        let (mut s, out) = sink_with(CsvColumn::ALL.to_vec());
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        let text = out.string();
        assert_eq!(
            text.matches('\n').count(),
            2,
            "one physical line per record"
        );
        assert!(!text.bytes().any(|b| (b < 0x20 && b != b'\n') || b == 0x7f));
        let r = &read_all(&text, true)[0];
        assert_eq!(r.len(), 20);
        // Escaped values start with `$'`, which no spreadsheet evaluates.
        assert_eq!(r[7], "$'=cmd|\\x1b[2J,\"x\"\\n'");
        assert_eq!(r[8], "'-c' $'a\\r\\nb,\"'");
        assert_eq!(r[9], "launcher $'/tmp/,\"\\n': 1000->0");
        assert_eq!(
            r[10],
            "''-x; /y (binary): file' (script): @z writable by user $'\\x07bell'"
        );
        assert_eq!(r[11], "$'+\\x1b'");
        assert_eq!(r[12], "'=1");
    }

    #[test]
    fn empty_argv_gives_empty_cell() {
        let (mut s, out, _) = sink(false);
        let mut ev = exec_event();
        ev.argv = Some(Vec::new());
        s.write_event(&Event::Exec(Box::new(ev))).unwrap();
        assert_eq!(read_all(&out.string(), false)[0][0], "");
    }
}
