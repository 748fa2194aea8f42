//! The command-line contract.
//!
//! Everything a user can pass is declared here, validated here, and turned
//! into typed values, so the rest of the program never sees a raw string.
//! Usage errors exit with status 2 (clap's default), which is part of the
//! documented exit-code contract below.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};

use crate::sink::{CsvColumn, SinkOptions};

/// Exit status: clean end (signal, `--duration` elapsed, broken pipe).
pub const EXIT_OK: i32 = 0;
/// Exit status: an error while running.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit status: bad command line (clap uses this for its own errors too).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the event source could not be attached (not root, no BTF, ...).
pub const EXIT_ATTACH: i32 = 3;

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
    /// exec whose path is unknown does not match.
    #[arg(long, value_name = "GLOB", help_heading = "Filters", value_parser = parse_glob)]
    pub exe: Vec<String>,

    /// Hide execs whose executable path matches GLOB (same syntax as
    /// --exe). Repeatable. An unknown or truncated path is never hidden.
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
}

/// Which kernel attach point the eBPF source uses (a test hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AttachArg {
    /// tp_btf, falling back to the classic tracepoint.
    Auto,
    /// Only the classic tracepoint.
    Tracepoint,
}

impl From<AttachArg> for crate::source::ebpf::Attach {
    fn from(a: AttachArg) -> Self {
        match a {
            AttachArg::Auto => Self::Auto,
            AttachArg::Tracepoint => Self::Tracepoint,
        }
    }
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
    /// Every column above, in this order.
    #[value(name = "all")]
    All,
}

impl From<FormatArg> for crate::sink::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Self::Text,
            FormatArg::Csv => Self::Csv,
            FormatArg::Jsonl => Self::Jsonl,
        }
    }
}

impl From<SourceArg> for crate::source::Choice {
    fn from(s: SourceArg) -> Self {
        match s {
            SourceArg::Auto => Self::Auto,
            SourceArg::Ebpf => Self::Ebpf,
            SourceArg::Netlink => Self::Netlink,
            SourceArg::Procfs => Self::Procfs,
            SourceArg::Wmi => Self::Wmi,
            SourceArg::Etw => Self::Etw,
            SourceArg::Snapshot => Self::Snapshot,
        }
    }
}

impl Cli {
    /// `--duration` as a [`Duration`]; the parser guarantees it converts.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}

impl Cli {
    /// The extra CSV columns, in the order given, each once; `all` adds
    /// those not already named, in their documented order.
    pub fn csv_columns(&self) -> Vec<CsvColumn> {
        let mut cols: Vec<CsvColumn> = Vec::new();
        for arg in &self.csv_columns {
            let add: &[CsvColumn] = match arg {
                CsvColumnArg::ParentExe => &[CsvColumn::ParentExe],
                CsvColumnArg::ParentCmdline => &[CsvColumn::ParentCmdline],
                CsvColumnArg::PrivilegeChange => &[CsvColumn::PrivilegeChange],
                CsvColumnArg::Hijackable => &[CsvColumn::Hijackable],
                CsvColumnArg::Sha256 => &[CsvColumn::Sha256],
                CsvColumnArg::ExecId => &[CsvColumn::ExecId],
                CsvColumnArg::ArgvTruncated => &[CsvColumn::ArgvTruncated],
                CsvColumnArg::ArgvSize => &[CsvColumn::ArgvSize],
                CsvColumnArg::All => &CsvColumn::ALL,
            };
            for c in add {
                if !cols.contains(c) {
                    cols.push(*c);
                }
            }
        }
        cols
    }

