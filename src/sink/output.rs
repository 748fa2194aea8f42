//! Opening the destination for events.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Buffer size: large enough that a burst of execs costs few syscalls.
/// The caller flushes whenever its queue runs dry, so latency stays low.
pub(crate) const BUF_SIZE: usize = 64 * 1024;

/// Where events go: stdout, or a file opened for append. A new file is
/// created with mode 0600; an existing one is appended to (mode untouched).
/// Returns the writer (wrapped in a BufWriter of ~64 KiB) and whether the
/// destination was empty (so a CSV header is needed). For stdout, "empty" =
/// true.
///
/// 0600 because exec logs expose every user's command lines (including
/// secrets passed in argv); the explicit mode also makes the result
/// independent of the umask. Append, never truncate, so restarting the
/// monitor does not destroy evidence. Emptiness is read from the opened
/// file's metadata, so it describes the file actually written to.
pub fn open_output(path: Option<&Path>) -> io::Result<(Box<dyn Write + Send>, bool)> {
    match path {
        None => Ok((
            Box::new(BufWriter::with_capacity(BUF_SIZE, io::stdout())),
            true,
        )),
        Some(p) => {
            let mut opts = OpenOptions::new();
            opts.create(true).append(true);
            // Windows has no mode bits: a new file inherits its directory's
            // ACL (README, Windows).
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let file = opts.open(p)?;
            let empty = file.metadata()?.len() == 0;
            Ok((Box::new(BufWriter::with_capacity(BUF_SIZE, file)), empty))
        }
    }
}

// The tests check unix modes under a umask.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    /// The umask is process-wide: tests that change it run one at a time.
    static UMASK: Mutex<()> = Mutex::new(());

    /// Runs `f` with the given umask, restoring the previous one after.
    fn with_umask<T>(mask: libc::mode_t, f: impl FnOnce() -> T) -> T {
        let _g = UMASK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: umask only swaps the process file-mode mask; it cannot fail.
        let old = unsafe { libc::umask(mask) };
        let r = f();
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        r
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_file_is_0600_even_with_umask_0() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.csv");
        let (mut w, empty) = with_umask(0, || open_output(Some(&p)).unwrap());
        assert!(empty);
        assert_eq!(mode(&p), 0o600);
        w.write_all(b"hello\n").unwrap();
        w.flush().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello\n");
    }

    #[test]
    fn new_file_is_0600_with_restrictive_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.jsonl");
        with_umask(0o077, || open_output(Some(&p)).unwrap());
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn existing_file_is_appended_and_mode_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events.csv");
        fs::write(&p, b"header\nrow1\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let (mut w, empty) = open_output(Some(&p)).unwrap();
        assert!(!empty);
        w.write_all(b"row2\n").unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(fs::read(&p).unwrap(), b"header\nrow1\nrow2\n");
        assert_eq!(mode(&p), 0o644);
    }

    #[test]
    fn existing_empty_file_needs_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.csv");
        fs::write(&p, b"").unwrap();
        let (_, empty) = open_output(Some(&p)).unwrap();
        assert!(empty);
    }

    #[test]
    fn two_writers_both_append() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let (mut a, _) = open_output(Some(&p)).unwrap();
        a.write_all(b"a\n").unwrap();
        a.flush().unwrap();
        let (mut b, empty) = open_output(Some(&p)).unwrap();
        assert!(!empty);
        b.write_all(b"b\n").unwrap();
        b.flush().unwrap();
        a.write_all(b"c\n").unwrap();
        a.flush().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"a\nb\nc\n");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/file");
        let err = open_output(Some(&p)).err().expect("must fail");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn stdout_counts_as_empty() {
        let (_, empty) = open_output(None).unwrap();
        assert!(empty);
    }
}
