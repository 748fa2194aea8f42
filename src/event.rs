//! The one platform-neutral event model.
//!
//! Every source (eBPF today; netlink, /proc and Windows later) produces these
//! values, and every sink renders only these values. Field names used in the
//! JSON output are named once, here, in the doc comments; the sinks follow them.

use std::sync::Arc;
use std::time::SystemTime;

/// A byte string taken from the kernel: argv elements, paths, comm.
///
/// These are attacker-controlled and need not be UTF-8, so they are kept as
/// raw bytes until a sink decides how to render them safely.
pub type Bytes = Vec<u8>;

/// Everything that flows from a source to the sinks, in order.
#[derive(Debug, Clone)]
pub enum Event {
    /// Written once, after the source is attached: anything exec'd after this
    /// event is emitted is captured.
    Start(StartInfo),
    /// One successful exec.
    Exec(Box<ExecEvent>),
    /// A process ended (only with `--exits`).
    Exit(Box<ExitEvent>),
    /// Events were dropped somewhere (kernel ring buffer or a user-space queue).
    Loss(LossInfo),
    /// The late `exe_sha256` of an exec written with `hash_pending`.
    Hash(HashInfo),
    /// Written last, on exit, with the final counters.
    Stop(StopInfo),
    /// The counters so far, on SIGUSR1 (`{"event":"stats",...}`).
    Stats(StatsInfo),
}

/// `{"event":"hash",...}`: the result of a hash that was still pending when
/// its exec was written. Exactly one follows each `hash_pending` exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashInfo {
    pub time: SystemTime,
    /// `exec_id` and `pid` of the exec it belongs to.
    pub exec_id: String,
    pub pid: u32,
    /// `exe_sha256`: the hash, or null when it could not be had.
    pub exe_sha256: Option<String>,
    /// `reason`: why `exe_sha256` is null; null when it is set.
    pub reason: Option<String>,
}

/// `{"event":"start",...}`
#[derive(Debug, Clone)]
pub struct StartInfo {
    pub time: SystemTime,
    /// `source`: the mechanism in use, e.g. `"ebpf"`.
    pub source: String,
    /// `attach`: how the source is attached, e.g. `"tp_btf/sched_process_exec"`.
    pub attach: String,
    /// `version`: procwatch's version.
    pub version: String,
    pub hostname: String,
    pub boot_id: String,
    /// `guarantees`: what the source promises, in words.
    pub guarantees: String,
    /// `can_miss`: what the source can miss, in words.
    pub can_miss: String,
    /// `pid` of procwatch itself.
    pub pid: u32,
    /// `short_lived_complete`, `poll_interval_ms`, `unavailable`: the
    /// source's guarantees in machine-readable form.
    pub coverage: Coverage,
    /// `continuation`: this start line opens a file reopened on SIGHUP (log
    /// rotation) in a run that had started before; false at the run's
    /// start.
    pub continuation: bool,
}

/// What a source guarantees, for the `start` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// `short_lived_complete`: every exec is reported with its argv, however
    /// briefly the process lives.
    pub short_lived_complete: bool,
    /// `poll_interval_ms`: the scan interval of a polling source.
    pub poll_interval_ms: Option<u64>,
    /// `unavailable`: exec fields this source can never fill (always null).
    pub unavailable: Vec<&'static str>,
}

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

    /// Records that `field` could not be filled.
    pub fn mark_incomplete(&mut self, field: &'static str, reason: impl Into<String>) {
        self.incomplete.push(Incomplete {
            field,
            reason: reason.into(),
        });
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

/// Where a loss happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossPlace {
    /// The kernel could not reserve space in the ring buffer (exec records).
    Kernel,
    /// The same, for fork and exit records: parent snapshots and exit
    /// events may be missing for the processes concerned.
    KernelAux,
    /// The user-space queue between reader and writer was full.
    Queue,
    /// A record could not be decoded (a program/loader mismatch; never
    /// expected, but counted rather than hidden).
    Undecodable,
    /// `netlink_enobufs`: the proc connector socket overflowed; each count is
    /// one overrun that lost an unknown number of events.
    NetlinkOverrun,
    /// `proc_read_failed`: reading `/proc/<pid>` failed (permissions,
    /// malformed content): the exec is reported with fields missing.
    ProcRead,
    /// `too_late`: the process had exited or exec'd again before `/proc`
    /// could be read.
    TooLate,
}

