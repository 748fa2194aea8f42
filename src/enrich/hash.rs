//! `exe_sha256`: the SHA-256 of the file a process executed.
//!
//! The file is read through `/proc/<pid>/exe`, which is the very inode the
//! kernel executed even if the path was since deleted or replaced; only when
//! the process is gone is the path used. Either way the opened file must be
//! the inode the kernel reported (`exe_dev_ino`), so a reused pid or a
//! replaced path never yields another file's hash. Hashes are cached by the
//! file's identity and change times, so a storm of the same binary reads it
//! once.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

use crate::event::ExecEvent;

/// A size cap that covers ordinary binaries (a few MiB) and large static
/// ones, while keeping one miss under a few tens of milliseconds.
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// Cached hashes at most; a storm of distinct binaries cannot grow memory.
const MAX_ENTRIES: usize = 4096;
/// Read size: large enough that syscalls are a small share of a miss.
const BUF_SIZE: usize = 64 << 10;
/// The field name used in `incomplete`.
const FIELD: &str = "exe_sha256";

/// What identifies a file's content without reading it. ctime is included
/// besides mtime because mtime can be set back by the owner (`touch -d`),
/// ctime cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ContentKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl ContentKey {
    fn of(m: &Metadata) -> Self {
        ContentKey {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// Fills [`ExecEvent::exe_sha256`], caching hashes across events; one hasher
/// should live for the whole run.
#[derive(Debug)]
pub struct ExeHasher {
    max_size: u64,
    cache: HashMap<ContentKey, String>,
    buf: Vec<u8>,
    /// Files actually read and hashed (cache misses).
    files_read: u64,
}

impl Default for ExeHasher {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SIZE)
    }
}

impl ExeHasher {
    /// A hasher that skips files larger than `max_size` bytes.
    pub fn new(max_size: u64) -> Self {
        ExeHasher {
            max_size,
            cache: HashMap::new(),
            buf: vec![0; BUF_SIZE],
            files_read: 0,
        }
    }

    /// How many files this hasher has read in full (cache misses); for
    /// tests and benchmarks.
    pub fn files_read(&self) -> u64 {
        self.files_read
    }

    /// Sets `ev.exe_sha256` to the lowercase hex SHA-256 of the executed
    /// file, or leaves it `None` and names the reason in `incomplete`: the
    /// process and path are gone, the file is not the one executed
    /// (`exe_dev_ino` differs), it is larger than the cap, or reading failed.
    ///
    /// Without `exe_dev_ino` only `/proc/<pid>/exe` is trusted: a path alone
    /// may name a replacement of the executed file.
    pub fn hash(&mut self, ev: &mut ExecEvent) {
        ev.exe_sha256 = None;
        let path = ev.exe.as_deref().filter(|_| !ev.exe_truncated);
        // Fast path: the path still names the executed inode and its content
        // key was hashed before; this saves opening /proc on every hit.
        if let (Some(want), Some(path)) = (ev.exe_dev_ino, path)
            && let Ok(m) = fs::metadata(OsStr::from_bytes(path))
            && (m.dev(), m.ino()) == want
            && let Some(h) = self.cache.get(&ContentKey::of(&m))
        {
            ev.exe_sha256 = Some(h.clone());
            return;
        }
        let mut why = Vec::new();
        let proc = format!("/proc/{}/exe", ev.pid);
        match File::open(&proc) {
            Ok(f) => match self.hash_file(f, ev.exe_dev_ino) {
                Ok(h) => {
                    ev.exe_sha256 = Some(h);
                    return;
                }
                Err(e) => why.push(format!("{proc}: {e}")),
            },
            Err(e) => why.push(format!("{proc}: {}", io_reason(&e))),
        }
        match (path, ev.exe_dev_ino) {
            (Some(path), Some(want)) => {
                let shown = String::from_utf8_lossy(path);
                match File::open(OsStr::from_bytes(path)) {
                    Ok(f) => match self.hash_file(f, Some(want)) {
                        Ok(h) => {
                            ev.exe_sha256 = Some(h);
                            return;
                        }
                        Err(e) => why.push(format!("{shown}: {e}")),
                    },
                    Err(e) => why.push(format!("{shown}: {}", io_reason(&e))),
                }
            }
            (Some(_), None) => why.push("path not verifiable without exe dev/ino".into()),
            (None, _) => why.push("no exe path".into()),
        }
        ev.mark_incomplete(FIELD, why.join("; "));
    }

    /// The hash of the open file `f`, if it is `want` (when given), within
    /// the size cap, and unchanged while read.
    fn hash_file(&mut self, mut f: File, want: Option<(u64, u64)>) -> Result<String, String> {
        let m = f.metadata().map_err(|e| io_reason(&e))?;
        if !m.is_file() {
            return Err("not a regular file".into());
        }
        if let Some(want) = want
            && (m.dev(), m.ino()) != want
        {
            return Err("not the executed file (dev/ino differ)".into());
        }
        if m.len() > self.max_size {
            return Err(format!("larger than {} bytes", self.max_size));
        }
        let key = ContentKey::of(&m);
        if let Some(h) = self.cache.get(&key) {
            return Ok(h.clone());
        }
        self.files_read += 1;
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
        }
        let after = f.metadata().map_err(|e| io_reason(&e))?;
        if total != m.len() || ContentKey::of(&after) != key {
            return Err("changed while being hashed".into());
        }
        let hex = to_hex(&sha.finalize());
        if self.cache.len() >= MAX_ENTRIES {
            // Keys of replaced binaries never hit again; clearing is simpler
            // than LRU bookkeeping and only costs one re-read per binary.
            self.cache.clear();
        }
        self.cache.insert(key, hex.clone());
        Ok(hex)
    }
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
