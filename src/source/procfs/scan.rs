//! One pass over `/proc`: which processes are new, which exec'd again
//! without forking, and which are gone.
//!
//! Processes are keyed by pid + start time, so a reused pid is a new
//! process. A known process that exec'd keeps its pid and start time, so a
//! cheap signature from `stat` is compared on every pass: the comm, and for
//! processes we may ptrace the memory layout (code and argv addresses),
//! which a new exec replaces.

use std::collections::HashMap;

use crate::event::Bytes;
use crate::linux::proc_reader::{self, Failure, ProcDir, Snapshot, Stat};

/// What identifies the program a process is running, as far as a cheap
/// `stat` read can tell.
#[derive(Debug, Clone, Eq)]
struct Signature {
    comm: Bytes,
    layout: [u64; 4],
}

/// When the layout is readable it alone decides: a process may rename
/// itself (prctl PR_SET_NAME, perl's `$0`) without exec'ing. Otherwise the
/// comm is all there is.
impl PartialEq for Signature {
    fn eq(&self, other: &Self) -> bool {
        // Without ptrace access the kernel shows start/end_code as 1 and
        // the argv addresses as 0, so the argv addresses tell readability.
        let known = |l: &[u64; 4]| l[2] != 0 || l[3] != 0;
        if known(&self.layout) && known(&other.layout) {
            self.layout == other.layout
        } else {
            self.comm == other.comm
        }
    }
}

impl Signature {
    fn of(s: &Stat) -> Signature {
        Signature {
            comm: s.comm.clone(),
            layout: s.layout,
        }
    }
}

/// Why a process seen in a pass is not reported yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Reported (or predates procwatch).
    No,
    /// A child that still runs its parent's program (forked, not yet
    /// exec'd, or a subshell that never will): reported once it changes.
    ParentCopy,
    /// Caught in the middle of an exec: the new memory has no argv yet, so
    /// `cmdline` reads empty, or the read saw the exec happen. Looked at
    /// again in the next pass.
    MidExec,
}

/// Whether a fresh snapshot can be reported now.
fn pending_state(snap: &Result<Snapshot, Failure>, parent_copy: bool) -> Pending {
    let empty = snap.as_ref().is_ok_and(|s| match &s.cmdline {
        Ok(c) => c.size == 0,
        Err(f) => *f == Failure::Changed,
    });
    if empty {
        Pending::MidExec
    } else if parent_copy {
        Pending::ParentCopy
    } else {
        Pending::No
    }
}

/// A process seen in an earlier pass.
#[derive(Debug)]
struct Known {
    start_ticks: u64,
    sig: Signature,
    /// argv as last read, to recognise a forked child that has not exec'd.
    argv: Option<Vec<Bytes>>,
    /// Not reported yet, and why.
    pending: Pending,
    kernel_thread: bool,
    /// The pass that last saw it.
    pass: u64,
    /// Passes in a row that found it mid-exec.
    mid_exec_passes: u8,
}

/// How many passes a process may read as mid-exec before it is reported as
/// it is (with what could not be read marked incomplete).
const MAX_MID_EXEC_PASSES: u8 = 10;

/// One thing a pass found.
#[derive(Debug)]
pub struct Found {
    pub pid: u32,
    pub snap: Result<Snapshot, Failure>,
    /// A known process now runs a different program: exec without fork.
    pub exec_without_fork: bool,
}

/// The process table and what the last pass counted.
#[derive(Debug, Default)]
pub struct Table {
    procs: HashMap<u32, Known>,
    pass: u64,
    /// New processes already gone (or zombies) when first seen.
    pub vanished: u64,
}

impl Table {
    /// Scans `root` (normally `/proc`). With `report` false (the first
    /// pass) processes are only remembered: they predate procwatch.
    pub fn scan(&mut self, root: &str, report: bool, found: &mut dyn FnMut(Found)) {
        self.pass += 1;
        for pid in proc_reader::pids(root) {
            self.visit(root, pid, report, found);
        }
        let pass = self.pass;
        self.procs.retain(|_, k| k.pass == pass);
    }

