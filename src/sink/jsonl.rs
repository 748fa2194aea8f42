//! JSON Lines sink: one object per event per line, every field, lossless.
//!
//! Field names are those documented in [`crate::event`]. Every line is
//! written by the one JSON encoder, [`super::json_writer`], straight into
//! a reused buffer. An exec line lists its members in the documented order;
//! the other lines list theirs alphabetically. Consumers must not depend on
//! the order either way.
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

use std::io::{self, Write};
use std::time::SystemTime;

use crate::enrich::caps::cap_names;
use crate::enrich::id_hash::IdMap;
use crate::event::{
    Counters, Event, ExecEvent, ExitEvent, HashInfo, LossInfo, Privileges, StartInfo, WindowsToken,
};

use super::escape::{join_cmdline, join_cmdline_into, push_digits, push_rfc3339};
use super::json_writer::{Obj, push_bytes, push_hex, push_int, push_str};
use super::{Sink, escape};

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

/// Appends a capability mask as the array of its names, as in
/// `/usr/include/linux/capability.h` (unknown bits as their number).
fn push_cap_names(out: &mut String, mask: u64) {
    push_str_array(out, cap_names(mask).iter().map(|n| n.as_ref()));
}

/// Appends `["a","b",...]`.
fn push_str_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

/// Rendered pieces reused across lines. Capability-name arrays, by mask:
/// root's full set is the same on nearly every event, and rendering 40
/// names each time dominated the cost of a line. And the last parent object
/// rendered, by the parent's exec_id: a storm's execs mostly share one.
#[derive(Default)]
struct RenderCache {
    names: IdMap<u64, String>,
    parent: Option<(String, String)>,
    /// Scratch space for the command line, reused across lines.
    cmdline: String,
    time: TimeCache,
}

/// RFC 3339 times with the `YYYY-MM-DDTHH:MM:SS` part of the last second
/// kept: an exec's two stamps, and a storm's execs, mostly share it.
#[derive(Default)]
struct TimeCache {
    /// Seconds since the epoch, and that second's rendered prefix.
    second: Option<(u64, String)>,
}

impl TimeCache {
    /// Appends `t` exactly as [`push_rfc3339`] would.
    fn push(&mut self, out: &mut String, t: SystemTime) {
        let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) else {
            return push_rfc3339(out, t);
        };
        let secs = d.as_secs();
        match &self.second {
            Some((s, prefix)) if *s == secs => out.push_str(prefix),
            _ => {
                let start = out.len();
                push_rfc3339(out, t);
                // "…SS.ffffffZ": the prefix is all but the last 8 bytes.
                let prefix = out[start..out.len() - 8].to_owned();
                out.truncate(out.len() - 8);
                self.second = Some((secs, prefix));
            }
        }
        out.push('.');
        push_digits(out, d.subsec_micros(), 6);
        out.push('Z');
    }
}

impl RenderCache {
    const MAX: usize = 256;

    fn names(&mut self, mask: u64) -> &str {
        if self.names.len() >= Self::MAX && !self.names.contains_key(&mask) {
            self.names.clear();
        }
        self.names.entry(mask).or_insert_with(|| {
            let mut json = String::new();
            push_cap_names(&mut json, mask);
            json
        })
    }
}

