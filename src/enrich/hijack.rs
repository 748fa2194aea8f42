//! Hijackable executions: a privileged process running a file that a
//! non-root user can change.
//!
//! The files of an exec are the binary, the `#!` script, and a script given
//! to a known interpreter (`sh x.sh`, `python3 -u x.py`). A non-root user can
//! change what runs when they can write the file, replace a directory entry
//! on its path, or redirect a symlink the path goes through. The walk below
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::enrich::mounts::FuseMounts;
use crate::linux::clock::coarse_now;
use crate::linux::file_key::FileKey;
use crate::linux::path::basename;

use crate::enrich::names::NameCache;
use crate::event::{ExecEvent, Hijack, HijackRole};

/// How long a verdict is trusted while the file itself is unchanged. Short,
/// because a directory or symlink higher up may change without touching the
/// file's own inode.
const DEFAULT_TTL: Duration = Duration::from_secs(2);
/// Cached verdicts at most; a storm of distinct paths cannot grow memory.
const MAX_ENTRIES: usize = 4096;
/// Symlinks followed per path, as the kernel's own limit (ELOOP).
const MAX_LINKS: u32 = 40;
/// Longer paths cannot have been executed (PATH_MAX), so they are skipped
/// without a syscall.
const MAX_PATH: usize = 4096;

/// Sticky bit: in such a directory only an entry's owner, the directory's
/// owner and root may rename or delete the entry.
const S_ISVTX: u32 = 0o1000;
const S_IWGRP: u32 = 0o020;
const S_IWOTH: u32 = 0o002;

/// Who, other than root, can modify something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    User(u32),
    Group(u32),
    Others,
}

/// One modifiable step of a path, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    writable: Vec<u8>,
    writers: Vec<Writer>,
}

