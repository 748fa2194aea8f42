//! Turns what a late source observed in `/proc` into an [`ExecEvent`].
//!
//! The rule is that nothing is guessed: a field that could not be read is
//! `None` and named in `incomplete` with the reason, and facts that `/proc`
//! cannot tell at all (the filename passed to execve, the calling thread,
//! the kernel's secureexec decision) are always listed.

use crate::event::{ExecEvent, Privileges};
use crate::linux::clock::SyncedClock;

use super::Item;
use super::observed::Observed;
use crate::linux::proc_reader::{Failure, Snapshot, ticks_to_boot_ns};

/// argv beyond this many bytes is cut, as the eBPF source does, so every
/// source yields events of comparable size.
pub const ARGV_LIMIT: usize = 16 * 1024;

/// Fields that no `/proc`-based source can provide.
/// (`cgroup_id`: `/proc` gives the cgroup's path, not its id;
/// `exe_mnt_id`: not read from `/proc`.)
pub const NEVER_AVAILABLE: &[&str] = &[
    "exec_tid",
    "filename",
    "interpreter",
    "secureexec",
    "cgroup_id",
    "exe_mnt_id",
];

/// Everything the conversion needs besides the observation.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub clock: SyncedClock,
    /// Clock ticks per second (`stat` start times).
    pub hz: u64,
}

/// A readable explanation for a `/proc` read failure.
fn reason(f: Failure) -> String {
    let why = match f {
        Failure::Exited => "the process exited before it was read",
        Failure::Zombie => "the process had exited (zombie) before it was read",
        Failure::Denied => "permission denied reading /proc",
        Failure::Reused => "the pid was reused by another process before it was read",
        Failure::Changed => "the process exec'd again while it was read",
        Failure::KernelThread => "kernel threads have none",
        Failure::Malformed => "unexpected /proc content",
        Failure::Io => "I/O error reading /proc",
    };
    format!("{}: {why}", f.as_str())
}

/// The pipeline item for one observation, with the process-table keys: the
/// process's and its parent's start times (boot ns, tick resolution; 0
/// when unknown).
pub fn to_item(ob: &Observed, cx: &Context) -> Item {
    let start_ns = ob
        .snap
        .as_ref()
        .map_or(0, |s| ticks_to_boot_ns(s.stat.start_ticks, cx.hz));
    Item::Exec {
        ev: Box::new(to_event(ob, cx)),
        start_ns,
        parent_start_ns: ob
            .parent_start_ticks
            .map_or(0, |t| ticks_to_boot_ns(t, cx.hz)),
    }
}

/// The event for one observation.
pub fn to_event(ob: &Observed, cx: &Context) -> ExecEvent {
    let boot_ns = ob.exec_boot_ns.unwrap_or(ob.seen_boot_ns);
    let snap = ob.snap.as_ref().ok().filter(|_| !ob.superseded);
    let ppid = ob
        .ppid
        .or_else(|| ob.snap.as_ref().ok().map(|s| s.stat.ppid));
    let mut ev = ExecEvent::new(
        cx.clock.to_wall(boot_ns),
        ob.pid,
        ppid,
        format!("{}:{boot_ns}", ob.pid),
    );
    // After execve the calling thread has become the group leader.
    ev.tid = Some(ob.pid);
    for f in NEVER_AVAILABLE {
        if *f != "secureexec" {
            ev.mark_incomplete(f, "not visible in /proc");
        }
    }
    if ppid.is_none() {
        ev.mark_incomplete("ppid", "the process exited before its parent was known");
    }
    match snap {
        Some(s) => fill_from(&mut ev, s, cx),
        None => {
            let why = if ob.superseded {
                "superseded: the process exec'd again before it was read".to_string()
            } else {
                reason(*ob.snap.as_ref().err().unwrap_or(&Failure::Io))
            };
            for f in [
                "argv",
                "exe",
                "cwd",
                "comm",
                "process_start",
                "caps",
                "credentials",
            ] {
                ev.mark_incomplete(f, why.clone());
            }
        }
    }
    ev
}

