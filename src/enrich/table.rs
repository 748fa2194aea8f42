//! The process table: what procwatch knows about every process, so an exec
//! can carry its parent and ancestry even when the parent has exited.
//!
//! A process is identified by (pid, start time), never by pid alone, so a
//! reused pid cannot be mistaken for the old process. Each process points
//! to the image it runs (exe, argv, user, privileges of its last exec,
//! identified by `exec_id`) and keeps, from its fork, a snapshot of its
//! parent's image: that snapshot is what an exec reports as `parent`, and it
//! survives the parent's exit and later execs.
//!
//! Memory is bounded: exited processes linger briefly (late records may
//! still refer to them) and are then expired; the table has a hard cap; a
//! periodic sweep drops processes whose exit record was lost.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use crate::linux::proc_reader;

use super::names::NameCache;
use crate::event::{
    Bytes, ChangeCause, ExecEvent, Exit, ExitEvent, Fork, ParentInfo, PrivilegeChange,
    PrivilegeRaise, Privileges, ProcKey, ProcessImage,
};
use crate::linux::id_hash::IdMap;

/// How many ancestors an exec lists at most.
pub const MAX_ANCESTORS: usize = 16;
/// How long an exited process stays in the table.
const LINGER: Duration = Duration::from_secs(10);

/// A parent process and its image at the moment of the fork.
type Snapshot = (ProcKey, Arc<ProcessImage>);

#[derive(Debug)]
struct Proc {
    image: Arc<ProcessImage>,
    /// Whether `image` comes from this process's own exec (or the initial
    /// scan), rather than inherited at fork.
    own_image: bool,
    /// The forking process, and its image at the moment of the fork.
    parent: Option<Snapshot>,
    exited: bool,
    /// Whether the filters showed this process's exec (exits follow it).
    shown: bool,
}

/// What [`ProcessTable::exit`] knew about the process that ended.
#[derive(Debug, Default)]
pub struct Exited {
    /// The image of the process's own exec, if procwatch saw one.
    pub image: Option<Arc<ProcessImage>>,
    /// Whether the filters showed that exec (exits follow it).
    pub shown: bool,
}

impl Exited {
    /// The exit event of `x` (`--exits`).
    pub fn event(&self, x: &Exit) -> ExitEvent {
        let (exit_code, signal) = match x.status & 0x7f {
            0 => (Some(((x.status >> 8) & 0xff) as i32), None),
            sig => (None, Some(sig as i32)),
        };
        ExitEvent {
            time: x.time,
            pid: x.key.pid,
            ppid: x.ppid,
            exec_id: self.image.as_ref().and_then(|i| i.exec_id.clone()),
            exit_code,
            signal,
            core_dumped: signal.is_some() && x.status & 0x80 != 0,
            lifetime: Some(x.lifetime),
            comm: Some(x.comm.clone()),
        }
    }
}

/// Counters for the README's memory figure and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub processes: usize,
    pub evicted_for_cap: u64,
    pub swept: u64,
}

/// The table itself. Owned by the writer thread; no locking.
pub struct ProcessTable {
    procs: IdMap<ProcKey, Proc>,
    /// The live process currently holding each pid.
    by_pid: IdMap<u32, ProcKey>,
    /// Exited processes, oldest first, for expiry.
    exited: VecDeque<(Instant, ProcKey)>,
    cap: usize,
    /// Start times from /proc have clock-tick resolution; keys of processes
    /// found by the initial scan are rounded down to a tick.
    ns_per_tick: u64,
    last_sweep: Instant,
    stats: TableStats,
}

impl ProcessTable {
    /// An empty table holding at most `cap` processes.
    pub fn new(cap: usize) -> Self {
        ProcessTable {
            procs: IdMap::default(),
            by_pid: IdMap::default(),
            exited: VecDeque::new(),
            cap: cap.max(16),
            ns_per_tick: ns_per_tick(),
            last_sweep: Instant::now(),
            stats: TableStats::default(),
        }
    }

