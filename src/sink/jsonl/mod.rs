//! JSON Lines sink: one object per event per line, every field, lossless.
//!
//! Field names are those documented in [`crate::event`]. Every line is
//! written by the one JSON encoder (encode.rs) straight into a reused
//! buffer: the exec line by exec.rs, in the documented order; the others
//! by events.rs, their members in alphabetical order. Consumers must not
//! depend on the order either way. cache.rs keeps what lines repeat
//! (capability-name arrays, the parent object, the current second).
//!
//! Encoding rules:
//! * times are RFC 3339 UTC strings with microseconds;
//! * byte strings (argv, paths, comm) are a string when valid UTF-8,
//!   otherwise `{"base64": ..., "lossy": ...}` holding the exact bytes;
//! * optional values are `null`, never omitted, so every line of a kind
//!   has the same keys;
//! * besides what JSON requires, characters a terminal would act on (DEL,
//!   C1 controls, bidi and other invisible format characters) are written
//!   as `\uXXXX` escapes, so `tail -f events.jsonl` is as safe as the text
//!   format. This changes only the JSON spelling, not the decoded value.

mod cache;
pub(crate) mod encode;
mod events;
mod exec;
#[cfg(test)]
mod tests;

use std::io::{self, Write};

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
}

impl JsonlSink {
    /// A JSONL sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonlSink {
            out,
            lines: String::with_capacity(LINES_MAX + 4096),
            caps: RenderCache::default(),
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

/// Writes one line for any event (without the newline) into `out`.
fn write_line(out: &mut String, ev: &Event, cache: &mut RenderCache) {
    match ev {
        Event::Start(s) => write_start(out, s, &mut cache.time),
        Event::Exec(e) => write_exec(out, e, cache),
        Event::Exit(x) => write_exit(out, x, &mut cache.time),
        Event::Loss(l) => write_loss(out, l, &mut cache.time),
        Event::Hash(h) => write_hash(out, h, &mut cache.time),
        Event::Stop(s) => write_counters(
            out,
            "stop",
            s.time,
            &s.counters,
            Some(&s.reason),
            &mut cache.time,
        ),
        Event::Stats(s) => write_counters(out, "stats", s.time, &s.counters, None, &mut cache.time),
    }
}

/// The JSONL sink of the registry (see [`super::Build`]): every field
/// always, so it takes no option.
pub fn build(
    out: Box<dyn Write + Send>,
    _header_needed: bool,
    _opts: SinkOptions,
) -> Box<dyn Sink> {
    Box::new(JsonlSink::new(out))
}

/// One serialized line per event, each ending with `\n`.
impl Sink for JsonlSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        write_line(&mut self.lines, ev, &mut self.caps);
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
}