/// Fills the fields a snapshot has; lists the ones it lacks.
fn fill_from(ev: &mut ExecEvent, s: &Snapshot, cx: &Context) {
    ev.process_start = Some(
        cx.clock
            .to_wall(ticks_to_boot_ns(s.stat.start_ticks, cx.hz)),
    );
    ev.comm = Some(s.stat.comm.clone());
    match &s.cmdline {
        Ok(c) => {
            let mut argv = Vec::new();
            let mut used = 0usize;
            for a in &c.argv {
                if used + a.len() + 1 > ARGV_LIMIT {
                    ev.argv_truncated = true;
                    argv.push(a[..ARGV_LIMIT.saturating_sub(used).min(a.len())].to_vec());
                    break;
                }
                used += a.len() + 1;
                argv.push(a.clone());
            }
            ev.argv = Some(argv);
            ev.argv_size = Some(c.size);
        }
        Err(f) => ev.mark_incomplete("argv", reason(*f)),
    }
    match &s.exe {
        Ok(e) => ev.exe = Some(e.clone()),
        Err(f) => ev.mark_incomplete("exe", reason(*f)),
    }
    // The executable as this read saw it, through the process's own
    // /proc/<pid>/exe: the exe hash is checked against it, so it can only
    // be of this inode, unchanged since this read.
    if let Some(k) = s.exe_key {
        ev.exe_dev_ino = Some((k.dev, k.ino));
        ev.exe_stamp = Some(k.stamp);
    }
    match &s.cwd {
        Ok(c) => ev.cwd = Some(c.clone()),
        Err(f) => ev.mark_incomplete("cwd", reason(*f)),
    }
    fill_ns(ev, s);
    let status = match &s.status {
        Ok(st) => st,
        Err(f) => {
            ev.mark_incomplete("caps", reason(*f));
            ev.mark_incomplete("credentials", reason(*f));
            return;
        }
    };
    let mut creds = status.creds.clone();
    match (&s.login_uid, &s.session_id) {
        (Ok(l), Ok(sid)) => {
            creds.login_uid = *l;
            creds.session_id = *sid;
        }
        (Err(f), _) | (_, Err(f)) => ev.mark_incomplete("login_uid", reason(*f)),
    }
    let file = s.file.as_ref().ok().copied();
    if let Err(f) = &s.file {
        ev.mark_incomplete("file", reason(*f));
    }
    // Credentials are read after exec: a program that already dropped what
    // the exec gave it cannot be recognised, so "none" is unknown. Enrichment
    // decides the raise from these facts and drops the mark if it finds one.
    ev.mark_incomplete(
        "privilege_raised",
        "credentials were read after the exec, not at it",
    );
    ev.mark_incomplete("secureexec", "not visible in /proc");
    ev.privileges = Some(Privileges::Linux {
        creds,
        caps: status.caps,
        secureexec: None,
        file,
        raised: None,
    });
}

