//! The output file against a hostile local user and ordinary faults:
//! planted symlinks, FIFOs and foreign files, a disk that fills up, and a
//! file left with a partial line. Rotation and signals are in
//! hardening_signals.rs.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::output::*;
use crate::common::*;

/// procwatch with `-o path` must exit 2 before attaching, naming the path
/// and `reason`.
fn assert_refused(path: &Path, extra: &[&str], reason: &str) {
    let p = path.to_str().unwrap();
    let mut args = vec!["--format", "jsonl", "-o", p, "--duration", "5"];
    args.extend_from_slice(extra);
    let t0 = Instant::now();
    let end = Running::start(&args).wait();
    assert_eq!(end.status.code(), Some(2), "{p}: stderr: {}", end.stderr);
    assert!(
        end.stderr.contains(p),
        "the message names the path: {}",
        end.stderr
    );
    assert!(
        end.stderr.contains(reason),
        "{p}: want {reason:?}: {}",
        end.stderr
    );
    assert!(
        !end.stderr.contains("using source") && !end.stderr.contains("watching"),
        "refused before attaching: {}",
        end.stderr
    );
    eprintln!("{p}: refused in {:?}", t0.elapsed());
}

#[test]
fn planted_symlink_fifo_and_open_modes_are_refused_before_attaching() {
    // Needs no root: the checks come before the attach.
    let dir = open_tempdir();
    let victim = dir.path().join("victim");
    fs::write(&victim, b"precious\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();

    let link = dir.path().join("link.jsonl");
    symlink(&victim, &link).unwrap();
    assert_refused(&link, &[], "symlink");
    assert_refused(&link, &["--force-output"], "symlink");

    let fifo = dir.path().join("fifo.jsonl");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_refused(&fifo, &[], "FIFO");
    // With a reader waiting on it, the open succeeds: fstat must refuse it.
    // SAFETY: open with a valid path; the fd is closed below.
    let rd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(rd >= 0);
    assert_refused(&fifo, &["--force-output"], "FIFO");
    let mut buf = [0u8; 16];
    // SAFETY: read into our buffer from our fd.
    let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closing our fd.
    unsafe { libc::close(rd) };
    assert!(n <= 0, "nothing may be written into a FIFO");

    let open_mode = dir.path().join("shared.jsonl");
    fs::write(&open_mode, b"").unwrap();
    fs::set_permissions(&open_mode, fs::Permissions::from_mode(0o644)).unwrap();
    assert_refused(&open_mode, &[], "mode 0644");

    let unsafe_dir = dir.path().join("drop");
    fs::create_dir(&unsafe_dir).unwrap();
    fs::set_permissions(&unsafe_dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(
        &unsafe_dir.join("log.jsonl"),
        &["--force-output"],
        "not sticky",
    );
    assert!(
        !unsafe_dir.join("log.jsonl").exists(),
        "nothing created there"
    );

    assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(fs::read(&open_mode).unwrap(), b"");
}

#[root_test("runs the eBPF monitor, chowns and mounts test files")]
fn files_and_directories_of_another_user_are_refused_unless_forced() {
    let dir = open_tempdir();
    let foreign = dir.path().join("nobody.jsonl");
    fs::write(&foreign, b"").unwrap();
    fs::set_permissions(&foreign, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    assert_refused(&foreign, &[], "owned by uid 65534");

    let theirs = dir.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    assert_refused(
        &theirs.join("log.jsonl"),
        &[],
        "directory is owned by uid 65534",
    );

    // A directory reached through a symlink nobody planted.
    let link = dir.path().join("via");
    symlink("/tmp", &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    assert_refused(
        &link.join("log.jsonl"),
        &["--force-output"],
        "symlink owned by uid 65534",
    );

    // --force-output accepts the foreign file, and appends to it.
    let p = foreign.to_str().unwrap();
    let end = Running::start(&[
        "--format",
        "jsonl",
        "-o",
        p,
        "--duration",
        "0.3",
        "--force-output",
    ])
    .wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    let lines = json_lines(&read(&foreign));
    assert_eq!(lines.first().unwrap()["event"], "start");
    assert_eq!(lines.last().unwrap()["event"], "stop");
}

#[root_test("runs the eBPF monitor, chowns and mounts test files")]
fn new_files_are_created_0600_and_dev_null_is_allowed() {
    let dir = open_tempdir();
    let p = dir.path().join("new.jsonl");
    // SAFETY: umask only swaps the process mask; this test binary's other
    // tests create no files whose mode they check.
    let old = unsafe { libc::umask(0) };
    let end = Running::start(&[
        "--format",
        "jsonl",
        "-o",
        p.to_str().unwrap(),
        "--duration",
        "0.2",
    ])
    .wait();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let end = Running::start(&["--format", "jsonl", "-o", "/dev/null", "--duration", "0.2"]).wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = open_tempdir();
        let opts = format!("size={size},mode=0755");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(dir.path()),
        );
        Tmpfs(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Runs `n` tagged execs of /bin/true with a long argument (so lines fill a
/// small disk quickly).
fn tagged_execs(tag: &str, n: usize) {
    let pad = "x".repeat(2000);
    for i in 0..n {
        run_ok(
            Command::new("/bin/true")
                .arg(tag)
                .arg(i.to_string())
                .arg(&pad),
        );
    }
}

#[root_test("runs the eBPF monitor, chowns and mounts test files")]
fn a_full_disk_is_reported_counted_and_ends_non_zero() {
    let fs_ = Tmpfs::new("64k");
    let path = fs_.path().join("log.jsonl");
    let p = path.to_str().unwrap();
    let tag = unique_tag("full");
    let mon = Running::start(&["--format", "jsonl", "-o", p]);
    wait_for("the start line", || read(&path).contains("\"start\""));
    tagged_execs(&tag, 60);
    wait_for("the error report", || {
        mon.stderr().contains("No space left on device")
    });
    // Still running: the disk full is no reason to stop watching.
    thread::sleep(Duration::from_millis(300));
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(
        end.status.code(),
        Some(1),
        "a run with write errors ends non-zero: {}",
        end.stderr
    );
    assert!(
        end.stderr
            .contains(&format!("writing {p} failed: No space left on device")),
        "{}",
        end.stderr
    );
    // The file could not take the stop event: its counters are on stderr.
    let stop = end
        .stderr
        .lines()
        .find(|l| l.starts_with("procwatch: stop (signal): "))
        .unwrap_or_else(|| panic!("stop counters on stderr: {}", end.stderr));
    let errors: u64 = stop
        .split("write_errors ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(errors > 0, "{stop}");
    let text = read(&path);
    let (complete, partial) = text.rsplit_once('\n').unwrap_or(("", &text));
    for l in complete.lines() {
        parse_line(l);
    }
    if !partial.is_empty() {
        assert!(
            end.stderr.contains("ends with a partial line"),
            "not silent: {}",
            end.stderr
        );
    }

    // Room again: the next run starts on a line of its own.
    run_ok(
        Command::new("mount")
            .args(["-o", "remount,size=4m"])
            .arg(fs_.path()),
    );
    let end = Running::start(&["--format", "jsonl", "-o", p, "--duration", "0.3"]).wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    let again = read(&path);
    assert!(again.starts_with(&text), "appended, nothing rewritten");
    let added = &again[text.len()..];
    let added = if partial.is_empty() {
        added
    } else {
        added
            .strip_prefix('\n')
            .expect("a newline ends the partial line first")
    };
    let lines = json_lines(added);
    assert_eq!(lines.first().unwrap()["event"], "start");
    assert_eq!(lines.last().unwrap()["event"], "stop");

    // --exit-on-write-error: the run ends by itself at the first failure.
    let fs2 = Tmpfs::new("16k");
    let path2 = fs2.path().join("log.jsonl");
    let mon = Running::start(&[
        "--format",
        "jsonl",
        "-o",
        path2.to_str().unwrap(),
        "--exit-on-write-error",
    ]);
    wait_for("the start line", || read(&path2).contains("\"start\""));
    tagged_execs(&tag, 30);
    let end = mon.wait();
    assert_eq!(end.status.code(), Some(1), "{}", end.stderr);
    assert!(
        end.stderr.contains(path2.to_str().unwrap()),
        "{}",
        end.stderr
    );
    assert!(
        end.stderr.contains("procwatch: stop (error): "),
        "{}",
        end.stderr
    );
}

#[root_test("runs the eBPF monitor, chowns and mounts test files")]
fn a_partial_last_line_is_ended_before_appending_in_every_format() {
    let dir = open_tempdir();
    for format in ["jsonl", "text", "csv"] {
        let path = dir.path().join(format!("log.{format}"));
        fs::write(&path, b"a cut line").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let tag = unique_tag(&format!("partial-{format}"));
        let mon = Running::start(&["--format", format, "-o", path.to_str().unwrap()]);
        wait_for("attach", || {
            read(&path).len() > b"a cut line".len() || mon.stderr().contains("watching execs via")
        });
        run_ok(Command::new("/bin/true").arg(&tag));
        wait_for("the tagged exec", || read(&path).contains(&tag));
        mon.signal(libc::SIGINT);
        let end = mon.wait();
        assert_eq!(end.status.code(), Some(0), "{format}: {}", end.stderr);
        let text = read(&path);
        let rest = text
            .strip_prefix("a cut line\n")
            .unwrap_or_else(|| panic!("{format}: no newline after the cut line: {text:?}"));
        match format {
            "jsonl" => {
                let lines = json_lines(rest);
                assert_eq!(lines[0]["event"], "start");
                assert_eq!(execs_with_tag(&lines, &tag).len(), 1);
            }
            "text" => {
                assert!(rest.starts_with("# procwatch "), "{rest:?}");
                assert_eq!(
                    rest.lines()
                        .filter(|l| l.ends_with(&format!(" {tag}")))
                        .count(),
                    1
                );
            }
            _ => {
                // Not empty: no header; every row has the seed's 7 cells.
                let rows: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(rest.as_bytes())
                    .records()
                    .map(|r| r.unwrap())
                    .collect();
                assert!(rows.iter().all(|r| r.len() == 7));
                assert_eq!(
                    rows.iter()
                        .filter(|r| r[0] == format!("/bin/true {tag}"))
                        .count(),
                    1
                );
            }
        }
    }
}