    /// Without /proc (Windows) there is no initial scan: the table fills
    /// from events, and parents started before procwatch stay unknown.
    #[cfg(not(target_os = "linux"))]
    pub fn seed_from_proc(&mut self, _names: &mut NameCache) {}

    /// Fills the table from /proc: every process running now. `names`
    /// names their users once, here, so their images never need a copy.
    #[cfg(target_os = "linux")]
    pub fn seed_from_proc(&mut self, names: &mut NameCache) {
        let mut parents = Vec::new();
        for pid in proc_reader::pids("/proc") {
            // A process may vanish while we read it: skip it, nothing to guess.
            let Some(mut seed) = seed(pid) else {
                continue;
            };
            seed.image.user = seed.image.euid.and_then(|u| names.user(u));
            let key = ProcKey {
                pid,
                start_ns: seed.start_ticks * self.ns_per_tick,
            };
            parents.push((key, seed.ppid));
            self.insert(
                key,
                Proc {
                    image: Arc::new(seed.image),
                    own_image: true,
                    parent: None,
                    exited: false,
                    shown: true,
                },
            );
        }
        // Second pass: parents are in the table now.
        for (key, ppid) in parents {
            let parent = self
                .by_pid
                .get(&ppid)
                .copied()
                .and_then(|pk| self.procs.get(&pk).map(|p| (pk, Arc::clone(&p.image))));
            if let Some(p) = self.procs.get_mut(&key) {
                p.parent = parent;
            }
        }
    }

    fn insert(&mut self, key: ProcKey, proc: Proc) {
        if self.procs.len() >= self.cap && !self.procs.contains_key(&key) {
            self.make_room();
        }
        self.by_pid.insert(key.pid, key);
        self.procs.insert(key, proc);
    }

    /// Frees one slot: the oldest exited process, or else any entry.
    fn make_room(&mut self) {
        while let Some((_, key)) = self.exited.pop_front() {
            if self.remove(key) {
                self.stats.evicted_for_cap += 1;
                return;
            }
        }
        if let Some(&key) = self.procs.keys().next() {
            self.remove(key);
            self.stats.evicted_for_cap += 1;
        }
    }

    fn remove(&mut self, key: ProcKey) -> bool {
        if self.procs.remove(&key).is_none() {
            return false;
        }
        if self.by_pid.get(&key.pid) == Some(&key) {
            self.by_pid.remove(&key.pid);
        }
        true
    }

    /// Finds a process by its exact key, or by a key from the initial scan
    /// (tick resolution).
    fn find(&self, key: ProcKey) -> Option<ProcKey> {
        if self.procs.contains_key(&key) {
            return Some(key);
        }
        let rounded = ProcKey {
            pid: key.pid,
            start_ns: key.start_ns - key.start_ns % self.ns_per_tick,
        };
        self.procs.contains_key(&rounded).then_some(rounded)
    }

    /// A new process: it runs its parent's image until it execs.
    pub fn fork(&mut self, f: Fork) {
        let parent = self
            .find(f.parent)
            .and_then(|pk| self.procs.get(&pk).map(|p| (pk, Arc::clone(&p.image))));
        let image = parent.as_ref().map_or_else(
            || Arc::new(ProcessImage::default()),
            |(_, img)| Arc::clone(img),
        );
        self.insert(
            f.child,
            Proc {
                image,
                own_image: false,
                parent,
                exited: false,
                shown: false,
            },
        );
    }

