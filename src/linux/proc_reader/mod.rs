//! Reading one process from `/proc/<pid>`, robustly, for the sources that
//! learn about processes after the fact (netlink, the /proc scanner).
//!
//! Everything here races the process: it can exit, become a zombie, exec
//! again, rewrite its argv, or be replaced by an unrelated process reusing
//! its pid. So:
//! - all files are opened relative to one directory fd on `/proc/<pid>`;
//!   once the process is gone, reads through that fd fail (ESRCH/ENOENT)
//!   instead of silently reading a newer process with the same pid;
//! - the start time in `stat` identifies the process (pid + start time), and
//!   the caller can insist on the one it expects;
//! - each field is read on its own and either holds a value or says why it
//!   could not be read; nothing is filled in by guessing.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::event::{Bytes, CapSets, Credentials, FileInfo, FileStamp};
use crate::linux::file_key::FileKey;

mod ns;
pub use ns::{NsSnapshot, parse_cgroup_v2, parse_nspid};

/// `PF_KTHREAD` from the kernel's `include/linux/sched.h`: set in the
/// `flags` field of `stat` for kernel threads, which never exec.
const PF_KTHREAD: u64 = 0x0020_0000;

/// `PF_EXITING`: set as a task starts to exit, before its memory goes.
const PF_EXITING: u64 = 0x0000_0004;

/// Size of the first (and usually only) read of a `/proc` file.
const FIRST_READ: usize = 64 * 1024;

/// The audit "unset" id in `loginuid` / `sessionid`.
const AUDIT_UNSET: u32 = u32::MAX;

/// Upper bound on how much of `cmdline` is read: argv cannot exceed the
/// kernel's ARG_MAX-style limits anyway, this only bounds a hostile case.
const CMDLINE_MAX: u64 = 4 << 20;

/// Why a field (or the whole process) could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The process exited (or its pid directory vanished) before the read.
    Exited,
    /// The process is a zombie: it exited, its memory and files are gone.
    Zombie,
    /// Permission denied (another user's process, or hidepid).
    Denied,
    /// The pid now belongs to a different process than the one expected.
    Reused,
    /// The process exec'd while it was being read: what was read may mix
    /// two programs.
    Changed,
    /// Kernel threads have no argv or executable.
    KernelThread,
    /// The file's content was not in the expected format.
    Malformed,
    /// Any other I/O error.
    Io,
}

impl Failure {
    /// A short, stable word used in output (`incomplete` reasons).
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Exited => "exited",
            Failure::Zombie => "zombie",
            Failure::Denied => "permission_denied",
            Failure::Reused => "pid_reused",
            Failure::Changed => "changed_during_read",
            Failure::KernelThread => "kernel_thread",
            Failure::Malformed => "malformed",
            Failure::Io => "io_error",
        }
    }

    fn from_io(e: &io::Error) -> Failure {
        match e.raw_os_error() {
            Some(libc::ENOENT | libc::ESRCH) => Failure::Exited,
            Some(libc::EACCES | libc::EPERM) => Failure::Denied,
            _ => Failure::Io,
        }
    }
}

/// The fields of `/proc/<pid>/stat` that procwatch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name between the parentheses; may itself contain `)`.
    pub comm: Bytes,
    /// The state letter: `R`, `S`, `Z`, ...
    pub state: u8,
    pub ppid: u32,
    /// Kernel `task->flags` (`PF_*`).
    pub flags: u64,
    /// Start time in clock ticks since boot (`CLOCK_BOOTTIME` based).
    pub start_ticks: u64,
    /// Virtual memory size; 0 when the process has no memory any more
    /// (exiting) or never had any (kernel thread).
    pub vsize: u64,
    /// The memory layout fields (start_code, end_code, arg_start, arg_end).
    /// Without ptrace access the kernel shows 1, 1, 0, 0; a new
    /// exec changes them (fresh mm, randomised stack), which is how an exec
    /// without fork is recognised cheaply for readable processes.
    pub layout: [u64; 4],
}

impl Stat {
    /// True for kernel threads.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// True for zombies (and dead tasks not yet reaped).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }

