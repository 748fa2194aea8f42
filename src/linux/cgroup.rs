//! Cgroup v2 ids to paths: what the kernel reports at exec time (the id of
//! the task's cgroup in the unified hierarchy) turned into the path a
//! reader knows (`/system.slice/docker-<id>.scope`).
//!
//! The id is the cgroup directory's kernfs node id, which is also its inode
//! number on 64-bit kernels and the payload of its file handle
//! (`FILEID_KERNFS`). Cgroup v2 ids are never reused and v2 directories
//! cannot be renamed, so an id, once resolved, names the same path for as
//! long as the run lasts: the cache is never invalidated, only bounded.
//!
//! A miss is resolved by `open_by_handle_at` on the unified mount (one
//! syscall into kernfs, no walk; needs `CAP_DAC_READ_SEARCH`), then
//! `readlink` of `/proc/self/fd/N` and a check that the path found still
//! leads to that id. When handles fail (not root, a kernel without cgroup
//! handles), a walk of the hierarchy matches directory inode numbers
//! against ids. The walk is bounded ([`WALK_MAX_DIRS`], [`WALK_MAX_TIME`]),
//! runs at most once per [`WALK_INTERVAL`], and caches every directory it
//! passes, so the writer thread that calls [`CgroupPaths::path_of`] is held
//! for at most 5 ms per 250 ms (2%) whatever users create. A walk reads
//! about 3 µs per directory (`cargo bench --bench cgroup`), so without
//! handles only the first ~1500 directories, breadth first, are reachable;
//! deeper ids stay `NotFound`. As root on Linux 5.5 and later (64-bit
//! kernfs ids) handles work and no walk runs: a miss costs ~12 µs, a hit
//! ~35 ns.
//!
//! The hierarchy is hostile input: users with a delegated subtree choose
//! directory names (any bytes but `/`, NUL and newline, which cgroupfs
//! refuses). Paths are kept as bytes; the walk descends only entries the
//! kernel reports as directories, and cgroupfs has no symlinks a user
//! could plant.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mountinfo;

/// `CGROUP2_SUPER_MAGIC`: the unified mount's `statfs` type.
const CGROUP2_MAGIC: i64 = 0x6367_7270;
/// The kernfs file handle type: the payload is the 8-byte node id.
const FILEID_KERNFS: i32 = 0xfe;
/// Ids remembered; past this the cache starts again (a host with more live
/// cgroups than this re-resolves some, it never answers wrongly).
const MAX_CACHED: usize = 16_384;
/// Directories one walk reads at most.
pub const WALK_MAX_DIRS: usize = 4_096;
/// Time one walk takes at most.
pub const WALK_MAX_TIME: Duration = Duration::from_millis(5);
/// Least time between two walks; an id missed in between is `Deferred`.
pub const WALK_INTERVAL: Duration = Duration::from_millis(250);

/// Why a cgroup id has no path; [`Why::reason`] is the text for
/// `incomplete_reasons`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// The cgroup was removed before it was resolved (a short-lived
    /// container); ids are not reused, so this is final.
    Gone,
    /// Neither file handles nor a walk found it within the bounds.
    NotFound,
    /// Handles fail here and the last walk was too recent to walk again.
    Deferred,
    /// The id leads outside the unified mount procwatch sees (procwatch
    /// runs in a cgroup namespace below that cgroup).
    OutsideMount,
    /// Any other error, with its errno.
    Io(i32),
}

impl Why {
    /// A stable, machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            Why::Gone => "cgroup_gone",
            Why::NotFound => "cgroup_not_found",
            Why::Deferred => "cgroup_lookup_deferred",
            Why::OutsideMount => "cgroup_outside_mount",
            Why::Io(_) => "cgroup_lookup_failed",
        }
    }
}