    /// Whether the text format is coloured, for this process's stdout and
    /// environment (see [`color_enabled`]).
    pub fn color(&self) -> bool {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
        color_enabled(
            self.color,
            self.output.is_some(),
            tty,
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }

    /// The sink options this command line asks for.
    pub fn sink_options(&self) -> SinkOptions {
        SinkOptions {
            color: self.format == FormatArg::Text && self.color(),
            csv_columns: self.csv_columns(),
        }
    }

    /// Checks combinations clap cannot express; the message is for the user.
    pub fn validate(&self) -> Result<(), String> {
        if !self.csv_columns.is_empty() && self.format != FormatArg::Csv {
            return Err("--csv-columns needs --format csv".into());
        }
        Ok(())
    }
}

/// The `--color` decision. `auto` colours only standard output, only when
/// it is a terminal, and only when `NO_COLOR` is unset or empty (as
/// no-color.org specifies); a file given with -o is never coloured unless
/// asked with `always`, since escapes in a log file hinder grep and diff.
pub fn color_enabled(
    choice: ColorArg,
    to_file: bool,
    stdout_is_tty: bool,
    no_color: Option<&std::ffi::OsStr>,
) -> bool {
    match choice {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => !to_file && stdout_is_tty && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Parses the command line of this process; on a usage error clap prints
/// it and exits with status 2 ([`EXIT_USAGE`]).
pub fn parse() -> Cli {
    let cli = Cli::parse();
    if let Err(msg) = check_platform(&cli, cfg!(windows)).and_then(|()| cli.validate()) {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    cli
}

impl Cli {
    /// Turns the validated command line into the pipeline's configuration;
    /// fails on what only resolves at run time (an unknown `--user`).
    pub fn config(&self) -> Result<crate::pipeline::Config, String> {
        Ok(crate::pipeline::Config {
            source: self.source.into(),
            ebpf: crate::source::ebpf::Options {
                ring_size: self.ring_size,
                wakeup_bytes: self.wakeup_bytes,
                attach: self.debug_attach.into(),
                legacy: self.debug_ebpf_legacy,
            },
            late: crate::source::LateOptions {
                realtime: self.realtime,
                interval: self.procfs_interval(),
                watch: self.watch.clone(),
                disable_ebpf: self.debug_disable_ebpf,
                pause: std::time::Duration::from_millis(self.debug_pause_reader_ms),
            },
            windows: crate::source::windows::Options {
                interval: self
                    .interval
                    .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            },
            format: self.format.into(),
            output: self.output.clone(),
            force_output: self.force_output,
            exit_on_write_error: self.exit_on_write_error,
            duration: self.duration(),
            poll: std::time::Duration::from_millis(self.poll_ms),
            queue_len: self.queue_len,
            queue_bytes: usize::try_from(self.queue_bytes).unwrap_or(usize::MAX),
            pause_reader: std::time::Duration::from_millis(self.debug_pause_reader_ms),
            exits: self.exits,
            filter: crate::filter::Filter::from_cli(self)?,
            sink_options: self.sink_options(),
            hash: (!self.no_hash).then_some(crate::enrich::hash_pool::HashOptions {
                max_size: self.hash_max_size,
                rate: self.hash_rate,
                timeout: Duration::from_secs_f64(self.hash_timeout),
            }),
            hijack_check: !self.no_hijack_check,
        })
    }
}

// ---- Windows options (issue 5) ----------------------------------------------

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

/// Default `--interval` for WMI polling: the seed's `WITHIN 1`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

impl Cli {
    /// `--interval` as a [`Duration`], or [`DEFAULT_INTERVAL`].
    pub fn interval(&self) -> Duration {
        self.interval
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(DEFAULT_INTERVAL)
    }

    /// `--interval` for the Linux /proc scanner, or
    /// [`DEFAULT_PROCFS_INTERVAL`].
    pub fn procfs_interval(&self) -> Duration {
        self.interval
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(DEFAULT_PROCFS_INTERVAL)
    }
}

/// Default `--interval` of the Linux /proc scanner.
pub const DEFAULT_PROCFS_INTERVAL: Duration = Duration::from_millis(100);

/// Rejects sources and options that do not exist on this OS, so that a
/// Windows command line on Linux (or the reverse) is a clear usage error
/// rather than an attach failure. `windows` is the target OS, passed in so
/// both cases are tested on Linux.
pub fn check_platform(cli: &Cli, windows: bool) -> Result<(), String> {
    let os = if windows { "Windows" } else { "Linux" };
    match (cli.source, windows) {
        (SourceArg::Wmi | SourceArg::Etw | SourceArg::Snapshot, false) => {
            return Err(format!(
                "--source {} is only available on Windows; on Linux use --source auto or ebpf",
                match cli.source {
                    SourceArg::Wmi => "wmi",
                    SourceArg::Etw => "etw",
                    _ => "snapshot",
                }
            ));
        }
        (SourceArg::Ebpf | SourceArg::Netlink | SourceArg::Procfs, true) => {
            return Err("--source ebpf, netlink and procfs are Linux-only; \
                 on Windows use auto, etw, wmi or snapshot"
                .into());
        }
        _ => {}
    }
    let wmi_polling = windows
        && matches!(
            cli.source,
            SourceArg::Wmi | SourceArg::Auto | SourceArg::Snapshot
        );
    // On Linux, auto may fall back to the /proc scanner.
    let procfs = !windows && matches!(cli.source, SourceArg::Procfs | SourceArg::Auto);
    if cli.interval.is_some() && !wmi_polling && !procfs {
        let name = cli
            .source
            .to_possible_value()
            .map(|v| v.get_name().to_owned());
        return Err(format!(
            "--interval only applies to polling sources (WMI and snapshot on Windows, \
             procfs on Linux, or auto); not with --source {} on {os}",
            name.unwrap_or_default()
        ));
    }
    Ok(())
}

/// Parses `--interval`: positive seconds, at least 1 ms (WQL's resolution
/// here) and at most a day.
fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid interval {s:?}: expected seconds, e.g. 1 or 0.5"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!(
            "interval must be between 0.001 and 86400 seconds, got {s:?}"
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod windows_tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("procwatch").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn windows_sources_are_rejected_on_linux() {
        let e = check_platform(&parse(&["--source", "wmi"]), false).unwrap_err();
        assert!(e.contains("only available on Windows"), "{e}");
        let e = check_platform(&parse(&["--source", "etw"]), false).unwrap_err();
        assert!(e.contains("--source etw"), "{e}");
        assert!(check_platform(&parse(&[]), false).is_ok());
        assert!(check_platform(&parse(&["--source", "ebpf"]), false).is_ok());
    }

    #[test]
    fn snapshot_is_windows_only_and_takes_an_interval() {
        let e = check_platform(&parse(&["--source", "snapshot"]), false).unwrap_err();
        assert!(
            e.contains("--source snapshot is only available on Windows"),
            "{e}"
        );
        let cli = parse(&["--source", "snapshot", "--interval", "0.05"]);
        assert!(check_platform(&cli, true).is_ok());
        let cfg = cli.config().unwrap();
        assert_eq!(cfg.source, crate::source::Choice::Snapshot);
        assert_eq!(cfg.windows.interval, Some(Duration::from_millis(50)));
        // No --interval: each Windows source keeps its own default.
        assert_eq!(parse(&[]).config().unwrap().windows.interval, None);
    }

    #[test]
    fn help_lists_this_platforms_sources() {
        let help = Cli::command().render_long_help().to_string();
        let (mine, theirs): (&[&str], &[&str]) = if cfg!(windows) {
            (&["snapshot", "etw", "wmi"], &["ebpf", "netlink", "procfs"])
        } else {
            (&["ebpf", "netlink", "procfs"], &["snapshot", "etw", "wmi"])
        };
        let sources = help
            .split("--source <SOURCE>")
            .nth(1)
            .and_then(|s| s.split("--interval <SECONDS>").next())
            .unwrap();
        for s in mine {
            assert!(sources.contains(&format!("{s}:")), "{s} missing: {sources}");
        }
        for s in theirs {
            assert!(!sources.contains(&format!("{s}:")), "{s} listed: {sources}");
        }
    }

    #[test]
    fn ebpf_is_rejected_on_windows() {
        let e = check_platform(&parse(&["--source", "ebpf"]), true).unwrap_err();
        assert!(e.contains("Linux-only"), "{e}");
        for ok in [&["--source", "wmi"][..], &["--source", "etw"], &[]] {
            assert!(check_platform(&parse(ok), true).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn interval_only_with_wmi_polling_on_windows() {
        let cli = parse(&["--source", "wmi", "--interval", "0.5"]);
        assert!(check_platform(&cli, true).is_ok());
        assert_eq!(cli.interval(), Duration::from_millis(500));
        assert!(check_platform(&parse(&["--interval", "2"]), true).is_ok());
        let e = check_platform(&parse(&["--source", "etw", "--interval", "2"]), true).unwrap_err();
        assert!(e.contains("only applies to polling sources"), "{e}");
        let e =
            check_platform(&parse(&["--source", "ebpf", "--interval", "2"]), false).unwrap_err();
        assert!(e.contains("on Linux"), "{e}");
        assert!(check_platform(&parse(&["--interval", "2"]), false).is_ok());
        let cli = parse(&["--source", "procfs", "--interval", "0.02"]);
        assert!(check_platform(&cli, false).is_ok());
        assert_eq!(cli.procfs_interval(), Duration::from_millis(20));
        assert_eq!(parse(&[]).procfs_interval(), DEFAULT_PROCFS_INTERVAL);
        assert_eq!(parse(&[]).interval(), DEFAULT_INTERVAL);
    }

    #[test]
    fn interval_validation() {
        assert_eq!(parse_interval("1"), Ok(1.0));
        assert_eq!(parse_interval("0.001"), Ok(0.001));
        for bad in ["0", "-1", "0.0001", "nan", "inf", "x", "", "86401"] {
            assert!(parse_interval(bad).is_err(), "{bad:?}");
        }
    }
}
// ---- end Windows options -----------------------------------------------------

/// Parses a byte count: a decimal integer with an optional binary suffix
/// `K`, `M` or `G` (case-insensitive, optionally followed by `B` or `iB`),
/// e.g. `4096`, `64K`, `16M`, `1GiB`. Fractions are rejected because ring
/// sizes must be exact.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!(
            "invalid size {s:?}: expected a number like 4096, 64K, 16M or 1G"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown suffix {suffix:?} (use K, M or G)"
            ));
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: number too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: number too large"))
}

/// The system page size, which the kernel requires ring sizes to be a
/// multiple of (4096 on x86-64; 16K/64K on some arm64 kernels).
#[cfg(unix)]
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// No sysconf on Windows, where `--ring-size` (eBPF) does not apply.
#[cfg(not(unix))]
pub fn page_size() -> u64 {
    4096
}

/// Parses `--ring-size`: a size that is a power of two, a multiple of the
/// page size, and fits the kernel's 32-bit map size. Checked here so a bad
/// value is a usage error, not an obscure EINVAL at attach time.
pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    if !n.is_power_of_two() {
        return Err(format!("ring size {n} is not a power of two (try 16M)"));
    }
    let page = page_size();
    if n % page != 0 {
        return Err(format!(
            "ring size {n} is not a multiple of the page size ({page})"
        ));
    }
    u32::try_from(n).map_err(|_| format!("ring size {n} is too large (at most 2G)"))
}

/// Parses `--duration`: positive, finite seconds that fit a [`Duration`].
fn parse_duration(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected seconds, e.g. 10 or 0.5"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration must be greater than 0, got {s:?}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is too large"))?;
    Ok(secs)
}

/// Checks a `--exe`/`--exclude-exe` glob, so a malformed one is a usage
/// error (status 2) rather than a failure after start; the filter compiles
/// it again from the kept string.
fn parse_glob(s: &str) -> Result<String, String> {
    crate::filter::Glob::new(s)?;
    Ok(s.to_owned())
}

/// Parses `--queue-len`: at least 1, since a zero-capacity queue would drop
/// everything (or turn into a rendezvous that stalls the reader).
fn parse_queue_len(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid queue length {s:?}"))?;
    if n == 0 {
        return Err("queue length must be at least 1".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("procwatch").chain(args.iter().copied()))
    }

    fn err_kind(args: &[&str]) -> ErrorKind {
        parse(args).unwrap_err().kind()
    }

    fn err_text(args: &[&str]) -> String {
        parse(args).unwrap_err().to_string()
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.format, FormatArg::Text);
        assert_eq!(cli.output, None);
        assert_eq!(cli.duration, None);
        assert_eq!(cli.duration(), None);
        assert_eq!(cli.source, SourceArg::Auto);
        assert_eq!(cli.ring_size, 16 * 1024 * 1024);
        assert_eq!(cli.wakeup_bytes, 256 * 1024);
        assert_eq!(cli.poll_ms, 100);
        assert_eq!(cli.queue_len, 65536);
        assert_eq!(cli.debug_pause_reader_ms, 0);
    }

