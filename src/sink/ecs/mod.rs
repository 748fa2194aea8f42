//! Elastic Common Schema sink: one ECS 8.x JSON document per event per
//! line, which Elasticsearch, Filebeat, Vector and OpenSearch take with no
//! mapping of their own.
//!
//! An exec is a process `start` event (exec.rs); start and stop are
//! `state` documents, loss and stats `metric` documents, exit and hash
//! process `end` and `info` events (this file). What ECS has no field for
//! (privilege changes, hijackable files, the credentials before the exec,
//! the loss counters, the reasons a field is missing) goes under
//! `procwatch.*`. Field types follow the ECS reference: ids of users and
//! groups are keyword strings, pids and counts integers, times RFC 3339.
//!
//! Byte strings that are not UTF-8 are written as their lossy string in
//! the ECS fields (so every field keeps its one type) and losslessly, as
//! base64, under `procwatch.raw` (`raw.executable`, and `raw.args` as
//! `{index, base64}` items; see `raw_obj`).
//!
//! Every document is written by the JSONL sink's encoder (jsonl/encode.rs),
//! so strings are escaped the same terminal-safe way.

mod exec;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::time::SystemTime;

use crate::event::{Counters, Event, ExitEvent, HashInfo, Hijack, LossInfo, StartInfo};
use crate::sink::jsonl::encode::{Obj, push_array, push_str};
use crate::sink::time::push_rfc3339;

use super::{Sink, SinkOptions};

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "8.11.0";

/// What every document says about the machine: taken from the start event
/// (host name, boot id) and `/etc/machine-id` (host id).
#[derive(Debug, Clone, Default)]
pub(crate) struct Host {
    pub name: Option<String>,
    pub id: Option<String>,
    pub boot_id: Option<String>,
}

impl Host {
    /// The machine id of systemd hosts (`host.id`, as Elastic Agent and
    /// Filebeat report it); `None` when there is none.
    fn machine_id() -> Option<String> {
        if cfg!(windows) {
            return None;
        }
        let id = std::fs::read_to_string("/etc/machine-id").ok()?;
        let id = id.trim();
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    }
}

/// Writes one ECS document per event, each followed by `\n`.
pub struct EcsSink {
    out: Box<dyn Write + Send>,
    /// One document, reused: no allocation per event.
    line: String,
    host: Host,
    caps: exec::CapNames,
}

/// The ECS sink of the registry (see [`super::Build`]): every field
/// always, so it takes no option.
pub fn build(
    out: Box<dyn Write + Send>,
    _header_needed: bool,
    _opts: SinkOptions,
) -> Box<dyn Sink> {
    Box::new(EcsSink {
        out,
        line: String::with_capacity(4096),
        host: Host {
            id: Host::machine_id(),
            ..Host::default()
        },
        caps: exec::CapNames::default(),
    })
}

impl Sink for EcsSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        if let Event::Start(s) = ev {
            let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            self.host.name = nonempty(&s.hostname);
            self.host.boot_id = nonempty(&s.boot_id);
        }
        self.line.clear();
        write_document(&mut self.line, ev, &self.host, &mut self.caps);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes one document for any event (without the newline) into `out`.
fn write_document(out: &mut String, ev: &Event, host: &Host, caps: &mut exec::CapNames) {
    match ev {
        Event::Exec(e) => exec::write_exec(out, e, host, caps),
        Event::Start(s) => write_start(out, s, host),
        Event::Exit(x) => write_exit(out, x, host),
        Event::Loss(l) => write_loss(out, l, host),
        Event::Hash(h) => write_hash(out, h, host),
        Event::Stop(s) => write_counters(out, s.time, "stop", &s.counters, Some(&s.reason), host),
        Event::Stats(s) => write_counters(out, s.time, "stats", &s.counters, None, host),
    }
}

/// Writes `key` as a quoted RFC 3339 time.
pub(crate) fn time(o: &mut Obj, key: &'static str, t: SystemTime) {
    let buf = o.key(key);
    buf.push('"');
    push_rfc3339(buf, t);
    buf.push('"');
}

