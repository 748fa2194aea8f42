//! The hasher and its cache against real files.

use super::*;
use std::fs;
use std::os::unix::ffi::OsStrExt;
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
    ev.exe_stamp = Some(stamp_of(p));
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
    // The kernel reports exe paths without symlinks (/usr/bin/true);
    // a symlink on the path is refused.
    let bin_true = fs::canonicalize("/bin/true").unwrap();
    for p in [f.as_path(), bin_true.as_path()] {
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
    // No path and no stamp (as from a source without one): the live
    // /proc/<pid>/exe with the right dev/ino is trusted.
    ev.exe_dev_ino = Some(dev_ino(&exe));
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
    assert!(
        reasons(&ev).contains("not the executed file"),
        "{}",
        reasons(&ev)
    );
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
    assert!(reasons(&ev).contains("no dev/ino"), "{}", reasons(&ev));
    // With dev/ino but no stamp, a gone process's path proves nothing.
    let mut ev = exec_of(Path::new("/bin/true"));
    ev.exe_stamp = None;
    h.hash(&mut ev);
    assert_eq!(ev.exe_sha256, None);
    assert!(
        reasons(&ev).contains("without the file's stamp"),
        "{}",
        reasons(&ev)
    );
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