    /// Fills `parent`, `ancestors` and `privilege_change` of an exec and
    /// makes sure its process is in the table; returns the process's key
    /// for [`commit_exec`](Self::commit_exec), which records the exec as
    /// the new image once the event is written. `start_ns` and
    /// `parent_start_ns` are the kernel's start times of the process and of
    /// its real parent (for when the fork was not seen).
    pub fn exec(&mut self, ev: &mut ExecEvent, start_ns: u64, parent_start_ns: u64) -> ProcKey {
        let key = ProcKey {
            pid: ev.pid,
            start_ns,
        };
        let known = self.find(key);
        // The program that called execve: the process's current image (its
        // own earlier exec, or what it inherited at fork).
        let (parent, caller): (Option<Snapshot>, Option<Arc<ProcessImage>>) =
            match known.and_then(|k| self.procs.get(&k)) {
                Some(p) => (p.parent.clone(), Some(Arc::clone(&p.image))),
                None => {
                    // Fork not seen: fall back to the live real parent, if it
                    // is the same process the kernel named.
                    let parent = ev
                        .ppid
                        .map(|pid| ProcKey {
                            pid,
                            start_ns: parent_start_ns,
                        })
                        .and_then(|pk| self.find(pk))
                        .and_then(|pk| self.procs.get(&pk).map(|p| (pk, Arc::clone(&p.image))));
                    let caller = parent.as_ref().map(|(_, img)| Arc::clone(img));
                    (parent, caller)
                }
            };
        match &parent {
            Some((pk, img)) => {
                ev.parent = Some(ParentInfo {
                    pid: pk.pid,
                    image: Arc::clone(img),
                });
                ev.ancestors = self.ancestors(*pk);
            }
            None => ev.mark_incomplete("parent", "procwatch never saw the parent process"),
        }
        ev.privilege_change = privilege_change(ev, caller.as_deref());
        match known {
            Some(k) => k,
            None => {
                self.insert(
                    key,
                    Proc {
                        image: Arc::new(ProcessImage::default()),
                        own_image: false,
                        parent,
                        exited: false,
                        shown: false,
                    },
                );
                key
            }
        }
    }

    /// Records an exec as its process's image, moving the exec's exe, argv,
    /// user and id out of `ev` (no copies: call it once the event has been
    /// written, or filtered out). `key` is what [`exec`](Self::exec)
    /// returned; `shown` whether the filters showed the exec.
    pub fn commit_exec(&mut self, key: ProcKey, ev: &mut ExecEvent, shown: bool) {
        let Some(p) = self.procs.get_mut(&key) else {
            return;
        };
        let (euid, caps_effective) = match &ev.privileges {
            Some(Privileges::Linux { creds, caps, .. }) => (Some(creds.euid), Some(caps.effective)),
            Some(Privileges::Windows(_)) | None => (None, None),
        };
        p.image = Arc::new(ProcessImage {
            exec_id: Some(std::mem::take(&mut ev.exec_id)),
            exe: ev.exe.take(),
            argv: ev.argv.take(),
            user: ev.user.take(),
            euid,
            caps_effective,
        });
        p.own_image = true;
        p.shown = shown;
    }

    /// Exe paths from the process `from` up its chain of forking parents,
    /// up to the first one whose exe is unknown.
    fn ancestors(&self, from: ProcKey) -> Vec<Arc<ProcessImage>> {
        let mut out = Vec::new();
        let mut cur = Some(from);
        while let Some(key) = cur {
            if out.len() >= MAX_ANCESTORS {
                break;
            }
            let Some(p) = self.procs.get(&key) else {
                break;
            };
            // Stop at an ancestor whose exe is unknown rather than invent one.
            if p.image.exe.is_none() {
                break;
            }
            out.push(Arc::clone(&p.image));
            cur = p.parent.as_ref().map(|(k, _)| *k).filter(|k| *k != key);
        }
        out
    }

    /// Marks a process as exited; returns what the table knew of it (for
    /// its exit event, built only when wanted: [`Exited::event`]).
    pub fn exit(&mut self, x: &Exit) -> Exited {
        let found = self.find(x.key);
        let exited = match found.and_then(|k| self.procs.get_mut(&k)) {
            Some(p) => {
                p.exited = true;
                Exited {
                    image: p.own_image.then(|| Arc::clone(&p.image)),
                    shown: p.shown,
                }
            }
            None => Exited::default(),
        };
        if let Some(k) = found {
            if self.by_pid.get(&k.pid) == Some(&k) {
                self.by_pid.remove(&k.pid);
            }
            self.exited.push_back((Instant::now(), k));
        }
        exited
    }

