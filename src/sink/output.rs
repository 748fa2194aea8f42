//! The destination of events: standard output or an `-o` file, buffered,
//! reopened on request (SIGHUP, log rotation), and kept alive through write
//! errors.
//!
//! A full disk or an I/O error must neither stop the monitor nor pass
//! unnoticed: a failed write is reported on stderr with the path, counted
//! (`write_errors` in the stop event), and the unwritten bytes are kept and
//! retried at the next flush. While the destination keeps failing, at most
//! [`MAX_PENDING`] bytes wait; beyond that whole lines are dropped and
//! counted (`output_dropped`). A broken pipe is not an error but the reader
//! going away (`procwatch | head`), and is returned to the caller.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(unix)]
pub use super::output_file::open_checked;

/// An output file that was refused, with the path and the reason.
#[derive(Debug)]
pub struct OutputError {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // On Unix the path is bytes the watched user may have chosen,
        // shown escaped; a Windows path is shown as it is.
        #[cfg(unix)]
        let path = {
            use std::os::unix::ffi::OsStrExt;
            super::escape::display_bytes(self.path.as_os_str().as_bytes())
        };
        #[cfg(not(unix))]
        let path = self.path.display();
        write!(f, "output file {path}: {}", self.reason)
    }
}

impl std::error::Error for OutputError {}

/// A file opened and checked for appending.
#[derive(Debug)]
pub struct Opened {
    pub file: std::fs::File,
    /// The file was empty (a CSV header is due).
    pub empty: bool,
    /// The file is not empty and its last byte is not a newline: a newline
    /// must come before anything is appended.
    pub needs_newline: bool,
}

/// Buffer size: large enough that a burst of execs costs few syscalls.
/// The caller flushes whenever its queue runs dry, so latency stays low.
pub(crate) const BUF_SIZE: usize = 64 * 1024;

/// Most bytes kept for a destination that fails, before lines are dropped.
pub const MAX_PENDING: usize = 8 << 20;

/// What went wrong with the destination so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// `write_errors`: failed write attempts (each retried later).
    pub write_errors: u64,
    /// `output_dropped`: lines given up while the destination failed.
    pub lines_dropped: u64,
}

/// The destination, shared between the sink (which writes through it) and
/// the pipeline (which reopens it and reads its counters). Cloning shares.
#[derive(Clone)]
pub struct Output {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    /// `None`: standard output.
    path: Option<PathBuf>,
    dest: Box<dyn Write + Send>,
    /// Bytes not yet accepted by `dest`.
    buf: Vec<u8>,
    /// `dest` holds the start of a line whose rest is still in `buf`.
    mid_line: bool,
    /// A failure episode is going on (reported once, until it ends).
    failing: bool,
    stats: OutputStats,
    force: bool,
    exit_on_error: bool,
}

