//! The command line's tests: parsing, validation and the conversion to
//! the pipeline's configuration.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;

use crate::sink::CsvColumn;

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
        "--container",
        "0123abcd",
        "--container=none",
        "--host-only",
    ])
    .unwrap();
    assert_eq!(cli.uid, vec![0, 1000]);
    assert_eq!(cli.user, vec!["alice", "bob"]);
    assert_eq!(cli.exe, vec!["/usr/*", "bash"]);
    assert_eq!(cli.exclude_exe, vec!["/usr/lib/*"]);
    assert!(cli.privileged && cli.raised && cli.hijackable);
    assert_eq!(
        cli.filter_spec(),
        crate::filter::FilterSpec {
            uids: vec![0, 1000],
            users: vec!["alice".into(), "bob".into()],
            exe: vec!["/usr/*".into(), "bash".into()],
            exclude_exe: vec!["/usr/lib/*".into()],
            privileged: true,
            raised: true,
            hijackable: true,
            containers: vec!["0123abcd".into(), "none".into()],
            host_only: true,
            alerts_only: false,
        }
    );
    assert_eq!(err_kind(&["--container", ""]), ErrorKind::ValueValidation);
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
            CsvColumn::Container,
            CsvColumn::NsPid,
            CsvColumn::Cgroup,
            CsvColumn::Userns,
            CsvColumn::Detections,
        ]
    );
    assert_eq!(
        cols(&["--csv-columns=container,ns_pid,cgroup,userns"]),
        vec![
            CsvColumn::Container,
            CsvColumn::NsPid,
            CsvColumn::Cgroup,
            CsvColumn::Userns
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

#[test]
fn config_default_is_the_command_line_without_flags() {
    // `--color never`: `auto` depends on whether the test's stdout is a
    // terminal; the default is the uncoloured output of a file or pipe.
    let cfg = parse(&["--color", "never"]).unwrap().config().unwrap();
    assert_eq!(
        format!("{cfg:?}"),
        format!("{:?}", crate::config::Config::default())
    );
    // And the comparison sees a difference.
    let other = parse(&["--color", "never", "--queue-len", "7"])
        .unwrap()
        .config()
        .unwrap();
    assert_ne!(
        format!("{other:?}"),
        format!("{:?}", crate::config::Config::default())
    );
}

#[test]
fn wide_text_layout_without_a_terminal_or_with_v() {
    // The test's stdout is not a terminal: always the wide layout.
    assert_eq!(parse(&[]).unwrap().sink_options().text_width, None);
    let cli = parse(&["-v"]).unwrap();
    assert!(cli.verbose);
    assert_eq!(cli.sink_options().text_width, None);
    assert!(parse(&["--verbose", "--format", "csv"]).unwrap().verbose);
}
