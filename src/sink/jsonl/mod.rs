//! JSON Lines sink: one object per event per line, compact by default,
//! lossless, and described by the JSON Schemas in `schema/`.
//!
//! Field names are those documented in [`crate::event`]. Every line is
//! written by the one JSON encoder (encode.rs) straight into a reused
//! buffer: the exec line by exec.rs, in the documented order, with the
//! fields `--fields` selects (fields.rs); the others by events.rs, their
//! members in alphabetical order. Consumers must not depend on the order
//! either way. cache.rs keeps what lines repeat (capability-name arrays,
//! the parent object, the current second) and which exec lines the file
//! holds.
//!
//! Encoding rules:
//! * every field has one JSON type on every line; an unknown value is
//!   `null`; the fields an exec line leaves out by default are listed in
//!   fields.rs;
//! * times are RFC 3339 UTC strings with microseconds;
//! * byte strings (argv, paths, comm) are always strings: the lossy UTF-8
//!   form when the bytes are not UTF-8, whose exact bytes are then in the
//!   line's `raw` object (JSON Pointer → base64);
//! * besides what JSON requires, characters a terminal would act on (DEL,
//!   C1 controls, bidi and other invisible format characters) are written
//!   as `\uXXXX` escapes, so `tail -f events.jsonl` is as safe as the text
//!   format. This changes only the JSON spelling, not the decoded value.

mod cache;
pub(crate) mod encode;
mod events;
pub(crate) mod exec;
mod fields;
#[cfg(test)]
mod fields_tests;
#[cfg(test)]
pub(crate) mod schema_check;
#[cfg(test)]
mod tests;

use std::io::{self, Write};

pub use fields::{FIELDS, FieldChange, Fields, Shown, parse_field_change};

use crate::event::Event;

use super::{Sink, SinkOptions};
use cache::RenderCache;
use events::{write_counters, write_exit, write_hash, write_loss, write_start};
use exec::write_exec;

/// Lines are rendered straight into one buffer and handed to the output
/// in blocks of at least the output buffer's size (and at every flush):
/// a `BufWriter` passes a block that large straight to `write(2)`, which
/// saves copying every line once more.
const LINES_MAX: usize = super::output::BUF_SIZE;

/// Writes one JSON object per event, each followed by `\n`.
pub struct JsonlSink {
    out: Box<dyn Write + Send>,
    /// Whole lines not yet handed to `out`; reused, so no allocation per
    /// event. Each `write_all` carries whole lines only.
    lines: String,
    caps: RenderCache,
    /// `host` of every line: the machine's name, as the start line has it.
    host: String,
    fields: Fields,
}

impl JsonlSink {
    /// A JSONL sink writing to `out`, with the default fields, for the
    /// machine named `host` (a start event's `hostname` replaces it).
    pub fn new(out: Box<dyn Write + Send>, host: String) -> Self {
        Self::with_fields(out, host, Fields::default())
    }

    /// A JSONL sink writing the exec fields `fields` selects.
    pub fn with_fields(out: Box<dyn Write + Send>, host: String, fields: Fields) -> Self {
        JsonlSink {
            out,
            lines: String::with_capacity(LINES_MAX + 4096),
            caps: RenderCache::new(),
            host,
            fields,
        }
    }

    fn write_lines(&mut self) -> io::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let res = self.out.write_all(self.lines.as_bytes());
        self.lines.clear();
        res
    }
}

impl JsonlSink {
    /// Writes one line for any event (without the newline).
    fn write_line(&mut self, ev: &Event) {
        if let Event::Start(s) = ev {
            self.host.clone_from(&s.hostname);
        }
        let (out, cache, host) = (&mut self.lines, &mut self.caps, self.host.as_str());
        match ev {
            Event::Start(s) => write_start(out, s, &mut cache.time),
            Event::Exec(e) => write_exec(out, e, host, &self.fields, cache),
            Event::Exit(x) => write_exit(out, x, host, cache),
            Event::Loss(l) => write_loss(out, l, host, &mut cache.time),
            Event::Hash(h) => write_hash(out, h, host, &mut cache.time),
            Event::Stop(s) => write_counters(
                out,
                "stop",
                s.time,
                &s.counters,
                Some(&s.reason),
                host,
                &mut cache.time,
            ),
            Event::Stats(s) => write_counters(
                out,
                "stats",
                s.time,
                &s.counters,
                None,
                host,
                &mut cache.time,
            ),
        }
    }
}

/// The JSONL sink of the registry (see [`super::Build`]): the exec fields
/// of `--fields`.
pub fn build(out: Box<dyn Write + Send>, _header_needed: bool, opts: SinkOptions) -> Box<dyn Sink> {
    Box::new(JsonlSink::with_fields(
        out,
        super::host_name(),
        opts.jsonl_fields,
    ))
}

/// One serialized line per event, each ending with `\n`.
impl Sink for JsonlSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        self.write_line(ev);
        self.lines.push('\n');
        if self.lines.len() >= LINES_MAX {
            self.write_lines()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_lines()?;
        self.out.flush()
    }

    /// A new file holds none of the parents' exec lines.
    fn reopened(&mut self, _empty: bool) {
        self.caps.logged.clear();
        self.caps.parent = None;
    }
}
