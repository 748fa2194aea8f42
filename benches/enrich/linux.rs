//! The measurements; see `main.rs`.

use std::fs;
use std::hint::black_box;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{self, per_event};
use procwatch::enrich::hash::{DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, ExeHasher};
use procwatch::enrich::hash_pool::{DEFAULT_RATE, HashOptions, HashService};
use procwatch::enrich::hijack::HijackChecker;
use procwatch::enrich::hijack_pool::HijackService;
use procwatch::event::{ExecEvent, FileStamp};
use procwatch::filter::{Filter, FilterSpec};

/// Above any pid_max: the process is gone, as /bin/true usually is by the
/// time its event is enriched.
const GONE_PID: u32 = 4_999_999;

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn dev_ino(p: &Path) -> (u64, u64) {
    let m = fs::metadata(p).expect("stat");
    (m.dev(), m.ino())
}

/// A root exec of `exe`, with the file's real device and inode.
fn root_exec(pid: u32, exe: &Path, filename: &[u8], argv: &[&[u8]]) -> ExecEvent {
    let mut ev = common::root_exec(pid, &bytes(exe), filename, argv);
    ev.exe_dev_ino = Some(dev_ino(exe));
    ev
}

fn report(name: &str, cost: Duration, baseline: Duration) {
    println!(
        "{name:<44} {:>8} ns/event  ({:>6.1}x baseline, +{} ns)",
        cost.as_nanos(),
        cost.as_secs_f64() / baseline.as_secs_f64(),
        cost.saturating_sub(baseline).as_nanos()
    );
}