    #[test]
    fn all_options() {
        let cli = parse(&[
            "--format",
            "jsonl",
            "-o",
            "/tmp/out.jsonl",
            "--duration",
            "2.5",
            "--source",
            "ebpf",
            "--ring-size",
            "64K",
            "--wakeup-bytes",
            "4K",
            "--poll-ms",
            "5",
            "--queue-len",
            "10",
            "--debug-pause-reader-ms",
            "300",
        ])
        .unwrap();
        assert_eq!(cli.format, FormatArg::Jsonl);
        assert_eq!(cli.output, Some(PathBuf::from("/tmp/out.jsonl")));
        assert_eq!(cli.duration, Some(2.5));
        assert_eq!(cli.duration(), Some(Duration::from_millis(2500)));
        assert_eq!(cli.source, SourceArg::Ebpf);
        assert_eq!(cli.ring_size, 65536);
        assert_eq!(cli.wakeup_bytes, 4096);
        assert_eq!(cli.poll_ms, 5);
        assert_eq!(cli.queue_len, 10);
        assert_eq!(cli.debug_pause_reader_ms, 300);
    }

    #[test]
    fn long_output_and_formats() {
        let cli = parse(&["--output", "x.csv", "--format", "csv"]).unwrap();
        assert_eq!(cli.output, Some(PathBuf::from("x.csv")));
        assert_eq!(cli.format, FormatArg::Csv);
        assert_eq!(parse(&["--format=text"]).unwrap().format, FormatArg::Text);
        assert_eq!(err_kind(&["--format", "xml"]), ErrorKind::InvalidValue);
        assert_eq!(err_kind(&["--source", "bpf"]), ErrorKind::InvalidValue);
        assert_eq!(
            parse(&["--source", "netlink", "--realtime"])
                .unwrap()
                .source,
            SourceArg::Netlink
        );
        let p = parse(&["--source=procfs", "--watch", "/a", "--watch", "/b"]).unwrap();
        assert_eq!(p.source, SourceArg::Procfs);
        assert_eq!(p.watch, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[test]
    fn size_parser_accepts() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("16mb"), Ok(16 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
    }

    #[test]
    fn size_parser_rejects() {
        for bad in [
            "", "K", "-1", "+4K", "1.5M", "16 M", "16T", "16MM", "0x1000", "abc", "1e6",
            "٣K", // non-ASCII digit
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("18446744073709551616").is_err());
        assert!(parse_size("17179869184G").is_err());
        assert!(parse_size("17179869183G").is_ok());
    }

    #[test]
    fn ring_size_validation() {
        let page = page_size();
        assert_eq!(parse_ring_size("16M"), Ok(16 << 20));
        assert_eq!(parse_ring_size("1G"), Ok(1 << 30));
        assert_eq!(parse_ring_size("2G"), Ok(1 << 31));
        assert_eq!(parse_ring_size(&page.to_string()), Ok(page as u32));

        let e = parse_ring_size("3M").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("100000").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("2048").unwrap_err();
        assert!(e.contains("page size"), "{e}");
        let e = parse_ring_size("0").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("4G").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(parse_ring_size("lots").is_err());
    }

    #[test]
    fn ring_size_on_command_line() {
        let page = page_size().to_string();
        assert_eq!(
            parse(&["--ring-size", &page])
                .unwrap()
                .ring_size
                .to_string(),
            page
        );
        assert_eq!(parse(&["--ring-size=1M"]).unwrap().ring_size, 1 << 20);
        assert_eq!(
            err_kind(&["--ring-size", "5000"]),
            ErrorKind::ValueValidation
        );
        let msg = err_text(&["--ring-size", "12K"]);
        assert!(msg.contains("power of two"), "{msg}");
        let msg = err_text(&["--ring-size", "1K"]);
        assert!(msg.contains("page size"), "{msg}");
    }

    #[test]
    fn wakeup_bytes() {
        assert_eq!(parse(&["--wakeup-bytes", "0"]).unwrap().wakeup_bytes, 0);
        assert_eq!(
            parse(&["--wakeup-bytes", "1M"]).unwrap().wakeup_bytes,
            1 << 20
        );
        // Need not be a power of two.
        assert_eq!(
            parse(&["--wakeup-bytes", "1000"]).unwrap().wakeup_bytes,
            1000
        );
        assert_eq!(
            err_kind(&["--wakeup-bytes", "1.5K"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn tiny_ring_with_default_wakeup_is_accepted() {
        // Tests overflow a one-page ring; the default wakeup threshold then
        // exceeds the ring and the reader relies on polling, which is fine.
        let page = page_size().to_string();
        let cli = parse(&["--ring-size", &page, "--debug-pause-reader-ms", "500"]).unwrap();
        assert_eq!(u64::from(cli.ring_size), page_size());
        assert_eq!(cli.wakeup_bytes, 256 * 1024);
    }

    #[test]
    fn duration_validation() {
        assert_eq!(parse(&["--duration", "10"]).unwrap().duration, Some(10.0));
        assert_eq!(
            parse(&["--duration", "0.001"]).unwrap().duration(),
            Some(Duration::from_millis(1))
        );
        for bad in ["0", "-1", "0.0", "-0", "nan", "inf", "abc", "", "1e300"] {
            assert_eq!(
                err_kind(&["--duration", bad]),
                ErrorKind::ValueValidation,
                "{bad:?}"
            );
        }
        let msg = err_text(&["--duration", "0"]);
        assert!(msg.contains("greater than 0"), "{msg}");
    }

    #[test]
    fn poll_and_queue_validation() {
        assert_eq!(err_kind(&["--poll-ms", "0"]), ErrorKind::ValueValidation);
        assert_eq!(err_kind(&["--poll-ms", "-5"]), ErrorKind::UnknownArgument);
        assert_eq!(err_kind(&["--poll-ms", "x"]), ErrorKind::ValueValidation);
        assert_eq!(parse(&["--poll-ms", "1"]).unwrap().poll_ms, 1);
        assert_eq!(err_kind(&["--queue-len", "0"]), ErrorKind::ValueValidation);
        assert_eq!(
            err_kind(&["--queue-len", "many"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(parse(&["--queue-len", "1"]).unwrap().queue_len, 1);
    }

    #[test]
    fn usage_errors_exit_2() {
        let e = parse(&["--no-such-flag"]).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        let e = parse(&["--ring-size", "3M"]).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
        let e = parse(&["--duration", "-1"]).unwrap_err();
        assert_eq!(e.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn help_mentions_contract_and_hides_debug_flag() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status"), "{help}");
        assert!(help.contains("cannot attach"), "{help}");
        // Windows has no root; its help names the sources instead.
        assert!(
            help.contains(if cfg!(windows) { "snapshot" } else { "root" }),
            "{help}"
        );
        assert!(help.contains("--poll-ms"), "{help}");
        assert!(!help.contains("debug-pause"), "{help}");
        let e = parse(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), EXIT_OK);
    }

    #[test]
    fn new_flag_defaults() {
        let cli = parse(&[]).unwrap();
        assert!(cli.uid.is_empty() && cli.user.is_empty());
        assert!(cli.exe.is_empty() && cli.exclude_exe.is_empty());
        assert!(!cli.privileged && !cli.raised && !cli.hijackable);
        assert_eq!(cli.color, ColorArg::Auto);
        assert!(!cli.exits);
        assert!(!cli.no_hash);
        assert_eq!(cli.hash_max_size, 64 << 20);
        assert!(cli.csv_columns().is_empty());
        assert_eq!(cli.validate(), Ok(()));
    }

    #[test]
    fn filter_flags_repeat() {
        let cli = parse(&[
            "--uid",
            "0",
            "--uid=1000",
            "--user",
            "alice",
            "--user",
            "bob",
            "--exe",
            "/usr/*",
            "--exe",
            "bash",
            "--exclude-exe",
            "/usr/lib/*",
            "--privileged",
            "--raised",
            "--hijackable",
        ])
        .unwrap();
        assert_eq!(cli.uid, vec![0, 1000]);
        assert_eq!(cli.user, vec!["alice", "bob"]);
        assert_eq!(cli.exe, vec!["/usr/*", "bash"]);
        assert_eq!(cli.exclude_exe, vec!["/usr/lib/*"]);
        assert!(cli.privileged && cli.raised && cli.hijackable);
        assert_eq!(err_kind(&["--uid", "root"]), ErrorKind::ValueValidation);
        assert_eq!(err_kind(&["--uid", "-1"]), ErrorKind::UnknownArgument);
        assert_eq!(
            err_kind(&["--uid", "4294967296"]),
            ErrorKind::ValueValidation
        );
        assert_eq!(err_kind(&["--privileged=yes"]), ErrorKind::TooManyValues);
    }

    #[test]
    fn bad_globs_are_usage_errors() {
        assert_eq!(err_kind(&["--exe", "/tmp/[x"]), ErrorKind::ValueValidation);
        assert_eq!(
            err_kind(&["--exclude-exe", "x\\"]),
            ErrorKind::ValueValidation
        );
        let msg = err_text(&["--exe", "[a"]);
        assert!(msg.contains("unterminated ["), "{msg}");
        assert_eq!(parse(&["--exe", "\\["]).unwrap().exe, vec!["\\["]);
    }

    #[test]
    fn color_exits_and_hash_flags() {
        for (v, want) in [
            ("auto", ColorArg::Auto),
            ("always", ColorArg::Always),
            ("never", ColorArg::Never),
        ] {
            assert_eq!(parse(&["--color", v]).unwrap().color, want);
        }
        assert_eq!(err_kind(&["--color", "yes"]), ErrorKind::InvalidValue);
        let cli = parse(&["--exits", "--no-hash", "--hash-max-size", "1G"]).unwrap();
        assert!(cli.exits && cli.no_hash);
        assert_eq!(cli.hash_max_size, 1 << 30);
        assert_eq!(parse(&["--hash-max-size", "0"]).unwrap().hash_max_size, 0);
        assert_eq!(
            err_kind(&["--hash-max-size", "1.5M"]),
            ErrorKind::ValueValidation
        );
        // The hasher's budgets and the queue's byte bound.
        let cfg = parse(&[]).unwrap().config().unwrap();
        let hash = cfg.hash.unwrap();
        assert_eq!(
            (hash.rate, hash.timeout),
            (32 << 20, Duration::from_secs(5))
        );
        assert_eq!(cfg.queue_bytes, 64 << 20);
        let args = [
            "--hash-rate",
            "1M",
            "--hash-timeout",
            "0.5",
            "--queue-bytes",
            "8M",
        ];
        let cfg = parse(&args).unwrap().config().unwrap();
        let hash = cfg.hash.unwrap();
        assert_eq!(
            (hash.rate, hash.timeout),
            (1 << 20, Duration::from_millis(500))
        );
        assert_eq!(cfg.queue_bytes, 8 << 20);
        assert_eq!(
            err_kind(&["--hash-timeout", "0"]),
            ErrorKind::ValueValidation
        );
    }

    #[test]
    fn color_decision() {
        use std::ffi::OsStr;
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        // (choice, to_file, tty, NO_COLOR) -> colour
        for (choice, file, tty, env, want) in [
            (ColorArg::Auto, false, true, None, true),
            (ColorArg::Auto, false, true, empty, true),
            (ColorArg::Auto, false, true, set, false),
            (ColorArg::Auto, false, false, None, false),
            (ColorArg::Auto, true, true, None, false),
            (ColorArg::Always, true, false, set, true),
            (ColorArg::Never, false, true, None, false),
        ] {
            assert_eq!(
                color_enabled(choice, file, tty, env),
                want,
                "{choice:?} file={file} tty={tty} env={env:?}"
            );
        }
        // Colour is for the text format only; -o never colours on auto.
        let cli = parse(&["--color", "always", "--format", "jsonl"]).unwrap();
        assert!(!cli.sink_options().color);
        assert!(parse(&["--color", "always"]).unwrap().sink_options().color);
        assert!(!parse(&["-o", "/dev/null"]).unwrap().color());
        assert!(!parse(&["--color", "never"]).unwrap().color());
    }

    #[test]
    fn csv_columns_flag() {
        let cols = |args: &[&str]| parse(args).unwrap().csv_columns();
        assert_eq!(
            cols(&["--format", "csv", "--csv-columns", "sha256,parent_exe"]),
            vec![CsvColumn::Sha256, CsvColumn::ParentExe]
        );
        assert_eq!(cols(&["--csv-columns", "all"]), CsvColumn::ALL.to_vec());
        // Order given, duplicates dropped, `all` appends the rest.
        assert_eq!(
            cols(&[
                "--csv-columns",
                "exec_id,hijackable",
                "--csv-columns",
                "exec_id,all"
            ]),
            vec![
                CsvColumn::ExecId,
                CsvColumn::Hijackable,
                CsvColumn::ParentExe,
                CsvColumn::ParentCmdline,
                CsvColumn::PrivilegeChange,
                CsvColumn::Sha256,
                CsvColumn::ArgvTruncated,
                CsvColumn::ArgvSize,
            ]
        );
        assert_eq!(
            cols(&["--csv-columns=parent_cmdline,privilege_change"]),
            vec![CsvColumn::ParentCmdline, CsvColumn::PrivilegeChange]
        );
        assert_eq!(
            err_kind(&["--csv-columns", "sha256,nope"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            err_kind(&["--csv-columns", "parent-exe"]),
            ErrorKind::InvalidValue
        );
        let cli = parse(&["--format", "csv", "--csv-columns", "all"]).unwrap();
        assert_eq!(cli.validate(), Ok(()));
        assert_eq!(cli.sink_options().csv_columns, CsvColumn::ALL.to_vec());
        let e = parse(&["--csv-columns", "sha256"]).unwrap().validate();
        assert!(e.unwrap_err().contains("--format csv"));
    }

    #[test]
    fn help_lists_filters_and_columns() {
        let help = Cli::command().render_long_help().to_string();
        for s in [
            "Filters:",
            "--exclude-exe",
            "--hijackable",
            "NO_COLOR",
            "parent_cmdline",
            "--hash-max-size",
        ] {
            assert!(help.contains(s), "{s}: {help}");
        }
    }

    #[test]
    fn version_flag() {
        assert_eq!(err_kind(&["--version"]), ErrorKind::DisplayVersion);
    }

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_ATTACH];
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
