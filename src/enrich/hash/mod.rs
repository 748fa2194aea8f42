//! `exe_sha256`: the SHA-256 of the file a process executed, and only of
//! that file.
//!
//! The file is read through `/proc/<pid>/exe`, which is the very inode the
//! kernel executed even if the path was since deleted or replaced; it must
//! still be the inode the source reported (`exe_dev_ino`) and, when the
//! source reported its size and change times (`exe_stamp`), unchanged since.
//! Once the process is gone, the path is used only with a stamp: opened
//! without following symlinks, and its device, inode, size, mtime and ctime
//! must all equal the stamp on the opened file (`fstat`), before and after
//! reading. Without a stamp a path proves nothing (the file may have been
//! rewritten in place), so there is no hash.
//!
//! Hashes are cached by the stamp the source reported (or, without one, by
//! the `fstat` of the process's own `/proc/<pid>/exe`), never by a fresh
//! `stat` of a path; a storm of the same binary reads it once.
//!
//! Reading happens off the writer thread (see `hash_pool`): this module is
//! the synchronous part, one file at a time.

use std::ffi::CString;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::enrich::mounts::FuseMounts;
use crate::event::{ExecEvent, FileStamp};
use crate::linux::file_key::FileKey;
use crate::linux::id_hash::IdMap;

/// A size cap that covers ordinary binaries (a few MiB) and large static
/// ones, while keeping one miss under a few tens of milliseconds.
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// Longest one file may take to hash before it is given up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached hashes at most; a storm of distinct binaries cannot grow memory.
const MAX_ENTRIES: usize = 4096;
/// Read size: large enough that syscalls are a small share of a miss.
const BUF_SIZE: usize = 64 << 10;
/// The field name used in `incomplete`.
pub const FIELD: &str = "exe_sha256";

/// Hashes by file identity, shared by the writer (lookups by the source's
/// stamp, no syscall) and the hasher threads (inserts). The lock is never
/// held across I/O.
#[derive(Debug, Clone, Default)]
pub struct HashCache {
    map: Arc<Mutex<IdMap<FileKey, String>>>,
    /// Files read in full (misses), for tests and benchmarks.
    files_read: Arc<AtomicU64>,
}

impl HashCache {
    pub fn get(&self, key: &FileKey) -> Option<String> {
        self.lock().get(key).cloned()
    }

    fn insert(&self, key: FileKey, hex: String) {
        let mut map = self.lock();
        if map.len() >= MAX_ENTRIES {
            // Keys of replaced binaries never hit again; clearing is simpler
            // than LRU bookkeeping and only costs one re-read per binary.
            map.clear();
        }
        map.insert(key, hex);
    }

    /// How many files were read in full (cache misses).
    pub fn files_read(&self) -> u64 {
        self.files_read.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdMap<FileKey, String>> {
        // Nothing panics while holding it; the map stays consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What identifies the executed file of one exec, taken from its event.
#[derive(Debug, Clone)]
pub struct HashTarget {
    pub pid: u32,
    /// The exe path (only used with a stamp, once the process is gone).
    pub path: Option<Vec<u8>>,
    pub dev_ino: (u64, u64),
    pub stamp: Option<FileStamp>,
}

impl HashTarget {
    /// The target of `ev`, or why it has none.
    pub fn of(ev: &ExecEvent) -> Result<Self, &'static str> {
        let dev_ino = ev
            .exe_dev_ino
            .ok_or("the source did not identify the executed file (no dev/ino)")?;
        Ok(HashTarget {
            pid: ev.pid,
            path: ev.exe.clone().filter(|_| !ev.exe_truncated),
            dev_ino,
            stamp: ev.exe_stamp,
        })
    }

    /// The cache key, when the source gave a stamp.
    pub fn key(&self) -> Option<FileKey> {
        let stamp = self.stamp?;
        Some(FileKey {
            dev: self.dev_ino.0,
            ino: self.dev_ino.1,
            stamp,
        })
    }
}

/// A hash and how many bytes were read for it (0 on a cache hit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub hex: String,
    pub bytes_read: u64,
}

/// Fills [`ExecEvent::exe_sha256`] synchronously, caching hashes across
/// events. The pipeline runs it on hasher threads (`hash_pool`); tests and
/// benchmarks call it directly.
#[derive(Debug)]
pub struct ExeHasher {
    max_size: u64,
    timeout: Duration,
    cache: HashCache,
    buf: Vec<u8>,
    mounts: FuseMounts,
}

impl Default for ExeHasher {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SIZE)
    }
}

impl ExeHasher {
    /// A hasher that skips files larger than `max_size` bytes.
    pub fn new(max_size: u64) -> Self {
        Self::with_cache(HashCache::default(), max_size, DEFAULT_TIMEOUT)
    }

    /// A hasher sharing `cache`, giving up on a file after `timeout`.
    pub fn with_cache(cache: HashCache, max_size: u64, timeout: Duration) -> Self {
        ExeHasher {
            max_size,
            timeout,
            cache,
            buf: vec![0; BUF_SIZE],
            mounts: FuseMounts::default(),
        }
    }

    /// How many files were read in full (cache misses).
    pub fn files_read(&self) -> u64 {
        self.cache.files_read()
    }

