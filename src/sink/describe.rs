//! Human-readable descriptions that the text and CSV sinks share: who
//! ran it, the command line, privileges and their change, what is
//! hijackable, and the run's summaries (loss, late hash, stats, stop). The
//! text view uses the short [`Style::Text`] forms; CSV cells and CSV's
//! stderr messages the complete [`Style::Csv`] ones.
//!
//! Every string that comes from the watched system goes through
//! [`escape`], so no description can carry a terminal escape or fake the
//! punctuation around it.

use std::sync::OnceLock;

use crate::event::{
    ChangeCause, Counters, ExecEvent, HashInfo, Hijack, LossInfo, PrivilegeChange, Privileges,
    StopInfo, WindowsToken,
};
use crate::linux::caps::cap_names;

use super::escape::{self, display_bytes};

/// The effective user for human-facing formats: the enriched name, or the
/// euid as a number when the name is unknown.
///
/// Names come from NSS (possibly LDAP), so they are escaped like any other
/// untrusted string.
pub fn user_display(ev: &ExecEvent) -> String {
    match (&ev.user, ev.linux_creds()) {
        (Some(name), _) => escape::display_bytes(name.as_bytes()),
        (None, Some(creds)) => creds.euid.to_string(),
        (None, None) => "?".to_owned(),
    }
}

/// The command line as one terminal- and shell-safe string: argv quoted
/// POSIX-shell style so argument boundaries survive; a system's own
/// one-string command line (Windows) made safe; `None` when unknown.
pub fn cmdline_of(ev: &ExecEvent) -> Option<String> {
    match (&ev.argv, &ev.command_line) {
        (Some(argv), _) => Some(escape::join_cmdline(argv)),
        (None, Some(line)) => Some(escape::display_bytes(line)),
        (None, None) => None,
    }
}

/// Text summary of a Windows token: the integrity level, then the enabled
/// privileges without the `Se`/`Privilege` decoration (`debug,backup`), or
/// `-` when none; `?` for what could not be read.
fn windows_summary(t: &WindowsToken) -> String {
    let integrity = t.integrity.map_or_else(|| "?".to_owned(), |i| i.name());
    let privs = match &t.privileges {
        None => "?".to_owned(),
        Some(_) if t.enabled_names().is_empty() => "-".to_owned(),
        Some(_) => t
            .enabled_names()
            .iter()
            .map(|n| {
                let short = n.strip_prefix("Se").unwrap_or(n);
                short
                    .strip_suffix("Privilege")
                    .unwrap_or(short)
                    .to_ascii_lowercase()
            })
            .collect::<Vec<_>>()
            .join(","),
    };
    escape::display_bytes(format!("{integrity}:{privs}").as_bytes())
}

/// Mask of the capabilities the caps table knows by name.
///
/// Derived from `cap_names` rather than hard-coded so that "all caps"
/// follows the table when new capabilities are added there.
pub(crate) fn known_caps_mask() -> u64 {
    static MASK: OnceLock<u64> = OnceLock::new();
    *MASK.get_or_init(|| {
        (0..64)
            .map(|bit| 1u64 << bit)
            .filter(|&m| cap_names(m).first().is_some_and(|n| n.starts_with("CAP_")))
            .fold(0, |acc, m| acc | m)
    })
}

/// Short privilege summary for the text format.
///
/// Effective capabilities: `caps=ALL` when (nearly) every known capability
/// is effective (the root case, kept short on purpose), followed by
/// ` -name,...` for the few that are missing and ` +N` for unknown bits;
/// `-` when none;
/// otherwise the names without `CAP_`, lowercased, joined by `,` (unknown
/// bits as numbers). Then ` [setuid]`, ` [setgid]` or ` [file_caps]` when
/// the exec itself raised privileges, because that is what a reader scans
/// for.
pub fn privileges_summary(p: &Privileges) -> String {
    match p {
        Privileges::Windows(token) => windows_summary(token),
        Privileges::Linux { caps, raised, .. } => {
            let mut s = if caps.effective == 0 {
                "-".to_owned()
            } else {
                caps_short(caps.effective)
            };
            if let Some(r) = raised {
                s.push_str(" [");
                s.push_str(r.as_str());
                s.push(']');
            }
            s
        }
    }
}

/// The privilege summary of an exec for the text format: as
/// [`privileges_summary`], except that capabilities held in another user
/// namespace by a non-root (host) euid show as `userns` instead: they give
/// no power on the host, and `caps=ALL` would read as if they did. Root in
/// another user namespace keeps its summary, marked ` userns`.
pub fn exec_privileges_summary(ev: &ExecEvent) -> String {
    let Some(p) = &ev.privileges else {
        return "?".to_owned();
    };
    if !ev.in_other_userns() {
        return privileges_summary(p);
    }
    if ev.linux_creds().is_some_and(|c| c.euid == 0) {
        return format!("{} userns", privileges_summary(p));
    }
    let mut s = "userns".to_owned();
    if let Privileges::Linux {
        raised: Some(r), ..
    } = p
    {
        s.push_str(" [");
        s.push_str(r.as_str());
        s.push(']');
    }
    s
}

