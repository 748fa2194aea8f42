//! The command-line contract, in two steps as in ripgrep: flags (args.rs,
//! with the value parsers of parsers.rs) become plain values
//! ([`crate::config::Config`], convert.rs), from which the pipeline builds
//! its matchers and sinks.
//!
//! Everything a user can pass is declared, validated and typed here, so
//! the rest of the program never sees a raw string or a clap type. Usage
//! errors exit with status 2 (clap's default), which is part of the
//! documented exit-code contract below.

mod args;
mod convert;
pub mod generate;
mod parsers;
#[cfg(test)]
mod tests;

use clap::{CommandFactory, Parser, ValueEnum};

pub use args::{AttachArg, Cli, ColorArg, CsvColumnArg, FormatArg, SourceArg, SyslogFormatArg};
pub use convert::{DEFAULT_INTERVAL, DEFAULT_PROCFS_INTERVAL, color_enabled};
pub use parsers::{page_size, parse_ring_size, parse_size};

/// Exit status: clean end (signal, `--duration` elapsed, broken pipe).
pub const EXIT_OK: i32 = 0;
/// Exit status: an error while running.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit status: bad command line (clap uses this for its own errors too).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the event source could not be attached (not root, no BTF, ...).
pub const EXIT_ATTACH: i32 = 3;

impl Cli {
    /// Checks combinations clap cannot express; the message is for the user.
    pub fn validate(&self) -> Result<(), String> {
        if !self.csv_columns.is_empty() && self.format != FormatArg::Csv {
            return Err("--csv-columns needs --format csv".into());
        }
        if !self.fields.is_empty() && self.format != FormatArg::Jsonl {
            return Err("--fields needs --format jsonl".into());
        }
        Ok(())
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

#[cfg(test)]
mod windows_tests {
    use std::time::Duration;

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
}