#[derive(Debug)]
struct Verdict {
    /// The file as it was when walked.
    id: FileKey,
    /// When the walk was done ([`coarse_now`]).
    at: Duration,
    found: Vec<Found>,
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
        let exe_id = FileKey::of_exe(ev);
        let now = coarse_now();
        let mut verdicts = Vec::new();
        for (path, role) in candidates(ev) {
            let Some(id) = exe_id.filter(|_| role == HijackRole::Binary) else {
                return false;
            };
            match self.cached(&path, id, now) {
                Some(found) => verdicts.push((path, role, found)),
                None => return false,
            }
        }
        let out = self.describe_all(verdicts);
        ev.hijackable = out;
        true
    }

    /// A fresh cached verdict for `path` as the file `id`.
    fn cached(&self, path: &[u8], id: FileKey, now: Duration) -> Option<Vec<Found>> {
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
    /// Files that cannot be checked (relative path without a cwd, pseudo
    /// paths, paths that no longer resolve) give no finding: a finding is
    /// only reported when it was seen.
    pub fn check(&mut self, ev: &mut ExecEvent) {
        if !privileged(ev) {
            return;
        }
        // The executed file's identity as the kernel saw it at the exec:
        // for the binary it stands in for an `lstat` of the path.
        let exe_id = FileKey::of_exe(ev);
        let mut verdicts = Vec::new();
        let mut on_fuse = Vec::new();
        for (path, role) in candidates(ev) {
            let known = exe_id.filter(|_| role == HijackRole::Binary);
            if known.is_some_and(|k| self.mounts.dev_is_fuse(k.dev))
                || self.mounts.fuse_point_of(&path).is_some()
            {
                on_fuse.push(String::from_utf8_lossy(&path).into_owned());
                continue;
            }
            let found = self.verdict(&path, known);
            verdicts.push((path, role, found));
        }
        let out = self.describe_all(verdicts);
        ev.hijackable = out;
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

    /// The modifiable steps of `path` (absolute), from the cache when the
    /// file's identity is unchanged and the verdict is younger than the TTL.
    /// `known` is the file's identity when the kernel reported it (no
    /// `lstat` needed).
    fn verdict(&mut self, path: &[u8], known: Option<FileKey>) -> Vec<Found> {
        let id = match known {
            Some(id) => id,
            None => match lstat(path) {
                Some(meta) => FileKey::of(&meta),
                None => return Vec::new(),
            },
        };
        let now = coarse_now();
        if let Some(found) = self.cached(path, id, now) {
            return found;
        }
        self.walks.fetch_add(1, Ordering::Relaxed);
        // A path that stops resolving half-way is not reported; the empty
        // verdict is cached like any other so a storm of them stays cheap.
        let found = walk(path).unwrap_or_default();
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

/// Euid 0 or any effective capability; false when unknown.
fn privileged(ev: &ExecEvent) -> bool {
    match (ev.linux_creds(), ev.linux_caps()) {
        (Some(creds), Some(caps)) => creds.euid == 0 || caps.effective != 0,
        _ => false,
    }
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

fn lstat(path: &[u8]) -> Option<Metadata> {
    if path.is_empty() || path.len() > MAX_PATH {
        return None;
    }
    // std rejects interior NULs with an error, so no path can panic here.
    fs::symlink_metadata(OsStr::from_bytes(path)).ok()
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

/// `p` made absolute against `cwd`; `None` when that is impossible or the
/// path names something of the exec'ing process rather than a file we can
/// see the same way (`/dev/fd/N`, `/proc/...`).
fn absolute<'a>(p: &'a [u8], cwd: Option<&[u8]>) -> Option<Cow<'a, [u8]>> {
    if p.is_empty() {
        return None;
    }
    let abs = if p[0] == b'/' {
        Cow::Borrowed(p)
    } else {
        let cwd = cwd.filter(|c| c.first() == Some(&b'/'))?;
        let mut v = Vec::with_capacity(cwd.len() + 1 + p.len());
        v.extend_from_slice(cwd);
        if !cwd.ends_with(b"/") {
            v.push(b'/');
        }
        v.extend_from_slice(p);
        Cow::Owned(v)
    };
    if abs.starts_with(b"/dev/fd/") || abs.starts_with(b"/proc/") || abs.len() > MAX_PATH {
        return None;
    }
    Some(abs)
}

/// Adds `writers` of `writable` to `out`, merging with an earlier finding
/// about the same path.
fn note(out: &mut Vec<Found>, writable: &[u8], writers: &[Writer]) {
    if writers.is_empty() {
        return;
    }
    let idx = match out.iter().position(|f| f.writable == writable) {
        Some(i) => i,
        None => {
            out.push(Found {
                writable: writable.to_vec(),
                writers: Vec::new(),
            });
            out.len() - 1
        }
    };
    for w in writers {
        if !out[idx].writers.contains(w) {
            out[idx].writers.push(*w);
        }
    }
}

/// Non-root principals that can write `m`'s contents. An owner counts even
/// without u+w, since an owner can chmod; group root does not, since adding
/// members to it takes root.
fn writers_of(m: &Metadata) -> Vec<Writer> {
    let mut w = Vec::new();
    if m.uid() != 0 {
        w.push(Writer::User(m.uid()));
    }
    if m.mode() & S_IWGRP != 0 && m.gid() != 0 {
        w.push(Writer::Group(m.gid()));
    }
    if m.mode() & S_IWOTH != 0 {
        w.push(Writer::Others);
    }
    w
}

/// Records who can replace or rename `entry` through its directory `dir`.
fn entry_writers(out: &mut Vec<Found>, dir: &[u8], dm: &Metadata, entry: &[u8], em: &Metadata) {
    if dm.mode() & S_ISVTX == 0 {
        note(out, dir, &writers_of(dm));
        return;
    }
    // Sticky: the directory's owner still controls every entry...
    if dm.uid() != 0 {
        note(out, dir, &[Writer::User(dm.uid())]);
    }
    // ...and a non-root entry owner who can write the directory can replace
    // their own entry. Group membership is not checked: reported when the
    // directory is group- or world-writable at all.
    let shared = (dm.mode() & S_IWGRP != 0 && dm.gid() != 0) || dm.mode() & S_IWOTH != 0;
    if shared && em.uid() != 0 && em.uid() != dm.uid() {
        note(out, entry, &[Writer::User(em.uid())]);
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(dir.len() + 1 + name.len());
    v.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

/// Pushes the components of `p` so that the first is popped first.
fn push_components(todo: &mut Vec<Vec<u8>>, p: &[u8]) {
    todo.extend(
        p.rsplit(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec),
    );
}

/// Resolves absolute `path` step by step and returns every step a non-root
/// user can modify; `None` when the path does not resolve (missing
/// component, symlink loop, a file used as a directory).
fn walk(path: &[u8]) -> Option<Vec<Found>> {
    let mut out = Vec::new();
    // `dir` is always a physical path (no symlinks), so `..` is a plain pop.
    let mut dir = b"/".to_vec();
    let mut dir_meta = lstat(&dir)?;
    let mut todo = Vec::new();
    push_components(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == b".." {
            if let Some(i) = dir.iter().rposition(|&b| b == b'/') {
                dir.truncate(i.max(1));
            }
            dir_meta = lstat(&dir)?;
            continue;
        }
        let entry = join(&dir, &name);
        let meta = lstat(&entry)?;
        entry_writers(&mut out, &dir, &dir_meta, &entry, &meta);
        let ft = meta.file_type();
        if ft.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = fs::read_link(OsStr::from_bytes(&entry))
                .ok()?
                .into_os_string()
                .into_vec();
            if target.first() == Some(&b'/') {
                dir = b"/".to_vec();
                dir_meta = lstat(&dir)?;
            }
            // Relative targets resolve against the link's directory, which
            // is `dir` unchanged.
            push_components(&mut todo, &target);
        } else if ft.is_dir() {
            dir = entry;
            dir_meta = meta;
        } else {
            if !todo.is_empty() {
                return None;
            }
            note(&mut out, &entry, &writers_of(&meta));
            return Some(out);
        }
    }
    // The path names a directory (`python3 pkgdir` runs its __main__.py):
    // whoever can write it can add or replace what runs.
    if dir != b"/" {
        note(&mut out, &dir, &writers_of(&dir_meta));
    }
    Some(out)
}

/// How an interpreter's command line names its script.
struct Syntax {
    /// Short options meaning the program is not a file (inline code, a
    /// module, stdin).
    inline: &'static [u8],
    /// Short options taking a value, attached or as the next argument.
    value: &'static [u8],
    /// Short options taking only an attached value (the rest of the cluster).
    attached: &'static [u8],
    /// Short options whose value is the script file (`php -f x.php`).
    script: &'static [u8],
    /// Long options meaning the program is not a file.
    long_inline: &'static [&'static [u8]],
    /// Long options taking the next argument as value when written without `=`.
    long_value: &'static [&'static [u8]],
    /// Long options whose value is the script file.
    long_script: &'static [&'static [u8]],
    /// A lone `-` reads the program from stdin (otherwise it ends options).
    dash_is_stdin: bool,
    /// Options are whole words (`tclsh -encoding x`), not letter clusters.
    words: bool,
    /// `+x` options exist and are parsed like `-x` (`sh +o posix x.sh`).
    plus: bool,
}

const NONE: &[&[u8]] = &[];

/// No options of any kind; `-` is stdin. The others differ from it.
const PLAIN: Syntax = Syntax {
    inline: b"",
    value: b"",
    attached: b"",
    script: b"",
    long_inline: NONE,
    long_value: NONE,
    long_script: NONE,
    dash_is_stdin: true,
    words: false,
    plus: false,
};

/// sh, bash, dash, zsh, ksh, mksh, ash: `+o name` is handled like `-o name`.
const SHELL: Syntax = Syntax {
    inline: b"cs",
    value: b"oO",
    long_value: &[b"--rcfile", b"--init-file"],
    dash_is_stdin: false,
    plus: true,
    ..PLAIN
};
const PYTHON: Syntax = Syntax {
    inline: b"cm",
    value: b"WX",
    long_value: &[b"--check-hash-based-pycs"],
    ..PLAIN
};
const PERL: Syntax = Syntax {
    inline: b"eE",
    value: b"I",
    attached: b"MmixdDCl0V",
    ..PLAIN
};
const RUBY: Syntax = Syntax {
    inline: b"e",
    value: b"ICEr",
    attached: b"xFTKW0",
    ..PLAIN
};
const PHP: Syntax = Syntax {
    inline: b"rBRESa",
    value: b"cdzt",
    script: b"fF",
    long_inline: &[
        b"--run",
        b"--process-begin",
        b"--process-code",
        b"--process-end",
        b"--server",
        b"--interactive",
    ],
    long_value: &[b"--php-ini", b"--define", b"--zend-extension", b"--docroot"],
    long_script: &[b"--file", b"--process-file"],
    ..PLAIN
};
const NODE: Syntax = Syntax {
    inline: b"ep",
    value: b"rC",
    long_inline: &[b"--eval", b"--print"],
    long_value: &[
        b"--require",
        b"--import",
        b"--loader",
        b"--experimental-loader",
        b"--conditions",
        b"--input-type",
        b"--env-file",
        b"--title",
    ],
    ..PLAIN
};
const LUA: Syntax = Syntax {
    inline: b"e",
    value: b"l",
    ..PLAIN
};
const TCL: Syntax = Syntax {
    long_value: &[b"-encoding"],
    words: true,
    ..PLAIN
};
const RSCRIPT: Syntax = Syntax {
    inline: b"e",
    ..PLAIN
};

/// Interpreter names; a version suffix of digits and dots is accepted too
/// (`python3.12`, `perl5.36.0`, `lua5.4`, `tclsh8.6`).
const INTERPRETERS: &[(&[u8], &Syntax)] = &[
    (b"sh", &SHELL),
    (b"bash", &SHELL),
    (b"dash", &SHELL),
    (b"zsh", &SHELL),
    (b"ksh", &SHELL),
    (b"mksh", &SHELL),
    (b"ash", &SHELL),
    (b"python", &PYTHON),
    (b"pypy", &PYTHON),
    (b"perl", &PERL),
    (b"ruby", &RUBY),
    (b"php", &PHP),
    (b"node", &NODE),
    (b"nodejs", &NODE),
    (b"lua", &LUA),
    (b"luajit", &LUA),
    (b"tclsh", &TCL),
    (b"Rscript", &RSCRIPT),
];

fn syntax_of(name: &[u8]) -> Option<&'static Syntax> {
    INTERPRETERS.iter().find_map(|(base, syn)| {
        let rest = name.strip_prefix(*base)?;
        let versioned = rest.first().is_some_and(u8::is_ascii_digit)
            && rest.iter().all(|b| b.is_ascii_digit() || *b == b'.');
        (rest.is_empty() || versioned).then_some(*syn)
    })
}