/// The fields enrichment adds: parent, ancestry, privilege change,
/// hijackable findings, the exe's hash and identity.
fn write_insight(o: &mut Obj, e: &ExecEvent, cache: &mut RenderCache) {
    match &e.parent {
        Some(p) => {
            let memo = &mut cache.parent;
            match (&p.exec_id, memo.as_ref()) {
                (Some(id), Some((key, json))) if id == key => o.raw("parent", json),
                _ => {
                    let mut json = String::new();
                    let mut po = Obj::open(&mut json);
                    po.num("pid", p.pid);
                    po.opt_str("exec_id", p.exec_id.as_deref());
                    po.opt_bytes("exe", p.exe.as_deref());
                    write_argv(&mut po, "argv", p.argv.as_deref());
                    po.opt_str("cmdline", p.argv.as_deref().map(join_cmdline).as_deref());
                    po.opt_str("user", p.user.as_deref());
                    po.opt_num("euid", p.euid);
                    po.close();
                    o.raw("parent", &json);
                    *memo = p.exec_id.clone().map(|id| (id, json));
                }
            }
        }
        None => o.null("parent"),
    }
    let buf = o.key("ancestors");
    buf.push('[');
    for (i, a) in e.ancestors.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        match &a.exe {
            Some(exe) => push_bytes(buf, exe),
            None => buf.push_str("null"),
        }
    }
    buf.push(']');
    o.opt_str("exe_sha256", e.exe_sha256.as_deref());
    match e.exe_dev_ino {
        Some((dev, ino)) => {
            let mut io = Obj::open(o.key("exe_inode"));
            let buf = io.key("dev");
            buf.push('"');
            push_dev(buf, dev);
            buf.push('"');
            io.num("ino", ino);
            io.close();
        }
        None => o.null("exe_inode"),
    }
    match e.pre_exec {
        Some(pre) => {
            let mut po = Obj::open(o.key("pre_exec"));
            po.num("uid", pre.uid);
            po.num("euid", pre.euid);
            // A hex mask, like caps_raw: usually the same set as after the
            // exec, and 40 names again would add ~800 bytes to every line.
            let buf = po.key("caps_effective");
            buf.push('"');
            push_hex(buf, pre.caps_effective, 16);
            buf.push('"');
            po.close();
        }
        None => o.null("pre_exec"),
    }
    match &e.privilege_change {
        Some(c) => {
            let mut co = Obj::open(o.key("privilege_change"));
            co.str("cause", c.cause.as_str());
            co.num("from_euid", c.from_euid);
            co.num("to_euid", c.to_euid);
            co.raw("gained_caps", cache.names(c.gained_caps));
            co.opt_bytes("launcher", c.launcher.as_deref());
            co.close();
        }
        None => o.null("privilege_change"),
    }
    if e.hijackable.is_empty() {
        o.null("hijackable");
    } else {
        let buf = o.key("hijackable");
        buf.push('[');
        for (i, h) in e.hijackable.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            let mut ho = Obj::open(buf);
            ho.bytes("path", &h.path);
            ho.str("role", h.role.as_str());
            ho.bytes("writable", &h.writable);
            let w = ho.key("writers");
            w.push('[');
            for (j, who) in h.writers.iter().enumerate() {
                if j > 0 {
                    w.push(',');
                }
                push_str(w, who);
            }
            w.push(']');
            ho.close();
        }
        buf.push(']');
    }
}

/// `major:minor` of a Linux `dev_t` in glibc's encoding (what `stat(2)`
/// reports); spelled out because libc has no `major` on Windows builds.
fn push_dev(out: &mut String, dev: u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x00ff);
    push_int(out, major);
    out.push(':');
    push_int(out, minor);
}

/// Writes a byte-string array (argv), or null.
fn write_argv(o: &mut Obj, key: &'static str, argv: Option<&[Vec<u8>]>) {
    match argv {
        Some(argv) => {
            let buf = o.key(key);
            buf.push('[');
            for (i, a) in argv.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                push_bytes(buf, a);
            }
            buf.push(']');
        }
        None => o.null(key),
    }
}

/// The Linux privilege keys, written as null when there are none.
const LINUX_PRIVILEGE_KEYS: [&str; 15] = [
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "login_uid",
    "session_id",
    "caps",
    "caps_raw",
    "secureexec",
    "file",
    "privilege_raised",
];

/// The `token` object of a Windows exec: every privilege with its four
/// states and raw attributes, integrity, elevation, session and SID. The
/// owner (`DOMAIN\user`) is the top-level `user`. Parts that could not be
/// read are null and listed in `incomplete` as `token.<name>`.
fn write_token(mut t: Obj<'_>, token: &WindowsToken) {
    match &token.privileges {
        Some(list) => {
            let buf = t.key("privileges");
            buf.push('[');
            for (i, p) in list.iter().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                let mut po = Obj::open(buf);
                po.str("name", &p.name);
                po.bool("enabled", p.enabled());
                po.bool("enabled_by_default", p.enabled_by_default());
                po.bool("removed", p.removed());
                po.bool("used_for_access", p.used_for_access());
                po.str("attributes", &format!("0x{:08x}", p.attributes));
                po.close();
            }
            buf.push(']');
        }
        None => t.null("privileges"),
    }
    t.opt_str("integrity", token.integrity.map(|i| i.name()).as_deref());
    t.opt_num("integrity_rid", token.integrity.map(|i| i.rid()));
    t.opt_str("elevation_type", token.elevation.map(|e| e.as_str()));
    t.opt_num("session_id", token.session_id);
    t.opt_str("user_sid", token.user_sid.as_deref());
    t.close();
}

