//! One RFC 5424 message per event:
//!
//! ```text
//! <PRI>1 TIMESTAMP HOSTNAME procwatch PROCID MSGID SD MSG
//! ```
//!
//! PRI is facility `daemon` with the severity of [`severity`]; TIMESTAMP
//! the event's time in UTC with microseconds; MSGID the event kind; MSG the
//! event as the chosen sink renders it (one JSON line, without its
//! newline). A message longer than the limit is cut at a character
//! boundary and says so in its structured data:
//! `[procwatch@32473 truncated="true" size="N"]`, N the MSG's full size.

use std::time::SystemTime;

use crate::event::Event;
use crate::sink::time::push_rfc3339;

/// RFC 5424 severities procwatch uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A loss: events were not delivered somewhere.
    Warning = 4,
    /// A finding: an exec that raised privileges or runs a file a non-root
    /// user can modify.
    Notice = 5,
    /// Everything else.
    Info = 6,
}

/// Facility `daemon` (3).
const FACILITY: u8 = 3;

/// SD-ID of the truncation flag: 32473 is the enterprise number RFC 5612
/// reserves for documentation, since procwatch has none of its own.
const SD_ID: &str = "procwatch@32473";

/// RFC 5424 requires receivers to accept at least this much; a smaller
/// limit could not hold a header and some of MSG.
pub const MIN_MAX: usize = 480;

/// The severity an event is sent with. Detection rules with a level of
/// their own would be mapped here.
pub fn severity(ev: &Event) -> Severity {
    match ev {
        Event::Exec(e) if e.privilege_change.is_some() || !e.hijackable.is_empty() => {
            Severity::Notice
        }
        Event::Loss(_) => Severity::Warning,
        _ => Severity::Info,
    }
}

/// MSGID: the event kind, as the JSON `event` field names it.
pub fn kind(ev: &Event) -> &'static str {
    match ev {
        Event::Start(_) => "start",
        Event::Exec(_) => "exec",
        Event::Exit(_) => "exit",
        Event::Loss(_) => "loss",
        Event::Hash(_) => "hash",
        Event::Stop(_) => "stop",
        Event::Stats(_) => "stats",
    }
}

fn time(ev: &Event) -> SystemTime {
    match ev {
        Event::Start(s) => s.time,
        Event::Exec(e) => e.time,
        Event::Exit(x) => x.time,
        Event::Loss(l) => l.time,
        Event::Hash(h) => h.time,
        Event::Stop(s) => s.time,
        Event::Stats(s) => s.time,
    }
}

/// HOSTNAME as RFC 5424 allows it: 1 to 255 printable ASCII characters,
/// else `-`. Other bytes become `_`, so a header field can never be split.
pub fn header_hostname(name: &str) -> String {
    let name: String = name
        .chars()
        .take(255)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// Writes the message for `ev` into `out` (cleared first): header, then
/// `msg` (the rendered event), at most `max` bytes in all.
pub fn render(out: &mut Vec<u8>, ev: &Event, host: &str, procid: u32, msg: &str, max: usize) {
    out.clear();
    let mut head = String::with_capacity(96);
    head.push('<');
    head.push_str(itoa::Buffer::new().format(FACILITY * 8 + severity(ev) as u8));
    head.push_str(">1 ");
    push_rfc3339(&mut head, time(ev));
    head.push(' ');
    head.push_str(host);
    head.push_str(" procwatch ");
    head.push_str(itoa::Buffer::new().format(procid));
    head.push(' ');
    head.push_str(kind(ev));
    head.push(' ');
    if head.len() + 2 + msg.len() <= max {
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"- ");
        out.extend_from_slice(msg.as_bytes());
        return;
    }
    head.push('[');
    head.push_str(SD_ID);
    head.push_str(" truncated=\"true\" size=\"");
    head.push_str(itoa::Buffer::new().format(msg.len()));
    head.push_str("\"] ");
    let mut keep = max.saturating_sub(head.len()).min(msg.len());
    while !msg.is_char_boundary(keep) {
        keep -= 1;
    }
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&msg.as_bytes()[..keep]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LossInfo;
    use crate::sink::testutil::*;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn header_fields_and_severity_by_finding() {
        let mut out = Vec::new();
        let plain = Event::Exec(Box::new(exec_event()));
        render(&mut out, &plain, "box1", 77, "{\"a\":1}", 8192);
        assert_eq!(
            text(&out),
            "<30>1 2026-11-26T05:26:10.123456Z box1 procwatch 77 exec - {\"a\":1}"
        );
        let mut raised = exec_event();
        raised.privilege_change = Some(setuid_change());
        render(&mut out, &Event::Exec(Box::new(raised)), "b", 1, "{}", 8192);
        assert!(text(&out).starts_with("<29>1 "), "{}", text(&out));
        let loss = Event::Loss(LossInfo {
            time: t0(),
            place: crate::event::LossPlace::Syslog,
            dropped: 1,
            total: 1,
        });
        render(&mut out, &loss, "b", 1, "{}", 8192);
        assert!(text(&out).starts_with("<28>1 ") && text(&out).contains(" loss - {}"));
    }

    #[test]
    fn long_messages_are_cut_at_a_character_and_flagged() {
        let mut out = Vec::new();
        let ev = Event::Exec(Box::new(exec_event()));
        let msg = format!("{{\"x\":\"{}\"}}", "é".repeat(400));
        render(&mut out, &ev, "h", 9, &msg, 600);
        assert!(out.len() <= 600 && out.len() > 590, "{}", out.len());
        let s = text(&out);
        let sd = format!(
            " exec [procwatch@32473 truncated=\"true\" size=\"{}\"] {{",
            msg.len()
        );
        assert!(s.contains(&sd), "{s}");
        assert!(msg.starts_with(s.split_once("\"] ").unwrap().1));
        // Exactly at the limit: whole, unflagged.
        render(&mut out, &ev, "h", 9, "{}", 8192);
        let fits = out.len();
        render(&mut out, &ev, "h", 9, "{}", fits);
        assert!(text(&out).ends_with(" exec - {}"));
    }

    #[test]
    fn hostname_cannot_break_the_header() {
        assert_eq!(header_hostname("a b\nc"), "a_b_c");
        assert_eq!(header_hostname(""), "-");
        assert_eq!(header_hostname(&"x".repeat(300)).len(), 255);
    }
}