    /// Expires exited processes and, every 30 s, drops processes that are
    /// gone from /proc (their exit record was lost). Call regularly.
    pub fn maintain(&mut self) {
        let now = Instant::now();
        while let Some(&(t, key)) = self.exited.front() {
            if now.duration_since(t) < LINGER {
                break;
            }
            self.exited.pop_front();
            self.remove(key);
        }
        if now.duration_since(self.last_sweep) >= Duration::from_secs(30) {
            self.last_sweep = now;
            let gone: Vec<ProcKey> = self
                .by_pid
                .values()
                .copied()
                .filter(|k| !std::path::Path::new(&format!("/proc/{}", k.pid)).exists())
                .collect();
            for k in gone {
                self.by_pid.remove(&k.pid);
                self.exited.push_back((now, k));
                self.stats.swept += 1;
            }
        }
        self.stats.processes = self.procs.len();
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            processes: self.procs.len(),
            ..self.stats
        }
    }
}

/// More privilege than before: euid 0 from non-zero, or new effective
/// capabilities. The exec's own file bits are judged against the
/// credentials just before the exec (`pre_exec`); otherwise the new program
/// is compared with the program that called execve (`caller`), and a gain
/// without a file bit is the launcher's doing (sudo, su, setpriv, cron...).
/// `None` when there is no gain or nothing to compare with.
fn privilege_change(ev: &ExecEvent, caller: Option<&ProcessImage>) -> Option<PrivilegeChange> {
    let Some(Privileges::Linux {
        creds,
        caps,
        raised,
        ..
    }) = &ev.privileges
    else {
        return None;
    };
    let (to_euid, to_caps) = (creds.euid, caps.effective);
    let gain = |from_euid: u32, from_caps: u64| {
        (to_euid == 0 && from_euid != 0) || to_caps & !from_caps != 0
    };
    let file_cause = raised.map(|r| match r {
        PrivilegeRaise::Setuid => ChangeCause::Setuid,
        PrivilegeRaise::Setgid => ChangeCause::Setgid,
        PrivilegeRaise::FileCaps => ChangeCause::FileCaps,
    });
    let change = |cause: ChangeCause, from_euid: u32, from_caps: u64, launcher: Option<Bytes>| {
        PrivilegeChange {
            cause,
            from_euid,
            from_caps,
            to_euid,
            gained_caps: to_caps & !from_caps,
            launcher,
        }
    };
    if let (Some(cause), Some(pre)) = (file_cause, ev.pre_exec)
        && gain(pre.euid, pre.caps_effective)
    {
        return Some(change(cause, pre.euid, pre.caps_effective, None));
    }
    let img = caller?;
    let (from_euid, from_caps) = (img.euid?, img.caps_effective?);
    if !gain(from_euid, from_caps) {
        return None;
    }
    Some(match file_cause {
        // No pre-exec credentials: the file bit still explains the gain.
        Some(cause) if ev.pre_exec.is_none() => change(cause, from_euid, from_caps, None),
        _ => change(ChangeCause::Launcher, from_euid, from_caps, img.exe.clone()),
    })
}

/// The clock tick, the resolution of /proc start times.
#[cfg(target_os = "linux")]
fn ns_per_tick() -> u64 {
    1_000_000_000 / proc_reader::ticks_per_second()
}

/// No /proc scan elsewhere, so keys are never rounded.
#[cfg(not(target_os = "linux"))]
fn ns_per_tick() -> u64 {
    1
}

/// What the initial scan keeps of one running process.
#[cfg(target_os = "linux")]
struct Seed {
    image: ProcessImage,
    ppid: u32,
    start_ticks: u64,
}

