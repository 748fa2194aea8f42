//! procwatch: reports every new process with its command line, user and
//! privileges. `main` only parses the command line, runs the pipeline and
//! maps the outcome to an exit code; see `pipeline/` for the rest.

use std::process::ExitCode;

use procwatch::cli::{self, Cli};
use procwatch::filter::Filter;
use procwatch::pipeline::{self, RunError};

fn main() -> ExitCode {
    let cli = cli::parse();
    let config = match config(&cli) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("procwatch: {msg}");
            return ExitCode::from(cli::EXIT_USAGE as u8);
        }
    };
    match pipeline::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(RunError::Attach(e)) => {
            eprintln!("procwatch: {e}");
            ExitCode::from(cli::EXIT_ATTACH as u8)
        }
        Err(RunError::Io(e)) => {
            eprintln!("procwatch: {e}");
            ExitCode::from(cli::EXIT_RUNTIME as u8)
        }
    }
}

/// Turns the validated command line into the pipeline's configuration;
/// fails on what only resolves at run time (an unknown `--user`).
fn config(cli: &Cli) -> Result<pipeline::Config, String> {
    Ok(pipeline::Config {
        source: cli.source.into(),
        ebpf: procwatch::source::ebpf::Options {
            ring_size: cli.ring_size,
            wakeup_bytes: cli.wakeup_bytes,
            attach: cli.debug_attach.into(),
        },
        late: procwatch::source::LateOptions {
            realtime: cli.realtime,
            interval: cli.procfs_interval(),
            watch: cli.watch.clone(),
            disable_ebpf: cli.debug_disable_ebpf,
            pause: std::time::Duration::from_millis(cli.debug_pause_reader_ms),
        },
        windows: procwatch::source::windows::Options {
            interval: cli.interval(),
        },
        format: cli.format.into(),
        output: cli.output.clone(),
        duration: cli.duration(),
        poll: std::time::Duration::from_millis(cli.poll_ms),
        queue_len: cli.queue_len,
        pause_reader: std::time::Duration::from_millis(cli.debug_pause_reader_ms),
        exits: cli.exits,
        filter: Filter::from_cli(cli)?,
        sink_options: cli.sink_options(),
        hash_max_size: (!cli.no_hash).then_some(cli.hash_max_size),
        hijack_check: !cli.no_hijack_check,
    })
}