impl LossPlace {
    /// What a count at this place means, for human-readable sinks: events
    /// lost outright, events reported with fields missing, or overruns
    /// that each lost an unknown number of events.
    pub fn describe(self, n: u64) -> String {
        match self {
            LossPlace::NetlinkOverrun => format!(
                "LOST an unknown number of events in {n} socket overrun{}",
                if n == 1 { "" } else { "s" }
            ),
            LossPlace::ProcRead => {
                format!("INCOMPLETE {n} events: reading /proc failed, fields are missing")
            }
            LossPlace::TooLate => format!(
                "INCOMPLETE {n} events: the process was gone before /proc was read, fields are missing"
            ),
            LossPlace::Kernel
            | LossPlace::KernelAux
            | LossPlace::Queue
            | LossPlace::Undecodable => format!("LOST {n} events"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LossPlace::Kernel => "kernel",
            LossPlace::KernelAux => "kernel_fork_exit",
            LossPlace::Queue => "queue",
            LossPlace::Undecodable => "undecodable",
            LossPlace::NetlinkOverrun => "netlink_enobufs",
            LossPlace::ProcRead => "proc_read_failed",
            LossPlace::TooLate => "too_late",
        }
    }
}

/// `{"event":"loss","dropped":N,...}`: N events were dropped since the last
/// loss event of the same place.
#[derive(Debug, Clone)]
pub struct LossInfo {
    pub time: SystemTime,
    pub place: LossPlace,
    pub dropped: u64,
    /// Total dropped at this place so far.
    pub total: u64,
}

/// Counters reported in the `stop` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `seen`: execs the kernel program saw.
    pub seen: u64,
    /// `emitted`: events the kernel put in the ring buffer.
    pub emitted: u64,
    /// `dropped`: events the kernel could not put in the ring buffer.
    /// Invariant: `seen == emitted + dropped`.
    pub dropped: u64,
    /// `truncated`: events whose argv or a path was truncated.
    pub truncated: u64,
    /// `received`: events read from the ring buffer.
    pub received: u64,
    /// `queue_dropped`: events dropped because the writer fell behind.
    pub queue_dropped: u64,
    /// `aux_dropped`: fork and exit records lost (kernel or queue).
    pub aux_dropped: u64,
    /// `written`: exec events handed to the sink.
    pub written: u64,
    /// `filtered`: exec events the filters did not show (still counted).
    pub filtered: u64,
    /// `netlink_enobufs`: proc connector socket overruns (netlink source).
    pub netlink_enobufs: u64,
    /// `proc_read_failures`: failed `/proc` reads (netlink, procfs).
    pub proc_read_failures: u64,
    /// `too_late`: processes gone before `/proc` could be read (netlink,
    /// procfs).
    pub too_late: u64,
    /// `write_errors`: failed writes to the output (each retried later).
    pub write_errors: u64,
    /// `output_dropped`: lines given up because the output kept failing.
    pub output_dropped: u64,
}

/// `{"event":"stop",...}`
#[derive(Debug, Clone)]
pub struct StopInfo {
    pub time: SystemTime,
    /// `reason`: `"signal"`, `"duration"`, `"broken_pipe"` or `"error"`.
    pub reason: String,
    pub counters: Counters,
}

/// `{"event":"stats",...}`: the stop event's counters, mid-run.
#[derive(Debug, Clone)]
pub struct StatsInfo {
    pub time: SystemTime,
    pub counters: Counters,
}

// ---- Windows token data (issue 5) ------------------------------------------
// Held by `Privileges::Windows`. Kept in one block so merges stay simple.

/// `SE_PRIVILEGE_ENABLED_BY_DEFAULT`: on in the token's default state.
pub const SE_PRIVILEGE_ENABLED_BY_DEFAULT: u32 = 0x0000_0001;
/// `SE_PRIVILEGE_ENABLED`: on right now. This bit alone decides "enabled".
pub const SE_PRIVILEGE_ENABLED: u32 = 0x0000_0002;
/// `SE_PRIVILEGE_REMOVED`: removed from the token (cannot be enabled again).
pub const SE_PRIVILEGE_REMOVED: u32 = 0x0000_0004;
/// `SE_PRIVILEGE_USED_FOR_ACCESS`: was used to gain access to an object.
pub const SE_PRIVILEGE_USED_FOR_ACCESS: u32 = 0x8000_0000;

/// One token privilege: `{"name":..., "enabled":..., "enabled_by_default":...,
/// "removed":..., "used_for_access":..., "attributes":"0x..."}` in JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinPrivilege {
    /// `name`: e.g. `SeDebugPrivilege` (from `LookupPrivilegeNameW`), or
    /// `LUID 0x<high>:<low>` when the name could not be looked up.
    pub name: String,
    /// `attributes`: the raw `LUID_AND_ATTRIBUTES.Attributes` bits.
    pub attributes: u32,
}

