//! procwatch: reports every new process with its command line, user and
//! privileges. `main` only parses the command line, runs the pipeline and
//! maps the outcome to an exit code; see `pipeline/` for the rest.

use std::process::ExitCode;

use procwatch::cli;
use procwatch::pipeline::{self, RunError};

fn main() -> ExitCode {
    let cli = cli::parse();
    if let Some(cli::generate::Command::Generate { what }) = &cli.command {
        return match cli::generate::run(what) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("procwatch: generate: {e}");
                ExitCode::from(cli::EXIT_RUNTIME as u8)
            }
        };
    }
    let config = match cli.config() {
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
        Err(RunError::Rules(e)) => {
            eprintln!("procwatch: {e}");
            ExitCode::from(cli::EXIT_USAGE as u8)
        }
        Err(RunError::Output(e)) => {
            eprintln!("procwatch: {e}");
            ExitCode::from(cli::EXIT_USAGE as u8)
        }
        Err(RunError::WriteErrors(msg)) => {
            eprintln!(
                "procwatch: {msg}; exiting with status {}",
                cli::EXIT_RUNTIME
            );
            ExitCode::from(cli::EXIT_RUNTIME as u8)
        }
        Err(RunError::Io(e)) => {
            eprintln!("procwatch: {e}");
            ExitCode::from(cli::EXIT_RUNTIME as u8)
        }
    }
}