/// Appends `["a"]`: the one-element keyword arrays of `event.category`
/// and `event.type`.
fn one(out: &mut String, s: &str) {
    out.push('[');
    push_str(out, s);
    out.push(']');
}

/// The members every document starts with: `@timestamp`, `ecs`, `event`
/// and `host`. `category`/`type` are omitted for the documents about
/// procwatch itself, which fit no ECS category.
fn head(o: &mut Obj, t: SystemTime, kind: &str, process: Option<&str>, action: &str, host: &Host) {
    time(o, "@timestamp", t);
    let mut e = Obj::open(o.key("ecs"));
    e.str("version", ECS_VERSION);
    e.close();
    let mut e = Obj::open(o.key("event"));
    e.str("kind", kind);
    if let Some(ty) = process {
        one(e.key("category"), "process");
        one(e.key("type"), ty);
    }
    e.str("action", action);
    e.str("module", "procwatch");
    e.str("dataset", "procwatch.process");
    e.close();
    let mut h = Obj::open(o.key("host"));
    h.opt_str("name", host.name.as_deref());
    h.opt_str("id", host.id.as_deref());
    let mut b = Obj::open(h.key("boot"));
    b.opt_str("id", host.boot_id.as_deref());
    b.close();
    let mut os = Obj::open(h.key("os"));
    os.str("type", if cfg!(windows) { "windows" } else { "linux" });
    os.close();
    h.close();
}

fn write_start(out: &mut String, s: &StartInfo, host: &Host) {
    let mut o = Obj::open(out);
    head(&mut o, s.time, "state", None, "monitor-start", host);
    let mut p = Obj::open(o.key("procwatch"));
    p.str("source", &s.source);
    p.str("attach", &s.attach);
    p.str("version", &s.version);
    p.num("pid", s.pid);
    p.str("guarantees", &s.guarantees);
    p.str("can_miss", &s.can_miss);
    p.bool("short_lived_complete", s.coverage.short_lived_complete);
    p.opt_num("poll_interval_ms", s.coverage.poll_interval_ms);
    push_array(
        p.key("unavailable"),
        s.coverage.unavailable.iter(),
        |b, f| push_str(b, f),
    );
    p.bool("continuation", s.continuation);
    p.close();
    o.close();
}

fn write_exit(out: &mut String, x: &ExitEvent, host: &Host) {
    let mut o = Obj::open(out);
    head(&mut o, x.time, "event", Some("end"), "exit", host);
    let mut p = Obj::open(o.key("process"));
    p.num("pid", x.pid);
    p.opt_str("entity_id", x.exec_id.as_deref());
    p.opt_str(
        "name",
        x.comm.as_deref().map(String::from_utf8_lossy).as_deref(),
    );
    time(&mut p, "end", x.time);
    p.opt_num("exit_code", x.exit_code);
    let mut pp = Obj::open(p.key("parent"));
    pp.num("pid", x.ppid);
    pp.close();
    p.close();
    let mut w = Obj::open(o.key("procwatch"));
    w.opt_num("signal", x.signal);
    w.bool("core_dumped", x.core_dumped);
    // Whole microseconds: one integer type in every document.
    w.opt_num("lifetime_us", x.lifetime.map(|d| d.as_micros() as u64));
    raw_obj(&mut w, &[("name", x.comm.as_deref())], &[], &[]);
    w.close();
    o.close();
}

fn write_loss(out: &mut String, l: &LossInfo, host: &Host) {
    let mut o = Obj::open(out);
    head(&mut o, l.time, "metric", None, "loss", host);
    let mut p = Obj::open(o.key("procwatch"));
    let mut lo = Obj::open(p.key("loss"));
    lo.str("place", l.place.as_str());
    lo.num("dropped", l.dropped);
    lo.num("total", l.total);
    lo.str("meaning", &l.place.describe(l.dropped));
    lo.close();
    p.close();
    o.close();
}

