//! Hijackable executions: a privileged process running a file that a
//! non-root user can change.
//!
//! The files of an exec are the binary, the `#!` script, and a script given
//! to a known interpreter (`sh x.sh`, `python3 -u x.py`). A non-root user can
//! change what runs when they can write the file, replace a directory entry
//! on its path, or redirect a symlink the path goes through. The walk (`walk`)
//! resolves the path one component at a time with `lstat`/`readlink`, like
//! the kernel would, and asks at every step who other than root could
//! modify that step.
//!
//! Only mode bits and owners are read: POSIX ACLs, read-only mounts, LSMs and
//! group membership are not, so the answer errs on the side of reporting.
//!
//! Verdicts are cached per path and keyed by the file's (dev, inode, mtime,
//! ctime), so a hit costs one `lstat`, or none for the binary itself when
//! the kernel reported its identity (`exe_stamp`); a short TTL bounds how long a change
//! elsewhere on the path (a directory's mode, a symlink further up) can go
//! unnoticed.
//!
//! An exec in a mount namespace other than procwatch's names that
//! namespace's files: they are judged through `/proc/<pid>/root`
//! (`root_view`) while the process lives, once the exe path there is
//! confirmed to be the executed file, and never from the cache; otherwise
//! `hijackable` is null with `other_mount_namespace` in `incomplete`. The
//! host's file of the same path is never judged for it.

mod interp;
mod root_view;
#[cfg(test)]
pub(crate) mod tests;
mod walk;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::enrich::mounts::FuseMounts;
use crate::linux::clock::coarse_now;
use crate::linux::file_key::FileKey;

use crate::enrich::names::NameCache;
use crate::event::{ExecEvent, Hijack, HijackRole};
use interp::interpreter_arg;
use root_view::{MountTables, RootView, Stop};
use walk::{Found, Writer, absolute, lstat, walk, walk_in};

/// The `incomplete` reason for files of another mount namespace that were
/// not judged.
const OTHER_MNT_NS: &str = "other_mount_namespace";

/// How long a verdict is trusted while the file itself is unchanged. Short,
/// because a directory or symlink higher up may change without touching the
/// file's own inode.
const DEFAULT_TTL: Duration = Duration::from_secs(2);
/// Cached verdicts at most; a storm of distinct paths cannot grow memory.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
struct Verdict {
    /// The file as it was when walked.
    id: FileKey,
    /// When the walk was done ([`coarse_now`]).
    at: Duration,
    /// `None`: the path could not be examined (gone, or not readable by
    /// procwatch's user), so nothing was judged.
    found: Option<Vec<Found>>,
}

/// Decides, per exec, whether a privileged process runs something a non-root
/// user can modify, and fills [`ExecEvent::hijackable`].
///
/// Keeps a verdict cache and a name cache, so one checker should live for
/// the whole run. [`HijackChecker::sharing`] makes another one with the same
/// verdict cache, for a thread of its own (`hijack_pool`); the cache's lock
/// is never held across I/O.
#[derive(Debug)]
pub struct HijackChecker {
    names: NameCache,
    cache: Arc<Mutex<HashMap<Vec<u8>, Verdict>>>,
    ttl: Duration,
    /// Full path walks done (cache misses); read by tests and benchmarks.
    walks: Arc<AtomicU64>,
    /// Paths on FUSE are never looked at (see `mounts`).
    mounts: FuseMounts,
    /// Other mount namespaces' tables, for their FUSE mounts.
    other_mounts: MountTables,
}

/// The files of one exec with their cached or fresh verdicts.
type Verdicts<'a> = Vec<(Cow<'a, [u8]>, HijackRole, Vec<Found>)>;

impl Default for HijackChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl HijackChecker {
    /// A checker with empty caches and the default 2 s verdict TTL.
    pub fn new() -> Self {
        Self::with_ttl(DEFAULT_TTL)
    }

    /// A checker whose verdicts expire after `ttl` (zero: never reused).
    pub fn with_ttl(ttl: Duration) -> Self {
        HijackChecker {
            names: NameCache::new(),
            cache: Arc::default(),
            ttl,
            walks: Arc::default(),
            mounts: FuseMounts::default(),
            other_mounts: MountTables::default(),
        }
    }

    /// A checker sharing this one's verdict cache (and walk count), with a
    /// name cache of its own.
    pub fn sharing(&self) -> Self {
        HijackChecker {
            names: NameCache::new(),
            cache: Arc::clone(&self.cache),
            ttl: self.ttl,
            walks: Arc::clone(&self.walks),
            mounts: FuseMounts::default(),
            other_mounts: MountTables::default(),
        }
    }