/// A resolved cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Path from the unified root, starting with `/` (as the `0::` line
    /// of `/proc/<pid>/cgroup` shows it); `/` for the root.
    pub path: Arc<[u8]>,
    /// Owner of the directory. Not 0 when a user created it or it was
    /// delegated to them: the name was then chosen by that uid.
    pub owner_uid: u32,
}

/// Resolves and caches cgroup v2 ids; one lives on the writer thread.
#[derive(Debug)]
pub struct CgroupPaths {
    mount: PathBuf,
    root: OwnedFd,
    cache: HashMap<u64, Cgroup>,
    gone: HashMap<u64, Why>,
    handles: bool,
    last_walk: Option<Instant>,
    walk_max_dirs: usize,
    walk_max_time: Duration,
    walks: u64,
}

impl CgroupPaths {
    /// Finds the cgroup v2 (unified) mount in `/proc/self/mountinfo`: at
    /// `/sys/fs/cgroup` on a pure v2 host, `/sys/fs/cgroup/unified` on a
    /// hybrid one. `NotFound` when there is none (a v1-only host).
    pub fn new() -> io::Result<Self> {
        let info = fs::read("/proc/self/mountinfo")?;
        let mount = unified_mount(&info).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount in mountinfo")
        })?;
        Self::at(Path::new(std::ffi::OsStr::from_bytes(&mount)))
    }

    /// Uses the cgroup v2 mount at `mount`; fails if it is not one.
    pub fn at(mount: &Path) -> io::Result<Self> {
        let c = CString::new(mount.as_os_str().as_bytes())?;
        // Not O_PATH: open_by_handle_at refuses such a mount fd (EBADF).
        // SAFETY: `c` is a valid C string; the fd returned is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let root = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero statfs is valid; fstatfs fills it.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `root` is open; `st` is a valid out pointer.
        if unsafe { libc::fstatfs(root.as_raw_fd(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if st.f_type as i64 != CGROUP2_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a cgroup2 mount", mount.display()),
            ));
        }
        Ok(CgroupPaths {
            mount: mount.to_path_buf(),
            root,
            cache: HashMap::new(),
            gone: HashMap::new(),
            handles: true,
            last_walk: None,
            walk_max_dirs: WALK_MAX_DIRS,
            walk_max_time: WALK_MAX_TIME,
            walks: 0,
        })
    }

    /// Resolves by walking only, as when file handles fail (not root, or a
    /// kernel without them); for tests and such hosts.
    pub fn without_handles(mut self) -> Self {
        self.handles = false;
        self
    }

    /// Bounds for one walk other than [`WALK_MAX_DIRS`] and
    /// [`WALK_MAX_TIME`] (a test on a loaded host needs more time).
    pub fn walk_limits(mut self, max_dirs: usize, max_time: Duration) -> Self {
        self.walk_max_dirs = max_dirs;
        self.walk_max_time = max_time;
        self
    }

    /// How many walks ran: 0 while file handles work.
    pub fn walks(&self) -> u64 {
        self.walks
    }

    /// The unified mount point in use.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// The path of cgroup `id` (see [`Cgroup::path`]).
    pub fn path_of(&mut self, id: u64) -> Result<Arc<[u8]>, Why> {
        self.resolve(id).map(|c| c.path.clone())
    }

    /// The cgroup `id`: from the cache, else by handle, else by a bounded
    /// walk (see the module docs for what that costs).
    pub fn resolve(&mut self, id: u64) -> Result<&Cgroup, Why> {
        if self.cache.contains_key(&id) {
            return Ok(&self.cache[&id]);
        }
        if let Some(&why) = self.gone.get(&id) {
            return Err(why);
        }
        let found = if self.handles {
            match self.by_handle(id) {
                // Not a handle problem: a walk would not find it either.
                Err(why @ (Why::Gone | Why::OutsideMount)) => Err(why),
                Err(why) => {
                    // No CAP_DAC_READ_SEARCH, or no cgroup handles in this
                    // kernel: that will not change, so stop trying.
                    if let Why::Io(libc::EPERM | libc::EOPNOTSUPP | libc::EINVAL) = why {
                        self.handles = false;
                    }
                    self.by_walk(id)
                }
                ok => ok,
            }
        } else {
            self.by_walk(id)
        };
        match found {
            Ok(cg) => {
                self.insert(id, cg);
                Ok(&self.cache[&id])
            }
            Err(why) => {
                if matches!(why, Why::Gone | Why::OutsideMount) {
                    if self.gone.len() >= MAX_CACHED {
                        self.gone.clear();
                    }
                    self.gone.insert(id, why);
                }
                Err(why)
            }
        }
    }

    fn insert(&mut self, id: u64, cg: Cgroup) {
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(id, cg);
    }

    fn by_handle(&self, id: u64) -> Result<Cgroup, Why> {
        #[repr(C)]
        struct Handle {
            bytes: u32,
            kind: i32,
            id: [u8; 8],
        }
        let handle = Handle {
            bytes: 8,
            kind: FILEID_KERNFS,
            id: id.to_ne_bytes(),
        };
        // SAFETY: `handle` is a struct file_handle with 8 payload bytes;
        // the fd returned is owned below.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_open_by_handle_at,
                self.root.as_raw_fd(),
                &handle as *const Handle,
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(match e {
                libc::ESTALE | libc::ENOENT => Why::Gone,
                e => Why::Io(e),
            });
        }
        // SAFETY: the syscall returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|e| Why::Io(e.raw_os_error().unwrap_or(0)))?;
        let rel = strip_mount(
            link.as_os_str().as_bytes(),
            self.mount.as_os_str().as_bytes(),
        )
        .ok_or(Why::OutsideMount)?;
        // The link text alone is not proof: a removed directory reads as
        // "<path> (deleted)", which a user can also name a directory. The
        // path must lead back to this very id.
        let meta = self.stat_rel(rel).map_err(|_| Why::Gone)?;
        if meta.ino() != id {
            return Err(Why::Gone);
        }
        Ok(Cgroup {
            path: rooted(rel),
            owner_uid: meta.uid(),
        })
    }

    /// `lstat` of `rel` (from the unified root, with or without a leading
    /// `/`), through the mount's fd.
    fn stat_rel(&self, rel: &[u8]) -> io::Result<fs::Metadata> {
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        let p = Path::new(&self.mount).join(std::ffi::OsStr::from_bytes(rel));
        fs::symlink_metadata(p)
    }

    /// Walks the hierarchy breadth-first, caching every directory seen,
    /// until `id` is found or a bound is hit.
    fn by_walk(&mut self, id: u64) -> Result<Cgroup, Why> {
        if self.last_walk.is_some_and(|t| t.elapsed() < WALK_INTERVAL) {
            return Err(Why::Deferred);
        }
        let start = Instant::now();
        self.last_walk = Some(start);
        self.walks += 1;
        let root_meta = fs::symlink_metadata(&self.mount).map_err(io_why)?;
        let root = Cgroup {
            path: Arc::from(&b"/"[..]),
            owner_uid: root_meta.uid(),
        };
        self.insert(root_meta.ino(), root.clone());
        if root_meta.ino() == id {
            return Ok(root);
        }
        let mut queue = std::collections::VecDeque::from([Vec::new()]);
        let mut dirs = 0;
        let mut found = None;
        while let Some(rel) = queue.pop_front() {
            if dirs >= self.walk_max_dirs || start.elapsed() >= self.walk_max_time {
                return Err(Why::NotFound);
            }
            dirs += 1;
            // `rel` starts with `/`, which `join` would take as absolute.
            let dir = self
                .mount
                .join(std::ffi::OsStr::from_bytes(&rel[rel.len().min(1)..]));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue; // removed meanwhile
            };
            for entry in entries.flatten() {
                // d_type, not a stat: only real directories are entered.
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let mut child = rel.clone();
                child.push(b'/');
                child.extend_from_slice(entry.file_name().as_bytes());
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                let cg = Cgroup {
                    path: Arc::from(&child[..]),
                    owner_uid: meta.uid(),
                };
                let ino = entry.ino();
                self.insert(ino, cg.clone());
                if ino == id {
                    found = Some(cg);
                }
                queue.push_back(child);
            }
            // The rest of the directory was read and cached too: the
            // siblings of a container's cgroup are likely asked for next.
            if let Some(cg) = found {
                return Ok(cg);
            }
        }
        Err(Why::NotFound)
    }
}