/// A non-empty capability mask for the text format: `caps=ALL` (with
/// ` -name,...` for missing known caps and ` +N` for unknown bits) when
/// nearly every known capability is set, otherwise the names without
/// `CAP_`, lowercased, joined by `,`.
fn caps_short(mask: u64) -> String {
    let known = known_caps_mask();
    let short = |mask: u64| {
        cap_names(mask)
            .iter()
            .map(|n| n.strip_prefix("CAP_").unwrap_or(n).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    if nearly_all_caps(mask) {
        let missing = known & !mask;
        // Nearly everything: name what is missing, which is what stands
        // out (e.g. a container's root without sys_admin).
        let mut s = "caps=ALL".to_owned();
        if missing != 0 {
            s.push_str(" -");
            s.push_str(&short(missing));
        }
        if mask & !known != 0 {
            s.push_str(" +");
            s.push_str(&short(mask & !known));
        }
        s
    } else {
        short(mask)
    }
}

/// Whether `mask` holds every known capability, or nearly every one (more
/// than three quarters): shown as "all" with what is missing named.
pub(crate) fn nearly_all_caps(mask: u64) -> bool {
    let known = known_caps_mask();
    let missing = known & !mask;
    known != 0 && missing.count_ones() * 4 < known.count_ones()
}

/// Who reads a description: the text view (short, `→`) or a CSV cell
/// (complete, ASCII).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Text,
    Csv,
}

/// A privilege change in a few words: the cause (with the launcher for a
/// launcher), the euid change when there is one, and the gained
/// capabilities, e.g. `setuid 1000→0`, `launcher sudo: +net_raw`; in CSV
/// `setuid 1000->0 +CAP_NET_RAW`, `launcher /usr/bin/sudo: 1000->0`.
///
/// The launcher path is shell-quoted so that a crafted name cannot close
/// the text marker early or fake a second one.
pub(crate) fn privilege_change_summary(pc: &PrivilegeChange, style: Style) -> String {
    let mut s = pc.cause.as_str().to_owned();
    if let (ChangeCause::Launcher, Some(l)) = (pc.cause, &pc.launcher) {
        let shown = match style {
            Style::Text => crate::linux::path::basename(l),
            Style::Csv => l,
        };
        s.push(' ');
        s.push_str(&escape::shell_quote(shown));
        s.push(':');
    }
    if pc.from_euid != pc.to_euid {
        let arrow = match style {
            Style::Text => "→",
            Style::Csv => "->",
        };
        s.push_str(&format!(" {}{arrow}{}", pc.from_euid, pc.to_euid));
    }
    if pc.gained_caps != 0 {
        s.push_str(" +");
        match style {
            Style::Text => s.push_str(&caps_short(pc.gained_caps)),
            Style::Csv => s.push_str(&cap_names(pc.gained_caps).join("|")),
        }
    }
    s
}

/// What can be modified and by whom, e.g. `dir /opt writable by user
/// alice`, `file writable by others`, or the symlink's path when it is
/// neither the file nor a directory above it. Paths and names are
/// shell-quoted, so none can fake the punctuation around them.
pub(crate) fn hijack_reason(h: &Hijack) -> String {
    let w = h.writable.as_slice();
    let what = if w == h.path.as_slice() {
        "file".to_owned()
    } else if h.path.starts_with(w) && (w.ends_with(b"/") || h.path.get(w.len()) == Some(&b'/')) {
        format!("dir {}", escape::shell_quote(w))
    } else {
        escape::shell_quote(w)
    };
    if h.writers.is_empty() {
        return format!("{what} writable");
    }
    let writers: Vec<String> = h
        .writers
        .iter()
        .map(|w| match w.split_once(' ') {
            // "user alice": keep the readable shape, quote each half.
            Some((kind, name)) => format!(
                "{} {}",
                escape::shell_quote(kind.as_bytes()),
                escape::shell_quote(name.as_bytes())
            ),
            None => escape::shell_quote(w.as_bytes()),
        })
        .collect();
    format!("{what} writable by {}", writers.join(", "))
}

/// The run's counters: in [`Style::Text`] the main ones, and the output's
/// failures only when there were any; in [`Style::Csv`] all of them.
pub(crate) fn counters(c: &Counters, style: Style) -> String {
    match style {
        Style::Text => {
            let mut t = format!(
                "seen {}, emitted {}, dropped {}, queue_dropped {}, written {}, filtered {}",
                c.seen, c.emitted, c.dropped, c.queue_dropped, c.written, c.filtered
            );
            if c.write_errors > 0 || c.output_dropped > 0 {
                t.push_str(&format!(
                    ", write_errors {}, output_dropped {}",
                    c.write_errors, c.output_dropped
                ));
            }
            t
        }
        Style::Csv => format!(
            "seen {}, emitted {}, dropped {}, truncated {}, received {}, queue_dropped {}, \
             written {}, filtered {}, write_errors {}, output_dropped {}",
            c.seen,
            c.emitted,
            c.dropped,
            c.truncated,
            c.received,
            c.queue_dropped,
            c.written,
            c.filtered,
            c.write_errors,
            c.output_dropped
        ),
    }
}

/// `stop (<reason>): <counters>`.
pub(crate) fn stop(s: &StopInfo, style: Style) -> String {
    format!(
        "stop ({}): {}",
        display_bytes(s.reason.as_bytes()),
        counters(&s.counters, style)
    )
}

/// `stats: <counters>`.
pub(crate) fn stats(c: &Counters, style: Style) -> String {
    format!("stats: {}", counters(c, style))
}

/// What was lost, where, and the place's total: `LOST 12 events (kernel),
/// total 40` in the text view, `LOST 12 events (kernel, total 40)` on CSV's
/// stderr.
pub(crate) fn loss(l: &LossInfo, style: Style) -> String {
    let what = l.place.describe(l.dropped);
    let place = l.place.as_str();
    match style {
        Style::Text => format!("{what} ({place}), total {}", l.total),
        Style::Csv => format!("{what} ({place}, total {})", l.total),
    }
}

/// `hash <exec_id> (pid N): <sha256>`, or `none (<reason>)`: a late hash,
/// terminal-safe (the reason may quote a user's path), for CSV's stderr.
pub(crate) fn hash_notice(h: &HashInfo) -> String {
    let what = match (&h.exe_sha256, &h.reason) {
        (Some(sha), _) => display_bytes(sha.as_bytes()),
        (None, why) => format!(
            "none ({})",
            display_bytes(why.as_deref().unwrap_or("unknown").as_bytes())
        ),
    };
    format!(
        "hash {} (pid {}): {what}",
        display_bytes(h.exec_id.as_bytes()),
        h.pid
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CapSets, PrivilegeRaise};
    use crate::sink::testutil::*;

    fn with_caps(effective: u64, raised: Option<PrivilegeRaise>) -> Privileges {
        let mut ev = exec_event();
        let Some(Privileges::Linux {
            caps, raised: r, ..
        }) = &mut ev.privileges
        else {
            unreachable!()
        };
        *caps = CapSets {
            effective,
            permitted: effective,
            ..CapSets::default()
        };
        *r = raised;
        ev.privileges.unwrap()
    }

    #[test]
    fn capabilities_in_another_user_namespace_read_userns() {
        let all = (1u64 << 41) - 1;
        let mut ev = exec_event();
        ev.privileges = Some(with_caps(all, None));
        assert_eq!(exec_privileges_summary(&ev), "caps=ALL");
        ev.ns.user_ns = Some(crate::event::UserNs {
            level: 1,
            owner_uid: 65534,
        });
        // exec_event's euid is not 0.
        assert_eq!(exec_privileges_summary(&ev), "userns");
        ev.privileges = Some(with_caps(all, Some(PrivilegeRaise::Setuid)));
        assert_eq!(exec_privileges_summary(&ev), "userns [setuid]");
        let Some(Privileges::Linux { creds, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        creds.euid = 0;
        assert_eq!(exec_privileges_summary(&ev), "caps=ALL [setuid] userns");
        ev.privileges = None;
        assert_eq!(exec_privileges_summary(&ev), "?");
    }

    #[test]
    fn privileges_summary_variants() {
        assert_eq!(privileges_summary(&with_caps(0, None)), "-");
        let all = (1u64 << 41) - 1;
        assert_eq!(privileges_summary(&with_caps(all, None)), "caps=ALL");
        assert_eq!(
            privileges_summary(&with_caps(all, Some(PrivilegeRaise::Setuid))),
            "caps=ALL [setuid]"
        );
        assert_eq!(
            privileges_summary(&with_caps(all | 1 << 41, None)),
            "caps=ALL +41"
        );
        assert_eq!(
            privileges_summary(&with_caps(1 | 1 << 13, Some(PrivilegeRaise::FileCaps))),
            "chown,net_raw [file_caps]"
        );
        assert_eq!(privileges_summary(&with_caps(1 << 45, None)), "45");
        assert_eq!(
            privileges_summary(&with_caps(0, Some(PrivilegeRaise::Setgid))),
            "- [setgid]"
        );
        assert_eq!(
            privileges_summary(&with_caps(all & !(1 << 24), None)),
            "caps=ALL -sys_resource"
        );
        // Below three quarters of the known set, the names are listed.
        let half = (1u64 << 20) - 1;
        assert_eq!(
            privileges_summary(&with_caps(half, None))
                .split(',')
                .count(),
            20
        );
    }

    #[test]
    fn privilege_change_text_and_csv() {
        let mut pc = setuid_change();
        assert_eq!(privilege_change_summary(&pc, Style::Text), "setuid 1000→0");
        assert_eq!(privilege_change_summary(&pc, Style::Csv), "setuid 1000->0");
        pc.gained_caps = 1 << 13;
        assert_eq!(
            privilege_change_summary(&pc, Style::Csv),
            "setuid 1000->0 +CAP_NET_RAW"
        );
        pc.gained_caps = (1 << 41) - 1;
        assert_eq!(
            privilege_change_summary(&pc, Style::Text),
            "setuid 1000→0 +caps=ALL"
        );

        let launcher = PrivilegeChange {
            cause: ChangeCause::Launcher,
            from_euid: 0,
            from_caps: 0,
            to_euid: 0,
            gained_caps: 1 << 13 | 1 << 12,
            launcher: Some(b"/usr/bin/sudo".to_vec()),
        };
        assert_eq!(
            privilege_change_summary(&launcher, Style::Text),
            "launcher sudo: +net_admin,net_raw"
        );
        assert_eq!(
            privilege_change_summary(&launcher, Style::Csv),
            "launcher /usr/bin/sudo: +CAP_NET_ADMIN|CAP_NET_RAW"
        );

        let file_caps = PrivilegeChange {
            cause: ChangeCause::FileCaps,
            from_euid: 1000,
            to_euid: 1000,
            gained_caps: 1 << 13,
            launcher: None,
            ..launcher.clone()
        };
        assert_eq!(
            privilege_change_summary(&file_caps, Style::Text),
            "file_caps +net_raw"
        );
        let setgid = PrivilegeChange {
            cause: ChangeCause::Setgid,
            gained_caps: 0,
            ..file_caps
        };
        assert_eq!(privilege_change_summary(&setgid, Style::Text), "setgid");

        // An unknown launcher is just the cause.
        let unknown = PrivilegeChange {
            launcher: None,
            from_euid: 1000,
            gained_caps: 0,
            ..launcher.clone()
        };
        assert_eq!(
            privilege_change_summary(&unknown, Style::Text),
            "launcher 1000→0"
        );

        // A hostile launcher name cannot close the marker or fake text.
        let hostile = PrivilegeChange {
            launcher: Some(b"/tmp/x) HIJACKABLE(\x1b[0m".to_vec()),
            ..unknown
        };
        let s = privilege_change_summary(&hostile, Style::Text);
        assert_eq!(s, "launcher $'x) HIJACKABLE(\\x1b[0m': 1000→0");
        assert!(!s.contains('\x1b'));
    }

    #[test]
    fn hijack_reason_shapes() {
        let mut h = hijack_dir();
        assert_eq!(hijack_reason(&h), "dir /opt writable by user alice");
        h.writable = h.path.clone();
        h.writers = vec!["others".into(), "group staff".into()];
        assert_eq!(hijack_reason(&h), "file writable by others, group staff");
        // "/" is a directory above everything.
        h.writable = b"/".to_vec();
        assert_eq!(hijack_reason(&h), "dir / writable by others, group staff");
        // Not a prefix at a component boundary: shown as a path.
        h.writable = b"/op".to_vec();
        h.writers = vec![];
        assert_eq!(hijack_reason(&h), "/op writable");
        h.writable = b"/usr/local/bin/job".to_vec();
        assert_eq!(hijack_reason(&h), "/usr/local/bin/job writable");
        // Names and paths are quoted, so neither can fake punctuation.
        h.writable = b"/opt/a b".to_vec();
        h.path = b"/opt/a b/c".to_vec();
        h.writers = vec!["user ev)il, x".into(), "odd\x1b".into()];
        assert_eq!(
            hijack_reason(&h),
            "dir '/opt/a b' writable by user 'ev)il, x', $'odd\\x1b'"
        );
    }

    #[test]
    fn user_display_falls_back_to_euid_and_escapes() {
        let mut ev = exec_event();
        assert_eq!(user_display(&ev), "alice");
        ev.user = None;
        assert_eq!(user_display(&ev), "1001");
        ev.user = Some("x\x1by".into());
        assert_eq!(user_display(&ev), "$'x\\x1by'");
    }
}