/// Reads one process for the initial scan, through the shared /proc reader;
/// `None` when it vanished or is a kernel thread. Unreadable fields stay
/// unknown.
#[cfg(target_os = "linux")]
fn seed(pid: u32) -> Option<Seed> {
    let snap = proc_reader::ProcDir::open("/proc", pid)
        .ok()?
        .snapshot(None)
        .ok()?;
    if snap.stat.is_kernel_thread() {
        return None;
    }
    let status = snap.status.ok();
    Some(Seed {
        image: ProcessImage {
            exec_id: None,
            exe: snap.exe.ok(),
            argv: snap.cmdline.ok().map(|c| c.argv),
            user: None,
            euid: status.as_ref().map(|s| s.creds.euid),
            caps_effective: status.as_ref().map(|s| s.caps.effective),
        },
        ppid: snap.stat.ppid,
        start_ticks: snap.stat.start_ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CapSets, Credentials};
    use std::time::SystemTime;

    /// An exec as the writer does it: related, then committed (with a
    /// copy, so the test can still look at the event).
    fn run_exec(t: &mut ProcessTable, ev: &mut ExecEvent, start_ns: u64, parent_start_ns: u64) {
        let k = t.exec(ev, start_ns, parent_start_ns);
        t.commit_exec(k, &mut ev.clone(), true);
    }

    fn exes(ancestors: &[Arc<ProcessImage>]) -> Vec<Bytes> {
        ancestors.iter().map(|a| a.exe.clone().unwrap()).collect()
    }

    fn key(pid: u32, start_ns: u64) -> ProcKey {
        ProcKey { pid, start_ns }
    }

    fn exec_event(
        pid: u32,
        ppid: u32,
        exe: &str,
        euid: u32,
        caps: u64,
        raised: Option<PrivilegeRaise>,
    ) -> ExecEvent {
        let mut ev = ExecEvent::new(SystemTime::now(), pid, Some(ppid), format!("{pid}:{exe}"));
        ev.exe = Some(exe.as_bytes().to_vec());
        ev.argv = Some(vec![exe.as_bytes().to_vec()]);
        ev.privileges = Some(Privileges::Linux {
            creds: Credentials {
                euid,
                uid: euid,
                ..Credentials::default()
            },
            caps: CapSets {
                effective: caps,
                permitted: caps,
                ..CapSets::default()
            },
            secureexec: None,
            file: None,
            raised,
        });
        ev
    }

    #[test]
    fn parent_snapshot_survives_parent_exit_and_reexec() {
        let mut t = ProcessTable::new(100);
        let mut a = exec_event(10, 1, "/bin/bash", 1000, 0, None);
        run_exec(&mut t, &mut a, 100, 1);
        t.fork(Fork {
            child: key(11, 200),
            parent: key(10, 100),
        });
        // The parent execs something else, then exits.
        let mut a2 = exec_event(10, 1, "/usr/bin/other", 1000, 0, None);
        run_exec(&mut t, &mut a2, 100, 1);
        let x = Exit {
            key: key(10, 100),
            ppid: 1,
            time: SystemTime::now(),
            status: 0,
            comm: b"other".to_vec(),
            lifetime: Duration::from_secs(1),
        };
        t.exit(&x);
        let mut b = exec_event(11, 1, "/bin/true", 1000, 0, None);
        run_exec(&mut t, &mut b, 200, 0);
        let p = b.parent.expect("parent known");
        assert_eq!(p.pid, 10);
        assert_eq!(
            p.exe.as_deref(),
            Some(&b"/bin/bash"[..]),
            "the parent as it was at fork"
        );
        assert_eq!(p.exec_id.as_deref(), Some("10:/bin/bash"));
        assert!(b.incomplete.is_empty());
    }

    #[test]
    fn reused_pid_is_not_confused() {
        let mut t = ProcessTable::new(100);
        let mut old = exec_event(20, 1, "/usr/sbin/cron", 0, !0 >> 23, None);
        run_exec(&mut t, &mut old, 100, 1);
        t.exit(&Exit {
            key: key(20, 100),
            ppid: 1,
            time: SystemTime::now(),
            status: 0,
            comm: vec![],
            lifetime: Duration::ZERO,
        });
        // A new process gets pid 20 again, forked by an unprivileged shell.
        let mut sh = exec_event(30, 1, "/bin/sh", 1000, 0, None);
        run_exec(&mut t, &mut sh, 50, 1);
        t.fork(Fork {
            child: key(20, 900),
            parent: key(30, 50),
        });
        let mut child = exec_event(21, 20, "/bin/true", 1000, 0, None);
        // Its child's fork names pid 20 with the NEW start time.
        t.fork(Fork {
            child: key(21, 950),
            parent: key(20, 900),
        });
        run_exec(&mut t, &mut child, 950, 900);
        let p = child.parent.unwrap();
        assert_eq!(p.exe.as_deref(), Some(&b"/bin/sh"[..]), "not the old cron");
        // And a lookup with the old start time finds nothing live.
        let mut orphan = exec_event(22, 20, "/bin/true", 1000, 0, None);
        run_exec(&mut t, &mut orphan, 990, 123);
        assert!(orphan.parent.is_none());
        assert_eq!(orphan.incomplete[0].field, "parent");
    }

    #[test]
    fn ancestors_chain_is_bounded_and_ordered() {
        let mut t = ProcessTable::new(1000);
        let mut prev = key(1, 1);
        let mut init = exec_event(1, 0, "/sbin/init", 0, 0, None);
        run_exec(&mut t, &mut init, 1, 0);
        for i in 2..40u32 {
            let k = key(i, i as u64 * 10);
            t.fork(Fork {
                child: k,
                parent: prev,
            });
            let mut e = exec_event(i, prev.pid, &format!("/bin/p{i}"), 0, 0, None);
            run_exec(&mut t, &mut e, k.start_ns, prev.start_ns);
            if i == 4 {
                assert_eq!(
                    exes(&e.ancestors),
                    vec![
                        b"/bin/p3".to_vec(),
                        b"/bin/p2".to_vec(),
                        b"/sbin/init".to_vec()
                    ]
                );
            }
            if i == 39 {
                assert_eq!(e.ancestors.len(), MAX_ANCESTORS);
                assert_eq!(exes(&e.ancestors)[0], b"/bin/p38");
            }
            prev = k;
        }
    }

    #[test]
    fn privilege_change_causes() {
        let mut t = ProcessTable::new(100);
        let mut shell = exec_event(40, 1, "/bin/bash", 1000, 0, None);
        run_exec(&mut t, &mut shell, 400, 1);
        t.fork(Fork {
            child: key(41, 410),
            parent: key(40, 400),
        });
        let mut sudo = exec_event(
            41,
            40,
            "/usr/bin/sudo",
            0,
            0x1ff_ffff_ffff,
            Some(PrivilegeRaise::Setuid),
        );
        run_exec(&mut t, &mut sudo, 410, 400);
        let c = sudo.privilege_change.clone().unwrap();
        assert_eq!(
            (c.cause, c.from_euid, c.to_euid),
            (ChangeCause::Setuid, 1000, 0)
        );
        assert_eq!(c.gained_caps, 0x1ff_ffff_ffff);
        // sudo (root) runs a command as root: no more privilege than sudo.
        t.fork(Fork {
            child: key(42, 420),
            parent: key(41, 410),
        });
        let mut cmd = exec_event(42, 41, "/usr/bin/id", 0, 0x1ff_ffff_ffff, None);
        run_exec(&mut t, &mut cmd, 420, 410);
        assert!(cmd.privilege_change.is_none());
        // A capable launcher gives its child root without any file bit.
        let mut launcher = exec_event(50, 1, "/usr/bin/setpriv", 65534, 1 << 7, None);
        run_exec(&mut t, &mut launcher, 500, 1);
        t.fork(Fork {
            child: key(51, 510),
            parent: key(50, 500),
        });
        let mut child = exec_event(51, 50, "/bin/true", 0, 0x1ff_ffff_ffff, None);
        run_exec(&mut t, &mut child, 510, 500);
        let c = child.privilege_change.unwrap();
        assert_eq!(c.cause, ChangeCause::Launcher);
        assert_eq!(c.launcher.as_deref(), Some(&b"/usr/bin/setpriv"[..]));
        assert_eq!(c.gained_caps, 0x1ff_ffff_ffff & !(1 << 7));
    }

    #[test]
    fn file_bits_are_judged_against_the_credentials_before_exec() {
        use crate::event::PreExec;
        let mut t = ProcessTable::new(100);
        // A root launcher (setpriv) drops to nobody after its own exec, then
        // execs a setuid-root binary: the gain is 65534 -> 0 by the setuid bit.
        let mut setpriv = exec_event(70, 1, "/usr/bin/setpriv", 0, 0x1ff_ffff_ffff, None);
        run_exec(&mut t, &mut setpriv, 700, 1);
        let mut suid = exec_event(
            70,
            1,
            "/tmp/suid-true",
            0,
            0x1ff_ffff_ffff,
            Some(PrivilegeRaise::Setuid),
        );
        suid.pre_exec = Some(PreExec {
            uid: 65534,
            euid: 65534,
            caps_effective: 0,
        });
        run_exec(&mut t, &mut suid, 700, 1);
        let c = suid.privilege_change.unwrap();
        assert_eq!(
            (c.cause, c.from_euid, c.to_euid),
            (ChangeCause::Setuid, 65534, 0)
        );
        assert_eq!(c.launcher, None);
        // Dropping privileges and exec'ing a plain binary is no change.
        let mut plain = exec_event(71, 1, "/bin/true", 65534, 0, None);
        plain.pre_exec = Some(PreExec {
            uid: 65534,
            euid: 65534,
            caps_effective: 0,
        });
        t.fork(Fork {
            child: key(71, 710),
            parent: key(70, 700),
        });
        run_exec(&mut t, &mut plain, 710, 700);
        assert!(plain.privilege_change.is_none());
    }

    #[test]
    fn exits_decode_status_and_expire() {
        let mut t = ProcessTable::new(100);
        let mut e = exec_event(60, 1, "/bin/sleep", 0, 0, None);
        run_exec(&mut t, &mut e, 600, 1);
        let mk = |status| Exit {
            key: key(60, 600),
            ppid: 1,
            time: SystemTime::now(),
            status,
            comm: b"sleep".to_vec(),
            lifetime: Duration::from_millis(5),
        };
        let x = t.exit(&mk(3 << 8)).event(&mk(3 << 8));
        assert_eq!(
            (x.exit_code, x.signal, x.core_dumped),
            (Some(3), None, false)
        );
        assert_eq!(x.exec_id.as_deref(), Some("60:/bin/sleep"));
        let x = t.exit(&mk(9)).event(&mk(9));
        assert_eq!((x.exit_code, x.signal), (None, Some(9)));
        let x = t.exit(&mk(11 | 0x80)).event(&mk(11 | 0x80));
        assert_eq!((x.signal, x.core_dumped), (Some(11), true));
        assert_eq!(t.stats().processes, 1, "lingers after exit");
    }

    #[test]
    fn cap_bounds_memory() {
        let mut t = ProcessTable::new(50);
        for i in 0..500u32 {
            t.fork(Fork {
                child: key(i + 100, i as u64),
                parent: key(1, 1),
            });
            t.exit(&Exit {
                key: key(i + 100, i as u64),
                ppid: 1,
                time: SystemTime::now(),
                status: 0,
                comm: vec![],
                lifetime: Duration::ZERO,
            });
        }
        assert!(t.stats().processes <= 50);
        assert!(t.stats().evicted_for_cap >= 450);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn seeds_this_process_from_proc() {
        let mut t = ProcessTable::new(100_000);
        t.seed_from_proc(&mut NameCache::new());
        let me = std::process::id();
        let k = *t
            .by_pid
            .get(&me)
            .expect("this test process is in the table");
        let p = &t.procs[&k];
        assert!(p.image.exe.is_some());
        assert!(p.image.euid.is_some());
        assert!(p.image.user.is_some(), "named at the scan");
        assert!(
            p.parent.is_some(),
            "its parent (cargo or a shell) was running too"
        );
    }
}
