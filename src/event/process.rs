//! One process's exec, exit and privileges: what sources fill and sinks
//! render for each process.

use std::sync::Arc;
use std::time::SystemTime;

use super::{Bytes, Detections, NsInfo, WindowsToken};

/// Why an exec raised privileges by itself (as opposed to the caller already
/// having them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeRaise {
    /// The file's set-user-ID bit changed the effective uid.
    Setuid,
    /// The file's set-group-ID bit changed the effective gid.
    Setgid,
    /// File capabilities (security.capability xattr) granted capabilities.
    FileCaps,
}

impl PrivilegeRaise {
    pub fn as_str(self) -> &'static str {
        match self {
            PrivilegeRaise::Setuid => "setuid",
            PrivilegeRaise::Setgid => "setgid",
            PrivilegeRaise::FileCaps => "file_caps",
        }
    }
}

/// Linux credentials of the new program, as the kernel had them at exec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// `login_uid`: the audit login uid; `None` when unset (4294967295).
    pub login_uid: Option<u32>,
    /// `session_id`: the audit session id; `None` when unset.
    pub session_id: Option<u32>,
}

/// The four capability sets, as 64-bit masks (bit n = capability n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// The executed file's mode and owner, as seen by the kernel at exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Privileges of a new process: one variant per OS family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Privileges {
    Linux {
        creds: Credentials,
        caps: CapSets,
        /// `secureexec`: the kernel's AT_SECURE decision for this exec.
        secureexec: Option<bool>,
        file: Option<FileInfo>,
        /// `privilege_raised`.
        raised: Option<PrivilegeRaise>,
    },
    /// A Windows process token (see [`WindowsToken`]); JSON `token`.
    Windows(WindowsToken),
}

/// A field a source could not fill, and why. Listed in the event's
/// `incomplete` array; the field itself is null. Never guessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    /// The JSON name of the field, e.g. `"argv"`, `"caps"`.
    pub field: &'static str,
    /// Why, in a few words, e.g. `"process exited before it was read"`.
    pub reason: String,
}

/// What a process runs: the result of its last exec as procwatch recorded
/// it (or, for processes running before procwatch, what /proc showed).
/// Shared, never copied, between the process table, the `parent` of its
/// children's execs and their `ancestors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessImage {
    pub exec_id: Option<String>,
    pub exe: Option<Bytes>,
    pub argv: Option<Vec<Bytes>>,
    /// The name of `euid`.
    pub user: Option<Arc<str>>,
    pub euid: Option<u32>,
    /// The effective capabilities, when known.
    pub caps_effective: Option<u64>,
}

/// What procwatch knew about a parent process when its child exec'd: its
/// pid and what it ran at the fork. Derefs to that image, so `parent.exe`
/// reads as expected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentInfo {
    /// The parent's pid (the process that forked this one).
    pub pid: u32,
    /// `parent.start`: when the parent process was created (fork), so that
    /// pid + start identify it; `None` when unknown.
    pub start: Option<SystemTime>,
    pub image: Arc<ProcessImage>,
}

impl std::ops::Deref for ParentInfo {
    type Target = ProcessImage;
    fn deref(&self) -> &ProcessImage {
        &self.image
    }
}

/// The calling thread's credentials as it entered execve: what the
/// program had just before it exec'd (a launcher may have changed them
/// since its own exec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreExec {
    pub uid: u32,
    pub euid: u32,
    pub caps_effective: u64,
}

/// Why a process has more privilege than its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeCause {
    /// This exec's set-user-ID bit.
    Setuid,
    /// This exec's set-group-ID bit.
    Setgid,
    /// This exec's file capabilities.
    FileCaps,
    /// No file bit: a privileged launcher (sudo, su, cron, systemd, sshd,
    /// setpriv, ...) switched credentials between fork and exec.
    Launcher,
}

impl ChangeCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCause::Setuid => "setuid",
            ChangeCause::Setgid => "setgid",
            ChangeCause::FileCaps => "file_caps",
            ChangeCause::Launcher => "launcher",
        }
    }
}

/// `privilege_change`: the new program has more privilege than what ran it
/// (euid 0 from non-zero, or effective capabilities it lacked): compared
/// with the credentials just before the exec when the exec's own file bits
/// raised them, else with the program that called execve (the launcher).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeChange {
    pub cause: ChangeCause,
    /// The effective uid and capabilities before.
    pub from_euid: u32,
    pub from_caps: u64,
    pub to_euid: u32,
    /// Effective capabilities the parent did not have.
    pub gained_caps: u64,
    /// For `Launcher`: the parent's exe.
    pub launcher: Option<Bytes>,
}

