//! The `snapshot` source: the process list every `--interval`, diffed.
//!
//! `CreateToolhelp32Snapshot` lists the processes; each is keyed by pid and
//! creation time (`GetProcessTimes`), so a reused pid is a new process. A
//! new one is read at once through one handle: image path, command line,
//! parent pid and token. It needs no admin and no event delivery, so it
//! works where ETW and WMI do not (locked-down hosts, Server Core without
//! WMI, Wine), at the price of missing processes shorter than the interval.

use std::collections::HashMap;
use std::time::SystemTime;

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::Threading::PROCESS_QUERY_LIMITED_INFORMATION;

use super::cmdline::{command_line, parent_pid};
use super::dmtf::{FILETIME_UNIX_OFFSET, filetime_to_system};
use super::record::{ProcessSnapshot, RawStart, to_exec_event};
use super::token::{
    Handle, creation_ticks, from_wide, last_error_reason, open_process, read_opened,
};
use crate::event::ExecEvent;

/// One row of the process list.
#[derive(Debug, Clone)]
pub struct Listed {
    pub pid: u32,
    pub ppid: u32,
    /// The image's file name (`szExeFile`), without its directory.
    pub name: String,
}

/// Lists the running processes.
pub fn list() -> Result<Vec<Listed>, String> {
    // SAFETY: plain call; the result is checked.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snap == INVALID_HANDLE_VALUE || snap.is_null() {
        return Err(last_error_reason("CreateToolhelp32Snapshot"));
    }
    let snap = Handle(snap);
    // SAFETY: an all-zero PROCESSENTRY32W is valid; dwSize is set below.
    let mut e: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    e.dwSize = size_of::<PROCESSENTRY32W>() as u32;
    let mut out = Vec::with_capacity(256);
    // SAFETY: `e` is a valid entry with its size set.
    let mut ok = unsafe { Process32FirstW(snap.0, &mut e) };
    while ok != 0 {
        out.push(Listed {
            pid: e.th32ProcessID,
            ppid: e.th32ParentProcessID,
            name: from_wide(&e.szExeFile),
        });
        // SAFETY: as above.
        ok = unsafe { Process32NextW(snap.0, &mut e) };
    }
    Ok(out)
}

/// What identifies a process across two lists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// Its creation FILETIME, read through a handle.
    Created(u64),
    /// The process could not be opened: its listed parent and name are the
    /// best identity there is.
    Listed { ppid: u32, name: String },
}

/// A creation time this far past the clock is not real yet: Wine lists a
/// process before it has set its creation time (and its PEB), and reads
/// then give a time tens of thousands of years ahead.
const FUTURE_SLACK_TICKS: u64 = 60 * 10_000_000;

/// Scans to wait for such a process to settle before it is reported with
/// what can be read, so that none is hidden.
const SETTLE_SCANS: u8 = 20;

/// A new process as the scan reports it: the event, and the process's and
/// its parent's creation times as keys for the process table (100 ns
/// FILETIME ticks as nanoseconds; 0 when unknown), so that a reused pid is
/// never taken for the process, or the parent, it replaced.
#[derive(Debug)]
pub struct Found {
    pub ev: ExecEvent,
    pub start_ns: u64,
    pub parent_start_ns: u64,
}

/// What a scan makes of one listed process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Seen before: nothing to report.
    Known,
    /// A new process: read it and report it.
    New,
    /// Still being created: looked at again next scan.
    Settling,
}

/// The bookkeeping of the diff between two lists, apart from Win32 so it
/// is tested on its own.
#[derive(Debug, Default)]
struct Diff {
    known: HashMap<u32, Key>,
    /// Processes still being created, and for how many scans.
    settling: HashMap<u32, u8>,
    next_known: HashMap<u32, Key>,
    next_settling: HashMap<u32, u8>,
}

