//! inotify watches on directories whose activity usually comes right
//! before or during an exec: opening the binary (PATH directories), the
//! dynamic loader opening libc (library directories), scripts dropped in
//! /tmp, cron and configuration changes. Any event just triggers a scan.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Events that suggest a process is starting: a file opened (exec opens
/// the binary, ld.so opens libraries), created, written or moved in.
const MASK: u32 = libc::IN_OPEN | libc::IN_CREATE | libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO;

/// Directories watched by default, besides those on `PATH`.
const DEFAULT_DIRS: &[&str] = &[
    "/tmp",
    "/etc",
    "/var/spool/cron",
    "/lib",
    "/lib64",
    "/usr/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// An inotify instance with its watches.
pub struct Triggers {
    fd: OwnedFd,
    /// Directories actually watched (existing and permitted).
    pub watched: Vec<PathBuf>,
}

/// The default directories plus the `PATH` entries plus `extra`, without
/// duplicates, in that order.
pub fn directories(path_var: Option<&std::ffi::OsStr>, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let from_path = path_var.map(|p| std::env::split_paths(p).collect::<Vec<_>>());
    let all = DEFAULT_DIRS
        .iter()
        .map(PathBuf::from)
        .chain(from_path.unwrap_or_default())
        .chain(extra.iter().cloned());
    for d in all {
        if d.is_absolute() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

impl Triggers {
    /// Watches every directory of `dirs` that exists; says on stderr which
    /// of `required` could not be watched.
    pub fn new(dirs: &[PathBuf], required: &[PathBuf]) -> io::Result<Triggers> {
        // SAFETY: plain syscall; result checked.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut watched = Vec::new();
        for d in dirs {
            match add_watch(&fd, d) {
                Ok(()) => watched.push(d.clone()),
                Err(e) if required.contains(d) => {
                    eprintln!("procwatch: cannot watch {}: {e}", d.display());
                }
                Err(_) => {}
            }
        }
        Ok(Triggers { fd, watched })
    }

    /// The descriptor to poll for readability.
    pub fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Reads and discards all pending events; true if there were any.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        loop {
            // SAFETY: valid fd and buffer.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return any;
            }
            any = true;
        }
    }
}

fn add_watch(fd: &OwnedFd, dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: valid fd and C string.
    let wd =
        unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), MASK | libc::IN_ONLYDIR) };
    if wd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_merge_without_duplicates() {
        let d = directories(
            Some(std::ffi::OsStr::new("/usr/bin:/tmp:relative:/usr/bin")),
            &[PathBuf::from("/opt/x"), PathBuf::from("/tmp")],
        );
        assert_eq!(d.iter().filter(|p| p.as_os_str() == "/tmp").count(), 1);
        assert_eq!(d.iter().filter(|p| p.as_os_str() == "/usr/bin").count(), 1);
        assert!(d.contains(&PathBuf::from("/opt/x")));
        assert!(!d.contains(&PathBuf::from("relative")));
    }

    #[test]
    fn activity_in_a_watched_dir_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let t = Triggers::new(&[dir.path().to_path_buf()], &[]).unwrap();
        assert_eq!(t.watched.len(), 1);
        assert!(!t.drain());
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert!(t.drain());
        assert!(!t.drain());
    }
}