impl Output {
    /// Opens the destination: stdout, or `path` under the checks of
    /// `output_file` (all done here, before anything is attached, so a bad
    /// path fails at once). Returns the output and whether it is empty (a
    /// CSV header is due; stdout counts as empty).
    pub fn open(
        path: Option<&Path>,
        force: bool,
        exit_on_error: bool,
    ) -> Result<(Output, bool), OutputError> {
        let (dest, buf, empty): (Box<dyn Write + Send>, Vec<u8>, bool) = match path {
            None => (Box::new(io::stdout()), Vec::new(), true),
            Some(p) => {
                let o = open_file(p, force)?;
                (Box::new(o.file), leading_newline(o.needs_newline), o.empty)
            }
        };
        let inner = Inner {
            path: path.map(Path::to_owned),
            dest,
            buf,
            mid_line: false,
            failing: false,
            stats: OutputStats::default(),
            force,
            exit_on_error,
        };
        Ok((
            Output {
                inner: Arc::new(Mutex::new(inner)),
            },
            empty,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The destination is standard output (nothing to reopen).
    pub fn is_stdout(&self) -> bool {
        self.lock().path.is_none()
    }

    /// The destination's name for messages.
    pub fn name(&self) -> String {
        self.lock().name()
    }

    pub fn stats(&self) -> OutputStats {
        self.lock().stats
    }

    /// Bytes the destination has not taken yet.
    pub fn pending(&self) -> usize {
        self.lock().buf.len()
    }

    /// The destination ends in the middle of a line (its rest is pending
    /// or was dropped).
    pub fn mid_line(&self) -> bool {
        self.lock().mid_line
    }

    /// Closes the file and opens the path again with the same checks (log
    /// rotation: the old file has been renamed). What the old file could
    /// not take moves to the new one, except the rest of a line whose start
    /// is already in the old file, which is dropped and counted. On error
    /// the old file stays in use. Returns whether the new file is empty.
    pub fn reopen(&self) -> Result<bool, OutputError> {
        let mut g = self.lock();
        let Some(path) = g.path.clone() else {
            return Ok(false);
        };
        // Best effort: failures are counted and reported by push itself.
        let _ = g.push();
        let o = open_file(&path, g.force)?;
        if g.mid_line {
            let rest = g
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(g.buf.len(), |i| i + 1);
            g.buf.drain(..rest);
            g.stats.lines_dropped += 1;
        }
        let mut buf = leading_newline(o.needs_newline);
        buf.append(&mut g.buf);
        g.buf = buf;
        g.dest = Box::new(o.file);
        g.mid_line = false;
        g.failing = false;
        Ok(o.empty)
    }
}

#[cfg(unix)]
fn open_file(path: &Path, force: bool) -> Result<Opened, OutputError> {
    open_checked(path, force)
}

fn leading_newline(needed: bool) -> Vec<u8> {
    if needed { b"\n".to_vec() } else { Vec::new() }
}

impl Inner {
    fn name(&self) -> String {
        match &self.path {
            #[cfg(unix)]
            Some(p) => {
                super::escape::display_bytes(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()))
            }
            #[cfg(not(unix))]
            Some(p) => super::escape::display_bytes(p.to_string_lossy().as_bytes()),
            None => "standard output".to_owned(),
        }
    }

    /// Hands `buf` to the destination. A broken pipe (and any error with
    /// `--exit-on-write-error`) is returned; other errors are reported,
    /// counted and retried at the next call.
    fn push(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        let (done, res) = self.write_out(&buf);
        buf.drain(..done);
        self.buf = buf;
        self.settle(res)
    }

    /// Writes as much of `bytes` as the destination takes; returns how much
    /// and how it ended.
    fn write_out(&mut self, bytes: &[u8]) -> (usize, io::Result<()>) {
        let mut done = 0;
        let res = loop {
            if done == bytes.len() {
                break self.dest.flush();
            }
            match self.dest.write(&bytes[done..]) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    self.mid_line = bytes[done - 1] != b'\n';
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        (done, res)
    }

    /// Reports, counts and decides on the outcome of a write.
    fn settle(&mut self, res: io::Result<()>) -> io::Result<()> {
        match res {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    eprintln!(
                        "procwatch: writing {} works again ({} failed writes so far)",
                        self.name(),
                        self.stats.write_errors
                    );
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(e),
            Err(e) => {
                self.stats.write_errors += 1;
                if self.exit_on_error {
                    return Err(io::Error::new(e.kind(), format!("{}: {e}", self.name())));
                }
                if !self.failing {
                    self.failing = true;
                    eprintln!(
                        "procwatch: writing {} failed: {e}; keeping what it could not take \
                         and retrying at each flush",
                        self.name()
                    );
                }
                if self.buf.len() > MAX_PENDING {
                    self.drop_lines();
                }
                Ok(())
            }
        }
    }

    /// Gives up the pending whole lines, keeping the rest of a line whose
    /// start the destination already holds.
    fn drop_lines(&mut self) {
        let keep = if self.mid_line {
            self.buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.buf.len(), |i| i + 1)
        } else {
            0
        };
        let dropped = self.buf[keep..].iter().filter(|&&b| b == b'\n').count() as u64;
        self.buf.truncate(keep);
        self.stats.lines_dropped += dropped;
        eprintln!(
            "procwatch: {} keeps failing: dropped {dropped} lines ({} in all)",
            self.name(),
            self.stats.lines_dropped
        );
    }
}

impl Write for Output {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut g = self.lock();
        if g.buf.is_empty() && data.len() >= BUF_SIZE {
            // A big block (the JSONL sink's batches) goes out uncopied.
            let (done, res) = g.write_out(data);
            g.buf.extend_from_slice(&data[done..]);
            g.settle(res)?;
            return Ok(data.len());
        }
        g.buf.extend_from_slice(data);
        if g.buf.len() >= BUF_SIZE {
            g.push()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().push()
    }
}

/// Opens the destination the simple way (tests, benches): stdout or
/// `path` under the same checks, no `--force-output`. Returns the writer
/// and whether the destination was empty (a CSV header is due).
pub fn open_output(path: Option<&Path>) -> io::Result<(Box<dyn Write + Send>, bool)> {
    let (out, empty) = Output::open(path, false, false).map_err(io::Error::other)?;
    Ok((Box::new(out), empty))
}

/// Without unix modes and owners the checks of `output_file` do not apply:
/// a new file inherits its directory's ACL (README, Windows).
#[cfg(not(unix))]
mod plain {
    use std::fs::OpenOptions;
    use std::path::Path;

    use super::{Opened, OutputError};

    pub fn open_checked(path: &Path, _force: bool) -> Result<Opened, OutputError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| OutputError {
                path: path.to_owned(),
                reason: format!("cannot open: {e}"),
            })?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        Ok(Opened {
            file,
            empty,
            needs_newline: false,
        })
    }
}

