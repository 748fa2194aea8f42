//! `procwatch generate man|completions SHELL [--out DIR]`: the man page and
//! the shell completions, built from the same clap parser as the flags so
//! they always match the binary (for packagers: `make install` runs the
//! binary it just built).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Subcommand};
use clap_complete::{Generator, Shell};

use super::Cli;

/// The subcommands; without one, procwatch watches.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Write the man page or shell completions and exit.
    Generate {
        #[command(subcommand)]
        what: Generate,
    },
}

/// What `procwatch generate` writes.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Generate {
    /// The man page (procwatch.1, roff), to standard output or DIR.
    Man {
        /// Write DIR/procwatch.1 instead of standard output (DIR is
        /// created if missing).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The completion script for SHELL, to standard output or DIR.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: Shell,
        /// Write the script into DIR, under the name SHELL expects
        /// (procwatch.bash, _procwatch, procwatch.fish, ...).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Writes what `what` asks for; returns the file written, if any.
pub fn run(what: &Generate) -> io::Result<Option<PathBuf>> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    match what {
        Generate::Man { out } => {
            let man = clap_mangen::Man::new(cmd);
            write_to(out.as_deref(), &format!("{name}.1"), |w| man.render(w))
        }
        Generate::Completions { shell, out } => {
            let file = shell.file_name(&name);
            // Into memory first: clap_complete panics on a failed write
            // (`procwatch generate completions bash | head`).
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, &name, &mut script);
            write_to(out.as_deref(), &file, |w| w.write_all(&script))
        }
    }
}

/// Runs `render` into `dir/file` (created or replaced), or into standard
/// output when there is no `dir`.
fn write_to(
    dir: Option<&Path>,
    file: &str,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Option<PathBuf>> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(file);
            let mut f = io::BufWriter::new(File::create(&path)?);
            render(&mut f)?;
            f.flush()?;
            Ok(Some(path))
        }
        None => {
            let mut out = io::stdout().lock();
            match render(&mut out).and_then(|()| out.flush()) {
                // A reader that stopped early (`| head`) is no error.
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
                _ => Ok(None),
            }
        }
    }
}