impl Diff {
    /// Judges listed process `p`, whose creation FILETIME (when it could be
    /// read) is `created`, at `now_ticks`.
    fn judge(&mut self, p: &Listed, created: Option<u64>, now_ticks: u64) -> Verdict {
        let key = match created {
            Some(t) => Key::Created(t),
            None => Key::Listed {
                ppid: p.ppid,
                name: p.name.clone(),
            },
        };
        let old = self.known.get(&p.pid);
        // A known process that can no longer be opened has most likely
        // just exited: it is the same one, not a new start.
        let same = old == Some(&key) || (created.is_none() && matches!(old, Some(Key::Created(_))));
        if same {
            self.next_known.insert(p.pid, old.cloned().unwrap_or(key));
            return Verdict::Known;
        }
        if created.is_some_and(|t| t > now_ticks.saturating_add(FUTURE_SLACK_TICKS)) {
            let scans = self.settling.get(&p.pid).copied().unwrap_or(0) + 1;
            if scans < SETTLE_SCANS {
                // Neither known nor reported: the next scan looks again.
                self.next_settling.insert(p.pid, scans);
                return Verdict::Settling;
            }
        }
        self.next_known.insert(p.pid, key);
        Verdict::New
    }

    /// The creation FILETIME of `pid` as this or the previous scan saw it.
    fn created(&self, pid: u32) -> Option<u64> {
        match self.next_known.get(&pid).or_else(|| self.known.get(&pid)) {
            Some(Key::Created(t)) => Some(*t),
            _ => None,
        }
    }

    /// Ends a scan: what was not listed in it is forgotten.
    fn finish(&mut self) {
        self.known = std::mem::take(&mut self.next_known);
        self.settling = std::mem::take(&mut self.next_settling);
    }
}

/// Keeps the previous list and reports what is new in the next.
pub struct Scanner {
    diff: Diff,
}

impl Scanner {
    /// Takes the first list: the processes already running are known, not
    /// reported.
    pub fn new() -> Result<Self, String> {
        let mut s = Scanner {
            diff: Diff::default(),
        };
        s.scan_with(&mut |_| {})?;
        Ok(s)
    }

    /// Lists the processes and hands each new one, read at once, to `out`.
    pub fn scan(&mut self, out: &mut dyn FnMut(Found)) -> Result<(), String> {
        self.scan_with(out)
    }

    fn scan_with(&mut self, out: &mut dyn FnMut(Found)) -> Result<(), String> {
        let now = SystemTime::now();
        let now_ticks = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| (d.as_nanos() / 100) as u64 + FILETIME_UNIX_OFFSET);
        for p in list()? {
            let opened = open_process(p.pid, PROCESS_QUERY_LIMITED_INFORMATION);
            let created = opened.as_ref().ok().and_then(|h| creation_ticks(h).ok());
            if self.diff.judge(&p, created, now_ticks) == Verdict::New {
                let ev = read_new(&p, opened, created, now);
                let parent = ev.ppid.and_then(|pid| self.diff.created(pid));
                let ns = |t: Option<u64>| t.map_or(0, |t| t.saturating_mul(100));
                out(Found {
                    ev,
                    start_ns: ns(created),
                    parent_start_ns: ns(parent),
                });
            }
        }
        self.diff.finish();
        Ok(())
    }
}

/// Builds the event for a new process. `opened` is its handle (or why it
/// could not be opened), `created` its creation FILETIME.
fn read_new(
    p: &Listed,
    opened: Result<Handle, String>,
    created: Option<u64>,
    now: SystemTime,
) -> ExecEvent {
    let mut raw = RawStart {
        pid: p.pid,
        ppid: Some(p.ppid),
        ..RawStart::default()
    };
    let mut snap = ProcessSnapshot::default();
    match opened {
        Ok(h) => {
            match created.map(filetime_to_system) {
                Some(Ok(t)) => {
                    // The creation time is when the process started: the
                    // best time for the event, closer than the scan's.
                    raw.time = Some(t);
                    snap.created = Some(t);
                }
                Some(Err(e)) => snap.missing("process_start", &e.to_string()),
                None => snap.missing(
                    "process_start",
                    &creation_ticks(&h).err().unwrap_or_default(),
                ),
            }
            // The parent recorded with the process, read through the same
            // handle; the list's value is kept if that fails.
            if let Ok(ppid) = parent_pid(&h) {
                raw.ppid = Some(ppid);
            }
            match command_line(&h, p.pid, created) {
                Ok(c) => raw.command_line = Some(c),
                Err(why) => raw.problem("command_line", why),
            }
            read_opened(&h, &mut snap);
        }
        Err(why) => {
            raw.problem("command_line", &why);
            for field in ["exe", "process_start", "token", "user"] {
                snap.missing(field, &why);
            }
        }
    }
    to_exec_event(&raw, snap, "snapshot", now)
}

