//! The command line as clap declares it: every flag, its help text, its
//! value parser and its default. Turning it into plain values is
//! convert.rs's job.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::parsers::{
    parse_container, parse_duration, parse_glob, parse_interval, parse_queue_len, parse_ring_size,
    parse_size, parse_syslog_max,
};

const ABOUT: &str = "Report every successful exec on this machine, with argv, user and privileges.";

#[cfg(not(windows))]
const LONG_ABOUT: &str = "\
procwatch reports every successful exec on this machine as it happens: the \
program run, its full argv, working directory, parent, the user and group it \
runs as (and the audit login user behind su/sudo), its capabilities, and \
whether the exec itself raised privileges (setuid, setgid or file \
capabilities).

Events are captured in the kernel with eBPF when the exec has succeeded, so \
short-lived processes are not missed. Lost events are never silent: a `loss` \
record says how many were dropped and where. The first record (`start`) is \
written once capture is active; the last (`stop`) carries the final counters.

The eBPF source needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF \
(/sys/kernel/btf/vmlinux). Without them, --source auto falls back to the netlink proc connector, then to \
an unprivileged /proc scanner, and says so: both report what they could not \
read in each event's `incomplete` list.";

#[cfg(not(windows))]
const AFTER_HELP: &str = "\
Exit status:
  0  clean end: signal (SIGINT/SIGTERM), --duration elapsed, or broken pipe
  1  runtime error
  2  usage error
  3  cannot attach the event source (not root, no BTF, unsupported kernel, ...)";

/// Output format of the event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One human-readable line per event.
    Text,
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// One Elastic Common Schema (ECS 8.x) document per line.
    Ecs,
}

/// How a syslog message's MSG renders the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyslogFormatArg {
    /// The event's JSON line, as --format jsonl writes it.
    Jsonl,
}

/// Which event source to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// The best source available on this platform (see AUTO_HELP).
    #[value(help = AUTO_HELP)]
    Auto,
    /// The eBPF source (tp_btf/sched_process_exec): complete, needs root.
    #[value(hide = cfg!(windows))]
    Ebpf,
    /// Linux: the netlink proc connector: every exec, but argv etc. read
    /// from /proc afterwards (may be incomplete).
    #[value(hide = cfg!(windows))]
    Netlink,
    /// Linux: scan /proc every --interval and on inotify triggers: no
    /// privileges needed, misses processes shorter than the interval.
    #[value(hide = cfg!(windows))]
    Procfs,
    /// Windows only: WMI. Win32_ProcessStartTrace events when elevated,
    /// otherwise __InstanceCreationEvent polling every --interval.
    #[value(hide = !cfg!(windows))]
    Wmi,
    /// Windows only (admin): ETW kernel process events, with command lines.
    #[value(hide = !cfg!(windows))]
    Etw,
    /// Windows only: the process list every --interval (default 0.1 s),
    /// each new process read at once: no admin needed, misses processes
    /// shorter than the interval.
    #[value(hide = !cfg!(windows))]
    Snapshot,
}