    /// True once the task has begun to exit, before it is a zombie: its
    /// memory layout may already read as zeros.
    pub fn is_exiting(&self) -> bool {
        self.flags & PF_EXITING != 0
    }
}

/// Parses `/proc/<pid>/stat`. The comm may contain spaces and `)`, so the
/// fields after it are located from the *last* `)`.
pub fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = buf.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = buf[open + 1..close].to_vec();
    let rest = std::str::from_utf8(buf.get(close + 1..)?).ok()?;
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // f[0] is field 3 (state); field n is f[n - 3].
    let num = |n: usize| f.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let state = *f.first()?.as_bytes().first()?;
    Some(Stat {
        comm,
        state,
        ppid: u32::try_from(num(4)?).ok()?,
        flags: num(9)?,
        start_ticks: num(22)?,
        vsize: num(23)?,
        layout: [
            num(26).unwrap_or(0),
            num(27).unwrap_or(0),
            num(48).unwrap_or(0),
            num(49).unwrap_or(0),
        ],
    })
}

/// Credentials and capabilities from `/proc/<pid>/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub creds: Credentials,
    pub caps: CapSets,
}

/// Parses the `Uid:`, `Gid:` and `Cap*:` lines of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<Status> {
    let mut ids: [Option<[u32; 4]>; 2] = [None, None];
    let mut caps = [None; 4];
    for line in text.lines() {
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key {
            "Uid" | "Gid" => {
                let v: Vec<u32> = val
                    .split_ascii_whitespace()
                    .filter_map(|s| s.parse().ok())
                    .collect();
                let four: [u32; 4] = v.get(..4)?.try_into().ok()?;
                ids[usize::from(key == "Gid")] = Some(four);
            }
            "CapEff" | "CapPrm" | "CapInh" | "CapAmb" => {
                let n = u64::from_str_radix(val, 16).ok()?;
                let i = ["CapEff", "CapPrm", "CapInh", "CapAmb"]
                    .iter()
                    .position(|k| *k == key)?;
                caps[i] = Some(n);
            }
            _ => {}
        }
    }
    let [u, g] = [ids[0]?, ids[1]?];
    Some(Status {
        creds: Credentials {
            uid: u[0],
            euid: u[1],
            suid: u[2],
            fsuid: u[3],
            gid: g[0],
            egid: g[1],
            sgid: g[2],
            fsgid: g[3],
            login_uid: None,
            session_id: None,
        },
        caps: CapSets {
            effective: caps[0]?,
            permitted: caps[1]?,
            inheritable: caps[2]?,
            // CapAmb appeared in 4.3; older kernels simply have none.
            ambient: caps[3].unwrap_or(0),
        },
    })
}

/// argv as `/proc/<pid>/cmdline` shows it at read time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline {
    pub argv: Vec<Bytes>,
    /// Bytes read, NULs included.
    pub size: u64,
}

/// Splits `cmdline` at NULs. A process that rewrote its argv area
/// (setproctitle) may leave no trailing NUL, or padding NULs: both are
/// reported as the kernel shows them, since either could be real argv.
pub fn split_cmdline(buf: &[u8]) -> Vec<Bytes> {
    let body = buf.strip_suffix(&[0]).unwrap_or(buf);
    if body.is_empty() && buf.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// One process as read from `/proc/<pid>`, field by field.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub pid: u32,
    pub stat: Stat,
    pub status: Result<Status, Failure>,
    pub cmdline: Result<Cmdline, Failure>,
    pub exe: Result<Bytes, Failure>,
    pub cwd: Result<Bytes, Failure>,
    /// Mode and owner of the executable (followed through `exe`).
    pub file: Result<FileInfo, Failure>,
    /// Device, inode, size and change times of the executable, from the
    /// same `stat`: what the exe hash is verified against. `None` when it
    /// could not be read, or the process exited or exec'd while read.
    pub exe_key: Option<FileKey>,
    /// `None` inside means the audit id is unset.
    pub login_uid: Result<Option<u32>, Failure>,
    pub session_id: Result<Option<u32>, Failure>,
    /// `NSpid`: the pid in its own pid namespace and that namespace's depth.
    pub ns_pid: Result<(u32, u32), Failure>,
    pub ns: NsSnapshot,
}

