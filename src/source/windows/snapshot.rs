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

/// Keeps the previous list and reports what is new in the next.
pub struct Scanner {
    known: HashMap<u32, Key>,
    /// Processes still being created, and for how many scans.
    settling: HashMap<u32, u8>,
}

impl Scanner {
    /// Takes the first list: the processes already running are known, not
    /// reported.
    pub fn new() -> Result<Self, String> {
        let mut s = Scanner {
            known: HashMap::new(),
            settling: HashMap::new(),
        };
        s.scan_with(&mut |_| {})?;
        Ok(s)
    }

    /// Lists the processes and hands each new one, read at once, to `out`.
    pub fn scan(&mut self, out: &mut dyn FnMut(ExecEvent)) -> Result<(), String> {
        self.scan_with(out)
    }

    fn scan_with(&mut self, out: &mut dyn FnMut(ExecEvent)) -> Result<(), String> {
        let now = SystemTime::now();
        let now_ticks = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| (d.as_nanos() / 100) as u64 + FILETIME_UNIX_OFFSET);
        let mut next = HashMap::with_capacity(self.known.len() + 16);
        let mut settling = HashMap::new();
        for p in list()? {
            let opened = open_process(p.pid, PROCESS_QUERY_LIMITED_INFORMATION);
            let created = opened.as_ref().ok().and_then(|h| creation_ticks(h).ok());
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
            let same =
                old == Some(&key) || (created.is_none() && matches!(old, Some(Key::Created(_))));
            if same {
                next.insert(p.pid, old.cloned().unwrap_or(key));
                continue;
            }
            if created.is_some_and(|t| t > now_ticks + FUTURE_SLACK_TICKS) {
                let scans = self.settling.get(&p.pid).copied().unwrap_or(0) + 1;
                if scans < SETTLE_SCANS {
                    // Neither known nor reported: the next scan looks again.
                    settling.insert(p.pid, scans);
                    continue;
                }
            }
            out(read_new(&p, opened, created, now));
            next.insert(p.pid, key);
        }
        self.known = next;
        self.settling = settling;
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

#[cfg(all(test, windows))]
mod tests {
    use super::*;
    use crate::event::Privileges;
    use std::os::windows::process::CommandExt;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Scans until an event for `pid` arrives, for at most 20 s.
    fn find(scanner: &mut Scanner, pid: u32) -> ExecEvent {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut found = None;
            scanner
                .scan(&mut |ev| {
                    if ev.pid == pid {
                        found = Some(ev);
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
        let ev = find(&mut scanner, child.id());
        child.wait().unwrap();
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
            .scan(&mut |ev| again += usize::from(ev.pid == child.id()))
            .unwrap();
        assert_eq!(again, 0);
    }

    #[test]
    fn processes_running_at_start_are_not_reported() {
        let me = std::process::id();
        let mut scanner = Scanner::new().unwrap();
        let mut mine = 0;
        scanner
            .scan(&mut |ev| mine += usize::from(ev.pid == me))
            .unwrap();
        assert_eq!(mine, 0);
        assert!(list().unwrap().iter().any(|p| p.pid == me));
    }
}