#[cfg(test)]
mod diff_tests {
    use super::*;

    const NOW: u64 = 133_536_816_000_000_000;

    fn p(pid: u32, ppid: u32, name: &str) -> Listed {
        Listed {
            pid,
            ppid,
            name: name.into(),
        }
    }

    /// One scan of `(process, creation time)`s: the verdicts, in order.
    fn scan(d: &mut Diff, procs: &[(Listed, Option<u64>)]) -> Vec<Verdict> {
        let v = procs.iter().map(|(l, c)| d.judge(l, *c, NOW)).collect();
        d.finish();
        v
    }

    use Verdict::{Known, New, Settling};

    #[test]
    fn same_pid_and_creation_time_is_the_same_process() {
        let mut d = Diff::default();
        let a = (p(10, 1, "a.exe"), Some(NOW - 5));
        for expected in [New, Known, Known] {
            assert_eq!(scan(&mut d, std::slice::from_ref(&a)), [expected]);
        }
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let mut d = Diff::default();
        scan(&mut d, &[(p(10, 1, "a.exe"), Some(NOW - 5))]);
        // Same pid, same parent, same name: only the creation time differs.
        assert_eq!(scan(&mut d, &[(p(10, 1, "a.exe"), Some(NOW - 1))]), [New]);
        // Gone for one scan, then the pid comes back: new as well.
        scan(&mut d, &[]);
        assert_eq!(scan(&mut d, &[(p(10, 1, "a.exe"), Some(NOW - 1))]), [New]);
    }

    #[test]
    fn a_known_process_that_can_no_longer_be_opened_is_not_new() {
        let mut d = Diff::default();
        scan(&mut d, &[(p(10, 1, "a.exe"), Some(NOW - 5))]);
        // Exiting: listed, but OpenProcess fails.
        assert_eq!(scan(&mut d, &[(p(10, 1, "a.exe"), None)]), [Known]);
        // Its identity is kept, so it still matches when read again.
        assert_eq!(scan(&mut d, &[(p(10, 1, "a.exe"), Some(NOW - 5))]), [Known]);
    }

    #[test]
    fn unopenable_processes_are_told_apart_by_parent_and_name() {
        let mut d = Diff::default();
        assert_eq!(scan(&mut d, &[(p(4, 0, "System"), None)]), [New]);
        assert_eq!(scan(&mut d, &[(p(4, 0, "System"), None)]), [Known]);
        assert_eq!(scan(&mut d, &[(p(4, 7, "System"), None)]), [New]);
        assert_eq!(scan(&mut d, &[(p(4, 7, "evil.exe"), None)]), [New]);
    }

