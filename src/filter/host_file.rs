//! The file identity half of the `--exe`/`--exclude-exe` rule: the file at
//! the exe path in procwatch's view must be the file the kernel executed
//! (same device and inode), when the source reported that identity.
//!
//! In procwatch's own mount namespace the kernel's path already names the
//! executed file; the identity check also holds when procwatch itself runs
//! in a namespace someone else set up. Paths on FUSE are never looked up
//! (their server could stall the writer): such an exe is not confirmed.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::time::Duration;

use crate::enrich::mounts::FuseMounts;
use crate::event::ExecEvent;
use crate::linux::clock::coarse_now;

/// How long a looked-up identity is reused for the same path. A package
/// upgrade that replaces the file is seen at the next mismatch, which
/// looks again at once.
const TTL: Duration = Duration::from_secs(1);
/// Paths remembered at most; a storm of distinct paths starts afresh.
const MAX_ENTRIES: usize = 1024;

/// Identities of host files at exe paths, cached briefly.
#[derive(Debug, Default)]
pub struct HostFiles {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fuse: FuseMounts,
    seen: HashMap<Vec<u8>, ((u64, u64), Duration)>,
}

impl HostFiles {
    /// Whether the file at `ev.exe` in procwatch's view is the executed
    /// file. True without a look when the source gave no identity (the
    /// namespace rule alone then decides); false for a relative or pseudo
    /// path, a FUSE file, or a path that names another file or nothing.
    pub fn is_exec_file(&self, ev: &ExecEvent) -> bool {
        let Some(exe) = ev.exe.as_deref() else {
            return false;
        };
        let Some(want) = ev.exe_dev_ino else {
            return true;
        };
        if exe.first() != Some(&b'/') || exe.len() > 4096 {
            return false;
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.fuse.dev_is_fuse(want.0) || g.fuse.fuse_point_of(exe).is_some() {
            return false;
        }
        let now = coarse_now();
        if let Some((id, at)) = g.seen.get(exe)
            && *id == want
            && now.saturating_sub(*at) < TTL
        {
            return true;
        }
        // Not on FUSE, so the lookup cannot stall; the lock keeps two
        // writers from racing on the cache only.
        let Ok(m) = std::fs::symlink_metadata(OsStr::from_bytes(exe)) else {
            g.seen.remove(exe);
            return false;
        };
        let id = (m.dev(), m.ino());
        if g.seen.len() >= MAX_ENTRIES {
            g.seen.clear();
        }
        g.seen.insert(exe.to_vec(), (id, now));
        id == want
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::testutil::exec_event;

    fn identity(p: &std::path::Path) -> (u64, u64) {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn path_must_name_the_executed_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        let files = HostFiles::default();
        let mut ev = exec_event();
        ev.exe = Some(a.as_os_str().as_bytes().to_vec());
        ev.exe_dev_ino = Some(identity(&a));
        assert!(files.is_exec_file(&ev));
        assert!(files.is_exec_file(&ev), "from the cache");
        // Another file at the path: the cached identity is not trusted.
        ev.exe_dev_ino = Some(identity(&b));
        assert!(!files.is_exec_file(&ev));
        std::fs::rename(&b, &a).unwrap();
        assert!(files.is_exec_file(&ev), "replaced: looked up again");
        std::fs::remove_file(&a).unwrap();
        ev.exe_dev_ino = Some((1, 1));
        assert!(!files.is_exec_file(&ev), "nothing there");
    }

    #[test]
    fn without_identity_or_with_a_bad_path() {
        let files = HostFiles::default();
        let mut ev = exec_event();
        ev.exe_dev_ino = None;
        assert!(files.is_exec_file(&ev), "the namespace rule alone");
        ev.exe_dev_ino = Some((1, 1));
        ev.exe = Some(b"relative/x".to_vec());
        assert!(!files.is_exec_file(&ev));
        ev.exe = None;
        assert!(!files.is_exec_file(&ev));
    }
}
