//! `--syslog URL`: every event, as an RFC 5424 message (message.rs), to a
//! syslog receiver over a Unix socket, UDP, TCP or TLS (target.rs,
//! transport.rs, tls.rs), beside the main output.
//!
//! MSG is the event as a sink of `--syslog-format` renders it, so syslog
//! carries exactly the JSON line the file gets. Each destination has its
//! own thread and bounded queue (sender.rs): a slow or dead receiver never
//! holds up the writer; what it could not take is counted and reported as
//! `loss` events with `place: "syslog"`, in every output (see
//! [`super::fanout`]).

mod message;
mod sender;
pub mod target;
#[cfg(test)]
mod tests;
mod tls;
mod transport;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::event::{Event, LossPlace};

use super::{Format, Sink, SinkOptions};
pub use message::{MIN_MAX, Severity, severity};
use sender::Sender;
pub use target::Target;
pub use tls::read_ca_file;

/// The syslog flags as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogOptions {
    /// `--syslog`: the destinations, each sent every event.
    pub targets: Vec<Target>,
    /// `--syslog-format`: how MSG renders the event.
    pub format: Format,
    /// `--syslog-ca`: trust these CAs for `tls://` instead of the system's.
    pub ca: Option<PathBuf>,
    /// `--syslog-max`: longest message (header included); longer ones are
    /// truncated and flagged.
    pub max_message: usize,
    /// `--syslog-buffer`: bytes queued per destination before messages
    /// are dropped (and counted).
    pub buffer: usize,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            targets: Vec::new(),
            format: Format::Jsonl,
            ca: None,
            max_message: 8192,
            buffer: 8 << 20,
        }
    }
}

/// How long the end of a run waits for queued messages to go out before
/// counting them as lost.
pub const DRAIN_WAIT: Duration = Duration::from_secs(3);

/// Collects what the rendering sink writes, one event at a time.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One `--syslog` destination as a [`Sink`].
pub struct SyslogSink {
    target: Target,
    /// The format's own sink, rendering into `captured`.
    render: Box<dyn Sink>,
    captured: Capture,
    line: String,
    host: String,
    procid: u32,
    max: usize,
    sender: Sender,
    /// Losses already handed out by [`Sink::take_lost`].
    reported: u64,
}

impl SyslogSink {
    fn new(
        target: Target,
        opts: &SyslogOptions,
        tls: Option<Arc<rustls::ClientConfig>>,
        host: &str,
    ) -> io::Result<SyslogSink> {
        let captured = Capture::default();
        let render = super::make_sink(
            opts.format,
            Box::new(captured.clone()),
            false,
            SinkOptions::default(),
        );
        let sender = Sender::start(target.clone(), tls, opts.buffer)?;
        Ok(SyslogSink {
            target,
            render,
            captured,
            line: String::new(),
            host: message::header_hostname(host),
            procid: std::process::id(),
            max: opts.max_message,
            sender,
            reported: 0,
        })
    }
}

impl Sink for SyslogSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        self.render.write_event(ev)?;
        self.render.flush()?;
        {
            let mut bytes = self.captured.0.lock().unwrap_or_else(|p| p.into_inner());
            self.line.clear();
            self.line.push_str(&String::from_utf8_lossy(&bytes));
            bytes.clear();
        }
        let line = self.line.trim_end_matches('\n');
        let mut msg = Vec::with_capacity(line.len() + 96);
        message::render(&mut msg, ev, &self.host, self.procid, line, self.max);
        self.sender.push(msg);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn take_lost(&mut self) -> Option<(LossPlace, u64)> {
        let lost = self.sender.lost();
        let new = lost - self.reported;
        self.reported = lost;
        (new > 0).then_some((LossPlace::Syslog, new))
    }

    fn drain(&mut self, wait: Duration) {
        self.sender.drain(wait);
    }
}

impl Drop for SyslogSink {
    /// Gives the last messages (the stop event) a moment to go out; what
    /// could not is said on stderr, the only place left to say it.
    fn drop(&mut self) {
        let lost = self.sender.finish(Duration::from_secs(1));
        if lost > self.reported {
            eprintln!(
                "procwatch: syslog {}: {} messages not delivered at exit",
                self.target,
                lost - self.reported
            );
        }
    }
}

/// `primary` alone when there is no `--syslog`, else a fan-out to it and
/// to a sink per destination. `host` is HOSTNAME in every message.
pub fn attach(
    primary: Box<dyn Sink>,
    opts: &SyslogOptions,
    host: &str,
) -> io::Result<Box<dyn Sink>> {
    if opts.targets.is_empty() {
        return Ok(primary);
    }
    let tls = if opts.targets.iter().any(Target::is_tls) {
        Some(tls::client_config(opts.ca.as_deref()).map_err(io::Error::other)?)
    } else {
        None
    };
    let mut sinks = vec![primary];
    for t in &opts.targets {
        sinks.push(Box::new(SyslogSink::new(t.clone(), opts, tls.clone(), host)?) as Box<dyn Sink>);
    }
    Ok(Box::new(super::fanout::Fanout::new(sinks)))
}
