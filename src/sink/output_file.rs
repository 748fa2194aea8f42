//! Opening `-o PATH` the way a root daemon must: the path and the directory
//! it is in may belong to the user procwatch watches, who can plant a
//! symlink, a FIFO or a file of their own there before procwatch starts.
//!
//! The rules (README, Threat model):
//! * every directory on the way is opened without following a symlink
//!   unless root or the running user owns that symlink (the kernel's
//!   `protected_symlinks` rule);
//! * the directory the file is in must not be writable by others without
//!   the sticky bit (anyone could swap the file), nor owned by a user other
//!   than root and the running user;
//! * the file is opened with `O_NOFOLLOW | O_NONBLOCK` (a symlink fails, a
//!   FIFO neither blocks nor is accepted), then checked with `fstat` on the
//!   opened descriptor: a regular file, or a character device owned by root
//!   (`/dev/null`, `/dev/full`); nothing else;
//! * an existing regular file must belong to the running user, have one
//!   link (a hard link is another name for someone else's file), and be
//!   unreadable and unwritable by group and others;
//! * a missing file is created with `O_CREAT | O_EXCL` and mode 0600: if
//!   someone creates the name in between, the open starts over and checks
//!   what is there.
//!
//! `--force-output` waives only the owner and mode rules (file and
//! directory); symlinks, file types and an unprotected world-writable
//! directory are refused always.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::output::{Opened, OutputError};

/// Opens `path` for appending under the rules above.
pub fn open_checked(path: &Path, force: bool) -> Result<Opened, OutputError> {
    let fail = |reason: String| OutputError {
        path: path.to_owned(),
        reason,
    };
    let name = match path.file_name() {
        Some(n) if !path.as_os_str().as_bytes().ends_with(b"/") => n,
        _ => return Err(fail("is not a file name (it ends in a directory)".into())),
    };
    let dir = open_parent(path).map_err(&fail)?;
    check_dir(&dir, force).map_err(&fail)?;
    let cname = cstring(name).map_err(&fail)?;
    let file = open_in(&dir, &cname).map_err(&fail)?;
    let st = fstat(file.as_raw_fd()).map_err(|e| fail(format!("cannot fstat: {e}")))?;
    check_file(&st, force).map_err(&fail)?;
    // Regular files ignore O_NONBLOCK; a device should block as usual.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(file.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
    }
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    let empty = !regular || st.st_size == 0;
    let needs_newline = regular && st.st_size > 0 && !ends_in_newline(&file, st.st_size);
    Ok(Opened {
        file,
        empty,
        needs_newline,
    })
}

fn cstring(s: &OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| "contains a NUL byte".to_owned())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

fn fstat(fd: i32) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn fstatat_nofollow(dir: i32, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: as for fstat; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dir is open, name NUL-terminated, st a valid out pointer.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn openat(dir: i32, name: &CString, flags: i32, mode: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: dir is open (or AT_FDCWD), name NUL-terminated.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the directory `path` is in, one component at a time, following a
/// symlink only when root or the running user owns it.
fn open_parent(path: &Path) -> Result<OwnedFd, String> {
    let parent = path.parent().unwrap_or(Path::new(""));
    let dflags = libc::O_PATH | libc::O_DIRECTORY;
    let mut dir = if path.is_absolute() {
        openat(libc::AT_FDCWD, &c"/".into(), dflags, 0)
    } else {
        openat(libc::AT_FDCWD, &c".".into(), dflags, 0)
    }
    .map_err(|e| format!("cannot open the starting directory: {e}"))?;
    let mut walked = PathBuf::new();
    for comp in parent.components() {
        let part: &OsStr = match comp {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(p) => p,
        };
        walked.push(part);
        let shown = walked.display();
        let c = cstring(part)?;
        let st = fstatat_nofollow(dir.as_raw_fd(), &c).map_err(|e| format!("{shown}: {e}"))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK && st.st_uid != 0 && st.st_uid != euid() {
            return Err(format!(
                "{shown} is a symlink owned by uid {}, which procwatch does not follow",
                st.st_uid
            ));
        }
        dir = openat(dir.as_raw_fd(), &c, dflags, 0).map_err(|e| format!("{shown}: {e}"))?;
    }
    Ok(dir)
}

/// The directory the file is in: nobody else may swap the file there.
fn check_dir(dir: &OwnedFd, force: bool) -> Result<(), String> {
    let st = fstat(dir.as_raw_fd()).map_err(|e| format!("cannot fstat its directory: {e}"))?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o002 != 0 && mode & libc::S_ISVTX == 0 {
        return Err(format!(
            "its directory is writable by everyone and not sticky (mode {mode:04o}): \
             anyone could replace the file"
        ));
    }
    if st.st_uid != 0 && st.st_uid != euid() && !force {
        return Err(format!(
            "its directory is owned by uid {}, who could replace the file \
             (--force-output to accept)",
            st.st_uid
        ));
    }
    Ok(())
}

/// Opens `name` in `dir` for appending, creating it 0600 if missing. Read
/// and write, so the last byte can be checked on the same descriptor.
fn open_in(dir: &OwnedFd, name: &CString) -> Result<File, String> {
    let base = libc::O_RDWR | libc::O_APPEND | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    // A name that keeps appearing and vanishing between the two opens is an
    // attack in progress; a few rounds are plenty for an honest race.
    for _ in 0..16 {
        match openat(dir.as_raw_fd(), name, base, 0) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(open_error(&e)),
        }
        match openat(
            dir.as_raw_fd(),
            name,
            base | libc::O_CREAT | libc::O_EXCL,
            0o600,
        ) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(format!("cannot create: {e}")),
        }
    }
    Err("the name keeps appearing and disappearing while it is opened".into())
}

