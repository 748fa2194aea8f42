//! Turns what a Windows source reported, plus what was read from the live
//! process, into the platform-neutral [`ExecEvent`]. Pure, so it is tested
//! on Linux.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::{ExecEvent, Incomplete, Privileges, WindowsToken};

/// A process start as a source reported it, before the process is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawStart {
    /// When the source saw the start (the ETW timestamp, or the WMI event's
    /// `TIME_CREATED`); falls back to the time the event was received.
    pub time: Option<SystemTime>,
    /// `ProcessId`.
    pub pid: u32,
    /// `ParentProcessId` (WMI) or `ParentId` (ETW).
    pub ppid: Option<u32>,
    /// The process's creation time as the source gave it.
    pub created: Option<SystemTime>,
    /// `CommandLine`.
    pub command_line: Option<String>,
    /// `ExecutablePath`.
    pub exe: Option<String>,
    /// Values the source gave in a form that could not be used (a time out
    /// of range, a malformed DMTF string): the field is left out and the
    /// reason kept for `incomplete`. For `time`, the time the event was
    /// received stands in.
    pub problems: Vec<Incomplete>,
}

impl RawStart {
    /// Records that the source's value for `field` was unusable.
    pub fn problem(&mut self, field: &'static str, reason: impl std::fmt::Display) {
        self.problems.push(Incomplete {
            field,
            reason: reason.to_string(),
        });
    }
}

/// What could be read about one process, read as soon as it was reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSnapshot {
    /// The token's privileges, integrity, elevation, session, SID, owner.
    pub token: WindowsToken,
    /// Win32 path of the image (`QueryFullProcessImageNameW`).
    pub exe: Option<String>,
    /// Creation time (`GetProcessTimes`); compared with the event's own
    /// creation time to detect a reused pid.
    pub created: Option<SystemTime>,
    /// The parts that could not be read, and why (JSON field names).
    pub incomplete: Vec<Incomplete>,
}

impl ProcessSnapshot {
    /// Records that `field` could not be read.
    pub fn missing(&mut self, field: &'static str, reason: &str) {
        self.incomplete.push(Incomplete {
            field,
            reason: reason.to_owned(),
        });
    }
}

/// Fields of the event model that no Windows source provides.
const NOT_ON_WINDOWS: [&str; 5] = ["tid", "exec_tid", "filename", "cwd", "comm"];

/// Creation times from two APIs agree to well within this; a larger gap
/// means the pid was reused and the process read is not the one reported.
const SAME_PROCESS: Duration = Duration::from_millis(1);

fn gap(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default()
}