fn write_hash(out: &mut String, h: &HashInfo, host: &Host) {
    let mut o = Obj::open(out);
    head(&mut o, h.time, "event", Some("info"), "hash", host);
    let mut p = Obj::open(o.key("process"));
    p.num("pid", h.pid);
    p.str("entity_id", &h.exec_id);
    let mut hash = Obj::open(p.key("hash"));
    hash.opt_str("sha256", h.exe_sha256.as_deref());
    hash.close();
    p.close();
    let mut w = Obj::open(o.key("procwatch"));
    w.opt_str("hash_reason", h.reason.as_deref());
    w.close();
    o.close();
}

/// A `stop` (state) or `stats` (metric) document: the same counters.
fn write_counters(
    out: &mut String,
    t: SystemTime,
    which: &str,
    c: &Counters,
    reason: Option<&str>,
    host: &Host,
) {
    let mut o = Obj::open(out);
    let (kind, action) = match which {
        "stop" => ("state", "monitor-stop"),
        _ => ("metric", "stats"),
    };
    head(&mut o, t, kind, None, action, host);
    let mut p = Obj::open(o.key("procwatch"));
    if let Some(r) = reason {
        p.str("stop_reason", r);
    }
    let mut co = Obj::open(p.key("counters"));
    co.num("seen", c.seen);
    co.num("emitted", c.emitted);
    co.num("dropped", c.dropped);
    co.num("truncated", c.truncated);
    co.num("received", c.received);
    co.num("queue_dropped", c.queue_dropped);
    co.num("aux_dropped", c.aux_dropped);
    co.num("written", c.written);
    co.num("filtered", c.filtered);
    co.num("netlink_enobufs", c.netlink_enobufs);
    co.num("proc_read_failures", c.proc_read_failures);
    co.num("too_late", c.too_late);
    co.num("write_errors", c.write_errors);
    co.num("output_dropped", c.output_dropped);
    co.close();
    p.close();
    o.close();
}

/// Writes `procwatch.raw`: for each byte string that is not UTF-8, its
/// exact bytes in base64 under the name of the field holding its lossy
/// form, and under `args` one `{index, base64}` per such argv element. An
/// array rather than an object keyed by index, so a hostile argv of
/// thousands of elements cannot add thousands of fields to an index's
/// mapping. The same for `hijackable`: `{index, path?, writable?}`. An
/// empty object when every string was UTF-8.
pub(crate) fn raw_obj(
    o: &mut Obj,
    fields: &[(&'static str, Option<&[u8]>)],
    argv: &[Vec<u8>],
    hijackable: &[Hijack],
) {
    let mut r = Obj::open(o.key("raw"));
    for (name, bytes) in fields {
        if let Some(b) = bytes.filter(|b| std::str::from_utf8(b).is_err()) {
            base64_str(r.key(name), b);
        }
    }
    let mut bad = argv
        .iter()
        .enumerate()
        .filter(|(_, a)| std::str::from_utf8(a).is_err())
        .peekable();
    if bad.peek().is_some() {
        push_array(r.key("args"), bad, |buf, (i, a)| {
            let mut ao = Obj::open(buf);
            ao.num("index", i);
            base64_str(ao.key("base64"), a);
            ao.close();
        });
    }
    let not_utf8 = |b: &[u8]| std::str::from_utf8(b).is_err();
    let mut bad = hijackable
        .iter()
        .enumerate()
        .filter(|(_, h)| not_utf8(&h.path) || not_utf8(&h.writable))
        .peekable();
    if bad.peek().is_some() {
        push_array(r.key("hijackable"), bad, |buf, (i, h)| {
            let mut ho = Obj::open(buf);
            ho.num("index", i);
            if not_utf8(&h.path) {
                base64_str(ho.key("path"), &h.path);
            }
            if not_utf8(&h.writable) {
                base64_str(ho.key("writable"), &h.writable);
            }
            ho.close();
        });
    }
    r.close();
}

/// Appends `b` as a quoted standard base64 string.
pub(crate) fn base64_str(out: &mut String, b: &[u8]) {
    use base64::Engine as _;
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(b, out);
    out.push('"');
}