#[cfg(not(unix))]
pub use plain::open_checked;

#[cfg(not(unix))]
fn open_file(path: &Path, force: bool) -> Result<Opened, OutputError> {
    open_checked(path, force)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A destination that takes `room` bytes, then fails with ENOSPC until
    /// given more room.
    #[derive(Clone, Default)]
    struct Disk(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Disk {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            let n = data.len().min(g.1);
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            g.1 -= n;
            g.0.extend_from_slice(&data[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Disk {
        fn grow(&self, n: usize) {
            self.0.lock().unwrap().1 += n;
        }
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().0.clone()).unwrap()
        }
    }

    fn output_on(disk: &Disk, path: Option<PathBuf>, exit_on_error: bool) -> Output {
        Output {
            inner: Arc::new(Mutex::new(Inner {
                path,
                dest: Box::new(disk.clone()),
                buf: Vec::new(),
                mid_line: false,
                failing: false,
                stats: OutputStats::default(),
                force: false,
                exit_on_error,
            })),
        }
    }

    #[test]
    fn a_full_destination_is_counted_and_retried_losing_nothing() {
        let disk = Disk::default();
        disk.grow(10);
        let mut out = output_on(&disk, None, false);
        out.write_all(b"line one\nline two\n").unwrap();
        out.flush().unwrap();
        assert_eq!(disk.text(), "line one\nl");
        assert!(out.mid_line());
        assert_eq!(out.pending(), 8);
        assert_eq!(out.stats().write_errors, 1);
        out.flush().unwrap();
        assert_eq!(out.stats().write_errors, 2, "each failed attempt counts");
        disk.grow(100);
        out.write_all(b"three\n").unwrap();
        out.flush().unwrap();
        assert_eq!(disk.text(), "line one\nline two\nthree\n");
        assert!(!out.mid_line());
        assert_eq!(out.stats().lines_dropped, 0);
    }

    #[test]
    fn a_big_block_written_directly_keeps_what_a_full_disk_refused() {
        let disk = Disk::default();
        disk.grow(10);
        let mut out = output_on(&disk, None, false);
        let block = "0123456789abcdef\n".repeat(BUF_SIZE / 17 + 1);
        out.write_all(block.as_bytes()).unwrap();
        assert_eq!(out.pending(), block.len() - 10);
        assert_eq!(out.stats().write_errors, 1);
        disk.grow(usize::MAX / 2);
        out.flush().unwrap();
        assert_eq!(disk.text(), block);
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn past_the_bound_whole_lines_are_dropped_and_counted() {
        let disk = Disk::default();
        disk.grow(3);
        let mut out = output_on(&disk, None, false);
        let line = format!("{}\n", "x".repeat(999));
        let n = MAX_PENDING / line.len() + 10;
        for _ in 0..n {
            out.write_all(line.as_bytes()).unwrap();
        }
        let dropped = out.stats().lines_dropped;
        assert!(dropped > 0);
        disk.grow(usize::MAX / 2);
        out.flush().unwrap();
        let text = disk.text();
        // The line cut by the full disk is completed; every line is whole.
        assert!(text.lines().all(|l| l.len() == 999), "no cut line");
        assert_eq!(text.lines().count() as u64 + dropped, n as u64);
    }

    #[test]
    fn exit_on_write_error_returns_the_error_naming_the_path() {
        let disk = Disk::default();
        let mut out = output_on(&disk, Some(PathBuf::from("/x/log")), true);
        out.write_all(b"a\n").unwrap();
        let e = out.flush().unwrap_err();
        assert!(e.to_string().starts_with("/x/log: "), "{e}");
        assert_eq!(e.raw_os_error(), None);
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn reopen_moves_whole_pending_lines_and_drops_the_rest_of_a_cut_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let disk = Disk::default();
        disk.grow(4);
        let out = output_on(&disk, Some(path.clone()), false);
        let mut w = out.clone();
        w.write_all(b"first\nsecond\n").unwrap();
        w.flush().unwrap();
        assert_eq!(disk.text(), "firs");
        let empty = out.reopen().unwrap();
        assert!(empty);
        assert_eq!(out.stats().lines_dropped, 1, "the rest of `first`");
        w.write_all(b"third\n").unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\nthird\n");
    }

    #[test]
    fn a_file_with_a_cut_last_line_gets_a_newline_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, b"cut").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (mut out, empty) = Output::open(Some(&path), false, false).unwrap();
        assert!(!empty);
        out.write_all(b"next\n").unwrap();
        out.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cut\nnext\n");
        let (mut out, _) = Output::open(Some(&path), false, false).unwrap();
        out.write_all(b"more\n").unwrap();
        out.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "cut\nnext\nmore\n");
    }
}
