//! The compact exec line, for terminals narrower than [`WIDE_FROM`]: time,
//! pid, container tag and user, a short privilege tag and the markers as
//! bare words, then the command. A root exec fits 80 columns with room
//! for its command; the details are in the wide layout (`-v`), JSONL and
//! CSV.
//!
//! ```text
//! 05:26:10.123     4242  root      ALL+suid RAISED  sudo id
//! ```

use super::super::describe::{known_caps_mask, user_display};
use super::{HIJACKABLE, RAISED, command_tail, container_tag, paint, user_color};
use crate::event::{ExecEvent, PrivilegeRaise, Privileges};
use crate::sink::escape::display_bytes;
use crate::sink::time::time_hms_millis;

/// Terminals at least this wide get the wide layout.
pub const WIDE_FROM: u16 = 120;

/// The header line of the compact layout.
pub(super) fn header() -> String {
    format!(
        "# {:<10}  {:>7}  {:<8}  {}  {}\n",
        "time", "pid", "user", "privileges", "command"
    )
}

/// `-` without capabilities, `ALL` with nearly all of them (as `caps=ALL`
/// in the wide layout), `caps:N` with N others; `+suid`, `+sgid` or
/// `+fcap` when the exec's file raised them. Windows: the integrity level.
pub(super) fn privilege_tag(ev: &ExecEvent) -> String {
    let Some(p) = &ev.privileges else {
        return "?".to_owned();
    };
    let (caps, raised) = match p {
        Privileges::Windows(t) => {
            let level = t.integrity.map_or_else(|| "?".to_owned(), |i| i.name());
            return display_bytes(level.as_bytes());
        }
        Privileges::Linux { caps, raised, .. } => (caps.effective, *raised),
    };
    let known = known_caps_mask();
    let mut s =
        if caps == 0 || (ev.in_other_userns() && ev.linux_creds().is_none_or(|c| c.euid != 0)) {
            // A sandbox's capabilities are no host power: `userns` says it.
            "-".to_owned()
        } else if known != 0 && (known & !caps).count_ones() * 4 < known.count_ones() {
            "ALL".to_owned()
        } else {
            format!("caps:{}", caps.count_ones())
        };
    if let Some(r) = raised {
        s.push_str(match r {
            PrivilegeRaise::Setuid => "+suid",
            PrivilegeRaise::Setgid => "+sgid",
            PrivilegeRaise::FileCaps => "+fcap",
        });
    }
    s
}

/// The markers as bare words: `RAISED`, `HIJACKABLE`, `ALERT(level)` (the
/// highest level matched), `userns`, `incomplete`.
fn markers(ev: &ExecEvent, color: bool) -> String {
    let mut m = Vec::new();
    if ev.privilege_change.is_some() {
        m.push(paint(color, RAISED, "RAISED"));
    }
    if !ev.hijackable.is_empty() {
        m.push(paint(color, HIJACKABLE, "HIJACKABLE"));
    }
    if !ev.detections.is_empty() {
        let level = crate::detect::highest_level(&ev.detections).map_or("unknown", |l| l.as_str());
        m.push(paint(color, HIJACKABLE, &format!("ALERT({level})")));
    }
    if ev.in_other_userns() {
        m.push("userns".to_owned());
    }
    if !super::incomplete_fields(ev).is_empty() {
        m.push("incomplete".to_owned());
    }
    m.join(" ")
}

pub(super) fn exec_line(ev: &ExecEvent, color: bool) -> String {
    let user = format!("{:<8}", user_display(ev));
    let user = match user_color(ev) {
        Some(sgr) => paint(color, sgr, &user),
        None => user,
    };
    let mut marks = markers(ev, color);
    if !marks.is_empty() {
        marks.insert(0, ' ');
    }
    let mut line = format!(
        "{}  {:>7}  {}{user}  {}{marks}  ",
        time_hms_millis(ev.time),
        ev.pid,
        container_tag(ev),
        privilege_tag(ev),
    );
    line.push_str(&command_tail(ev));
    line
}