/// Writes one exec line (without the newline) into `out`.
fn write_exec(out: &mut String, e: &ExecEvent, cache: &mut RenderCache) {
    let mut o = Obj::open(out);
    o.str("event", "exec");
    let buf = o.key("time");
    buf.push('"');
    cache.time.push(buf, e.time);
    buf.push('"');
    o.num("pid", e.pid);
    o.opt_num("tid", e.tid);
    o.opt_num("exec_tid", e.exec_tid);
    o.opt_num("ppid", e.ppid);
    o.str("exec_id", &e.exec_id);
    match e.process_start {
        Some(t) => {
            let buf = o.key("process_start");
            buf.push('"');
            cache.time.push(buf, t);
            buf.push('"');
        }
        None => o.null("process_start"),
    }
    o.opt_bytes("exe", e.exe.as_deref());
    o.bool("exe_truncated", e.exe_truncated);
    o.opt_bytes("filename", e.filename.as_deref());
    o.opt_bytes("interpreter", e.interpreter.as_deref());
    write_argv(&mut o, "argv", e.argv.as_deref());
    o.opt_bytes("command_line", e.command_line.as_deref());
    match (&e.argv, &e.command_line) {
        (Some(argv), _) => {
            cache.cmdline.clear();
            join_cmdline_into(&mut cache.cmdline, argv);
            o.str("cmdline", &cache.cmdline);
        }
        (None, Some(line)) => o.str("cmdline", &escape::display_bytes(line)),
        (None, None) => o.null("cmdline"),
    }
    o.bool("argv_truncated", e.argv_truncated);
    o.opt_num("argv_size", e.argv_size);
    o.opt_bytes("cwd", e.cwd.as_deref());
    o.opt_bytes("comm", e.comm.as_deref());
    o.opt_str("user", e.user.as_deref());
    o.opt_str("group", e.group.as_deref());
    o.opt_str("login_user", e.login_user.as_deref());
    let buf = o.key("incomplete");
    buf.push('[');
    for (i, inc) in e.incomplete.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_str(buf, inc.field);
    }
    buf.push(']');
    let mut reasons = Obj::open(o.key("incomplete_reasons"));
    for inc in &e.incomplete {
        reasons.str(inc.field, &inc.reason);
    }
    reasons.close();
    write_insight(&mut o, e, cache);
    match &e.privileges {
        Some(Privileges::Linux {
            creds,
            caps,
            secureexec,
            file,
            raised,
        }) => {
            o.num("uid", creds.uid);
            o.num("euid", creds.euid);
            o.num("suid", creds.suid);
            o.num("fsuid", creds.fsuid);
            o.num("gid", creds.gid);
            o.num("egid", creds.egid);
            o.num("sgid", creds.sgid);
            o.num("fsgid", creds.fsgid);
            o.opt_num("login_uid", creds.login_uid);
            o.opt_num("session_id", creds.session_id);
            let sets = [
                ("effective", caps.effective),
                ("permitted", caps.permitted),
                ("inheritable", caps.inheritable),
                ("ambient", caps.ambient),
            ];
            let mut c = Obj::open(o.key("caps"));
            for (name, mask) in sets {
                c.raw(name, cache.names(mask));
            }
            c.close();
            // Raw masks as fixed-width hex, like /proc/<pid>/status.
            let mut c = Obj::open(o.key("caps_raw"));
            for (name, mask) in sets {
                let buf = c.key(name);
                buf.push('"');
                push_hex(buf, mask, 16);
                buf.push('"');
            }
            c.close();
            o.opt_bool("secureexec", *secureexec);
            match file {
                // Permission and set-id bits only (the file type is always
                // "regular" for an exec), as a zero-padded octal string like
                // `stat -c %a` with a leading 0.
                Some(f) => {
                    let mut fo = Obj::open(o.key("file"));
                    let buf = fo.key("mode");
                    let m = f.mode & 0o7777;
                    buf.push_str("\"0");
                    for shift in [9, 6, 3, 0] {
                        buf.push(char::from(b'0' + ((m >> shift) & 7) as u8));
                    }
                    buf.push('"');
                    fo.num("uid", f.uid);
                    fo.num("gid", f.gid);
                    fo.close();
                }
                None => o.null("file"),
            }
            o.opt_str("privilege_raised", raised.map(|r| r.as_str()));
        }
        // Windows: the Linux fields are null, the token has its own object.
        // The source could not read them (or Windows, whose token has its
        // own object below): every Linux privilege field is null.
        Some(Privileges::Windows(_)) | None => {
            for key in LINUX_PRIVILEGE_KEYS {
                o.null(key);
            }
        }
    }
    // Every exec line has the same keys: `token` is null off Windows.
    match &e.privileges {
        Some(Privileges::Windows(token)) => write_token(Obj::open(o.key("token")), token),
        _ => o.null("token"),
    }
    o.close();
}