fn open_error(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ELOOP) => "is a symlink, which procwatch does not follow".into(),
        // O_WRONLY|O_NONBLOCK on a FIFO without a reader.
        Some(libc::ENXIO) => "is a FIFO or socket, not a regular file".into(),
        _ => format!("cannot open: {e}"),
    }
}

/// The opened file itself: its type, owner and mode.
fn check_file(st: &libc::stat, force: bool) -> Result<(), String> {
    let kind = st.st_mode & libc::S_IFMT;
    let mode = st.st_mode & 0o7777;
    match kind {
        libc::S_IFREG => {
            if st.st_uid != euid() && !force {
                return Err(format!(
                    "is owned by uid {}, not by procwatch's uid {}: that user could read \
                     every command line and insert fake lines (--force-output to accept)",
                    st.st_uid,
                    euid()
                ));
            }
            // Without fs.protected_hardlinks a user can link root's files
            // into /tmp under the name procwatch is given.
            if st.st_nlink > 1 && !force {
                return Err(format!(
                    "has {} hard links: it may be another file planted under this name \
                     (--force-output to accept)",
                    st.st_nlink
                ));
            }
            if mode & 0o077 != 0 && !force {
                return Err(format!(
                    "has mode {mode:04o}: group or others could read every command line or \
                     insert fake lines; chmod 600 it (or --force-output to accept)"
                ));
            }
            Ok(())
        }
        libc::S_IFCHR if st.st_uid == 0 => Ok(()),
        libc::S_IFCHR => Err(format!(
            "is a character device owned by uid {}, not root",
            st.st_uid
        )),
        libc::S_IFIFO => Err("is a FIFO, not a regular file".into()),
        libc::S_IFSOCK => Err("is a socket, not a regular file".into()),
        libc::S_IFDIR => Err("is a directory".into()),
        libc::S_IFBLK => Err("is a block device, not a regular file".into()),
        _ => Err(format!("is not a regular file (type {kind:o})")),
    }
}

/// Whether the last byte of a non-empty regular file is a newline; false
/// when it cannot be read (a needless newline costs one empty line, a
/// missing one glues two lines together).
fn ends_in_newline(file: &File, size: i64) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: pread into a one-byte buffer we own, on a descriptor we own;
    // O_APPEND does not affect pread.
    let n = unsafe { libc::pread(file.as_raw_fd(), b.as_mut_ptr().cast(), 1, size - 1) };
    n == 1 && b[0] == b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_file_is_0600() {
        // (Under umask 0: tests/it/hardening_output.rs, in a process of its
        // own, since the umask is process-wide.)
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.jsonl");
        let o = open_checked(&p, false).unwrap();
        assert!(o.empty && !o.needs_newline);
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn an_existing_file_must_be_private_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, b"x\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        let o = open_checked(&p, false).unwrap();
        assert!(!o.empty && !o.needs_newline);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let e = open_checked(&p, false).unwrap_err();
        assert_eq!(e.path, p);
        assert!(e.reason.contains("mode 0640"), "{e}");
        assert!(e.to_string().contains(p.to_str().unwrap()), "{e}");
        open_checked(&p, true).unwrap();
        assert_eq!(mode(&p), 0o640, "the mode is left alone");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        fs::hard_link(&p, dir.path().join("other")).unwrap();
        let e = open_checked(&p, false).unwrap_err();
        assert!(e.reason.contains("2 hard links"), "{e}");
    }

    #[test]
    fn a_directory_symlink_of_our_own_is_followed_a_final_one_never() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", dir.path().join("via")).unwrap();
        open_checked(&dir.path().join("via/log"), false).unwrap();
        assert!(dir.path().join("real/log").exists());
        std::os::unix::fs::symlink("real/log", dir.path().join("final")).unwrap();
        let e = open_checked(&dir.path().join("final"), true).unwrap_err();
        assert!(e.reason.contains("symlink"), "{e}");
    }

    #[test]
    fn a_path_that_names_no_file_is_refused() {
        let e = open_checked(Path::new("/tmp/"), false).unwrap_err();
        assert!(e.reason.contains("not a file name"), "{e}");
        let e = open_checked(Path::new("/no/such/dir/log"), false).unwrap_err();
        assert!(e.reason.contains("No such file"), "{e}");
    }
}
