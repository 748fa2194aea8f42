//! The path walk: resolves a path one component at a time with
//! `lstat`/`readlink`, as the kernel would, and says at every step who
//! other than root could modify it (the file, a directory entry on the way,
//! a symlink the path goes through).

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;

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
pub(super) enum Writer {
    User(u32),
    Group(u32),
    Others,
}

/// One modifiable step of a path, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) writable: Vec<u8>,
    pub(super) writers: Vec<Writer>,
}

/// What the walk needs of one path step: its type, mode and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Node {
    /// `st_mode`, file type bits included.
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
}

impl Node {
    pub(super) fn of(m: &Metadata) -> Node {
        Node {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        }
    }

    fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub(super) fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
}

/// Where the walk looks paths up: procwatch's own view ([`Host`]), or
/// another process's root (`root_view`). Both take absolute paths and never
/// follow a symlink themselves; the walk resolves each one.
pub(super) trait View {
    fn lstat(&mut self, path: &[u8]) -> Option<Node>;
    fn read_link(&mut self, path: &[u8]) -> Option<Vec<u8>>;
}

/// Paths as procwatch sees them.
pub(super) struct Host;

impl View for Host {
    fn lstat(&mut self, path: &[u8]) -> Option<Node> {
        lstat(path).map(|m| Node::of(&m))
    }

    fn read_link(&mut self, path: &[u8]) -> Option<Vec<u8>> {
        Some(
            fs::read_link(OsStr::from_bytes(path))
                .ok()?
                .into_os_string()
                .into_vec(),
        )
    }
}

pub(super) fn lstat(path: &[u8]) -> Option<Metadata> {
    if path.is_empty() || path.len() > MAX_PATH {
        return None;
    }
    // std rejects interior NULs with an error, so no path can panic here.
    fs::symlink_metadata(OsStr::from_bytes(path)).ok()
}

/// `p` made absolute against `cwd`; `None` when that is impossible or the
/// path names something of the exec'ing process rather than a file we can
/// see the same way (`/dev/fd/N`, `/proc/...`).
pub(super) fn absolute<'a>(p: &'a [u8], cwd: Option<&[u8]>) -> Option<Cow<'a, [u8]>> {
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
fn writers_of(m: &Node) -> Vec<Writer> {
    let mut w = Vec::new();
    if m.uid != 0 {
        w.push(Writer::User(m.uid));
    }
    if m.mode & S_IWGRP != 0 && m.gid != 0 {
        w.push(Writer::Group(m.gid));
    }
    if m.mode & S_IWOTH != 0 {
        w.push(Writer::Others);
    }
    w
}

/// Records who can replace or rename `entry` through its directory `dir`.
fn entry_writers(out: &mut Vec<Found>, dir: &[u8], dm: &Node, entry: &[u8], em: &Node) {
    if dm.mode & S_ISVTX == 0 {
        note(out, dir, &writers_of(dm));
        return;
    }
    // Sticky: the directory's owner still controls every entry...
    if dm.uid != 0 {
        note(out, dir, &[Writer::User(dm.uid)]);
    }
    // ...and a non-root entry owner who can write the directory can replace
    // their own entry. Group membership is not checked: reported when the
    // directory is group- or world-writable at all.
    let shared = (dm.mode & S_IWGRP != 0 && dm.gid != 0) || dm.mode & S_IWOTH != 0;
    if shared && em.uid != 0 && em.uid != dm.uid {
        note(out, entry, &[Writer::User(em.uid)]);
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
pub(super) fn walk(path: &[u8]) -> Option<Vec<Found>> {
    walk_in(&mut Host, path)
}

/// [`walk`] through `view`.
pub(super) fn walk_in(view: &mut impl View, path: &[u8]) -> Option<Vec<Found>> {
    if path.len() > MAX_PATH {
        return None;
    }
    let mut out = Vec::new();
    // `dir` is always a physical path (no symlinks), so `..` is a plain pop.
    let mut dir = b"/".to_vec();
    let mut dir_meta = view.lstat(&dir)?;
    let mut todo = Vec::new();
    push_components(&mut todo, path);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == b".." {
            if let Some(i) = dir.iter().rposition(|&b| b == b'/') {
                dir.truncate(i.max(1));
            }
            dir_meta = view.lstat(&dir)?;
            continue;
        }
        let entry = join(&dir, &name);
        let meta = view.lstat(&entry)?;
        entry_writers(&mut out, &dir, &dir_meta, &entry, &meta);
        if meta.is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = view.read_link(&entry)?;
            if target.first() == Some(&b'/') {
                dir = b"/".to_vec();
                dir_meta = view.lstat(&dir)?;
            }
            // Relative targets resolve against the link's directory, which
            // is `dir` unchanged.
            push_components(&mut todo, &target);
        } else if meta.is_dir() {
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