/// Which file of an exec a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HijackRole {
    /// The binary itself.
    Binary,
    /// A `#!` script.
    Script,
    /// A script passed to a known interpreter (`sh x.sh`, `python3 x.py`).
    InterpreterArg,
}

impl HijackRole {
    pub fn as_str(self) -> &'static str {
        match self {
            HijackRole::Binary => "binary",
            HijackRole::Script => "script",
            HijackRole::InterpreterArg => "interpreter_arg",
        }
    }
}

/// One way a non-root user can change what a privileged process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hijack {
    /// The file that runs (absolute).
    pub path: Bytes,
    pub role: HijackRole,
    /// What can be modified: the file itself, a directory on its path, or a
    /// symlink on the way.
    pub writable: Bytes,
    /// Who can: `"user alice"`, `"group staff"`, `"others"` (names, or ids
    /// when they have none).
    pub writers: Vec<String>,
}

/// `{"event":"exec",...}`: one successful exec.
///
/// Fields a source cannot provide are `None` (JSON `null`) and named in
/// `incomplete`; a source never invents a value.
#[derive(Debug, Clone)]
pub struct ExecEvent {
    /// `time`: wall-clock time of the exec.
    pub time: SystemTime,
    /// `pid`: the process id (tgid).
    pub pid: u32,
    /// `tid`: the thread id after exec (equals `pid` on Linux).
    pub tid: Option<u32>,
    /// `exec_tid`: the thread that called execve; differs from `pid` when a
    /// non-leader thread execs.
    pub exec_tid: Option<u32>,
    /// `ppid`: the tgid of the real parent; `None` (null) when the source
    /// could not tell, with the reason in `incomplete`.
    pub ppid: Option<u32>,
    /// `exec_id`: stable unique id of this exec: `"<pid>:<exec boot ns>"`.
    pub exec_id: String,
    /// `process_start`: the process's start (fork) time; pid + start time
    /// uniquely identify a process.
    pub process_start: Option<SystemTime>,
    /// `exe`: absolute path of the binary actually run (the interpreter for a
    /// `#!` script).
    pub exe: Option<Bytes>,
    /// `exe_truncated`: the path did not fit and lost its leading components.
    pub exe_truncated: bool,
    /// `filename`: the path as the caller passed it to execve.
    pub filename: Option<Bytes>,
    /// `interpreter`: the `#!` interpreter, if the file was a script (`None`
    /// also when unknown; then `incomplete` names it).
    pub interpreter: Option<Bytes>,
    /// `argv`.
    pub argv: Option<Vec<Bytes>>,
    /// `command_line`: the command line as one string, for systems that keep
    /// it that way (Windows); `None` on Linux, where `argv` is the truth.
    pub command_line: Option<Bytes>,
    /// `argv_truncated`: argv was longer than the capture limit.
    pub argv_truncated: bool,
    /// `argv_size`: the full size of argv in bytes (NULs included), even when
    /// truncated.
    pub argv_size: Option<u64>,
    /// `cwd`: the working directory, `None` if it could not be read.
    pub cwd: Option<Bytes>,
    /// `comm`: the kernel's 16-byte command name.
    pub comm: Option<Bytes>,
    /// The privileges the process had at that moment.
    pub privileges: Option<Privileges>,
    /// `user`: name of the effective uid (filled by enrichment).
    pub user: Option<Arc<str>>,
    /// `group`: name of the effective gid (filled by enrichment).
    pub group: Option<Arc<str>>,
    /// `login_user`: name of the audit login uid (filled by enrichment).
    pub login_user: Option<Arc<str>>,
    /// `incomplete`: fields the source could not fill, and why.
    pub incomplete: Vec<Incomplete>,
    /// `parent`: the parent as procwatch knew it (enrichment); `None` when
    /// procwatch never saw the parent.
    pub parent: Option<ParentInfo>,
    /// `ancestors`: the images of the parent and its forking parents up
    /// towards pid 1, stopping at the first whose exe is unknown
    /// (enrichment); sinks show their exe paths.
    pub ancestors: Vec<Arc<ProcessImage>>,
    /// `exe_sha256`: hex SHA-256 of the executed file (enrichment).
    pub exe_sha256: Option<String>,
    /// `privilege_change`: more privilege than the parent, and why.
    pub privilege_change: Option<PrivilegeChange>,
    /// `hijackable`: a privileged exec of something a non-root user can
    /// modify; empty when none (or the exec is not privileged).
    pub hijackable: Vec<Hijack>,
    /// `pre_exec`: credentials just before the exec, when the source saw
    /// the execve call.
    pub pre_exec: Option<PreExec>,
    /// Device and inode of the executed file, as the kernel saw it: keys
    /// for caches, and a check that a path still names the same file.
    pub exe_dev_ino: Option<(u64, u64)>,
    /// Size and change times of the executed file's inode at the moment of
    /// the exec, as the kernel saw it (eBPF only). With `exe_dev_ino` this
    /// identifies the file's content without a `stat`: any write, chmod,
    /// chown or truncate changes ctime.
    pub exe_stamp: Option<FileStamp>,
    /// Namespaces, cgroup and the exe's mount (Linux).
    pub ns: NsInfo,
    /// `detections`: the Sigma rules this exec matched (none: empty).
    pub detections: Detections,
}