/// The namespace fields, as `/proc` showed them when it was read.
fn fill_ns(ev: &mut ExecEvent, s: &Snapshot) {
    match &s.ns.namespaces {
        Ok(n) => ev.ns.namespaces = Some(*n),
        Err(f) => ev.mark_incomplete("namespaces", reason(*f)),
    }
    match s.ns_pid {
        Ok((pid, level)) => {
            ev.ns.ns_pid = Some(pid);
            ev.ns.pidns_level = Some(level);
        }
        Err(f) => ev.mark_incomplete("ns_pid", reason(f)),
    }
    match s.ns.user_ns {
        Ok(u) => ev.ns.user_ns = Some(u),
        Err(f) => ev.mark_incomplete("in_host_userns", reason(f)),
    }
    match &s.ns.cgroup_path {
        Ok(p) => ev.ns.cgroup_path = Some(p.clone()),
        Err(f) => ev.mark_incomplete("cgroup_path", reason(*f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::proc_reader::ProcDir;

    fn cx() -> Context {
        Context {
            clock: crate::linux::clock::BootClock::with_offset_ns(0).into(),
            hz: 100,
        }
    }

    fn observed(snap: Result<Snapshot, Failure>) -> Observed {
        Observed {
            pid: 4242,
            exec_boot_ns: Some(7),
            seen_boot_ns: 9,
            ppid: Some(1),
            snap,
            superseded: false,
            exec_without_fork: false,
            parent_start_ticks: None,
        }
    }

    fn fields(ev: &ExecEvent) -> Vec<&'static str> {
        ev.incomplete.iter().map(|i| i.field).collect()
    }

    #[test]
    fn exited_process_is_incomplete_not_guessed() {
        let ev = to_event(&observed(Err(Failure::Exited)), &cx());
        assert_eq!(ev.pid, 4242);
        assert_eq!(ev.ppid, Some(1));
        assert_eq!(ev.exec_id, "4242:7");
        assert!(ev.argv.is_none() && ev.exe.is_none() && ev.privileges.is_none());
        for f in ["argv", "exe", "caps", "filename", "exec_tid", "comm"] {
            assert!(
                fields(&ev).contains(&f),
                "{f} not listed: {:?}",
                fields(&ev)
            );
        }
        let argv = ev.incomplete.iter().find(|i| i.field == "argv").unwrap();
        assert!(argv.reason.starts_with("exited:"), "{}", argv.reason);
    }

    #[test]
    fn unknown_parent_is_listed() {
        let mut ob = observed(Err(Failure::Reused));
        ob.ppid = None;
        let ev = to_event(&ob, &cx());
        assert!(fields(&ev).contains(&"ppid"));
        assert_eq!(ev.ppid, None, "null, not a made-up 0");
    }

    #[test]
    fn live_process_fills_fields() {
        let dir = ProcDir::open("/proc", std::process::id()).unwrap();
        let snap = dir.snapshot(None).unwrap();
        let mut ob = observed(Ok(snap));
        ob.exec_boot_ns = None;
        let ev = to_event(&ob, &cx());
        assert_eq!(ev.exec_id, "4242:9");
        assert!(ev.argv.as_ref().is_some_and(|a| !a.is_empty()));
        assert!(ev.exe.is_some() && ev.cwd.is_some() && ev.comm.is_some());
        assert!(ev.linux_creds().is_some());
        assert!(!fields(&ev).contains(&"argv"));
        assert!(fields(&ev).contains(&"filename"));
    }

    #[test]
    fn superseded_keeps_nothing_from_proc() {
        let dir = ProcDir::open("/proc", std::process::id()).unwrap();
        let mut ob = observed(Ok(dir.snapshot(None).unwrap()));
        ob.superseded = true;
        let ev = to_event(&ob, &cx());
        assert!(ev.argv.is_none() && ev.comm.is_none());
        let argv = ev.incomplete.iter().find(|i| i.field == "argv").unwrap();
        assert!(argv.reason.starts_with("superseded"), "{}", argv.reason);
    }

    #[test]
    fn long_argv_is_cut_and_flagged() {
        let dir = ProcDir::open("/proc", std::process::id()).unwrap();
        let mut snap = dir.snapshot(None).unwrap();
        let big = vec![b'x'; 10_000];
        snap.cmdline = Ok(crate::linux::proc_reader::Cmdline {
            argv: vec![big.clone(), big.clone(), big],
            size: 30_003,
        });
        let ev = to_event(&observed(Ok(snap)), &cx());
        let argv = ev.argv.unwrap();
        assert!(ev.argv_truncated);
        assert_eq!(ev.argv_size, Some(30_003));
        assert_eq!(argv.len(), 2);
        assert_eq!(argv[0].len() + 1 + argv[1].len(), ARGV_LIMIT);
    }
}
