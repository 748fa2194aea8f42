//! `exe_sha256`: the SHA-256 of the file a process executed.
//!
//! The file is read through `/proc/<pid>/exe`, which is the very inode the
//! kernel executed even if the path was since deleted or replaced; only when
//! the process is gone is the path used. Either way the opened file must be
//! the inode the kernel reported (`exe_dev_ino`), so a reused pid or a
//! replaced path never yields another file's hash. Hashes are cached by the
//! file's identity and change times, so a storm of the same binary reads it
//! once; when the kernel reported those (`exe_stamp`), a cache hit costs no
//! syscall at all.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use sha2::{Digest, Sha256};

use crate::enrich::file_key::FileKey;
use crate::enrich::id_hash::IdMap;
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

/// Fills [`ExecEvent::exe_sha256`], caching hashes across events; one hasher
/// should live for the whole run.
#[derive(Debug)]
pub struct ExeHasher {
    max_size: u64,
    /// Keyed by kernel-assigned ids and times: the fast id hasher is enough.
    cache: IdMap<FileKey, String>,
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
            cache: IdMap::default(),
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
        // Fastest path: the kernel reported the executed inode's identity
        // and change times, which key the cache without any syscall.
        if let Some(h) = FileKey::of_exe(ev).and_then(|key| self.cache.get(&key)) {
            ev.exe_sha256 = Some(h.clone());
            return;
        }
        let path = ev.exe.as_deref().filter(|_| !ev.exe_truncated);
        // Fast path: the path still names the executed inode and its content
        // key was hashed before; this saves opening /proc on every hit.
        if let (Some(want), Some(path)) = (ev.exe_dev_ino, path)
            && let Ok(m) = fs::metadata(OsStr::from_bytes(path))
            && (m.dev(), m.ino()) == want
            && let Some(h) = self.cache.get(&FileKey::of(&m))
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
        let key = FileKey::of(&m);
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
        if total != m.len() || FileKey::of(&after) != key {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, SystemTime};

    /// A pid above any pid_max (at most 2^22), so /proc/<pid>/exe is absent.
    const NO_PID: u32 = 4_999_999;

