//! The initial scan: what the table learns of the processes already
//! running when procwatch starts, read through the shared `/proc` reader.

#[cfg(target_os = "linux")]
use std::sync::Arc;

use super::ProcessTable;
#[cfg(target_os = "linux")]
use super::{Proc, ProcKey};
use crate::enrich::names::NameCache;
#[cfg(target_os = "linux")]
use crate::event::ProcessImage;
#[cfg(target_os = "linux")]
use crate::linux::proc_reader;

/// The clock tick, the resolution of /proc start times.
#[cfg(target_os = "linux")]
pub(super) fn ns_per_tick() -> u64 {
    1_000_000_000 / proc_reader::ticks_per_second()
}

/// No /proc scan elsewhere, so keys are never rounded.
#[cfg(not(target_os = "linux"))]
pub(super) fn ns_per_tick() -> u64 {
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

impl ProcessTable {
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
}