    #[test]
    fn a_process_still_being_created_is_reported_once_it_settles_or_after_the_limit() {
        let mut d = Diff::default();
        let unset = Some(u64::MAX >> 2);
        let l = p(20, 1, "b.exe");
        assert_eq!(scan(&mut d, &[(l.clone(), unset)]), [Settling]);
        // Its real creation time arrives: reported once.
        assert_eq!(scan(&mut d, &[(l.clone(), Some(NOW))]), [New]);
        assert_eq!(scan(&mut d, &[(l.clone(), Some(NOW))]), [Known]);
        // One that never settles is not hidden: reported at the limit.
        let l = p(21, 1, "c.exe");
        let mut verdicts = Vec::new();
        for _ in 0..SETTLE_SCANS {
            verdicts.extend(scan(&mut d, &[(l.clone(), unset)]));
        }
        assert_eq!(
            verdicts.iter().filter(|&&v| v == Settling).count(),
            usize::from(SETTLE_SCANS) - 1
        );
        assert_eq!(verdicts.last(), Some(&New));
        // Within the clock slack, a time is taken as real.
        let mut d = Diff::default();
        assert_eq!(
            scan(
                &mut d,
                &[(p(22, 1, "d.exe"), Some(NOW + FUTURE_SLACK_TICKS))]
            ),
            [New]
        );
    }
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use crate::event::Privileges;
    use std::os::windows::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Scans until an event for `pid` arrives, for at most 20 s.
    fn find(scanner: &mut Scanner, pid: u32) -> Found {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut found = None;
            scanner
                .scan(&mut |f| {
                    if f.ev.pid == pid {
                        found = Some(f);
                    }
                })
                .unwrap();
            if let Some(ev) = found {
                return ev;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("pid {pid} never appeared in the process list");
    }

    #[test]
    fn a_new_process_is_read_whole() {
        let tag = format!("pw-snap-{}-{:?}", std::process::id(), Instant::now());
        let mut scanner = Scanner::new().unwrap();
        // raw_arg: cmd parses its own command line; the tag must reach it
        // as written.
        let mut child = Command::new("cmd.exe")
            .raw_arg(format!("/c ping -n 3 127.0.0.1 >nul & rem {tag}"))
            .spawn()
            .unwrap();
        let found = find(&mut scanner, child.id());
        child.wait().unwrap();
        // The table keys: the child's and this process's creation times.
        let me = open_process(std::process::id(), PROCESS_QUERY_LIMITED_INFORMATION).unwrap();
        let my_start = creation_ticks(&me).unwrap() * 100;
        assert_eq!(found.parent_start_ns, my_start);
        assert!(
            found.start_ns >= my_start,
            "{} < {my_start}",
            found.start_ns
        );
        let ev = found.ev;
        let cmd = String::from_utf8(ev.command_line.clone().unwrap()).unwrap();
        assert!(cmd.contains(&tag), "{cmd}");
        assert_eq!(ev.ppid, Some(std::process::id()));
        let exe = String::from_utf8(ev.exe.clone().unwrap()).unwrap();
        assert!(exe.to_ascii_lowercase().ends_with("\\cmd.exe"), "{exe}");
        assert!(ev.process_start.is_some());
        assert!(
            ev.user.as_deref().is_some_and(|u| u.contains('\\')),
            "{:?}",
            ev.user
        );
        let Some(Privileges::Windows(tok)) = &ev.privileges else {
            panic!("no token: {:?}", ev.incomplete);
        };
        assert!(
            tok.enabled_names().contains(&"SeChangeNotifyPrivilege"),
            "{:?}",
            tok.privileges
        );
        assert!(tok.integrity.is_some());
        let fields: Vec<&str> = ev.incomplete.iter().map(|i| i.field).collect();
        assert_eq!(
            fields,
            ["argv", "tid", "exec_tid", "filename", "cwd", "comm"],
            "{:?}",
            ev.incomplete
        );
        // Seen once: the next scan knows it.
        let mut again = 0;
        scanner
            .scan(&mut |f| again += usize::from(f.ev.pid == child.id()))
            .unwrap();
        assert_eq!(again, 0);
    }

    #[test]
    fn processes_running_at_start_are_not_reported() {
        let me = std::process::id();
        let mut scanner = Scanner::new().unwrap();
        let mut mine = 0;
        scanner
            .scan(&mut |f| mine += usize::from(f.ev.pid == me))
            .unwrap();
        assert_eq!(mine, 0);
        assert!(list().unwrap().iter().any(|p| p.pid == me));
    }
}