impl WinPrivilege {
    /// `enabled`: the ENABLED bit is set. Tested as a bit, not by comparing
    /// the whole word: the seed's `== ENABLED|ENABLED_BY_DEFAULT` dropped
    /// privileges enabled at run time (and any with USED_FOR_ACCESS set).
    pub fn enabled(&self) -> bool {
        self.attributes & SE_PRIVILEGE_ENABLED != 0
    }
    /// `enabled_by_default`.
    pub fn enabled_by_default(&self) -> bool {
        self.attributes & SE_PRIVILEGE_ENABLED_BY_DEFAULT != 0
    }
    /// `removed`.
    pub fn removed(&self) -> bool {
        self.attributes & SE_PRIVILEGE_REMOVED != 0
    }
    /// `used_for_access`.
    pub fn used_for_access(&self) -> bool {
        self.attributes & SE_PRIVILEGE_USED_FOR_ACCESS != 0
    }
}

/// The mandatory integrity level, from the RID of the token's integrity SID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityLevel {
    Untrusted,
    Low,
    Medium,
    MediumPlus,
    High,
    System,
    Protected,
    /// A RID between the well-known levels, kept as is.
    Other(u32),
}

impl IntegrityLevel {
    /// Maps a mandatory-label RID (`SECURITY_MANDATORY_*_RID`) to a level.
    pub fn from_rid(rid: u32) -> Self {
        match rid {
            0x0000 => Self::Untrusted,
            0x1000 => Self::Low,
            0x2000 => Self::Medium,
            0x2100 => Self::MediumPlus,
            0x3000 => Self::High,
            0x4000 => Self::System,
            0x5000 => Self::Protected,
            other => Self::Other(other),
        }
    }
    /// The RID (`token.integrity_rid` in JSON), for consumers comparing numbers.
    pub fn rid(self) -> u32 {
        match self {
            Self::Untrusted => 0,
            Self::Low => 0x1000,
            Self::Medium => 0x2000,
            Self::MediumPlus => 0x2100,
            Self::High => 0x3000,
            Self::System => 0x4000,
            Self::Protected => 0x5000,
            Self::Other(rid) => rid,
        }
    }
    /// `integrity` in JSON: `untrusted`, `low`, `medium`, `medium_plus`,
    /// `high`, `system`, `protected`, or `rid_0x....` for other values.
    pub fn name(self) -> String {
        match self {
            Self::Untrusted => "untrusted".into(),
            Self::Low => "low".into(),
            Self::Medium => "medium".into(),
            Self::MediumPlus => "medium_plus".into(),
            Self::High => "high".into(),
            Self::System => "system".into(),
            Self::Protected => "protected".into(),
            Self::Other(rid) => format!("rid_0x{rid:04x}"),
        }
    }
}

/// `TOKEN_ELEVATION_TYPE`: how UAC split (or did not split) the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevationType {
    /// `default`: no split token (UAC off, or a service / built-in account).
    Default,
    /// `full`: the elevated half of a split token.
    Full,
    /// `limited`: the filtered, non-elevated half of a split token.
    Limited,
}

impl ElevationType {
    /// From the raw `TokenElevationType` value (1, 2, 3); `None` otherwise.
    pub fn from_raw(v: i32) -> Option<Self> {
        match v {
            1 => Some(Self::Default),
            2 => Some(Self::Full),
            3 => Some(Self::Limited),
            _ => None,
        }
    }
    /// `elevation_type` in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Full => "full",
            Self::Limited => "limited",
        }
    }
}

/// What a Windows process token says, read as soon as the process was seen.
/// Every part is optional: the process may be gone or access denied, and
/// the event's `incomplete` list then says which part is missing and why.
/// In JSON this is the `token` object; the owner is the top-level `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowsToken {
    /// `token.privileges`: every privilege in the token, with its state.
    pub privileges: Option<Vec<WinPrivilege>>,
    /// `token.integrity` (name) and `token.integrity_rid` (number).
    pub integrity: Option<IntegrityLevel>,
    /// `token.elevation_type`.
    pub elevation: Option<ElevationType>,
    /// `token.session_id`: the Terminal Services session.
    pub session_id: Option<u32>,
    /// `token.user_sid`: the token user's SID, e.g. `S-1-5-18`.
    pub user_sid: Option<String>,
    /// The token user as `DOMAIN\user`; rendered as `user`.
    pub owner: Option<String>,
}

impl WindowsToken {
    /// Names of the enabled privileges, in token order (the CSV cell).
    pub fn enabled_names(&self) -> Vec<&str> {
        self.privileges
            .iter()
            .flatten()
            .filter(|p| p.enabled())
            .map(|p| p.name.as_str())
            .collect()
    }
}
#[cfg(test)]
mod windows_token_tests {
    use super::*;

