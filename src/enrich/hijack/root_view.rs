//! Paths as another process sees them: through `/proc/<pid>/root`, for an
//! exec in a mount namespace other than procwatch's, whose paths name that
//! namespace's files (a bind mount over `/usr/bin/passwd` there leaves the
//! host's file untouched).
//!
//! That tree belongs to whoever owns the namespace, so nothing in it is
//! trusted: every step is opened relative to the directory before it with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` as an `O_PATH`
//! descriptor (no FIFO or device is ever opened, no symlink followed; the
//! walk reads each link itself and resolves it inside the root), and its
//! owner and mode come from `statx(AT_STATX_DONT_SYNC)`. The only link the
//! kernel follows is `/proc/<pid>/root` itself.
//!
//! FUSE: the mount of every step is checked against the process's mount
//! table before anything below it is looked up, so no request ever reaches
//! a FUSE server (which could hold the lookup forever). Reading a mount
//! table costs far more than the walk, so tables are kept per mount
//! namespace ([`MountTables`]), with their `mountinfo` open: the kernel
//! flags it (POLLPRI) when that namespace's mounts change, and a mount id
//! the table does not list makes it be read again at once.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::walk::{Node, View};

/// Directories kept open per walk at most; a path needing more is not
/// judged.
const MAX_OPEN: usize = 256;

/// Why a step could not be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// On a FUSE mount of that namespace.
    Fuse,
    /// Gone, unreadable, or on a mount the table does not list.
    Unresolved,
}

/// Mount namespaces whose tables are kept at most; an open `mountinfo`
/// keeps its namespace alive, so unused ones are let go.
const MAX_TABLES: usize = 64;
/// A table not used for this long is let go when room is needed.
const IDLE: Duration = Duration::from_secs(10);

/// One mount namespace's mount table: which mount ids exist, which are
/// FUSE.
struct MountTable {
    /// `/proc/<pid>/mountinfo` of a process in that namespace, kept open.
    file: File,
    fuse: HashSet<u64>,
    known: HashSet<u64>,
    used: Instant,
}

impl MountTable {
    fn open(pid: u32) -> io::Result<MountTable> {
        let mut t = MountTable {
            file: File::open(format!("/proc/{pid}/mountinfo"))?,
            fuse: HashSet::new(),
            known: HashSet::new(),
            used: Instant::now(),
        };
        t.read()?;
        Ok(t)
    }

    /// Whether the kernel flagged a change since the last read (one
    /// poll(2), no wait).
    fn changed(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n != 0 && p.revents & (libc::POLLPRI | libc::POLLERR) != 0
    }

    fn read(&mut self) -> io::Result<()> {
        // Take the change flag first: a change after it is flagged again.
        self.changed();
        let mut table = Vec::new();
        self.file.rewind()?;
        self.file.read_to_end(&mut table)?;
        self.fuse.clear();
        self.known.clear();
        for line in table.split(|&b| b == b'\n') {
            let id = line.split(|&b| b == b' ').next().map(std::str::from_utf8);
            let (Some(Ok(id)), Some(m)) = (id, crate::linux::mountinfo::parse_line(line)) else {
                continue;
            };
            let Ok(id) = id.parse::<u64>() else { continue };
            self.known.insert(id);
            if m.fstype == b"fuse" || m.fstype == b"fuseblk" || m.fstype.starts_with(b"fuse.") {
                self.fuse.insert(id);
            }
        }
        Ok(())
    }
}

/// Mount tables by mount namespace (its inode number).
#[derive(Default)]
pub(super) struct MountTables {
    tables: HashMap<u32, MountTable>,
}

impl std::fmt::Debug for MountTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MountTables({} namespaces)", self.tables.len())
    }
}

impl MountTables {
    /// The table of mount namespace `ns` (read through `pid`, a process in
    /// it), current as the kernel's change flag tells; `ns` unknown: read
    /// afresh and not kept.
    fn of(&mut self, ns: Option<u32>, pid: u32) -> io::Result<MountTable> {
        let Some(ns) = ns else {
            return MountTable::open(pid);
        };
        let mut t = match self.tables.remove(&ns) {
            Some(mut t) => {
                if t.changed() {
                    t.read()?;
                }
                t
            }
            None => MountTable::open(pid)?,
        };
        t.used = Instant::now();
        Ok(t)
    }

    /// Keeps `t` for namespace `ns`, letting idle tables go when full.
    fn keep(&mut self, ns: Option<u32>, t: MountTable) {
        let Some(ns) = ns else { return };
        if self.tables.len() >= MAX_TABLES {
            self.tables.retain(|_, t| t.used.elapsed() < IDLE);
            if self.tables.len() >= MAX_TABLES {
                self.tables.clear();
            }
        }
        self.tables.insert(ns, t);
    }
}

/// One process's root, opened once per exec.
pub(super) struct RootView<'a> {
    /// Opened directories by absolute path in the root (`/` is the root).
    dirs: HashMap<Vec<u8>, OwnedFd>,
    /// The last step looked up, kept for `read_link`.
    last: Option<(Vec<u8>, OwnedFd)>,
    mounts: Option<MountTable>,
    ns: Option<u32>,
    tables: &'a mut MountTables,
    /// The first reason a step was not looked at.
    pub(super) stopped: Option<Stop>,
}

impl Drop for RootView<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.mounts.take() {
            self.tables.keep(self.ns, t);
        }
    }
}