/// Writes `key` as a quoted RFC 3339 time.
fn time(o: &mut Obj, key: &'static str, t: SystemTime, cache: &mut TimeCache) {
    let buf = o.key(key);
    buf.push('"');
    cache.push(buf, t);
    buf.push('"');
}

// The lines other than exec list their members in alphabetical order, a
// stable order consumers must still not depend on.

fn write_start(out: &mut String, s: &StartInfo, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.str("attach", &s.attach);
    o.str("boot_id", &s.boot_id);
    o.str("can_miss", &s.can_miss);
    o.bool("continuation", s.continuation);
    o.str("event", "start");
    o.str("guarantees", &s.guarantees);
    o.str("hostname", &s.hostname);
    o.num("pid", s.pid);
    o.opt_num("poll_interval_ms", s.coverage.poll_interval_ms);
    o.bool("short_lived_complete", s.coverage.short_lived_complete);
    o.str("source", &s.source);
    time(&mut o, "time", s.time, cache);
    push_str_array(o.key("unavailable"), s.coverage.unavailable.iter().copied());
    o.str("version", &s.version);
    o.close();
}

fn write_exit(out: &mut String, x: &ExitEvent, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.opt_bytes("comm", x.comm.as_deref());
    o.bool("core_dumped", x.core_dumped);
    o.str("event", "exit");
    o.opt_str("exec_id", x.exec_id.as_deref());
    o.opt_num("exit_code", x.exit_code);
    // Milliseconds as a float, spelled as serde_json spells an f64 (ryu,
    // shortest round-trip form; never non-finite for a `Duration`).
    match x.lifetime {
        Some(d) => o.raw(
            "lifetime_ms",
            ryu::Buffer::new().format_finite(d.as_secs_f64() * 1000.0),
        ),
        None => o.null("lifetime_ms"),
    }
    o.num("pid", x.pid);
    o.num("ppid", x.ppid);
    o.opt_num("signal", x.signal);
    time(&mut o, "time", x.time, cache);
    o.close();
}

fn write_loss(out: &mut String, l: &LossInfo, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.num("dropped", l.dropped);
    o.str("event", "loss");
    o.str("place", l.place.as_str());
    time(&mut o, "time", l.time, cache);
    o.num("total", l.total);
    o.close();
}

fn write_hash(out: &mut String, h: &HashInfo, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.str("event", "hash");
    o.opt_str("exe_sha256", h.exe_sha256.as_deref());
    o.str("exec_id", &h.exec_id);
    o.num("pid", h.pid);
    o.opt_str("reason", h.reason.as_deref());
    time(&mut o, "time", h.time, cache);
    o.close();
}