/// An open `/proc/<pid>` directory: every read goes through it, so all
/// reads concern the same process or fail.
pub struct ProcDir {
    pid: u32,
    fd: OwnedFd,
}

impl ProcDir {
    /// Opens `/proc/<pid>` (or `<root>/<pid>` for tests).
    pub fn open(root: &str, pid: u32) -> Result<ProcDir, Failure> {
        let path = CString::new(format!("{root}/{pid}")).map_err(|_| Failure::Io)?;
        // SAFETY: path is a valid C string; the returned fd is checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Failure::from_io(&io::Error::last_os_error()));
        }
        // SAFETY: fd is a freshly opened descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ProcDir { pid, fd })
    }

    fn open_file(&self, name: &str) -> Result<File, Failure> {
        let c = CString::new(name).map_err(|_| Failure::Io)?;
        // SAFETY: valid dirfd and C string; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(Failure::from_io(&io::Error::last_os_error()));
        }
        // SAFETY: fd is a freshly opened descriptor that we own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Reads a whole file (at most `max` bytes).
    ///
    /// The first `read` asks for 64 KiB at once: each `read` of `cmdline`
    /// looks at the process's memory anew, so a file read in small pieces
    /// (std's `read_to_end` starts with a 32-byte probe) can mix two
    /// programs when the process execs or exits in between.
    pub fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, Failure> {
        let mut file = self.open_file(name)?;
        let mut buf = vec![0u8; FIRST_READ.min(max as usize)];
        let n = loop {
            match file.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Failure::from_io(&e)),
            }
        };
        buf.truncate(n);
        if n == FIRST_READ {
            file.take(max.saturating_sub(n as u64))
                .read_to_end(&mut buf)
                .map_err(|e| Failure::from_io(&e))?;
        }
        Ok(buf)
    }

    /// Reads a symlink such as `exe` or `cwd`.
    pub fn readlink(&self, name: &str) -> Result<Bytes, Failure> {
        let c = CString::new(name).map_err(|_| Failure::Io)?;
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: valid dirfd, C string and buffer of buf.len() bytes.
            let n = unsafe {
                libc::readlinkat(
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            let n =
                usize::try_from(n).map_err(|_| Failure::from_io(&io::Error::last_os_error()))?;
            if n < buf.len() {
                buf.truncate(n);
                return Ok(buf);
            }
            // Possibly truncated: paths can exceed PATH_MAX in /proc.
            buf.resize(buf.len() * 2, 0);
            if buf.len() > 1 << 20 {
                return Err(Failure::Malformed);
            }
        }
    }

    /// Reads and parses `stat`.
    pub fn stat(&self) -> Result<Stat, Failure> {
        parse_stat(&self.read("stat", 4096)?).ok_or(Failure::Malformed)
    }

    /// Reads one `loginuid`/`sessionid` style number.
    fn audit_id(&self, name: &str) -> Result<Option<u32>, Failure> {
        let buf = self.read(name, 64)?;
        let n: u32 = std::str::from_utf8(&buf)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(Failure::Malformed)?;
        Ok((n != AUDIT_UNSET).then_some(n))
    }

    /// Reads everything procwatch reports about the process.
    ///
    /// `expect_start`: the start time (ticks) of the process the caller
    /// means; if the pid now has another start time, it was reused and the
    /// whole read fails with [`Failure::Reused`].
    pub fn snapshot(&self, expect_start: Option<u64>) -> Result<Snapshot, Failure> {
        let stat = self.stat()?;
        if expect_start.is_some_and(|s| s != stat.start_ticks) {
            return Err(Failure::Reused);
        }
        // A zombie or kernel thread has no memory: argv and exe are not
        // "empty", they are unavailable, and must be reported as such.
        let gone = if stat.is_kernel_thread() {
            Some(Failure::KernelThread)
        } else if stat.is_dead() {
            Some(Failure::Zombie)
        } else {
            None
        };
        let cmdline = match gone {
            Some(f) => Err(f),
            None => self.cmdline(),
        };
        let exe = match gone {
            Some(f) => Err(f),
            None => self.readlink("exe"),
        };
        let (file, exe_key) = match gone.map_or_else(|| self.exe_file(), Err) {
            Ok((info, key)) => (Ok(info), Some(key)),
            Err(f) => (Err(f), None),
        };
        let status = self
            .read("status", 1 << 16)
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let mut snap = Snapshot {
            pid: self.pid,
            status: status
                .as_ref()
                .map_err(|f| *f)
                .and_then(|t| parse_status(t).ok_or(Failure::Malformed)),
            ns_pid: status
                .as_ref()
                .map_err(|f| *f)
                .and_then(|t| parse_nspid(t).ok_or(Failure::Malformed)),
            ns: self.ns_snapshot(),
            cmdline,
            exe,
            cwd: self.readlink("cwd"),
            file,
            exe_key,
            login_uid: self.audit_id("loginuid"),
            session_id: self.audit_id("sessionid"),
            stat,
        };
        self.recheck_exit(&mut snap);
        Ok(snap)
    }

    /// Looks at `stat` again after the reads. A process that exited or
    /// exec'd meanwhile may have handed us a *cut* cmdline (its memory was torn
    /// down page by page while we read), an empty one, or failed links:
    /// all of those are then reported as unavailable, never as values.
    fn recheck_exit(&self, snap: &mut Snapshot) {
        let why = match self.stat() {
            Ok(s) if s.is_dead() => Failure::Zombie,
            // An exiting process drops its memory before it turns zombie.
            Ok(s) if s.vsize == 0 => Failure::Exited,
            // A new comm or memory layout: it exec'd while we read.
            Ok(s) if s.comm != snap.stat.comm || s.layout != snap.stat.layout => Failure::Changed,
            Ok(_) => return,
            Err(_) => Failure::Exited,
        };
        snap.exe_key = None;
        if snap.cmdline.is_ok() {
            snap.cmdline = Err(why);
        }
        for field in [&mut snap.exe, &mut snap.cwd] {
            if matches!(field, Err(Failure::Exited)) {
                *field = Err(why);
            }
        }
        if matches!(snap.file, Err(Failure::Exited)) {
            snap.file = Err(why);
        }
    }

    /// `stat` of the executable itself, through the `exe` magic link (so a
    /// deleted or replaced file is still the one that runs).
    fn exe_file(&self) -> Result<(FileInfo, FileKey), Failure> {
        let name = CString::new("exe").map_err(|_| Failure::Io)?;
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid dirfd, C string and out pointer.
        let rc = unsafe { libc::fstatat(self.fd.as_raw_fd(), name.as_ptr(), &mut st, 0) };
        if rc != 0 {
            return Err(Failure::from_io(&io::Error::last_os_error()));
        }
        let info = FileInfo {
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
        };
        let key = FileKey {
            dev: st.st_dev,
            ino: st.st_ino,
            stamp: FileStamp {
                size: st.st_size as u64,
                mtime: (st.st_mtime, st.st_mtime_nsec),
                ctime: (st.st_ctime, st.st_ctime_nsec),
            },
        };
        Ok((info, key))
    }

    fn cmdline(&self) -> Result<Cmdline, Failure> {
        let buf = self.read("cmdline", CMDLINE_MAX)?;
        Ok(Cmdline {
            size: buf.len() as u64,
            argv: split_cmdline(&buf),
        })
    }
}

/// The pids under `root` (normally `/proc`), as they are listed now; a
/// missing or unreadable root lists none.
pub fn pids(root: &str) -> impl Iterator<Item = u32> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
}

/// Clock ticks per second, for `stat` start times.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// Converts `stat` start ticks to boot-time nanoseconds.
pub fn ticks_to_boot_ns(ticks: u64, hz: u64) -> u64 {
    ticks.saturating_mul(1_000_000_000 / hz.max(1))
}

#[cfg(test)]
mod tests;