fn io_why(e: io::Error) -> Why {
    Why::Io(e.raw_os_error().unwrap_or(0))
}

/// `link` with the mount point taken off, if it lies under it; `""` for
/// the mount point itself.
fn strip_mount<'a>(link: &'a [u8], mount: &[u8]) -> Option<&'a [u8]> {
    let mount = mount.strip_suffix(b"/").unwrap_or(mount);
    let rest = link.strip_prefix(mount)?;
    (rest.is_empty() || rest[0] == b'/').then_some(rest)
}

/// `rel` as a path from the root: `/` when empty.
fn rooted(rel: &[u8]) -> Arc<[u8]> {
    if rel.is_empty() {
        Arc::from(&b"/"[..])
    } else {
        Arc::from(rel)
    }
}

/// The mount point of the first `cgroup2` line in a mountinfo text.
fn unified_mount(info: &[u8]) -> Option<Vec<u8>> {
    info.split(|&b| b == b'\n')
        .filter_map(mountinfo::parse_line)
        .find(|m| m.fstype == b"cgroup2")
        .map(|m| m.point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_mount_on_hybrid_and_pure_hosts() {
        let hybrid = b"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            unified_mount(hybrid).as_deref(),
            Some(&b"/sys/fs/cgroup/unified"[..])
        );
        let pure =
            b"30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(unified_mount(pure).as_deref(), Some(&b"/sys/fs/cgroup"[..]));
        let v1_only = b"40 31 0:37 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(unified_mount(v1_only), None);
        // A cgroup2 mount whose point has a space, and a truncated line.
        let odd = b"7 1 0:1 /\n9 1 0:9 / /mnt/a\\040b rw - cgroup2 none rw\n";
        assert_eq!(unified_mount(odd).as_deref(), Some(&b"/mnt/a b"[..]));
        assert_eq!(unified_mount(b""), None);
        assert_eq!(unified_mount(b"\\\\\\0 - cgroup2"), None);
    }

    #[test]
    fn strips_the_mount_point_on_component_boundaries() {
        let m = b"/sys/fs/cgroup/unified";
        assert_eq!(strip_mount(b"/sys/fs/cgroup/unified", m), Some(&b""[..]));
        assert_eq!(
            strip_mount(b"/sys/fs/cgroup/unified/a/b", m),
            Some(&b"/a/b"[..])
        );
        assert_eq!(strip_mount(b"/sys/fs/cgroup/unifiedx/a", m), None);
        assert_eq!(strip_mount(b"/a", b"/"), Some(&b"/a"[..]));
        assert_eq!(rooted(b"").as_ref(), b"/");
        assert_eq!(rooted(b"/x").as_ref(), b"/x");
    }

    #[test]
    fn reasons_are_distinct() {
        let all = [
            Why::Gone,
            Why::NotFound,
            Why::Deferred,
            Why::OutsideMount,
            Why::Io(1),
        ];
        let mut reasons: Vec<_> = all.iter().map(|w| w.reason()).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len());
    }

    #[test]
    fn rejects_a_directory_that_is_not_cgroup2() {
        assert!(CgroupPaths::at(Path::new("/")).is_err());
        assert!(CgroupPaths::at(Path::new("/nonexistent-procwatch")).is_err());
    }
}