/// Builds the exec event. `source` names the mechanism for the reasons of
/// fields it cannot provide; `now` is used when the source gave no time.
pub fn to_exec_event(
    raw: &RawStart,
    snap: ProcessSnapshot,
    source: &str,
    now: SystemTime,
) -> ExecEvent {
    let time = raw.time.unwrap_or(now);
    let created = raw.created.or(snap.created);
    let stamp = created.unwrap_or(time);
    let nanos = stamp
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut ev = ExecEvent::new(time, raw.pid, raw.ppid, format!("{}:{nanos}", raw.pid));
    ev.process_start = created;
    ev.command_line = raw.command_line.clone().map(String::into_bytes);
    let explained = |field| raw.problems.iter().any(|p| p.field == field);
    if raw.ppid.is_none() && !explained("ppid") {
        ev.mark_incomplete("ppid", format!("not reported by {source}"));
    }
    if raw.command_line.is_none() && !explained("command_line") {
        ev.mark_incomplete("command_line", format!("not reported by {source}"));
    }
    ev.mark_incomplete(
        "argv",
        "Windows passes one command-line string: see command_line",
    );
    for field in NOT_ON_WINDOWS {
        ev.mark_incomplete(field, "not available on Windows");
    }
    for p in &raw.problems {
        // A creation time the live read supplies is not missing.
        if !(p.field == "process_start" && snap.created.is_some()) {
            ev.incomplete.push(p.clone());
        }
    }
    let reused =
        matches!((raw.created, snap.created), (Some(a), Some(b)) if gap(a, b) > SAME_PROCESS);
    if reused {
        // The live process is a newer one with the same pid: its token and
        // image must not be attributed to the reported start.
        let why = "pid reused before the process was read";
        ev.exe = raw.exe.clone().map(String::into_bytes);
        if ev.exe.is_none() {
            ev.mark_incomplete("exe", why);
        }
        ev.mark_incomplete("token", why);
        ev.mark_incomplete("user", why);
        return ev;
    }
    ev.exe = raw.exe.clone().or(snap.exe).map(String::into_bytes);
    if ev.process_start.is_none() {
        ev.process_start = snap.created;
    }
    ev.user = snap.token.owner.as_deref().map(std::sync::Arc::from);
    for i in snap.incomplete {
        // The source may have given what the live read could not.
        let covered = (i.field == "exe" && ev.exe.is_some())
            || (i.field == "process_start" && ev.process_start.is_some());
        if !covered {
            ev.incomplete.push(i);
        }
    }
    ev.privileges = Some(Privileges::Windows(snap.token));
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SE_PRIVILEGE_ENABLED, WinPrivilege};

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    fn raw() -> RawStart {
        RawStart {
            time: Some(at(1000)),
            pid: 42,
            ppid: Some(7),
            created: Some(at(999)),
            command_line: Some("cmd.exe /c dir".into()),
            exe: None,
            problems: Vec::new(),
        }
    }

    fn snap() -> ProcessSnapshot {
        ProcessSnapshot {
            token: WindowsToken {
                privileges: Some(vec![WinPrivilege {
                    name: "SeDebugPrivilege".into(),
                    attributes: SE_PRIVILEGE_ENABLED,
                }]),
                owner: Some("DESKTOP\\alice".into()),
                ..WindowsToken::default()
            },
            exe: Some("C:\\Windows\\System32\\cmd.exe".into()),
            created: Some(at(999)),
            incomplete: Vec::new(),
        }
    }

    fn fields(ev: &ExecEvent) -> Vec<&str> {
        ev.incomplete.iter().map(|i| i.field).collect()
    }

    #[test]
    fn full_read() {
        let ev = to_exec_event(&raw(), snap(), "etw", at(5));
        assert_eq!((ev.pid, ev.ppid, ev.time), (42, Some(7), at(1000)));
        assert_eq!(ev.exec_id, "42:999000000000");
        assert_eq!(ev.process_start, Some(at(999)));
        assert_eq!(ev.command_line.as_deref(), Some(&b"cmd.exe /c dir"[..]));
        assert_eq!(
            ev.exe.as_deref(),
            Some(&b"C:\\Windows\\System32\\cmd.exe"[..])
        );
        assert_eq!(ev.user.as_deref(), Some("DESKTOP\\alice"));
        assert!(matches!(ev.privileges, Some(Privileges::Windows(_))));
        assert_eq!(
            fields(&ev),
            ["argv", "tid", "exec_tid", "filename", "cwd", "comm"]
        );
    }

    #[test]
    fn reused_pid_drops_the_live_read() {
        let mut s = snap();
        s.created = Some(at(1001));
        let ev = to_exec_event(&raw(), s, "etw", at(5));
        assert_eq!(ev.privileges, None);
        assert_eq!(ev.user, None);
        assert_eq!(ev.exe, None);
        let f = fields(&ev);
        assert!(f.ends_with(&["exe", "token", "user"]), "{f:?}");
        assert_eq!(
            ev.incomplete.last().unwrap().reason,
            "pid reused before the process was read"
        );
    }

    #[test]
    fn exited_process_keeps_what_the_source_said() {
        let mut s = ProcessSnapshot::default();
        for f in ["exe", "process_start", "token", "user"] {
            s.missing(f, "process exited before it was read");
        }
        let mut r = raw();
        r.exe = Some("C:\\x.exe".into());
        let ev = to_exec_event(&r, s, "wmi-poll", at(5));
        assert_eq!(ev.exe.as_deref(), Some(&b"C:\\x.exe"[..]));
        assert_eq!(ev.process_start, Some(at(999)));
        let f = fields(&ev);
        assert!(f.ends_with(&["comm", "token", "user"]), "{f:?}");
        assert!(
            matches!(ev.privileges, Some(Privileges::Windows(ref t)) if t.privileges.is_none())
        );
    }

    #[test]
    fn missing_source_fields_are_named() {
        let r = RawStart {
            pid: 9,
            ..RawStart::default()
        };
        let ev = to_exec_event(&r, ProcessSnapshot::default(), "wmi-trace", at(5));
        assert_eq!(ev.time, at(5));
        assert_eq!(ev.ppid, None);
        assert_eq!(ev.exec_id, "9:5000000000");
        let reasons: Vec<(&str, &str)> = ev
            .incomplete
            .iter()
            .take(2)
            .map(|i| (i.field, i.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("ppid", "not reported by wmi-trace"),
                ("command_line", "not reported by wmi-trace")
            ]
        );
    }

    #[test]
    fn unusable_source_times_are_named() {
        let mut r = raw();
        r.time = None;
        r.created = None;
        r.problem("time", "bad FILETIME \"-1\": negative: before 1601-01-01");
        r.problem(
            "process_start",
            "bad DMTF datetime \"x\": expected 25 characters",
        );
        let mut s = snap();
        s.created = None;
        s.missing(
            "process_start",
            "bad FILETIME \"9223372036854775808\": 2^63 ticks",
        );
        let ev = to_exec_event(&r, s, "wmi-trace", at(5));
        assert_eq!(ev.time, at(5));
        assert_eq!(ev.process_start, None);
        let got: Vec<(&str, &str)> = ev
            .incomplete
            .iter()
            .filter(|i| matches!(i.field, "time" | "process_start"))
            .map(|i| (i.field, i.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("time", "bad FILETIME \"-1\": negative: before 1601-01-01"),
                (
                    "process_start",
                    "bad DMTF datetime \"x\": expected 25 characters"
                ),
                (
                    "process_start",
                    "bad FILETIME \"9223372036854775808\": 2^63 ticks"
                ),
            ]
        );
        // When the live read has the creation time, the source's bad one
        // is not reported as missing.
        let mut r = raw();
        r.created = None;
        r.problem("process_start", "bad DMTF datetime");
        let ev = to_exec_event(&r, snap(), "wmi-trace", at(5));
        assert_eq!(ev.process_start, Some(at(999)));
        assert!(!fields(&ev).contains(&"process_start"), "{:?}", fields(&ev));
    }

    #[test]
    fn gap_is_symmetric() {
        assert_eq!(gap(at(3), at(1)), Duration::from_secs(2));
        assert_eq!(gap(at(1), at(3)), Duration::from_secs(2));
    }
}