    const FLAGS: [u32; 4] = [
        SE_PRIVILEGE_ENABLED_BY_DEFAULT,
        SE_PRIVILEGE_ENABLED,
        SE_PRIVILEGE_REMOVED,
        SE_PRIVILEGE_USED_FOR_ACCESS,
    ];

    fn privilege(attributes: u32) -> WinPrivilege {
        WinPrivilege {
            name: "SeTestPrivilege".into(),
            attributes,
        }
    }

    /// What the seed computed: enabled only if the word equals exactly
    /// ENABLED|ENABLED_BY_DEFAULT.
    fn seed_enabled(attributes: u32) -> bool {
        attributes == SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT
    }

    #[test]
    fn every_flag_combination_decodes_independently() {
        for combo in 0u32..16 {
            let attributes = (0..4)
                .filter(|i| combo & (1 << i) != 0)
                .fold(0, |acc, i| acc | FLAGS[i]);
            let p = privilege(attributes);
            let state = [
                p.enabled_by_default(),
                p.enabled(),
                p.removed(),
                p.used_for_access(),
            ];
            for (i, got) in state.into_iter().enumerate() {
                assert_eq!(got, combo & (1 << i) != 0, "combo {combo:04b} flag {i}");
            }
            // Unknown high bits never change the four states.
            assert_eq!(privilege(attributes | 0x0000_0100).enabled(), p.enabled());
        }
    }

    #[test]
    fn the_seeds_equality_test_would_have_been_caught() {
        // Enabled at run time (AdjustTokenPrivileges) without being on by
        // default: enabled, yet the seed's test drops it.
        let runtime = SE_PRIVILEGE_ENABLED;
        assert!(privilege(runtime).enabled());
        assert!(!seed_enabled(runtime), "the seed missed this one");
        // Enabled by default and then used: USED_FOR_ACCESS breaks equality.
        let used =
            SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT | SE_PRIVILEGE_USED_FOR_ACCESS;
        assert!(privilege(used).enabled());
        assert!(!seed_enabled(used));
        // And the seed's own case still counts.
        assert!(privilege(SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT).enabled());
        // Enabled by default but disabled now: not enabled (both agree).
        assert!(!privilege(SE_PRIVILEGE_ENABLED_BY_DEFAULT).enabled());
        // Every disagreement between the two is a privilege the seed dropped.
        let dropped = (0u32..16)
            .map(|c| {
                (0..4)
                    .filter(|i| c & (1 << i) != 0)
                    .fold(0, |a, i| a | FLAGS[i])
            })
            .filter(|&a| privilege(a).enabled() != seed_enabled(a))
            .inspect(|&a| assert!(privilege(a).enabled(), "{a:#x}"))
            .count();
        assert_eq!(dropped, 7);
    }

    #[test]
    fn enabled_names_keep_token_order() {
        let token = WindowsToken {
            privileges: Some(vec![
                WinPrivilege {
                    name: "SeShutdownPrivilege".into(),
                    attributes: 0,
                },
                WinPrivilege {
                    name: "SeChangeNotifyPrivilege".into(),
                    attributes: SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT,
                },
                WinPrivilege {
                    name: "SeDebugPrivilege".into(),
                    attributes: SE_PRIVILEGE_ENABLED,
                },
            ]),
            ..WindowsToken::default()
        };
        assert_eq!(
            token.enabled_names(),
            ["SeChangeNotifyPrivilege", "SeDebugPrivilege"]
        );
        assert!(WindowsToken::default().enabled_names().is_empty());
    }

    #[test]
    fn integrity_and_elevation_names() {
        let rids = [0, 0x1000, 0x2000, 0x2100, 0x3000, 0x4000, 0x5000, 0x2010];
        let names: Vec<String> = rids
            .iter()
            .map(|&r| IntegrityLevel::from_rid(r).name())
            .collect();
        assert_eq!(
            names,
            [
                "untrusted",
                "low",
                "medium",
                "medium_plus",
                "high",
                "system",
                "protected",
                "rid_0x2010"
            ]
        );
        assert_eq!(
            (1..=3)
                .map(|v| ElevationType::from_raw(v).unwrap().as_str())
                .collect::<Vec<_>>(),
            ["default", "full", "limited"]
        );
        for rid in rids {
            assert_eq!(IntegrityLevel::from_rid(rid).rid(), rid);
        }
        assert_eq!(ElevationType::from_raw(0), None);
        assert_eq!(ElevationType::from_raw(4), None);
    }
}
// ---- end Windows token data -------------------------------------------------