/// procwatch's command line.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "procwatch",
    version,
    args_conflicts_with_subcommands = true,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Write events to PATH instead of standard output: appended to, or
    /// created with mode 0600. Refused (exit 2) when PATH is a symlink, a
    /// FIFO or other non-regular file, belongs to another user, has other
    /// hard links, is open to group or others, or is in a directory another
    /// user could swap it in.
    /// SIGHUP reopens it (log rotation).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Accept an -o file owned by another user, with other hard links, or
    /// readable or writable by group or others, and a directory owned by
    /// another user (symlinks,
    /// FIFOs and unprotected world-writable directories are refused
    /// always).
    #[arg(long, requires = "output")]
    pub force_output: bool,

    /// End the run (status 1) at the first failed write to the output;
    /// by default write errors are reported, counted and retried.
    #[arg(long)]
    pub exit_on_write_error: bool,

    /// Stop after SECONDS (fractions allowed); default: run until signalled.
    #[arg(
        long,
        value_name = "SECONDS",
        value_parser = parse_duration,
        allow_negative_numbers = true
    )]
    pub duration: Option<f64>,

    /// Event source.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

    /// Seconds between snapshots of the process list, for the polling
    /// sources: Linux procfs (default 0.1; it also scans at once on inotify
    /// activity), Windows snapshot (default 0.1) and WMI polling (WQL
    /// `WITHIN`, default 1). Processes shorter than this can be missed.
    #[arg(long, value_name = "SECONDS", value_parser = parse_interval)]
    pub interval: Option<f64>,

    /// netlink: run the /proc reading thread at real-time priority
    /// (SCHED_FIFO), which loses fewer argv.
    #[arg(long)]
    pub realtime: bool,

    /// procfs: also scan at once when something happens in DIR (repeatable).
    #[arg(long, value_name = "DIR")]
    pub watch: Vec<PathBuf>,

    /// For tests: `--source auto` acts as if eBPF were unavailable (also
    /// PROCWATCH_DISABLE_EBPF=1).
    #[arg(long, hide = true)]
    pub debug_disable_ebpf: bool,

    /// Size of the kernel ring buffer; suffixes K, M, G (powers of 1024).
    /// Must be a power of two and a multiple of the page size. A larger ring
    /// absorbs longer exec bursts before events are lost.
    #[arg(long, value_name = "BYTES", default_value = "16M", value_parser = parse_ring_size)]
    pub ring_size: u32,

    /// The kernel wakes the reader only once this much data is queued, which
    /// saves wakeups under load; the reader also polls every --poll-ms, so
    /// events are never delayed much longer than that. 0 wakes on every
    /// event; a value at or above --ring-size means polling alone.
    #[arg(long, value_name = "BYTES", default_value = "256K", value_parser = parse_size)]
    pub wakeup_bytes: u64,

    /// How often (milliseconds) the reader polls the ring buffer regardless
    /// of wakeups; bounds the latency of events. Larger batches cost less
    /// per event: in the exec-storm benchmark 100 ms took ~15% less CPU per
    /// exec than 20 ms, and 100 ms is still below what a reader notices.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub poll_ms: u64,

    /// Capacity (in events) of the queue between the ring-buffer reader and
    /// the writer; when the writer falls behind and it fills, events are
    /// dropped and reported as a `queue` loss.
    #[arg(long, value_name = "N", default_value_t = 65536, value_parser = parse_queue_len)]
    pub queue_len: usize,

    /// Bound of the same queue in bytes (argv, paths and records held):
    /// whatever the argv sizes, a stalled writer cannot grow memory past it.
    /// Overflow is a `queue` loss, as for --queue-len. Suffixes K, M, G.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub queue_bytes: u64,

    /// Show only execs whose effective OR real uid is N (so sudo and setuid
    /// runs by that user are included). Repeatable; with --user, one set.
    #[arg(long, value_name = "N", help_heading = "Filters")]
    pub uid: Vec<u32>,

    /// Like --uid, by user name (resolved once at start, through NSS); a
    /// number is accepted when no user has that name. Repeatable.
    #[arg(long, value_name = "NAME", help_heading = "Filters")]
    pub user: Vec<String>,

    /// Show only execs whose executable path matches GLOB: `*` (any run,
    /// `/` included), `?`, `[abc]`, `[!a-z]`, `\` escapes the next
    /// character. A GLOB without `/` is matched against the file name, so
    /// `--exe bash` matches /usr/bin/bash. Repeatable (any may match); an
    /// exec whose path is unknown does not match. A path counts only when
    /// the exec ran in procwatch's mount namespace and the file at the path
    /// is the one executed (so a bind mount elsewhere cannot pose as it).
    #[arg(long, value_name = "GLOB", help_heading = "Filters", value_parser = parse_glob)]
    pub exe: Vec<String>,

    /// Hide execs whose executable path matches GLOB (same syntax as
    /// --exe). Repeatable. An unknown or truncated path is never hidden, nor
    /// one that does not name the executed file in procwatch's mount
    /// namespace (a payload bind-mounted over the path elsewhere).
    #[arg(long, value_name = "GLOB", help_heading = "Filters", value_parser = parse_glob)]
    pub exclude_exe: Vec<String>,

    /// Show only privileged execs: effective uid 0 or any effective
    /// capability.
    #[arg(long, help_heading = "Filters")]
    pub privileged: bool,

    /// Show only execs with more privilege than their parent, or raised by
    /// a setuid/setgid/file-capability exec.
    #[arg(long, help_heading = "Filters")]
    pub raised: bool,

    /// Show only privileged execs of something a non-root user can modify.
    #[arg(long, help_heading = "Filters")]
    pub hijackable: bool,

    /// Show only execs in this container: `any`, `none`, a prefix of the
    /// container id (at least 4 hex digits), or its exact id or name
    /// (nspawn, lxc). Taken from the cgroup path; an exec whose cgroup is
    /// unknown matches no value, and `none` also shows containers a user
    /// named in their own delegated cgroup subtree. Repeatable (any may
    /// match).
    #[arg(long, value_name = "ID", help_heading = "Filters", value_parser = parse_container)]
    pub container: Vec<String>,

    /// Show only execs in procwatch's own pid, mount and user namespaces
    /// (the host's, when procwatch runs on the host); unknown namespaces
    /// do not match.
    #[arg(long, help_heading = "Filters")]
    pub host_only: bool,

    /// Text: the wide layout with every detail (ppid, capability names,
    /// what each marker found), whatever the terminal's width. Without it,
    /// a terminal narrower than 120 columns gets the compact layout.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Evaluate the Sigma process_creation rules in PATH (a file, or a
    /// directory read recursively for *.yml and *.yaml) on every exec:
    /// matches fill `detections`. Repeatable. SIGHUP reloads them.
    #[arg(long, value_name = "PATH", help_heading = "Detections")]
    pub rules: Vec<PathBuf>,

    /// Refuse to start when a --rules file is not valid YAML or not a
    /// Sigma rule (by default it is listed in rules_skipped).
    #[arg(long, requires = "rules", help_heading = "Detections")]
    pub rules_strict: bool,

    /// Show only execs that a --rules rule matched.
    #[arg(long, requires = "rules", help_heading = "Detections")]
    pub alerts_only: bool,

    /// Colour the text format: auto = only when writing to a terminal
    /// (not with -o) and NO_COLOR is not set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    /// Also report process exits (exit code or signal, lifetime).
    #[arg(long)]
    pub exits: bool,

    /// Do not compute the sha256 of executed files.
    #[arg(long)]
    pub no_hash: bool,

    /// Do not check whether privileged execs run files a non-root user can
    /// modify (the `hijackable` field stays null).
    #[arg(long)]
    pub no_hijack_check: bool,

    /// Hash executables only up to this size (larger ones get no sha256);
    /// suffixes K, M, G.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub hash_max_size: u64,

    /// Read at most this many bytes per second for hashing; an exec whose
    /// file does not fit gets no sha256 (`hash_budget`). Suffixes K, M, G.
    #[arg(long, value_name = "BYTES", default_value = "32M", value_parser = parse_size)]
    pub hash_rate: u64,

    /// Give up hashing one file after this many seconds (`hash_budget`).
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_duration)]
    pub hash_timeout: f64,

    /// Extra CSV columns after the standard seven, in the order given
    /// (comma-separated, repeatable); `all` adds every one. CSV only.
    #[arg(long, value_enum, value_name = "LIST", value_delimiter = ',')]
    pub csv_columns: Vec<CsvColumnArg>,

    /// JSONL exec fields to add (`+name`, or just `name`) to every line or
    /// drop (`-name`) from it, comma-separated, repeatable; e.g.
    /// `--fields +cmdline,-namespaces`; `all` is every field (`+all`: the
    /// full record). The compact default and every field name are in
    /// README.md's "Event fields". JSONL only.
    #[arg(long, value_name = "LIST", value_delimiter = ',', allow_hyphen_values = true,
          value_parser = crate::sink::jsonl::parse_field_change)]
    pub fields: Vec<crate::sink::jsonl::FieldChange>,

    // ---- syslog ----
    /// Also send every event to a syslog receiver, as RFC 5424 messages
    /// whose MSG is the event's JSON line: unix:///dev/log (a datagram
    /// socket; a stream socket gets one message per line), udp://HOST:PORT,
    /// tcp://HOST:PORT (RFC 6587 octet counting) or tls://HOST:PORT.
    /// Repeatable; the main output is written as well.
    #[arg(long, value_name = "URL", help_heading = "Syslog")]
    pub syslog: Vec<crate::sink::syslog::Target>,

    /// How MSG renders each event.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = SyslogFormatArg::Jsonl,
          help_heading = "Syslog")]
    pub syslog_format: SyslogFormatArg,

    /// Trust the CA certificates in this PEM file for tls:// instead of
    /// the system's store.
    #[arg(long, value_name = "FILE", help_heading = "Syslog")]
    pub syslog_ca: Option<PathBuf>,

    /// Longest message, header included (rsyslog's default limit is 8K);
    /// a longer one is cut and flagged with
    /// [procwatch@32473 truncated="true" size="N"]. At least 480.
    #[arg(long, value_name = "BYTES", default_value = "8K", value_parser = parse_syslog_max,
          help_heading = "Syslog")]
    pub syslog_max: u64,

    /// Bytes queued per destination while its receiver is slow or down;
    /// past that, messages are dropped and reported as `syslog` losses.
    #[arg(long, value_name = "BYTES", default_value = "8M", value_parser = parse_size,
          help_heading = "Syslog")]
    pub syslog_buffer: u64,
    // ---- end syslog ----
    /// For tests: after attaching, the reader sleeps N milliseconds before
    /// draining, so a tiny ring can be made to overflow deterministically.
    #[arg(long, value_name = "N", default_value_t = 0, hide = true)]
    pub debug_pause_reader_ms: u64,

    /// For tests: force the classic tracepoint instead of tp_btf, to
    /// exercise the fallback.
    #[arg(long, value_enum, default_value_t = AttachArg::Auto, hide = true)]
    pub debug_attach: AttachArg,

    /// For tests: load only the eBPF program variants made for older
    /// kernels (no bpf_loop, exit without group_dead, pre-exec with probe
    /// reads), to compare their events with the default ones on this kernel.
    #[arg(long, hide = true)]
    pub debug_ebpf_legacy: bool,

    /// Instead of watching: write the man page or shell completions.
    #[command(subcommand)]
    pub command: Option<super::generate::Command>,
}