    fn sha256sum(p: &Path) -> String {
        let out = Command::new("sha256sum").arg(p).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    fn dev_ino(p: &Path) -> (u64, u64) {
        let m = fs::metadata(p).unwrap();
        (m.dev(), m.ino())
    }

    /// An exec of `p` by a process that has already exited.
    fn exec_of(p: &Path) -> ExecEvent {
        let mut ev = ExecEvent::new(SystemTime::now(), NO_PID, Some(1), "1:1".into());
        ev.exe = Some(p.as_os_str().as_bytes().to_vec());
        ev.exe_dev_ino = Some(dev_ino(p));
        ev
    }

    fn reasons(ev: &ExecEvent) -> String {
        assert!(ev.incomplete.iter().all(|i| i.field == "exe_sha256"));
        ev.incomplete
            .iter()
            .map(|i| i.reason.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    #[test]
    fn matches_sha256sum_for_temp_file_and_bin_true() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("blob");
        // Larger than the read buffer, not a multiple of it.
        let data: Vec<u8> = (0..BUF_SIZE * 3 + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        fs::write(&f, &data).unwrap();
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        for p in [f.as_path(), Path::new("/bin/true")] {
            let mut ev = exec_of(p);
            h.hash(&mut ev);
            assert!(ev.incomplete.is_empty(), "{}", reasons(&ev));
            assert_eq!(ev.exe_sha256.as_deref(), Some(sha256sum(p).as_str()));
        }
        fs::write(dir.path().join("empty"), b"").unwrap();
        let mut ev = exec_of(&dir.path().join("empty"));
        h.hash(&mut ev);
        assert_eq!(
            ev.exe_sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    #[test]
    fn reads_proc_exe_of_a_live_process() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let exe = fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
        let mut ev = ExecEvent::new(SystemTime::now(), child.id(), Some(1), "1:1".into());
        // No path and no dev/ino: /proc/<pid>/exe alone is trusted.
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        h.hash(&mut ev);
        let want = sha256sum(&exe);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(ev.exe_sha256.as_deref(), Some(want.as_str()));
        assert!(ev.incomplete.is_empty());
    }

    #[test]
    fn cache_hit_does_not_reread() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, b"first").unwrap();
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        let mut ev = exec_of(&f);
        h.hash(&mut ev);
        let first = ev.exe_sha256.clone().unwrap();
        for _ in 0..3 {
            let mut ev = exec_of(&f);
            h.hash(&mut ev);
            assert_eq!(ev.exe_sha256.as_deref(), Some(first.as_str()));
        }
        assert_eq!(h.files_read(), 1);
        // Rewritten in place (same inode, same size): mtime/ctime differ.
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&f, b"again").unwrap();
        let mut ev = exec_of(&f);
        h.hash(&mut ev);
        assert_eq!(h.files_read(), 2);
        assert_eq!(ev.exe_sha256.as_deref(), Some(sha256sum(&f).as_str()));
        assert_ne!(ev.exe_sha256.as_deref(), Some(first.as_str()));
    }

    fn stamp_of(p: &Path) -> crate::event::FileStamp {
        crate::event::FileStamp::of(&fs::metadata(p).unwrap())
    }

    #[test]
    fn kernel_stamp_hits_the_cache_without_touching_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, b"stamped").unwrap();
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        let mut ev = exec_of(&f);
        ev.exe_stamp = Some(stamp_of(&f));
        h.hash(&mut ev);
        let want = sha256sum(&f);
        assert_eq!(ev.exe_sha256.as_deref(), Some(want.as_str()));
        // The same inode and stamp, reported for a path that is gone: the
        // cache answers from the kernel's identity alone.
        let (id, stamp) = (ev.exe_dev_ino, ev.exe_stamp);
        let moved = dir.path().join("moved");
        fs::rename(&f, &moved).unwrap();
        let mut ev = exec_of(&moved);
        ev.exe = Some(f.as_os_str().as_bytes().to_vec());
        ev.exe_dev_ino = id;
        ev.exe_stamp = stamp;
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256.as_deref(), Some(want.as_str()));
        assert_eq!(h.files_read(), 1);
        // A stamp the cache has not seen (the file changed) is no hit: the
        // path is gone and the pid too, so the hash is missing, not stale.
        let mut ev = exec_of(&moved);
        ev.exe = Some(f.as_os_str().as_bytes().to_vec());
        ev.exe_dev_ino = id;
        ev.exe_stamp = stamp.map(|s| crate::event::FileStamp {
            ctime: (s.ctime.0 + 1, s.ctime.1),
            ..s
        });
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(ev.incomplete.iter().any(|i| i.field == FIELD));
    }

    #[test]
    fn size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        fs::write(&f, [0u8; 100]).unwrap();
        let mut h = ExeHasher::new(99);
        let mut ev = exec_of(&f);
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(
            reasons(&ev).contains("larger than 99 bytes"),
            "{}",
            reasons(&ev)
        );
        assert_eq!(h.files_read(), 0);
        let mut h = ExeHasher::new(100);
        let mut ev = exec_of(&f);
        h.hash(&mut ev);
        assert!(ev.exe_sha256.is_some(), "the cap is inclusive");
    }

    #[test]
    fn dev_ino_mismatch_is_not_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bin");
        fs::write(&f, b"content").unwrap();
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        // Prime the cache: a mismatch must not be served from it either.
        h.hash(&mut exec_of(&f));
        let mut ev = exec_of(&f);
        let (dev, ino) = ev.exe_dev_ino.unwrap();
        ev.exe_dev_ino = Some((dev, ino + 1));
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(reasons(&ev).contains("dev/ino differ"), "{}", reasons(&ev));
        // Our own pid runs another binary: /proc/<pid>/exe is rejected, and
        // the path is used instead.
        let mut ev = exec_of(&f);
        ev.pid = std::process::id();
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256.as_deref(), Some(sha256sum(&f).as_str()));
        // Path replaced since the exec: the new file is not hashed.
        let mut ev = exec_of(&f);
        fs::remove_file(&f).unwrap();
        fs::write(&f, b"replacement").unwrap();
        h.hash(&mut ev);
        if dev_ino(&f) != ev.exe_dev_ino.unwrap() {
            assert_eq!(ev.exe_sha256, None);
            assert!(!ev.incomplete.is_empty());
        }
    }

    #[test]
    fn errors_are_incomplete_not_wrong() {
        let mut h = ExeHasher::new(DEFAULT_MAX_SIZE);
        // Gone process, gone path.
        let mut ev = ExecEvent::new(SystemTime::now(), NO_PID, Some(1), "1:1".into());
        ev.exe = Some(b"/nonexistent/\xff".to_vec());
        ev.exe_dev_ino = Some((1, 2));
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(reasons(&ev).contains("gone"), "{}", reasons(&ev));
        // A path without dev/ino cannot be verified.
        let mut ev = ExecEvent::new(SystemTime::now(), NO_PID, Some(1), "1:1".into());
        ev.exe = Some(b"/bin/true".to_vec());
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(reasons(&ev).contains("not verifiable"), "{}", reasons(&ev));
        // A directory is not hashed.
        let mut ev = exec_of(Path::new("/"));
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert!(reasons(&ev).contains("not a regular file"));
        // A stale value is cleared.
        let mut ev = ExecEvent::new(SystemTime::now(), NO_PID, Some(1), "1:1".into());
        ev.exe_sha256 = Some("stale".into());
        h.hash(&mut ev);
        assert_eq!(ev.exe_sha256, None);
        assert_eq!(h.files_read(), 0);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(to_hex(&[0x00, 0xab, 0x0f, 0xf0]), "00ab0ff0");
    }
}