pub fn main() {
    const HITS: u32 = 200_000;
    const MISSES: u32 = 2_000;

    let true_exe = fs::canonicalize("/bin/true").expect("/bin/true");
    let true_ev = root_exec(
        GONE_PID,
        &true_exe,
        b"/bin/true",
        &[b"/bin/true", b"pwbench-0123456789abcdef"],
    );

    // As the eBPF source reports it: with the executed inode's stamp, which
    // stands in for a stat on a cache hit.
    let mut stamped_ev = true_ev.clone();
    stamped_ev.exe_stamp = Some(FileStamp::of(&fs::metadata(&true_exe).expect("stat")));

    // A root-owned 0755 script in a root-owned 0755 directory.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.path().join("job.sh");
    fs::write(&script, b"#!/bin/sh\ntrue\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let sh = fs::canonicalize("/bin/sh").expect("/bin/sh");
    let mut script_ev = root_exec(
        GONE_PID,
        &sh,
        &bytes(&script),
        &[b"/bin/sh", &bytes(&script)],
    );
    script_ev.interpreter = Some(b"/bin/sh".to_vec());

    // A live process, so /proc/<pid>/exe is what gets opened.
    let mut child = Command::new("sleep").arg("600").spawn().expect("sleep");
    let sleep_exe = fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    // No stamp (as from a source without one): only /proc/<pid>/exe is
    // trusted, opened and checked on every event.
    let live_ev = root_exec(child.id(), &sleep_exe, &bytes(&sleep_exe), &[b"sleep"]);

    let baseline = per_event(HITS, || {
        black_box(Box::new(true_ev.clone()));
    });
    println!(
        "{:<44} {:>8} ns/event",
        "baseline (clone an event)",
        baseline.as_nanos()
    );

    for (what, ev) in [
        ("/bin/true", &true_ev),
        ("/bin/true, kernel stamp", &stamped_ev),
        ("#! script", &script_ev),
    ] {
        let mut checker = HijackChecker::new();
        let mut probe = ev.clone();
        checker.check(&mut probe);
        assert!(
            probe.hijackable.is_empty(),
            "{what}: {:?}",
            probe.hijackable
        );
        let cost = per_event(HITS, || {
            let mut e = Box::new(ev.clone());
            checker.check(&mut e);
            black_box(e);
        });
        report(&format!("hijack check, cache hit, {what}"), cost, baseline);
        let cost = per_event(MISSES, || {
            let mut e = Box::new(ev.clone());
            HijackChecker::new().check(&mut e);
            black_box(e);
        });
        report(&format!("hijack check, cache miss, {what}"), cost, baseline);
    }

    let mut hasher = ExeHasher::new(DEFAULT_MAX_SIZE);
    // A gone process's path without a stamp proves nothing: not hashed.
    let mut probe = true_ev.clone();
    hasher.hash(&mut probe);
    assert!(probe.exe_sha256.is_none());
    for (what, ev, file) in [
        ("/bin/true, kernel stamp", &stamped_ev, &true_exe),
        ("sleep via /proc/<pid>/exe", &live_ev, &sleep_exe),
    ] {
        let mut probe = ev.clone();
        hasher.hash(&mut probe);
        assert!(probe.exe_sha256.is_some(), "{:?}", probe.incomplete);
        let cost = per_event(HITS / 4, || {
            let mut e = Box::new(ev.clone());
            hasher.hash(&mut e);
            black_box(e);
        });
        report(&format!("exe hash, cache hit, {what}"), cost, baseline);
        let cost = per_event(MISSES, || {
            let mut e = Box::new(ev.clone());
            ExeHasher::new(DEFAULT_MAX_SIZE).hash(&mut e);
            black_box(e);
        });
        let size = fs::metadata(file).unwrap().len();
        report(
            &format!("exe hash, cache miss, {what} ({size} B)"),
            cost,
            baseline,
        );
    }

    let mut checker = HijackChecker::new();
    let cost = per_event(HITS, || {
        let mut e = Box::new(stamped_ev.clone());
        checker.check(&mut e);
        hasher.hash(&mut e);
        black_box(e);
    });
    report("both, cache hit, /bin/true, kernel stamp", cost, baseline);

    // What the writer runs: the services, whose cache hits stay on its
    // thread and do no syscall.
    let mut hijack = HijackService::new();
    let mut hashes = HashService::new(HashOptions {
        max_size: DEFAULT_MAX_SIZE,
        rate: DEFAULT_RATE,
        timeout: DEFAULT_TIMEOUT,
    });
    let mut probe = stamped_ev.clone();
    hijack.check(&mut probe);
    hashes.submit(&mut probe);
    let mut late = Vec::new();
    hashes.finish(Duration::from_secs(10), &mut late);
    assert!(late[0].exe_sha256.is_some(), "{late:?}");
    let cost = per_event(HITS, || {
        let mut e = Box::new(stamped_ev.clone());
        hijack.check(&mut e);
        hashes.submit(&mut e);
        black_box(e);
    });
    report("writer's services, cache hit, kernel stamp", cost, baseline);
    let mut probe = script_ev.clone();
    hijack.check(&mut probe);
    assert!(probe.incomplete.is_empty(), "{:?}", probe.incomplete);
    let cost = per_event(HITS / 10, || {
        let mut e = Box::new(script_ev.clone());
        hijack.check(&mut e);
        black_box(e);
    });
    report("hijack service, #! script (checker thread)", cost, baseline);

    // A root exec in another mount namespace: its files walked through
    // /proc/<pid>/root (here the live sleep's, the host's root), never
    // from the cache.
    let mut other_ns = live_ev.clone();
    other_ns.ns.exe_other_mnt_ns = Some(true);
    // Its mount namespace known: the mount table is kept between execs.
    other_ns.ns.namespaces = Some(procwatch::event::Namespaces {
        mnt: procwatch::linux::ns::own_ns("mnt").expect("own mount namespace"),
        ..Default::default()
    });
    let mut probe = other_ns.clone();
    HijackChecker::new().check(&mut probe);
    assert!(probe.incomplete.is_empty(), "{:?}", probe.incomplete);
    let mut checker = HijackChecker::new();
    let cost = per_event(MISSES, || {
        let mut e = Box::new(other_ns.clone());
        checker.check(&mut e);
        black_box(e);
    });
    report("hijack check, other mount ns (root view)", cost, baseline);

    // --exclude-exe: the path matched, then the file at it is confirmed to
    // be the executed one (one lstat, cached for a second).
    let filter = |spec: FilterSpec| Filter::new(&spec).expect("filter");
    let excluded = filter(FilterSpec {
        exclude_exe: vec![true_exe.to_str().unwrap().to_owned()],
        ..FilterSpec::default()
    });
    assert!(!excluded.matches(&stamped_ev), "hidden");
    let cost = per_event(HITS, || {
        let e = Box::new(stamped_ev.clone());
        black_box(excluded.matches(&e));
        black_box(e);
    });
    report("--exclude-exe, host exe (identity cached)", cost, baseline);
    let unmatched = filter(FilterSpec {
        exclude_exe: vec!["/nonexistent/*".to_owned()],
        ..FilterSpec::default()
    });
    let cost = per_event(HITS, || {
        let e = Box::new(stamped_ev.clone());
        black_box(unmatched.matches(&e));
        black_box(e);
    });
    report("--exclude-exe, no glob match", cost, baseline);

    let _ = child.kill();
    let _ = child.wait();
}