/// Which kernel attach point the eBPF source uses (a test hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttachArg {
    /// tp_btf, falling back to the classic tracepoint.
    Auto,
    /// Only the classic tracepoint.
    Tracepoint,
}

/// When the text format uses colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// Only on a terminal (standard output, no -o) and when NO_COLOR is unset.
    Auto,
    /// Always, even into a file or pipe.
    Always,
    /// Never.
    Never,
}

/// A `--csv-columns` item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CsvColumnArg {
    /// The parent's executable.
    #[value(name = "parent_exe")]
    ParentExe,
    /// The parent's command line.
    #[value(name = "parent_cmdline")]
    ParentCmdline,
    /// How the process gained privilege over its parent.
    #[value(name = "privilege_change")]
    PrivilegeChange,
    /// Files a non-root user could modify, and who.
    #[value(name = "hijackable")]
    Hijackable,
    /// sha256 of the executable.
    #[value(name = "sha256")]
    Sha256,
    /// The exec's unique id (joins with JSONL and exit events).
    #[value(name = "exec_id")]
    ExecId,
    /// `true` when argv was cut at the capture limit.
    #[value(name = "argv_truncated")]
    ArgvTruncated,
    /// argv's full size in bytes.
    #[value(name = "argv_size")]
    ArgvSize,
    /// `runtime:id` of the container, empty on the host.
    #[value(name = "container")]
    Container,
    /// The pid inside the process's own pid namespace.
    #[value(name = "ns_pid")]
    NsPid,
    /// The cgroup v2 path.
    #[value(name = "cgroup")]
    Cgroup,
    /// `host`, or the user namespace's level and owner uid.
    #[value(name = "userns")]
    Userns,
    /// The Sigma rules the exec matched, `level:id` joined with `|`.
    #[value(name = "detections")]
    Detections,
    /// Every column above, in this order.
    #[value(name = "all")]
    All,
}