    /// Sets `ev.exe_sha256` to the lowercase hex SHA-256 of the executed
    /// file, or leaves it `None` and names the reason in `incomplete`.
    pub fn hash(&mut self, ev: &mut ExecEvent) {
        ev.exe_sha256 = None;
        // Fastest path: the source's identity and stamp key the cache
        // without any syscall.
        if let Some(h) = FileKey::of_exe(ev).and_then(|key| self.cache.get(&key)) {
            ev.exe_sha256 = Some(h);
            return;
        }
        let res = HashTarget::of(ev)
            .map_err(str::to_owned)
            .and_then(|t| self.hash_target(&t));
        match res {
            Ok(h) => ev.exe_sha256 = Some(h.hex),
            Err(why) => ev.mark_incomplete(FIELD, why),
        }
    }

    /// The hash of `t`'s executed file, or why there is none.
    pub fn hash_target(&mut self, t: &HashTarget) -> Result<Hashed, String> {
        if let Some(key) = t.key() {
            if key.stamp.size > self.max_size {
                return Err(self.too_large());
            }
            if let Some(hex) = self.cache.get(&key) {
                return Ok(Hashed { hex, bytes_read: 0 });
            }
        }
        if self.mounts.dev_is_fuse(t.dev_ino.0) {
            return Err(
                "not hashed: on a FUSE filesystem, whose server could hold a read forever".into(),
            );
        }
        let proc = format!("/proc/{}/exe", t.pid);
        let live = match File::open(&proc) {
            Ok(f) => f,
            Err(e) => return self.by_path(t, &format!("{proc}: {}", io_reason(&e))),
        };
        let m = live
            .metadata()
            .map_err(|e| format!("{proc}: {}", io_reason(&e)))?;
        if (m.dev(), m.ino()) != t.dev_ino {
            // The pid was reused, or the process exec'd again.
            return self.by_path(t, &format!("{proc}: another file (pid reused)"));
        }
        let key = match t.key() {
            Some(key) if FileKey::of(&m) != key => {
                return Err(format!(
                    "{proc}: the executed file changed since the exec (size, mtime or ctime differ)"
                ));
            }
            Some(key) => key,
            // No stamp from the source: this inode's current content, which
            // is all that can be had; keyed by the fstat of this very fd.
            None => FileKey::of(&m),
        };
        self.read_verified(live, key)
            .map_err(|e| format!("{proc}: {e}"))
    }

    /// The process is gone (or its pid reused): the path, if the source's
    /// stamp lets us prove it is the same, unchanged file.
    fn by_path(&mut self, t: &HashTarget, proc_why: &str) -> Result<Hashed, String> {
        let Some(path) = &t.path else {
            return Err(format!("{proc_why}; no exe path"));
        };
        let Some(key) = t.key() else {
            return Err(format!(
                "{proc_why}; the path cannot be verified without the file's stamp"
            ));
        };
        let shown = String::from_utf8_lossy(path);
        let f = open_no_follow(path).map_err(|e| format!("{proc_why}; {shown}: {e}"))?;
        self.read_verified(f, key)
            .map_err(|e| format!("{proc_why}; {shown}: {e}"))
    }

    /// Hashes `f` if it is `key` (identity, size and times) before and
    /// after the read, within the size cap and the time budget.
    fn read_verified(&mut self, mut f: File, key: FileKey) -> Result<Hashed, String> {
        let m = f.metadata().map_err(|e| io_reason(&e))?;
        if !m.is_file() {
            return Err("not a regular file".into());
        }
        if FileKey::of(&m) != key {
            return Err("not the executed file (dev, ino, size, mtime or ctime differ)".into());
        }
        if m.len() > self.max_size {
            return Err(self.too_large());
        }
        if let Some(hex) = self.cache.get(&key) {
            return Ok(Hashed { hex, bytes_read: 0 });
        }
        self.cache.files_read.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.timeout;
        let mut sha = Sha256::new();
        let mut total: u64 = 0;
        loop {
            match f.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    total += n as u64;
                    // Growing past the size seen by fstat: being written.
                    if total > m.len() {
                        return Err("changed while being hashed".into());
                    }
                    sha.update(&self.buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_reason(&e)),
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "hash_budget: reading took longer than {:?}",
                    self.timeout
                ));
            }
        }
        let after = f.metadata().map_err(|e| io_reason(&e))?;
        if total != m.len() || FileKey::of(&after) != key {
            return Err("changed while being hashed".into());
        }
        let hex = to_hex(&sha.finalize());
        self.cache.insert(key, hex.clone());
        Ok(Hashed {
            hex,
            bytes_read: total,
        })
    }

    fn too_large(&self) -> String {
        format!("larger than {} bytes", self.max_size)
    }
}

/// Opens `path` for reading as root must open a user's path: no symlink
/// anywhere on it (`RESOLVE_NO_SYMLINKS`), and never blocking on a FIFO or
/// device (`O_NONBLOCK`; the caller then refuses anything but a regular
/// file).
fn open_no_follow(path: &[u8]) -> Result<File, String> {
    let c = CString::new(path).map_err(|_| "a NUL in the path".to_string())?;
    // SAFETY: all-zero is a valid `open_how` (no flags, no mode).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags =
        (libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid C string and `open_how` of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => "a symlink on the path".into(),
            _ => io_reason(&e),
        });
    }
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// An I/O error in a few words, without the "(os error N)" suffix noise.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound => "gone".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod tests;