    fn visit(&mut self, root: &str, pid: u32, report: bool, found: &mut dyn FnMut(Found)) {
        let known = self.procs.get(&pid);
        let stat = ProcDir::open(root, pid).and_then(|d| d.stat().map(|s| (d, s)));
        let (dir, stat) = match stat {
            Ok(x) => x,
            Err(_) => {
                // Listed a moment ago, gone now: if it was new to us, it
                // ran and ended between two looks.
                if report && known.is_none() {
                    self.vanished += 1;
                }
                return;
            }
        };
        let pass = self.pass;
        if let Some(k) = self.procs.get_mut(&pid)
            && k.start_ticks == stat.start_ticks
        {
            k.pass = pass;
            // An exiting process's layout reads as zeros (while the comm a
            // rename left stays): that is an exit, not an exec.
            if k.kernel_thread || stat.is_dead() || stat.is_exiting() {
                return;
            }
            let same = Signature::of(&stat) == k.sig;
            match k.pending {
                Pending::No if same => return,
                Pending::ParentCopy if same => {
                    // Still its parent's program unless argv changed.
                    let argv = read_argv(&dir);
                    if argv.is_none() || argv == k.argv {
                        return;
                    }
                }
                _ => {}
            }
            let without_fork = k.pending == Pending::No;
            let snap = dir.snapshot(Some(stat.start_ticks));
            k.sig = Signature::of(&stat);
            k.argv = argv_of(&snap);
            k.pending = match (k.pending, pending_state(&snap, false)) {
                // Still mid-exec (an empty argv area): look again rather than
                // report an empty argv, but not forever.
                (Pending::MidExec, Pending::MidExec) if k.mid_exec_passes < MAX_MID_EXEC_PASSES => {
                    k.mid_exec_passes += 1;
                    Pending::MidExec
                }
                (Pending::MidExec, _) => Pending::No,
                (_, state) => state,
            };
            if report && k.pending == Pending::No {
                found(Found {
                    pid,
                    snap,
                    exec_without_fork: without_fork,
                });
            }
            return;
        }
        // New process, or an old pid reused by a new process.
        let kernel_thread = stat.is_kernel_thread();
        // First seen as a zombie: it may or may not have exec'd, and nothing
        // but its comm is left. Counted as seen too late, not reported.
        let too_late = report && !kernel_thread && stat.is_dead();
        if too_late {
            self.vanished += 1;
        }
        let snap = if kernel_thread || !report || too_late {
            None
        } else {
            Some(dir.snapshot(Some(stat.start_ticks)))
        };
        // Processes from before procwatch get their argv remembered too:
        // their forked children are recognised by it.
        let argv = match &snap {
            Some(snap) => argv_of(snap),
            None if !kernel_thread && !too_late => read_argv(&dir),
            None => None,
        };
        let pending = match &snap {
            Some(snap) => pending_state(snap, self.is_parent_copy(&stat, &argv)),
            None => Pending::No,
        };
        self.procs.insert(
            pid,
            Known {
                start_ticks: stat.start_ticks,
                sig: Signature::of(&stat),
                argv,
                pending,
                kernel_thread,
                pass,
                mid_exec_passes: 0,
            },
        );
        if let Some(snap) = snap
            && pending == Pending::No
        {
            found(Found {
                pid,
                snap,
                exec_without_fork: false,
            });
        }
    }

    /// A child with its parent's argv (and, when readable, memory layout)
    /// has forked but not exec'd (yet): reporting it would invent an exec.
    /// The comm is no help here: a thread that forks gives the child its
    /// own thread name.
    fn is_parent_copy(&self, stat: &Stat, argv: &Option<Vec<Bytes>>) -> bool {
        let Some(parent) = self.procs.get(&stat.ppid) else {
            return false;
        };
        let layouts = [parent.sig.layout, stat.layout];
        let layout_differs = layouts.iter().all(|l| l[2] != 0) && layouts[0] != layouts[1];
        argv.is_some() && parent.argv == *argv && !layout_differs
    }
}

fn argv_of(snap: &Result<Snapshot, Failure>) -> Option<Vec<Bytes>> {
    snap.as_ref()
        .ok()?
        .cmdline
        .as_ref()
        .ok()
        .map(|c| c.argv.clone())
}

fn read_argv(dir: &ProcDir) -> Option<Vec<Bytes>> {
    dir.read("cmdline", 1 << 20)
        .ok()
        .map(|b| crate::linux::proc_reader::split_cmdline(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn scan_all(t: &mut Table, report: bool) -> Vec<Found> {
        let mut v = Vec::new();
        t.scan("/proc", report, &mut |f| v.push(f));
        v
    }

    #[test]
    fn first_pass_reports_nothing_then_new_processes_appear() {
        let mut t = Table::default();
        assert!(scan_all(&mut t, false).is_empty());
        assert!(!t.procs.is_empty());
        let tag = format!("pw-scan-{}", std::process::id());
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 5; :", &tag])
            .spawn()
            .unwrap();
        // Caught mid-exec, it is reported one pass later: allow a few.
        let mut mine = Vec::new();
        for _ in 0..50 {
            mine.extend(
                scan_all(&mut t, true)
                    .into_iter()
                    .filter(|f| f.pid == child.id()),
            );
            if !mine.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(mine.len(), 1, "{mine:?}");
        let snap = mine[0].snap.as_ref().unwrap();
        let argv = &snap.cmdline.as_ref().expect("cmdline").argv;
        assert_eq!(argv.last().unwrap(), tag.as_bytes());
        // Reported once only.
        for _ in 0..3 {
            let again = scan_all(&mut t, true);
            assert!(again.iter().all(|f| f.pid != child.id()), "{again:?}");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        scan_all(&mut t, true);
        assert!(!t.procs.contains_key(&child.id()));
    }
}