/// `--source auto`, as this platform does it.
#[cfg(not(windows))]
const AUTO_HELP: &str = "The best source available: eBPF, else netlink, else procfs.";
#[cfg(windows)]
const AUTO_HELP: &str = "The best source that starts: ETW (admin), else WMI trace events \
(admin), else WMI polling, else the process-list snapshot.";

#[cfg(windows)]
const LONG_ABOUT: &str = "\
procwatch reports every new process on this machine: its command line, image \
path, parent, the user it runs as, and its token: every privilege with its \
state, the integrity level, the elevation type and the session.

Sources, best first (--source auto tries them in this order and says on \
stderr which one it uses and why the better ones did not start):
  etw       the kernel logger's process events (admin): every start, with \
its command line; events ETW drops are reported as `loss`.
  wmi       Win32_ProcessStartTrace events (admin), else \
__InstanceCreationEvent polling every --interval (default 1 s).
  snapshot  the process list every --interval (default 0.1 s), each new \
process read at once from the process itself; no admin needed.
Polling sources miss processes shorter than their interval, and say so in \
the `start` record.

A field that could not be read (the process exited, access was denied) is \
null and named in the event's `incomplete` list with the reason. The first \
record (`start`) is written once the source is running; the last (`stop`), \
on Ctrl-C, Ctrl-Break or console close, carries the final counters.";

#[cfg(windows)]
const AFTER_HELP: &str = "\
Exit status:
  0  clean end: Ctrl-C, Ctrl-Break, console close, --duration elapsed, or broken pipe
  1  runtime error
  2  usage error
  3  cannot attach the event source: none of etw, wmi and snapshot started (each one's
     HRESULT or error is printed)";