    /// How many full path walks (cache misses) this checker has done.
    pub fn walks(&self) -> u64 {
        self.walks.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Verdict>> {
        // Nothing panics while holding it; the map stays consistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Like [`check`](Self::check), but only from the cache and without any
    /// syscall: true when the exec is answered (not privileged, or every
    /// file it runs is the binary with the kernel's identity and a fresh
    /// verdict); false, with `ev` untouched, when answering needs I/O.
    pub fn check_cached(&mut self, ev: &mut ExecEvent) -> bool {
        if !privileged(ev) {
            return true;
        }
        if !in_our_mount_ns(ev) {
            return false;
        }
        let exe_id = FileKey::of_exe(ev);
        let now = coarse_now();
        let mut verdicts = Vec::new();
        for (path, role) in candidates(ev) {
            let Some(id) = exe_id.filter(|_| role == HijackRole::Binary) else {
                return false;
            };
            match self.cached(&path, id, now) {
                Some(Some(found)) => verdicts.push((path, role, found)),
                // Not judged: `check` says why.
                Some(None) | None => return false,
            }
        }
        let out = self.describe_all(verdicts);
        ev.hijackable = out;
        mark_unknown_exe(ev);
        true
    }

    /// A fresh cached verdict for `path` as the file `id`.
    fn cached(&self, path: &[u8], id: FileKey, now: Duration) -> Option<Option<Vec<Found>>> {
        self.lock()
            .get(path)
            .filter(|v| v.id == id && now.saturating_sub(v.at) < self.ttl)
            .map(|v| v.found.clone())
    }

    fn describe_all(&mut self, verdicts: Verdicts<'_>) -> Vec<Hijack> {
        let mut out = Vec::new();
        for (path, role, found) in verdicts {
            for f in found {
                let writers = f
                    .writers
                    .iter()
                    .map(|w| describe(&mut self.names, *w))
                    .collect();
                out.push(Hijack {
                    path: path.to_vec(),
                    role,
                    writable: f.writable,
                    writers,
                });
            }
        }
        out
    }

    /// Sets `ev.hijackable` when the exec is privileged (euid 0 or any
    /// effective capability): one [`Hijack`] per modifiable step of each
    /// file the exec runs, empty when there is none. An exec without known
    /// privileges, or an unprivileged one, is left untouched.
    ///
    /// A finding is only reported when it was seen. Files that could not be
    /// examined (paths that no longer resolve or that procwatch's user may
    /// not read, an unknown exe) are named in `incomplete`; pseudo paths
    /// (memfd, deleted) have nothing to modify and are judged as such.
    pub fn check(&mut self, ev: &mut ExecEvent) {
        if !privileged(ev) {
            return;
        }
        if !in_our_mount_ns(ev) {
            // Without the exe's path no root can be confirmed: nothing
            // is judged, for that reason alone.
            if ev.exe.is_none() || ev.exe_truncated {
                ev.hijackable = Vec::new();
                mark_unknown_exe(ev);
                return;
            }
            self.check_in_root(ev);
            return;
        }
        // The executed file's identity as the kernel saw it at the exec:
        // for the binary it stands in for an `lstat` of the path.
        let exe_id = FileKey::of_exe(ev);
        let mut verdicts = Vec::new();
        let mut on_fuse = Vec::new();
        let mut unjudged = Vec::new();
        for (path, role) in candidates(ev) {
            let known = exe_id.filter(|_| role == HijackRole::Binary);
            if known.is_some_and(|k| self.mounts.dev_is_fuse(k.dev))
                || self.mounts.fuse_point_of(&path).is_some()
            {
                on_fuse.push(String::from_utf8_lossy(&path).into_owned());
                continue;
            }
            match self.verdict(&path, known) {
                Some(found) => verdicts.push((path, role, found)),
                None => unjudged.push(String::from_utf8_lossy(&path).into_owned()),
            }
        }
        let out = self.describe_all(verdicts);
        ev.hijackable = out;
        mark_unknown_exe(ev);
        if !unjudged.is_empty() {
            // An empty list must never stand for "could not look".
            ev.mark_incomplete(
                "hijackable",
                format!(
                    "not checked: {} could not be examined (gone, or not readable by \
                     procwatch's user)",
                    unjudged.join(", ")
                ),
            );
        }
        if !on_fuse.is_empty() {
            ev.mark_incomplete(
                "hijackable",
                format!(
                    "not checked: {} on a FUSE filesystem, whose server could stall procwatch",
                    on_fuse.join(", ")
                ),
            );
        }
    }

    /// [`check`](Self::check) for an exec in another (or an unknown) mount
    /// namespace: its files as its own root shows them.
    fn check_in_root(&mut self, ev: &mut ExecEvent) {
        let not_judged = |ev: &mut ExecEvent, why: String| {
            ev.hijackable = Vec::new();
            ev.mark_incomplete(
                "hijackable",
                format!(
                    "{OTHER_MNT_NS}: {why}; the host's file of the same path says nothing \
                     about it"
                ),
            );
        };
        let Some((want, exe)) = ev.exe_dev_ino.zip(ev.exe.clone()) else {
            return not_judged(ev, "the executed file's identity is unknown".into());
        };
        let ns = ev.ns.namespaces.map(|n| n.mnt);
        let mut view = match RootView::open(ev.pid, ns, &mut self.other_mounts) {
            Ok(v) => v,
            Err(e) => {
                return not_judged(ev, format!("the process's root could not be opened ({e})"));
            }
        };
        // The process may be gone and its pid reused, or chrooted: its root
        // must show the executed file at the exe path.
        let found = view.identity(&exe);
        if view.stopped == Some(Stop::Fuse) {
            return not_judged(
                ev,
                "the executed file is on a FUSE filesystem of that namespace, whose server \
                 could stall procwatch"
                    .into(),
            );
        }
        if found != Some(want) {
            return not_judged(
                ev,
                "the exe path in the process's root is not the executed file (exited, \
                 exec'd again, or chrooted)"
                    .into(),
            );
        }
        let mut verdicts = Vec::new();
        let mut unjudged = Vec::new();
        for (path, role) in candidates(ev) {
            self.walks.fetch_add(1, Ordering::Relaxed);
            match walk_in(&mut view, &path) {
                Some(found) => verdicts.push((path, role, found)),
                None => unjudged.push(String::from_utf8_lossy(&path).into_owned()),
            }
        }
        let stopped = view.stopped;
        drop(view);
        let out = self.describe_all(verdicts);
        ev.hijackable = out;
        if !unjudged.is_empty() {
            let why = match stopped {
                Some(Stop::Fuse) => "on a FUSE filesystem, whose server could stall procwatch",
                _ => "gone, or not readable",
            };
            ev.mark_incomplete(
                "hijackable",
                format!(
                    "{OTHER_MNT_NS}: not checked: {} in the process's root ({why})",
                    unjudged.join(", ")
                ),
            );
        }
    }

    /// The modifiable steps of `path` (absolute), from the cache when the
    /// file's identity is unchanged and the verdict is younger than the TTL.
    /// `known` is the file's identity when the kernel reported it (no
    /// `lstat` needed).
    fn verdict(&mut self, path: &[u8], known: Option<FileKey>) -> Option<Vec<Found>> {
        let id = match known {
            Some(id) => id,
            None => FileKey::of(&lstat(path)?),
        };
        let now = coarse_now();
        if let Some(found) = self.cached(path, id, now) {
            return found;
        }
        self.walks.fetch_add(1, Ordering::Relaxed);
        // A path that stops resolving half-way is not judged; that verdict
        // is cached like any other so a storm of them stays cheap.
        let found = walk(path);
        let ttl = self.ttl;
        let mut cache = self.lock();
        if cache.len() >= MAX_ENTRIES && !cache.contains_key(path) {
            cache.retain(|_, v| now.saturating_sub(v.at) < ttl);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(
            path.to_vec(),
            Verdict {
                id,
                at: now,
                found: found.clone(),
            },
        );
        found
    }
}

/// A privileged exec whose executed file's path is unknown (or cut) had
/// nothing examined: say so rather than let an empty list look safe.
fn mark_unknown_exe(ev: &mut ExecEvent) {
    if ev.exe.is_none() || ev.exe_truncated {
        ev.mark_incomplete(
            "hijackable",
            "not checked: the executed file's path is unknown",
        );
    }
}

/// The exec's paths are procwatch's view (known, not another namespace's).
fn in_our_mount_ns(ev: &ExecEvent) -> bool {
    ev.ns.exe_other_mnt_ns == Some(false)
}

/// Euid 0 or any effective capability in the host's user namespace;
/// false when unknown.
fn privileged(ev: &ExecEvent) -> bool {
    ev.host_privileged()
}

/// `"user alice"`, `"group staff"`, `"others"`; ids when unnamed.
fn describe(names: &mut NameCache, w: Writer) -> String {
    match w {
        Writer::User(uid) => match names.user(uid) {
            Some(n) => format!("user {n}"),
            None => format!("user {uid}"),
        },
        Writer::Group(gid) => match names.group(gid) {
            Some(n) => format!("group {n}"),
            None => format!("group {gid}"),
        },
        Writer::Others => "others".to_string(),
    }
}

/// The files this exec runs, absolute, each once, with the role it plays.
fn candidates<'a>(ev: &'a ExecEvent) -> Vec<(Cow<'a, [u8]>, HijackRole)> {
    let cwd = ev.cwd.as_deref();
    let mut out: Vec<(Cow<'a, [u8]>, HijackRole)> = Vec::with_capacity(2);
    let mut add = |p: Option<Cow<'a, [u8]>>, role| {
        if let Some(p) = p
            && !out.iter().any(|(q, _)| *q == p)
        {
            out.push((p, role));
        }
    };
    // A truncated exe lost its leading components: another file's path.
    if let Some(exe) = ev.exe.as_deref()
        && !ev.exe_truncated
        && !is_pseudo_exe(exe)
    {
        add(absolute(exe, cwd), HijackRole::Binary);
    }
    if ev.interpreter.is_some()
        && let Some(script) = ev.filename.as_deref()
    {
        add(absolute(script, cwd), HijackRole::Script);
    }
    if let Some(arg) = interpreter_arg(ev) {
        add(absolute(arg, cwd), HijackRole::InterpreterArg);
    }
    out
}

/// memfd and deleted files have no path anyone could modify.
fn is_pseudo_exe(exe: &[u8]) -> bool {
    exe.starts_with(b"/memfd:") || exe.ends_with(b" (deleted)")
}