/// A `stop` or `stats` line: the same counters, the same JSON types; only
/// `stop` has a `reason`.
fn write_counters(
    out: &mut String,
    event: &'static str,
    t: SystemTime,
    c: &Counters,
    reason: Option<&str>,
    cache: &mut TimeCache,
) {
    let mut o = Obj::open(out);
    o.num("aux_dropped", c.aux_dropped);
    o.num("dropped", c.dropped);
    o.num("emitted", c.emitted);
    o.str("event", event);
    o.num("filtered", c.filtered);
    o.num("netlink_enobufs", c.netlink_enobufs);
    o.num("output_dropped", c.output_dropped);
    o.num("proc_read_failures", c.proc_read_failures);
    o.num("queue_dropped", c.queue_dropped);
    if let Some(r) = reason {
        o.str("reason", r);
    }
    o.num("received", c.received);
    o.num("seen", c.seen);
    time(&mut o, "time", t, cache);
    o.num("too_late", c.too_late);
    o.num("truncated", c.truncated);
    o.num("write_errors", c.write_errors);
    o.num("written", c.written);
    o.close();
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

/// One serialized line, including the trailing `\n`.
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

#[cfg(test)]
mod time_cache_tests {
    use super::{TimeCache, push_rfc3339};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn cached_seconds_render_exactly_like_the_formatter() {
        let mut cache = TimeCache::default();
        let base = UNIX_EPOCH + Duration::new(1_795_670_770, 0);
        let times = [
            base + Duration::from_nanos(123_456_789),
            base + Duration::from_nanos(5_000), // same second: a cache hit
            base + Duration::from_nanos(999_999_999),
            base + Duration::new(1, 7_000), // the next second
            base - Duration::from_secs(86_400 * 365 * 30), // another day
            UNIX_EPOCH - Duration::from_micros(1), // before 1970: not cached
            UNIX_EPOCH,
        ];
        for t in times {
            let (mut got, mut want) = (String::new(), String::new());
            cache.push(&mut got, t);
            push_rfc3339(&mut want, t);
            assert_eq!(got, want, "{t:?}");
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod dev_tests {
    #[test]
    fn dev_name_agrees_with_libc() {
        for (maj, min) in [
            (0, 0),
            (8, 1),
            (259, 3),
            (0xfff, 0xff),
            (0x0001_2345, 0x00ab_cdef),
        ] {
            let dev = libc::makedev(maj, min);
            assert_eq!(
                {
                    let mut s = String::new();
                    super::push_dev(&mut s, dev);
                    s
                },
                format!("{maj}:{min}")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CapSets, FileInfo, LossPlace, PrivilegeRaise};
    use crate::sink::escape::needs_escape;
    use crate::sink::testutil::*;
    use base64::Engine as _;
    use serde_json::{Value, json};

    fn render(ev: &Event) -> (String, Value) {
        let buf = SharedBuf::default();
        let mut s = JsonlSink::new(Box::new(buf.clone()));
        s.write_event(ev).unwrap();
        s.flush().unwrap();
        let text = buf.string();
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
        let v: Value = serde_json::from_str(&text).unwrap();
        (text, v)
    }

    /// Decodes a `json_bytes` value back to bytes.
    fn bytes_of(v: &Value) -> Vec<u8> {
        match v {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Object(o) => base64::engine::general_purpose::STANDARD
                .decode(o["base64"].as_str().unwrap())
                .unwrap(),
            other => panic!("not bytes: {other:?}"),
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn start_fields() {
        let (_, v) = render(&Event::Start(start_info()));
        assert_eq!(
            v,
            json!({
                "event": "start",
                "time": "2026-11-26T05:26:10.123456Z",
                "source": "ebpf",
                "attach": "tp_btf/sched_process_exec",
                "version": "0.1.0",
                "hostname": "host1",
                "boot_id": "0f0e-boot",
                "guarantees": "every exec after start",
                "can_miss": "execs when the ring buffer is full (reported as loss)",
                "pid": 99,
                "short_lived_complete": false,
                "poll_interval_ms": null,
                "unavailable": [],
                "continuation": false,
            })
        );
    }

    #[test]
    fn exec_fields() {
        let (_, v) = render(&Event::Exec(Box::new(exec_event())));
        // Fields beyond the macro's recursion limit, checked on their own.
        assert_eq!(v["command_line"], Value::Null);
        assert_eq!(v["incomplete"], json!([]));
        assert_eq!(v["incomplete_reasons"], json!({}));
        let mut v = v;
        for k in [
            "ancestors",
            "exe_inode",
            "exe_sha256",
            "hijackable",
            "parent",
            "privilege_change",
        ] {
            assert!(
                v[k].is_null() || v[k] == json!([]),
                "{k}: nothing enriched yet"
            );
        }
        assert_eq!(v["token"], Value::Null);
        for k in [
            "token",
            "command_line",
            "incomplete",
            "incomplete_reasons",
            "ancestors",
            "exe_inode",
            "exe_sha256",
            "hijackable",
            "parent",
            "pre_exec",
            "privilege_change",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(
            v,
            json!({
                "event": "exec",
                "time": "2026-11-26T05:26:10.123456Z",
                "pid": 4242,
                "tid": 4242,
                "exec_tid": 4243,
                "ppid": 1000,
                "exec_id": "4242:123456789",
                "process_start": "2026-11-26T05:26:08.123456Z",
                "exe": "/usr/bin/ls",
                "exe_truncated": false,
                "filename": "/bin/ls",
                "interpreter": null,
                "argv": ["ls", "-la", "/tmp"],
                "cmdline": "ls -la /tmp",
                "argv_truncated": false,
                "argv_size": 12,
                "cwd": "/home/alice",
                "comm": "ls",
                "uid": 1000, "euid": 1001, "suid": 1002, "fsuid": 1003,
                "gid": 100, "egid": 101, "sgid": 102, "fsgid": 103,
                "user": "alice",
                "group": "users",
                "login_uid": 1000,
                "login_user": "alice",
                "session_id": 7,
                "caps": {"effective": [], "permitted": [], "inheritable": [], "ambient": []},
                "caps_raw": {
                    "effective": "0x0000000000000000",
                    "permitted": "0x0000000000000000",
                    "inheritable": "0x0000000000000000",
                    "ambient": "0x0000000000000000",
                },
                "secureexec": false,
                "file": {"mode": "00755", "uid": 0, "gid": 0},
                "privilege_raised": null,
            })
        );
    }

    #[test]
    fn exec_privileged_and_optional_fields() {
        let mut ev = exec_event();
        ev.interpreter = Some(b"/bin/sh".to_vec());
        ev.cwd = None;
        ev.user = None;
        ev.group = None;
        ev.login_user = None;
        ev.privileges = Some(Privileges::Linux {
            creds: crate::event::Credentials {
                login_uid: None,
                session_id: None,
                ..Default::default()
            },
            caps: CapSets {
                effective: 1 | 1 << 21,
                permitted: (1 << 41) - 1,
                inheritable: 0,
                ambient: 1 << 63,
            },
            secureexec: None,
            file: Some(FileInfo {
                mode: 0o104755,
                uid: 0,
                gid: 0,
            }),
            raised: Some(PrivilegeRaise::Setuid),
        });
        let (_, v) = render(&Event::Exec(Box::new(ev)));
        assert_eq!(v["interpreter"], "/bin/sh");
        assert_eq!(v["cwd"], Value::Null);
        assert_eq!(v["user"], Value::Null);
        assert_eq!(v["group"], Value::Null);
        assert_eq!(v["login_user"], Value::Null);
        assert_eq!(v["login_uid"], Value::Null);
        assert_eq!(v["session_id"], Value::Null);
        assert_eq!(v["secureexec"], Value::Null);
        assert_eq!(
            v["caps"]["effective"],
            json!(["CAP_CHOWN", "CAP_SYS_ADMIN"])
        );
        assert_eq!(v["caps"]["permitted"].as_array().unwrap().len(), 41);
        assert_eq!(v["caps"]["permitted"][40], "CAP_CHECKPOINT_RESTORE");
        assert_eq!(v["caps"]["ambient"], json!(["63"]));
        assert_eq!(v["caps_raw"]["effective"], "0x0000000000200001");
        assert_eq!(v["caps_raw"]["permitted"], "0x000001ffffffffff");
        assert_eq!(v["caps_raw"]["ambient"], "0x8000000000000000");
        assert_eq!(v["file"], json!({"mode": "04755", "uid": 0, "gid": 0}));
        assert_eq!(v["privilege_raised"], "setuid");

        for (r, s) in [
            (PrivilegeRaise::Setgid, "setgid"),
            (PrivilegeRaise::FileCaps, "file_caps"),
        ] {
            let mut ev = exec_event();
            let Some(Privileges::Linux { raised, file, .. }) = &mut ev.privileges else {
                unreachable!()
            };
            *raised = Some(r);
            *file = None;
            let (_, v) = render(&Event::Exec(Box::new(ev)));
            assert_eq!(v["privilege_raised"], s);
            assert_eq!(v["file"], Value::Null);
        }
    }

    #[test]
    fn insight_fields() {
        use crate::event::{ChangeCause, Hijack, HijackRole, ParentInfo, PrivilegeChange};
        let mut ev = exec_event();
        ev.parent = Some(ParentInfo {
            pid: 1000,
            image: std::sync::Arc::new(crate::event::ProcessImage {
                exec_id: Some("1000:5".into()),
                exe: Some(b"/usr/sbin/cron".to_vec()),
                argv: Some(vec![b"/usr/sbin/cron".to_vec(), b"-f".to_vec()]),
                user: Some("root".into()),
                euid: Some(0),
                caps_effective: None,
            }),
        });
        ev.ancestors = [&b"/usr/sbin/cron"[..], b"/sbin/init"]
            .map(|exe| {
                std::sync::Arc::new(crate::event::ProcessImage {
                    exe: Some(exe.to_vec()),
                    ..Default::default()
                })
            })
            .to_vec();
        ev.exe_sha256 = Some("ab".repeat(32));
        ev.exe_dev_ino = Some((0x801, 42)); // makedev(8, 1)
        ev.privilege_change = Some(PrivilegeChange {
            cause: ChangeCause::Launcher,
            from_euid: 1000,
            from_caps: 0,
            to_euid: 0,
            gained_caps: 1 << 13,
            launcher: Some(b"/usr/bin/sudo".to_vec()),
        });
        ev.hijackable = vec![Hijack {
            path: b"/opt/job.sh".to_vec(),
            role: HijackRole::Script,
            writable: b"/opt".to_vec(),
            writers: vec!["user alice".into(), "others".into()],
        }];
        let (_, v) = render(&Event::Exec(Box::new(ev)));
        assert_eq!(v["parent"]["pid"], 1000);
        assert_eq!(v["parent"]["cmdline"], "/usr/sbin/cron -f");
        assert_eq!(v["parent"]["user"], "root");
        assert_eq!(v["ancestors"], json!(["/usr/sbin/cron", "/sbin/init"]));
        assert_eq!(v["exe_inode"], json!({"dev": "8:1", "ino": 42}));
        assert_eq!(v["privilege_change"]["cause"], "launcher");
        assert_eq!(v["privilege_change"]["gained_caps"], json!(["CAP_NET_RAW"]));
        assert_eq!(v["privilege_change"]["launcher"], "/usr/bin/sudo");
        assert_eq!(
            v["hijackable"],
            json!([{"path": "/opt/job.sh", "role": "script", "writable": "/opt", "writers": ["user alice", "others"]}])
        );
    }

    #[test]
    fn every_exec_has_the_same_keys() {
        let (_, a) = render(&Event::Exec(Box::new(exec_event())));
        let (_, b) = render(&Event::Exec(Box::new(hostile_exec())));
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(keys(&a).len(), 47);
        // A source that could not read anything still gives every key, null.
        let mut bare = ExecEvent::new(t0(), 7, Some(1), "7:1".into());
        bare.mark_incomplete("argv", "process exited before it was read");
        bare.mark_incomplete("caps", "process exited before it was read");
        let (_, c) = render(&Event::Exec(Box::new(bare)));
        assert_eq!(keys(&a), keys(&c));
        for k in [
            "argv",
            "cmdline",
            "exe",
            "uid",
            "euid",
            "caps",
            "user",
            "process_start",
        ] {
            assert_eq!(c[k], Value::Null, "{k}");
        }
        assert_eq!(c["incomplete"], json!(["argv", "caps"]));
        assert_eq!(
            c["incomplete_reasons"]["argv"],
            "process exited before it was read"
        );
    }

    #[test]
    fn hostile_exec_round_trips_and_is_terminal_safe() {
        let ev = hostile_exec();
        let (text, v) = render(&Event::Exec(Box::new(ev.clone())));
        let argv = v["argv"].as_array().unwrap();
        let ev_argv = ev.argv.clone().unwrap();
        assert_eq!(argv.len(), ev_argv.len());
        for (got, want) in argv.iter().zip(&ev_argv) {
            assert_eq!(&bytes_of(got), want);
        }
        // The non-UTF-8 argument is an object with base64 and lossy text.
        assert!(argv[2].is_object());
        assert_eq!(
            argv[2]["lossy"],
            String::from_utf8_lossy(&ev_argv[2]).as_ref()
        );
        assert!(argv[4].is_string());
        assert_eq!(Some(bytes_of(&v["exe"])), ev.exe);
        assert_eq!(Some(bytes_of(&v["filename"])), ev.filename);
        assert_eq!(bytes_of(&v["interpreter"]), ev.interpreter.clone().unwrap());
        assert_eq!(bytes_of(&v["cwd"]), ev.cwd.clone().unwrap());
        assert_eq!(Some(bytes_of(&v["comm"])), ev.comm);
        assert_eq!(v["user"], "bob\x1b[0m");
        assert_eq!(v["cmdline"], join_cmdline(ev.argv.as_deref().unwrap()));
        // Nothing a terminal would act on, raw.
        assert!(
            !text.chars().any(|c| c != '\n' && needs_escape(c)),
            "{text}"
        );
        assert!(text.contains("\\u202e"));
        assert!(text.contains("\\u009b"));
        assert!(text.contains("\\u007f"));
    }

    #[test]
    fn astral_unsafe_chars_are_surrogate_pairs() {
        let mut start = start_info();
        start.hostname = "a\u{e0041}b\u{2066}".to_owned();
        let (text, v) = render(&Event::Start(start));
        assert!(text.contains("\"a\\udb40\\udc41b\\u2066\""), "{text}");
        assert_eq!(v["hostname"], "a\u{e0041}b\u{2066}");
        let mut start = start_info();
        start.hostname = "plain é".to_owned();
        assert!(render(&Event::Start(start)).0.contains("\"plain é\""));
    }

    /// The lines other than exec keep their members in alphabetical order.
    #[test]
    fn other_lines_list_members_alphabetically() {
        let exit = ExitEvent {
            time: t0(),
            pid: 1,
            ppid: 2,
            exec_id: Some("1:2".into()),
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            lifetime: Some(std::time::Duration::from_micros(1500)),
            comm: Some(b"x".to_vec()),
        };
        for ev in [
            Event::Start(start_info()),
            Event::Exit(Box::new(exit)),
            Event::Loss(loss_info()),
            Event::Stop(stop_info()),
            Event::Stats(crate::event::StatsInfo {
                time: t0(),
                counters: stop_info().counters,
            }),
            Event::Hash(HashInfo {
                time: t0(),
                exec_id: "1:2".into(),
                pid: 1,
                exe_sha256: None,
                reason: Some("r".into()),
            }),
        ] {
            let (text, v) = render(&ev);
            let mut at: Vec<(usize, &str)> = keys(&v)
                .into_iter()
                .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k))
                .collect();
            at.sort_unstable();
            let order: Vec<&str> = at.iter().map(|(_, k)| *k).collect();
            assert_eq!(order, keys(&v), "{text}");
        }
    }

    #[test]
    fn exit_lifetime_is_a_float_in_milliseconds() {
        let mut exit = ExitEvent {
            time: t0(),
            pid: 1,
            ppid: 2,
            exec_id: None,
            exit_code: None,
            signal: Some(9),
            core_dumped: true,
            lifetime: Some(std::time::Duration::from_micros(1500)),
            comm: Some(b"a\xffb".to_vec()),
        };
        let (text, v) = render(&Event::Exit(Box::new(exit.clone())));
        assert!(text.contains("\"lifetime_ms\":1.5,"), "{text}");
        assert_eq!(v["comm"]["base64"], "Yf9i");
        exit.lifetime = Some(std::time::Duration::from_secs(2));
        let (text, _) = render(&Event::Exit(Box::new(exit.clone())));
        assert!(text.contains("\"lifetime_ms\":2000.0,"), "{text}");
        exit.lifetime = None;
        assert_eq!(
            render(&Event::Exit(Box::new(exit))).1["lifetime_ms"],
            Value::Null
        );
    }

    #[test]
    fn loss_fields() {
        let (_, v) = render(&Event::Loss(loss_info()));
        assert_eq!(
            v,
            json!({"event": "loss", "time": "2026-11-26T05:26:10.123456Z", "place": "kernel", "dropped": 12, "total": 40})
        );
        let mut q = loss_info();
        q.place = LossPlace::Queue;
        let (_, v) = render(&Event::Loss(q));
        assert_eq!(v["place"], "queue");
    }

    #[test]
    fn stop_fields() {
        let (_, v) = render(&Event::Stop(stop_info()));
        assert_eq!(
            v,
            json!({
                "event": "stop",
                "time": "2026-11-26T05:26:10.123456Z",
                "reason": "signal",
                "seen": 100,
                "emitted": 88,
                "dropped": 12,
                "truncated": 3,
                "received": 88,
                "queue_dropped": 5,
                "aux_dropped": 0,
                "filtered": 0,
                "written": 83,
                "netlink_enobufs": 0,
                "proc_read_failures": 0,
                "too_late": 0,
                "write_errors": 0,
                "output_dropped": 0,
            })
        );
    }

    #[test]
    fn stats_has_the_stop_counters_with_the_same_types() {
        let stop = stop_info();
        let (_, stats) = render(&Event::Stats(crate::event::StatsInfo {
            time: stop.time,
            counters: stop.counters,
        }));
        let (_, mut stop) = render(&Event::Stop(stop));
        assert_eq!(stats["event"], "stats");
        stop.as_object_mut().unwrap().remove("reason");
        stop["event"] = json!("stats");
        assert_eq!(stats, stop);
    }

    #[test]
    fn big_counters_are_exact() {
        let mut s = stop_info();
        s.counters.seen = u64::MAX;
        let (text, v) = render(&Event::Stop(s));
        assert_eq!(v["seen"].as_u64(), Some(u64::MAX));
        assert!(text.contains("18446744073709551615"));
    }

    #[test]
    fn hash_fields_keep_their_types() {
        let done = HashInfo {
            time: loss_info().time,
            exec_id: "42:7".into(),
            pid: 42,
            exe_sha256: Some("ab".repeat(32)),
            reason: None,
        };
        let (_, v) = render(&Event::Hash(done.clone()));
        assert_eq!(
            v,
            json!({"event": "hash", "time": "2026-11-26T05:26:10.123456Z", "exec_id": "42:7", "pid": 42, "exe_sha256": "ab".repeat(32), "reason": null})
        );
        // The reason may quote a user's path: escaped like any string.
        let failed = HashInfo {
            exe_sha256: None,
            reason: Some("/tmp/\u{1b}[31mx: gone".into()),
            ..done
        };
        let (text, v) = render(&Event::Hash(failed));
        assert_eq!(v["exe_sha256"], Value::Null);
        assert!(v["reason"].is_string());
        assert!(!text.contains('\u{1b}'), "{text:?}");
    }
}