impl<'a> RootView<'a> {
    /// Opens `/proc/<pid>/root` of a process in mount namespace `ns`, and
    /// that namespace's mount table.
    pub(super) fn open(
        pid: u32,
        ns: Option<u32>,
        tables: &'a mut MountTables,
    ) -> io::Result<RootView<'a>> {
        let root = open_root(pid)?;
        let mounts = tables.of(ns, pid)?;
        let mut dirs = HashMap::new();
        dirs.insert(b"/".to_vec(), root);
        Ok(RootView {
            dirs,
            last: None,
            mounts: Some(mounts),
            ns,
            tables,
            stopped: None,
        })
    }

    /// Whether mount `id` may be looked into: listed, and not FUSE. A mount
    /// the table does not list makes it be read again once.
    fn mount_ok(&mut self, id: u64) -> bool {
        let Some(t) = self.mounts.as_mut() else {
            return false;
        };
        if !t.known.contains(&id) && t.read().is_err() {
            return false;
        }
        if t.fuse.contains(&id) {
            self.stopped.get_or_insert(Stop::Fuse);
            return false;
        }
        t.known.contains(&id)
    }

    fn stop(&mut self) -> Option<Node> {
        self.stopped.get_or_insert(Stop::Unresolved);
        None
    }

    /// The (dev, ino) of `path` in the root, as the kernel would report the
    /// executed file's identity.
    /// Every component must be a directory of the root (no symlink): the
    /// kernel's exe path is a physical one.
    pub(super) fn identity(&mut self, path: &[u8]) -> Option<(u64, u64)> {
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        if path.first() != Some(&b'/') || parts.iter().any(|c| *c == b"." || *c == b"..") {
            return None;
        }
        let mut prefix = Vec::with_capacity(path.len());
        for (i, part) in parts.iter().enumerate() {
            prefix.push(b'/');
            prefix.extend_from_slice(part);
            let node = self.lstat(&prefix)?;
            if i + 1 < parts.len() && !node.is_dir() {
                return None;
            }
        }
        let (_, fd) = self.last.as_ref()?;
        let sx = statx(fd.as_raw_fd()).ok()?;
        Some((
            libc::makedev(sx.stx_dev_major, sx.stx_dev_minor),
            sx.stx_ino,
        ))
    }
}

impl View for RootView<'_> {
    fn lstat(&mut self, path: &[u8]) -> Option<Node> {
        self.last = None;
        let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
            _ if path == b"/" => (&b"/"[..], &b"."[..]),
            Some(0) => (&b"/"[..], &path[1..]),
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return self.stop(),
        };
        let Some(dirfd) = self.dirs.get(parent).map(AsRawFd::as_raw_fd) else {
            return self.stop();
        };
        if name.is_empty() || name == b".." || name.contains(&0) {
            return self.stop();
        }
        let fd = beneath(dirfd, name);
        let Ok(fd) = fd else {
            return self.stop();
        };
        let Ok(sx) = statx(fd.as_raw_fd()) else {
            return self.stop();
        };
        if sx.stx_mask & libc::STATX_MNT_ID == 0 || !self.mount_ok(sx.stx_mnt_id) {
            return self.stop();
        }
        let node = Node {
            mode: u32::from(sx.stx_mode),
            uid: sx.stx_uid,
            gid: sx.stx_gid,
        };
        if node.mode & libc::S_IFMT == libc::S_IFDIR && path != b"/" {
            if self.dirs.len() >= MAX_OPEN {
                return self.stop();
            }
            let dup = fd.try_clone().ok()?;
            self.dirs.insert(path.to_vec(), dup);
        }
        self.last = Some((path.to_vec(), fd));
        Some(node)
    }

    fn read_link(&mut self, path: &[u8]) -> Option<Vec<u8>> {
        let fd = match &self.last {
            Some((p, fd)) if p == path => fd.as_raw_fd(),
            _ => return None,
        };
        let mut buf = vec![0u8; 4096];
        // SAFETY: `fd` is an O_PATH descriptor of the symlink itself;
        // readlinkat with an empty path reads that link, into `buf` of the
        // given length.
        let n = unsafe { libc::readlinkat(fd, c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        let n = usize::try_from(n).ok()?;
        // A link filling the buffer may have been cut.
        if n >= buf.len() {
            return None;
        }
        buf.truncate(n);
        Some(buf)
    }
}

/// `O_PATH` descriptor of `/proc/<pid>/root`: the one magic link
/// followed on purpose.
fn open_root(pid: u32) -> io::Result<OwnedFd> {
    let c = CString::new(format!("/proc/{pid}/root"))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid C string; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One entry `name` of directory `dirfd`, as an `O_PATH` descriptor of the
/// entry itself (a symlink is not followed), never leaving `dirfd`.
fn beneath(dirfd: RawFd, name: &[u8]) -> io::Result<OwnedFd> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all-zero is a valid open_how.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers for the call; the size is the struct's.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &raw const how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a descriptor just returned to us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `statx` of an `O_PATH` descriptor, from the inode as cached: on FUSE,
/// `AT_STATX_DONT_SYNC` keeps it from asking the server.
fn statx(fd: RawFd) -> io::Result<libc::statx> {
    // SAFETY: all-zero is a valid statx buffer.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers; an empty path with AT_EMPTY_PATH names `fd`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_statx,
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC,
            libc::STATX_BASIC_STATS | libc::STATX_MNT_ID,
            &raw mut sx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sx)
}
