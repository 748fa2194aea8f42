//! The command line turned into plain values ([`crate::config::Config`]):
//! no clap type goes past this file.

use std::time::Duration;

use super::Cli;
use super::args::{AttachArg, ColorArg, CsvColumnArg, FormatArg, SourceArg, SyslogFormatArg};
use crate::filter::{Filter, FilterSpec};
use crate::sink::{CsvColumn, SinkOptions};

impl From<AttachArg> for crate::source::ebpf::Attach {
    fn from(a: AttachArg) -> Self {
        match a {
            AttachArg::Auto => Self::Auto,
            AttachArg::Tracepoint => Self::Tracepoint,
        }
    }
}

impl From<FormatArg> for crate::sink::Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Self::Text,
            FormatArg::Csv => Self::Csv,
            FormatArg::Jsonl => Self::Jsonl,
            FormatArg::Ecs => Self::Ecs,
        }
    }
}

impl From<SyslogFormatArg> for crate::sink::Format {
    fn from(f: SyslogFormatArg) -> Self {
        match f {
            SyslogFormatArg::Jsonl => Self::Jsonl,
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
                CsvColumnArg::Container => &[CsvColumn::Container],
                CsvColumnArg::NsPid => &[CsvColumn::NsPid],
                CsvColumnArg::Cgroup => &[CsvColumn::Cgroup],
                CsvColumnArg::Userns => &[CsvColumn::Userns],
                CsvColumnArg::Detections => &[CsvColumn::Detections],
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

    /// The filter flags as plain values.
    pub fn filter_spec(&self) -> FilterSpec {
        FilterSpec {
            uids: self.uid.clone(),
            users: self.user.clone(),
            exe: self.exe.clone(),
            exclude_exe: self.exclude_exe.clone(),
            privileged: self.privileged,
            raised: self.raised,
            hijackable: self.hijackable,
            containers: self.container.clone(),
            host_only: self.host_only,
            alerts_only: self.alerts_only,
        }
    }

    /// The sink options this command line asks for.
    pub fn sink_options(&self) -> SinkOptions {
        SinkOptions {
            color: self.format == FormatArg::Text && self.color(),
            csv_columns: self.csv_columns(),
            text_width: if self.format == FormatArg::Text && self.output.is_none() && !self.verbose
            {
                terminal_width()
            } else {
                None
            },
            jsonl_fields: crate::sink::jsonl::Fields::new(&self.fields),
        }
    }
}

/// The width of the terminal on standard output; `None` when it is not a
/// terminal (or does not say).
#[cfg(unix)]
fn terminal_width() -> Option<u16> {
    // SAFETY: all-zero is a valid winsize; TIOCGWINSZ fills it or fails.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &raw mut ws) };
    (rc == 0 && ws.ws_col > 0).then_some(ws.ws_col)
}

/// Windows consoles get the wide layout.
#[cfg(not(unix))]
fn terminal_width() -> Option<u16> {
    None
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

impl Cli {
    /// Turns the validated command line into the pipeline's configuration;
    /// fails on what only resolves at run time (an unknown `--user`).
    pub fn config(&self) -> Result<crate::config::Config, String> {
        Ok(crate::config::Config {
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
            filter: Filter::new(&self.filter_spec())?,
            sink_options: self.sink_options(),
            hash: (!self.no_hash).then_some(crate::enrich::hash_pool::HashOptions {
                max_size: self.hash_max_size,
                rate: self.hash_rate,
                timeout: Duration::from_secs_f64(self.hash_timeout),
            }),
            hijack_check: !self.no_hijack_check,
            rules: self.rules.clone(),
            rules_strict: self.rules_strict,
            syslog: self.syslog_options()?,
        })
    }

    /// The syslog flags as plain values; a `--syslog-ca` file that holds no
    /// certificate is refused here, before anything starts.
    pub fn syslog_options(&self) -> Result<crate::sink::syslog::SyslogOptions, String> {
        if let Some(ca) = &self.syslog_ca {
            crate::sink::syslog::read_ca_file(ca)?;
        }
        Ok(crate::sink::syslog::SyslogOptions {
            targets: self.syslog.clone(),
            format: self.syslog_format.into(),
            ca: self.syslog_ca.clone(),
            max_message: usize::try_from(self.syslog_max).unwrap_or(usize::MAX),
            buffer: usize::try_from(self.syslog_buffer).unwrap_or(usize::MAX),
        })
    }
}

/// Default `--interval` for WMI polling (WQL `WITHIN 1`): one query a
/// second keeps WMI's own cost low.
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
