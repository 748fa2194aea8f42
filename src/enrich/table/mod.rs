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

mod change;
mod seed;
#[cfg(test)]
mod tests;

use crate::event::{
    ExecEvent, Exit, ExitEvent, Fork, ParentInfo, Privileges, ProcKey, ProcessImage,
};
use crate::linux::id_hash::IdMap;
use change::privilege_change;
use seed::ns_per_tick;

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

/// Counters for the memory figure in docs/performance.md and the tests.
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
                // The parent's start on the exec's wall clock: the two
                // kernel start times differ by exactly this much.
                let start = start_ns
                    .checked_sub(pk.start_ns)
                    .and_then(|d| ev.process_start?.checked_sub(Duration::from_nanos(d)));
                ev.parent = Some(ParentInfo {
                    pid: pk.pid,
                    start,
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
