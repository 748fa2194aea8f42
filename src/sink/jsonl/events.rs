//! The lines other than exec: start, exit, loss, hash, stats and stop.
//! Each has every key on every line (`host` too), null when unknown.

use std::time::SystemTime;

use crate::event::{Counters, ExitEvent, HashInfo, LossInfo, StartInfo};

use super::cache::{RenderCache, TimeCache, push_str_array, time};
use super::encode::Obj;

// The lines other than exec list their members in alphabetical order, a
// stable order consumers must still not depend on.

pub(super) fn write_start(out: &mut String, s: &StartInfo, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.str("attach", &s.attach);
    o.str("boot_id", &s.boot_id);
    o.str("can_miss", &s.can_miss);
    o.bool("continuation", s.continuation);
    o.str("event", "start");
    o.str("guarantees", &s.guarantees);
    o.str("host", &s.hostname);
    o.str("hostname", &s.hostname);
    o.num("pid", s.pid);
    o.opt_num("poll_interval_ms", s.coverage.poll_interval_ms);
    o.num("rules_loaded", s.rules.loaded);
    super::encode::push_array(o.key("rules_skipped"), &s.rules.skipped, |buf, r| {
        let mut ro = Obj::open(buf);
        ro.str("file", &r.file);
        ro.str("reason", &r.reason);
        ro.close();
    });
    o.bool("short_lived_complete", s.coverage.short_lived_complete);
    o.str("source", &s.source);
    time(&mut o, "time", s.time, cache);
    push_str_array(o.key("unavailable"), s.coverage.unavailable.iter().copied());
    o.str("version", &s.version);
    o.close();
}

pub(super) fn write_exit(out: &mut String, x: &ExitEvent, host: &str, cache: &mut RenderCache) {
    cache.raw.clear();
    let mut o = Obj::open(out);
    o.opt_text("", "comm", x.comm.as_deref(), &mut cache.raw);
    o.bool("core_dumped", x.core_dumped);
    o.str("event", "exit");
    o.opt_str("exec_id", x.exec_id.as_deref());
    o.opt_num("exit_code", x.exit_code);
    o.str("host", host);
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
    cache.raw.write(&mut o);
    o.opt_num("signal", x.signal);
    time(&mut o, "time", x.time, &mut cache.time);
    o.close();
}

pub(super) fn write_loss(out: &mut String, l: &LossInfo, host: &str, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.num("dropped", l.dropped);
    o.str("event", "loss");
    o.str("host", host);
    o.str("place", l.place.as_str());
    time(&mut o, "time", l.time, cache);
    o.num("total", l.total);
    o.close();
}

pub(super) fn write_hash(out: &mut String, h: &HashInfo, host: &str, cache: &mut TimeCache) {
    let mut o = Obj::open(out);
    o.str("event", "hash");
    o.opt_str("exe_sha256", h.exe_sha256.as_deref());
    o.str("exec_id", &h.exec_id);
    o.str("host", host);
    o.num("pid", h.pid);
    o.opt_str("reason", h.reason.as_deref());
    time(&mut o, "time", h.time, cache);
    o.close();
}

/// A `stop` or `stats` line: the same counters, the same JSON types; only
/// `stop` has a `reason`.
pub(super) fn write_counters(
    out: &mut String,
    event: &'static str,
    t: SystemTime,
    c: &Counters,
    reason: Option<&str>,
    host: &str,
    cache: &mut TimeCache,
) {
    let mut o = Obj::open(out);
    o.num("aux_dropped", c.aux_dropped);
    o.num("dropped", c.dropped);
    o.num("emitted", c.emitted);
    o.str("event", event);
    o.num("filtered", c.filtered);
    o.str("host", host);
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
