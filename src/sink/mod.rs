//! Sinks: render [`Event`]s for humans (text), spreadsheets (CSV) or
//! machines (JSON Lines).
//!
//! Every byte string in an event is attacker-controlled; all rendering goes
//! through [`escape`] so no sink can emit terminal escapes, break its own
//! framing (a CSV row, a JSON line) or lose bytes silently.

pub mod csv;
mod describe;
pub mod ecs;
pub mod escape;
mod fanout;
mod host;
pub mod jsonl;
pub mod output;
#[cfg(unix)]
pub mod output_file;
pub mod syslog;
#[cfg(test)]
pub(crate) mod testutil;
pub mod text;
mod time;
#[cfg(test)]
mod windows_tests;

/// Re-exported so callers open the destination and build the sink from one
/// place (`sink::open_output` then `sink::make_sink`).
pub use output::{Output, OutputError, open_output};

pub use csv::CsvColumn;
pub use describe::{cmdline_of, privileges_summary, user_display};
pub(crate) use describe::{known_caps_mask, nearly_all_caps};
pub use host::host_name;

use crate::event::Event;
use std::io::Write;

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
    /// Messages this sink took and then lost (a network destination that
    /// could not deliver), not yet taken: the place and the count.
    fn take_lost(&mut self) -> Option<(crate::event::LossPlace, u64)> {
        None
    }
    /// The run is ending: waits up to `wait` for output queued elsewhere
    /// (a sender thread) to go out, and counts what did not as lost.
    fn drain(&mut self, _wait: std::time::Duration) {}
}

/// Output format chosen on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One aligned line per exec, for a terminal.
    Text,
    /// Seven standard CSV columns (and any extra ones), one row per exec.
    Csv,
    /// One JSON object per line, every field, lossless.
    Jsonl,
    /// One Elastic Common Schema 8.x document per line.
    Ecs,
}

/// Rendering choices beyond the format. The default: no colour, the
/// standard CSV columns only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkOptions {
    /// Text only: emphasise users, privilege raises, hijackable execs and
    /// failed exits with ANSI colours. The markers themselves are written
    /// either way; colour only adds emphasis.
    pub color: bool,
    /// CSV only: extra columns after the standard seven, in this order.
    pub csv_columns: Vec<CsvColumn>,
    /// Text only: the terminal's width when standard output is one and the
    /// wide layout was not asked for (`-v`); narrow ones get the compact
    /// layout. `None`: the wide layout.
    pub text_width: Option<u16>,
    /// JSONL only: which exec fields each line carries (`--fields`).
    pub jsonl_fields: jsonl::Fields,
}

/// What every sink module provides: its sink over `out`. `header_needed`:
/// the destination is new or empty (a CSV header is due); each sink takes
/// from the options what applies to it.
pub type Build =
    fn(out: Box<dyn Write + Send>, header_needed: bool, opts: SinkOptions) -> Box<dyn Sink>;

/// The registry: which module builds each format. A new sink is its file
/// (with a `build`), its [`Format`] variant, and one line here.
fn builder(format: Format) -> Build {
    match format {
        Format::Text => text::build,
        Format::Csv => csv::build,
        Format::Jsonl => jsonl::build,
        Format::Ecs => ecs::build,
    }
}

/// Builds the sink for a format (see [`Build`]).
pub fn make_sink(
    format: Format,
    out: Box<dyn Write + Send>,
    header_needed: bool,
    opts: SinkOptions,
) -> Box<dyn Sink> {
    builder(format)(out, header_needed, opts)
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

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
        jsonl::schema_check::assert_valid(&json);
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
    fn make_sink_applies_options() {
        let mut ev = exec_event();
        ev.privilege_change = Some(setuid_change());
        let ev = Event::Exec(Box::new(ev));
        let opts = SinkOptions {
            color: true,
            csv_columns: vec![CsvColumn::ExecId],
            ..SinkOptions::default()
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
    fn make_sink_builds_each_format() {
        let ev = Event::Exec(Box::new(exec_event()));
        for (format, check) in [
            (Format::Text, "ls -la /tmp"),
            (Format::Csv, "CommandLine,Time"),
            (Format::Jsonl, "\"event\":\"exec\""),
            (Format::Ecs, "\"action\":\"exec\""),
        ] {
            let buf = SharedBuf::default();
            let mut sink = make_sink(format, Box::new(buf.clone()), true, SinkOptions::default());
            sink.write_event(&ev).unwrap();
            sink.flush().unwrap();
            assert!(buf.string().contains(check), "{format:?}: {}", buf.string());
        }
    }
}
