//! The run's configuration as plain values: what the command line asked
//! for, with no clap type, so tests and benches build it directly.

use std::path::PathBuf;
use std::time::Duration;

use crate::enrich::hash_pool::HashOptions;
use crate::filter::Filter;
use crate::sink::syslog::SyslogOptions;
use crate::sink::{Format, SinkOptions};
use crate::source::{self, Choice};

/// Everything `pipeline::run` needs, as plain values: the command line's
/// flags after parsing and validation (`cli::Cli::config`), or
/// [`Config::default`] with fields set in code (tests, benches).
#[derive(Debug, Clone)]
pub struct Config {
    pub source: Choice,
    pub ebpf: source::ebpf::Options,
    /// Settings of the netlink and /proc sources.
    pub late: source::LateOptions,
    /// Windows sources' settings (`--interval`).
    pub windows: source::windows::Options,
    pub format: Format,
    pub output: Option<PathBuf>,
    /// `--force-output`: accept an output file (or its directory) owned by
    /// another user or open to group and others.
    pub force_output: bool,
    /// `--exit-on-write-error`: end the run at the first failed write.
    pub exit_on_write_error: bool,
    pub duration: Option<Duration>,
    pub poll: Duration,
    pub queue_len: usize,
    /// The same queue's bound in bytes (see [`crate::pipeline::Batch::weight`]).
    pub queue_bytes: usize,
    /// Test hook: the reader waits this long before its first drain.
    pub pause_reader: Duration,
    /// Emit exit events.
    pub exits: bool,
    /// Which execs are shown (all are counted).
    pub filter: Filter,
    pub sink_options: SinkOptions,
    /// How to hash executed files; `None`: no hashing.
    pub hash: Option<HashOptions>,
    /// Run the hijackable check.
    pub hijack_check: bool,
    /// `--syslog` destinations and their settings.
    pub syslog: SyslogOptions,
    /// `--rules`: Sigma rule files and directories; none: no detection.
    pub rules: Vec<PathBuf>,
    /// `--rules-strict`: a malformed rule file stops the start.
    pub rules_strict: bool,
}

/// The command line's defaults (`procwatch` with no flag, writing to a
/// file or pipe): the cli tests check that both agree.
impl Default for Config {
    fn default() -> Self {
        Config {
            source: Choice::Auto,
            ebpf: source::ebpf::Options {
                ring_size: 16 << 20,
                wakeup_bytes: 256 << 10,
                attach: source::ebpf::Attach::Auto,
                legacy: false,
            },
            late: source::LateOptions::default(),
            windows: source::windows::Options::default(),
            format: Format::Text,
            output: None,
            force_output: false,
            exit_on_write_error: false,
            duration: None,
            poll: Duration::from_millis(100),
            queue_len: 65_536,
            queue_bytes: 64 << 20,
            pause_reader: Duration::ZERO,
            exits: false,
            filter: Filter::default(),
            sink_options: SinkOptions::default(),
            hash: Some(HashOptions {
                max_size: 64 << 20,
                rate: 32 << 20,
                timeout: Duration::from_secs(5),
            }),
            hijack_check: true,
            syslog: SyslogOptions::default(),
            rules: Vec::new(),
            rules_strict: false,
        }
    }
}