/// The script a known interpreter was asked to run, as written in argv.
fn interpreter_arg(ev: &ExecEvent) -> Option<&[u8]> {
    let argv = ev.argv.as_deref()?;
    let exe = ev.exe.as_deref().map(basename);
    let arg0 = argv.first().map(|a| basename(a));
    // busybox runs the applet named by argv[0] (a symlink) or by argv[1].
    if arg0 == Some(b"busybox") {
        let applet = basename(argv.get(1)?);
        return script_arg(syntax_of(applet)?, argv.get(2..)?);
    }
    let syn = exe
        .and_then(syntax_of)
        .or_else(|| arg0.and_then(syntax_of))?;
    script_arg(syn, argv.get(1..)?)
}

/// The first argument that is the script file under `syn`'s option rules,
/// or `None` when the program does not come from a file.
fn script_arg<'a>(syn: &Syntax, args: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let a = a.as_slice();
        i += 1;
        if a == b"--" {
            return args.get(i).map(Vec::as_slice);
        }
        if a == b"-" {
            if syn.dash_is_stdin {
                return None;
            }
            return args.get(i).map(Vec::as_slice);
        }
        let is_plus = syn.plus && a.first() == Some(&b'+');
        if a.first() != Some(&b'-') && !is_plus {
            return Some(a);
        }
        if a.starts_with(b"--") || (syn.words && !is_plus) {
            let (name, value) = match a.iter().position(|&b| b == b'=') {
                Some(eq) => (&a[..eq], Some(&a[eq + 1..])),
                None => (a, None),
            };
            if syn.long_inline.contains(&name) {
                return None;
            }
            if syn.long_script.contains(&name) {
                return value.or_else(|| args.get(i).map(Vec::as_slice));
            }
            if syn.long_value.contains(&name) && value.is_none() {
                i += 1;
            }
            continue;
        }
        let cluster = &a[1..];
        for (k, c) in cluster.iter().enumerate() {
            let rest = &cluster[k + 1..];
            if syn.inline.contains(c) {
                return None;
            }
            if syn.script.contains(c) {
                if rest.is_empty() {
                    return args.get(i).map(Vec::as_slice);
                }
                return Some(rest);
            }
            if syn.value.contains(c) {
                if rest.is_empty() {
                    i += 1;
                }
                break;
            }
            if syn.attached.contains(c) {
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CapSets, Credentials, Privileges};
    use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    const NOBODY: u32 = 65534;
    const CAP_SYS_ADMIN: u64 = 1 << 21;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// A temp dir that is itself safe (root-owned, 0755, under a safe
    /// chain), or `None` with a message when the test cannot run here.
    fn base() -> Option<(tempfile::TempDir, PathBuf)> {
        if !is_root() {
            eprintln!("skipped: needs root to create root- and 65534-owned files");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // Physical path, so expected `writable` values compare equal.
        let path = fs::canonicalize(dir.path()).unwrap();
        let found = walk(path.as_os_str().as_bytes()).unwrap();
        if !found.is_empty() {
            eprintln!("skipped: the temp dir {path:?} is itself modifiable: {found:?}");
            return None;
        }
        Some((dir, path))
    }

    fn b(p: &Path) -> Vec<u8> {
        p.as_os_str().as_bytes().to_vec()
    }

    fn file(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::write(p, b"#!/bin/sh\ntrue\n").unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        chown(p, Some(uid), Some(gid)).unwrap();
    }

    fn dir(p: &Path, mode: u32, uid: u32, gid: u32) {
        fs::create_dir(p).unwrap();
        // set_permissions after create: the umask would clear bits.
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        chown(p, Some(uid), Some(gid)).unwrap();
    }

    fn exec(euid: u32, effective: u64, exe: &[u8], argv: &[&[u8]]) -> ExecEvent {
        let mut ev = ExecEvent::new(SystemTime::now(), 4242, Some(1), "4242:1".into());
        ev.exe = Some(exe.to_vec());
        ev.filename = Some(exe.to_vec());
        ev.argv = Some(argv.iter().map(|a| a.to_vec()).collect());
        ev.cwd = Some(b"/".to_vec());
        ev.privileges = Some(Privileges::Linux {
            creds: Credentials {
                uid: euid,
                euid,
                ..Credentials::default()
            },
            caps: CapSets {
                effective,
                permitted: effective,
                ..CapSets::default()
            },
            secureexec: None,
            file: None,
            raised: None,
        });
        ev
    }

    /// A root `#!` script exec: exe is the interpreter, filename the script.
    fn script_exec(script: &[u8]) -> ExecEvent {
        let mut ev = exec(0, 0, b"/bin/sh", &[b"/bin/sh", script]);
        ev.interpreter = Some(b"/bin/sh".to_vec());
        ev.filename = Some(script.to_vec());
        ev
    }

    fn check(ev: &mut ExecEvent) -> Vec<Hijack> {
        HijackChecker::new().check(ev);
        ev.hijackable.clone()
    }

    /// Asserts that `got` is exactly one finding with these fields.
    fn expect(
        got: &[Hijack],
        path: Vec<u8>,
        role: HijackRole,
        writable: Vec<u8>,
        writers: &[&str],
    ) {
        let want = Hijack {
            path,
            role,
            writable,
            writers: writers.iter().map(|w| w.to_string()).collect(),
        };
        assert_eq!(got, [want]);
    }

    /// The `writable` and `writers` of the one finding in `got`.
    fn only(got: &[Hijack]) -> (Vec<u8>, Vec<String>) {
        assert_eq!(got.len(), 1, "{got:?}");
        (got[0].writable.clone(), got[0].writers.clone())
    }

    fn nobody_group() -> String {
        NameCache::new()
            .group(NOBODY)
            .map_or_else(|| format!("group {NOBODY}"), |n| format!("group {n}"))
    }

    #[test]
    fn world_writable_script() {
        let Some((_t, base)) = base() else { return };
        let x = base.join("x.sh");
        file(&x, 0o777, 0, 0);
        let got = check(&mut script_exec(&b(&x)));
        // The interpreter arg naming the same script is not repeated.
        expect(&got, b(&x), HijackRole::Script, b(&x), &["others"]);
    }

    #[test]
    fn group_writable_and_user_owned_scripts() {
        let Some((_t, base)) = base() else { return };
        let g = base.join("g.sh");
        file(&g, 0o775, 0, NOBODY);
        let got = check(&mut script_exec(&b(&g)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].writers, vec![nobody_group()]);
        // Group root with g+w is not a non-root writer.
        let r = base.join("r.sh");
        file(&r, 0o775, 0, 0);
        assert!(check(&mut script_exec(&b(&r))).is_empty());
        // An owner can chmod, so a read-only file still counts.
        let u = base.join("u.sh");
        file(&u, 0o555, NOBODY, 0);
        let got = check(&mut script_exec(&b(&u)));
        assert_eq!(only(&got), (b(&u), vec!["user nobody".to_string()]));
    }

    #[test]
    fn script_in_dir_writable_by_user() {
        let Some((_t, base)) = base() else { return };
        let d = base.join("d");
        dir(&d, 0o755, NOBODY, NOBODY);
        let x = d.join("x.sh");
        file(&x, 0o755, 0, 0);
        let got = check(&mut script_exec(&b(&x)));
        expect(&got, b(&x), HijackRole::Script, b(&d), &["user nobody"]);
        // A deeper file under the same dir is flagged through it too.
        let sub = d.join("sub");
        dir(&sub, 0o755, 0, 0);
        let y = sub.join("y.sh");
        file(&y, 0o755, 0, 0);
        let got = check(&mut script_exec(&b(&y)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].writable, b(&d));
        // g+w with a non-root group, and o+w, name those writers.
        let gw = base.join("gw");
        dir(&gw, 0o777, 0, NOBODY);
        let z = gw.join("z.sh");
        file(&z, 0o755, 0, 0);
        let got = check(&mut script_exec(&b(&z)));
        assert_eq!(
            only(&got),
            (b(&gw), vec![nobody_group(), "others".to_string()])
        );
    }

    #[test]
    fn root_owned_script_in_root_dir_is_safe() {
        let Some((_t, base)) = base() else { return };
        let bin = base.join("usr-local-bin");
        dir(&bin, 0o755, 0, 0);
        let x = bin.join("backup.sh");
        file(&x, 0o755, 0, 0);
        let mut ev = script_exec(&b(&x));
        assert!(check(&mut ev).is_empty());
        // As a binary and as an interpreter arg too.
        let mut ev = exec(0, 0, &b(&x), &[&b(&x)]);
        assert!(check(&mut ev).is_empty());
        let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", &b(&x)]);
        assert!(check(&mut ev).is_empty());
    }

    #[test]
    fn system_binaries_are_safe() {
        if !is_root() {
            eprintln!("skipped: ownership of system files is only meaningful as root");
            return;
        }
        for exe in [&b"/bin/true"[..], b"/usr/bin/env", b"/bin/sh"] {
            let mut ev = exec(0, 0, exe, &[exe]);
            assert!(check(&mut ev).is_empty(), "{:?}", ev.hijackable);
        }
    }

    #[test]
    fn sticky_dir_protects_root_entries_only() {
        let Some((_t, base)) = base() else { return };
        let tmp = base.join("tmp");
        dir(&tmp, 0o1777, 0, 0);
        let r = tmp.join("root.sh");
        file(&r, 0o755, 0, 0);
        assert!(check(&mut script_exec(&b(&r))).is_empty());
        let n = tmp.join("nobody.sh");
        file(&n, 0o755, NOBODY, NOBODY);
        let got = check(&mut script_exec(&b(&n)));
        expect(&got, b(&n), HijackRole::Script, b(&n), &["user nobody"]);
        // The sticky bit does not protect against the directory's owner.
        let own = base.join("owned-tmp");
        dir(&own, 0o1777, NOBODY, 0);
        let r2 = own.join("root.sh");
        file(&r2, 0o755, 0, 0);
        let got = check(&mut script_exec(&b(&r2)));
        assert_eq!(only(&got), (b(&own), vec!["user nobody".to_string()]));
        // A symlink owned by a non-root user in a sticky dir can be replaced
        // by that user even though it points to a safe file.
        let link = tmp.join("link.sh");
        symlink(&r, &link).unwrap();
        lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
        let got = check(&mut script_exec(&b(&link)));
        assert_eq!(only(&got), (b(&link), vec!["user nobody".to_string()]));
    }

    #[test]
    fn symlinks() {
        let Some((_t, base)) = base() else { return };
        let safe = base.join("safe.sh");
        file(&safe, 0o755, 0, 0);
        let w = base.join("w");
        dir(&w, 0o755, NOBODY, NOBODY);
        // A symlink in a writable dir, to a safe file (relative target).
        let link = w.join("link.sh");
        symlink("../safe.sh", &link).unwrap();
        let got = check(&mut script_exec(&b(&link)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, b(&link));
        assert_eq!(got[0].writable, b(&w));
        // A safe symlink into a writable dir.
        let inner = w.join("inner.sh");
        file(&inner, 0o755, 0, 0);
        let link2 = base.join("link2.sh");
        symlink(&inner, &link2).unwrap();
        let got = check(&mut script_exec(&b(&link2)));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].writable, b(&w));
        // A chain through a directory symlink: safe -> safe dir link.
        let sd = base.join("sd");
        dir(&sd, 0o755, 0, 0);
        file(&sd.join("s.sh"), 0o755, 0, 0);
        symlink("sd", base.join("sdlink")).unwrap();
        symlink("sdlink/s.sh", base.join("chain.sh")).unwrap();
        assert!(check(&mut script_exec(&b(&base.join("chain.sh")))).is_empty());
        // `..` after a symlink is physical: w/up -> ../sd, w/up/../x is sd/../x.
        symlink("../sd", w.join("up")).unwrap();
        let via = b(&w.join("up/../safe.sh"));
        let got = check(&mut script_exec(&via));
        assert_eq!(got.len(), 1, "the link lives in a writable dir");
        assert_eq!(got[0].writable, b(&w));
        // A loop resolves to nothing: no finding.
        symlink("loop2", base.join("loop1")).unwrap();
        symlink("loop1", base.join("loop2")).unwrap();
        assert!(check(&mut script_exec(&b(&base.join("loop1")))).is_empty());
    }

    #[test]
    fn interpreter_args() {
        let Some((_t, base)) = base() else { return };
        let x = base.join("x.sh");
        file(&x, 0o666, 0, 0);
        let xs = b(&x);
        let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", &xs]);
        let got = check(&mut ev);
        expect(
            &got,
            xs.clone(),
            HijackRole::InterpreterArg,
            xs.clone(),
            &["others"],
        );
        let mut ev = exec(
            0,
            0,
            b"/usr/bin/python3.12",
            &[b"python3", b"-u", &xs, b"arg"],
        );
        assert_eq!(check(&mut ev).len(), 1);
        // `sh -c` has no script file; only the binary is a candidate.
        let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", b"-c", &xs]);
        assert!(check(&mut ev).is_empty());
        assert_eq!(candidates(&ev).len(), 1);
    }

    /// (exe, argv split at spaces, the script interpreter_arg should find).
    type ArgCase = (&'static str, &'static str, Option<&'static str>);

    const ARG_CASES: &[ArgCase] = &[
        ("/bin/bash", "bash x.sh", Some("x.sh")),
        ("/bin/bash", "bash -e x.sh", Some("x.sh")),
        ("/bin/bash", "bash -ec echo", None),
        ("/bin/dash", "sh -c x y.sh", None),
        ("/bin/bash", "bash -s a", None),
        ("/bin/bash", "bash -o pipefail x.sh", Some("x.sh")),
        ("/bin/bash", "bash +o posix x.sh", Some("x.sh")),
        ("/bin/bash", "bash --rcfile rc x.sh", Some("x.sh")),
        ("/bin/sh", "sh -- -x.sh", Some("-x.sh")),
        ("/bin/sh", "sh", None),
        ("/usr/bin/python3", "python3 -m http.server", None),
        ("/usr/bin/python3", "python3 -c print()", None),
        ("/usr/bin/python3", "python3 -Bc 1", None),
        ("/usr/bin/python3", "python3 - x.py", None),
        ("/usr/bin/python3", "python3 -X dev x.py", Some("x.py")),
        ("/usr/bin/python3", "python3 -Wignore x.py", Some("x.py")),
        ("/usr/bin/perl", "perl -ne print", None),
        ("/usr/bin/perl", "perl -Mstrict -w x.pl", Some("x.pl")),
        ("/usr/bin/perl", "perl -I lib x.pl", Some("x.pl")),
        ("/usr/bin/ruby", "ruby -e 1", None),
        ("/usr/bin/ruby", "ruby -r json x.rb", Some("x.rb")),
        ("/usr/bin/php8.2", "php -r 1;", None),
        ("/usr/bin/php", "php -f x.php", Some("x.php")),
        ("/usr/bin/php", "php -c php.ini x.php", Some("x.php")),
        ("/usr/bin/node", "node -e 1", None),
        ("/usr/bin/node", "node --eval=1", None),
        ("/usr/bin/node", "node --require m x.js", Some("x.js")),
        ("/usr/bin/node", "node --import=m x.js", Some("x.js")),
        ("/usr/bin/lua5.4", "lua -e x=1", None),
        (
            "/usr/bin/tclsh8.6",
            "tclsh -encoding utf-8 x.tcl",
            Some("x.tcl"),
        ),
        ("/usr/bin/Rscript", "Rscript -e 1", None),
        ("/usr/bin/Rscript", "Rscript --vanilla x.R", Some("x.R")),
        // busybox: by argv[0] (a symlink) or argv[1] (the applet name).
        ("/bin/busybox", "sh x.sh", Some("x.sh")),
        ("/bin/busybox", "busybox ash x.sh", Some("x.sh")),
        ("/bin/busybox", "busybox ls x", None),
        // Not interpreters: their argv names no script.
        ("/usr/bin/cat", "cat x.sh", None),
        ("/usr/bin/shred", "shred x", None),
        ("/usr/bin/python3-config", "x y", None),
    ];

    #[test]
    fn interpreter_arg_parsing() {
        for (exe, argv, want) in ARG_CASES {
            let argv: Vec<&[u8]> = argv.split(' ').map(str::as_bytes).collect();
            let ev = exec(0, 0, exe.as_bytes(), &argv);
            let got = interpreter_arg(&ev);
            assert_eq!(got, want.map(str::as_bytes), "{exe} {argv:?}");
        }
    }

    #[test]
    fn relative_paths_use_cwd() {
        let Some((_t, base)) = base() else { return };
        let x = base.join("x.sh");
        file(&x, 0o777, 0, 0);
        let mut ev = script_exec(b"./x.sh");
        ev.argv = Some(vec![b"/bin/sh".to_vec(), b"./x.sh".to_vec()]);
        ev.cwd = Some(b(&base));
        let got = check(&mut ev);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].path, [b(&base), b"/./x.sh".to_vec()].concat());
        assert_eq!(got[0].writable, b(&x));
        // Without a cwd, relative files are skipped.
        ev.cwd = None;
        assert!(check(&mut ev).is_empty());
        ev.cwd = Some(b"relative/cwd".to_vec());
        assert!(check(&mut ev).is_empty());
    }

    #[test]
    fn only_privileged_execs_are_checked() {
        let Some((_t, base)) = base() else { return };
        let x = base.join("x.sh");
        file(&x, 0o777, 0, 0);
        let mut ev = script_exec(&b(&x));
        ev.privileges = Some(Privileges::Linux {
            creds: Credentials {
                uid: 1000,
                euid: 1000,
                ..Credentials::default()
            },
            caps: CapSets::default(),
            secureexec: None,
            file: None,
            raised: None,
        });
        let mut c = HijackChecker::new();
        c.check(&mut ev);
        assert!(ev.hijackable.is_empty());
        assert_eq!(c.walks(), 0, "not even looked at");
        ev.privileges = None;
        c.check(&mut ev);
        assert!(ev.hijackable.is_empty());
        // Non-root with an effective capability is privileged.
        let mut ev = exec(1000, CAP_SYS_ADMIN, b"/bin/sh", &[b"sh", &b(&x)]);
        c.check(&mut ev);
        assert_eq!(ev.hijackable.len(), 1);
    }

    #[test]
    fn pseudo_and_weird_paths_give_nothing() {
        let long = [b"/".to_vec(), vec![b'a'; 10_000]].concat();
        let deep = b"/a/".repeat(3000);
        for exe in [
            &b"/memfd:payload (deleted)"[..],
            b"/usr/bin/gone (deleted)",
            b"/nonexistent/x",
            b"/tmp/\xff\xfe-not-utf8",
            b"/tmp/nul\0byte",
            b"",
            b"/",
            &long,
            &deep,
            b"relative",
            b"/dev/fd/3",
        ] {
            let mut ev = exec(0, 0, exe, &[exe]);
            ev.interpreter = Some(b"/bin/sh".to_vec());
            ev.cwd = None;
            assert!(check(&mut ev).is_empty(), "{exe:?}");
        }
        // A truncated exe path is another file's path: not checked.
        let mut ev = exec(0, 0, b"/tmp", &[b"x"]);
        ev.exe_truncated = true;
        assert!(candidates(&ev).is_empty());
        assert!(walk(b"/etc/passwd/x").is_none(), "file used as a dir");
    }

    #[test]
    fn cache_hits_and_invalidation() {
        let Some((_t, base)) = base() else { return };
        let d = base.join("d");
        dir(&d, 0o755, 0, 0);
        let x = d.join("x.sh");
        file(&x, 0o755, 0, 0);
        let mut c = HijackChecker::new();
        let mut ev = script_exec(&b(&x));
        c.check(&mut ev);
        c.check(&mut ev);
        assert!(ev.hijackable.is_empty());
        // /bin/sh and the script: one walk each, then hits.
        assert_eq!(c.walks(), 2);
        // A chmod of the file changes its ctime: seen at once.
        fs::set_permissions(&x, fs::Permissions::from_mode(0o757)).unwrap();
        c.check(&mut ev);
        assert_eq!(c.walks(), 3);
        assert_eq!(ev.hijackable.len(), 1);
        // A directory change is seen once the verdict expires.
        fs::set_permissions(&x, fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = HijackChecker::with_ttl(Duration::ZERO);
        c.check(&mut ev);
        assert!(ev.hijackable.is_empty());
        chown(&d, Some(NOBODY), None).unwrap();
        c.check(&mut ev);
        assert_eq!(ev.hijackable.len(), 1);
        assert_eq!(ev.hijackable[0].writable, b(&d));
    }

    #[test]
    fn kernel_identity_of_the_binary_replaces_its_lstat() {
        let Some((_t, base)) = base() else { return };
        let d = base.join("d");
        dir(&d, 0o755, 0, 0);
        let x = d.join("tool");
        file(&x, 0o755, 0, 0);
        // As the eBPF source reports it: the executed inode and its stamp.
        let stamped = |p: &Path| {
            let m = fs::metadata(p).unwrap();
            let mut ev = exec(0, 0, &b(p), &[&b(p)]);
            ev.exe_dev_ino = Some((m.dev(), m.ino()));
            ev.exe_stamp = Some(crate::event::FileStamp::of(&m));
            ev
        };
        let mut c = HijackChecker::new();
        let mut ev = stamped(&x);
        c.check(&mut ev);
        assert!(ev.hijackable.is_empty());
        assert_eq!(c.walks(), 1);
        c.check(&mut ev);
        assert_eq!(c.walks(), 1, "same inode and stamp: a cache hit");
        // After a chmod the next exec carries a new ctime: walked again.
        fs::set_permissions(&x, fs::Permissions::from_mode(0o757)).unwrap();
        let mut ev = stamped(&x);
        c.check(&mut ev);
        assert_eq!(c.walks(), 2);
        assert_eq!(ev.hijackable.len(), 1);
        assert_eq!(ev.hijackable[0].role, HijackRole::Binary);
    }

    #[test]
    fn cache_is_bounded() {
        let mut c = HijackChecker::new();
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 10 {
            let p = dir.path().join(format!("f{i}"));
            fs::write(&p, b"").unwrap();
            c.verdict(&b(&p), None);
            assert!(c.lock().len() <= MAX_ENTRIES);
        }
        assert!(c.lock().len() >= 10);
    }

    #[test]
    fn unnamed_ids_are_numbers() {
        let mut names = NameCache::new();
        assert_eq!(
            describe(&mut names, Writer::User(3_999_999_999)),
            "user 3999999999"
        );
        assert_eq!(
            describe(&mut names, Writer::Group(3_999_999_999)),
            "group 3999999999"
        );
        assert_eq!(describe(&mut names, Writer::Others), "others");
    }
}