/// An inode's size and change times: (seconds, nanoseconds) since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStamp {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

#[cfg(unix)]
impl FileStamp {
    /// The stamp `stat` reports, comparable with the kernel's.
    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

impl ExecEvent {
    /// An event with only its identity known; the source fills in the rest.
    /// `ppid` is `None` when the source could not tell.
    pub fn new(time: SystemTime, pid: u32, ppid: Option<u32>, exec_id: String) -> Self {
        ExecEvent {
            time,
            pid,
            tid: None,
            exec_tid: None,
            ppid,
            exec_id,
            process_start: None,
            exe: None,
            exe_truncated: false,
            filename: None,
            interpreter: None,
            argv: None,
            command_line: None,
            argv_truncated: false,
            argv_size: None,
            cwd: None,
            comm: None,
            privileges: None,
            user: None,
            group: None,
            login_user: None,
            incomplete: Vec::new(),
            parent: None,
            ancestors: Vec::new(),
            exe_sha256: None,
            privilege_change: None,
            hijackable: Vec::new(),
            exe_dev_ino: None,
            exe_stamp: None,
            pre_exec: None,
            ns: NsInfo::default(),
            detections: Vec::new(),
        }
    }

    /// The Linux credentials, if this event has them.
    pub fn linux_creds(&self) -> Option<&Credentials> {
        match &self.privileges {
            Some(Privileges::Linux { creds, .. }) => Some(creds),
            _ => None,
        }
    }

    /// The Linux capability sets, if this event has them.
    pub fn linux_caps(&self) -> Option<&CapSets> {
        match &self.privileges {
            Some(Privileges::Linux { caps, .. }) => Some(caps),
            _ => None,
        }
    }

    /// The credentials belong to a user namespace other than the host's
    /// (known from the source; `false` when unknown). Capabilities there
    /// act only on that namespace's own resources.
    pub fn in_other_userns(&self) -> bool {
        self.ns.user_ns.is_some_and(|u| !u.is_host())
    }

    /// The effective capabilities that are power on the host: none for a
    /// process in another user namespace.
    pub fn host_caps_effective(&self) -> Option<u64> {
        let caps = self.linux_caps()?.effective;
        Some(if self.in_other_userns() { 0 } else { caps })
    }

    /// Privileged on the host: euid 0 (the host's root: the kernel's ids
    /// are the host's) or any effective capability in the host's user
    /// namespace.
    pub fn host_privileged(&self) -> bool {
        self.linux_creds().is_some_and(|c| c.euid == 0)
            || self.host_caps_effective().is_some_and(|c| c != 0)
    }

    /// Records that `field` could not be filled.
    pub fn mark_incomplete(&mut self, field: &'static str, reason: impl Into<String>) {
        let reason = reason.into();
        // One entry per field: `incomplete_reasons` is keyed by field name.
        match self.incomplete.iter_mut().find(|i| i.field == field) {
            Some(i) if i.reason != reason => {
                i.reason.push_str("; ");
                i.reason.push_str(&reason);
            }
            Some(_) => {}
            None => self.incomplete.push(Incomplete { field, reason }),
        }
    }
}

/// `{"event":"exit",...}`: a process ended (with `--exits`).
#[derive(Debug, Clone)]
pub struct ExitEvent {
    pub time: SystemTime,
    pub pid: u32,
    pub ppid: u32,
    /// `exec_id` of the process's last exec, if procwatch saw it.
    pub exec_id: Option<String>,
    /// `exit_code`, when it exited normally.
    pub exit_code: Option<i32>,
    /// `signal`, when a signal killed it.
    pub signal: Option<i32>,
    pub core_dumped: bool,
    /// `lifetime`: since the process started (fork).
    pub lifetime: Option<std::time::Duration>,
    pub comm: Option<Bytes>,
}
