//! Execs in another mount namespace: judged through `/proc/<pid>/root`, or
//! not at all. procwatch's own process stands in for the exec'ing one: its
//! root is the host's, so the verdict must equal the host walk's.

use super::*;

/// `ev` as if exec'd by this test process in another mount namespace.
fn elsewhere(ev: &ExecEvent) -> ExecEvent {
    let mut ev = ev.clone();
    ev.ns.exe_other_mnt_ns = Some(true);
    ev.pid = std::process::id();
    ev
}

fn reasons(ev: &ExecEvent) -> Vec<&str> {
    ev.incomplete
        .iter()
        .filter(|i| i.field == "hijackable")
        .map(|i| i.reason.as_str())
        .collect()
}

/// A root exec of a nobody-owned binary in a world-writable directory,
/// reached through an absolute symlink, with the kernel's identity.
fn exposed() -> (tempfile::TempDir, ExecEvent, PathBuf) {
    let (tmp, base) = base();
    let open = base.join("open");
    dir(&open, 0o777, 0, 0);
    let prog = open.join("prog");
    file(&prog, 0o755, NOBODY, 0);
    let m = fs::metadata(&prog).unwrap();
    let mut ev = exec(0, 0, &b(&prog), &[b"prog"]);
    ev.exe_dev_ino = Some((m.dev(), m.ino()));
    // A script argument through a symlink: the walk resolves it in the root.
    symlink(&open, base.join("link")).unwrap();
    ev.argv = Some(vec![b"sh".to_vec(), b(&base.join("link/prog"))]);
    // The kernel's exe path is a physical one.
    let sh = fs::canonicalize("/bin/sh").unwrap();
    ev.exe = Some(b(&sh));
    let sh = fs::metadata(sh).unwrap();
    ev.exe_dev_ino = Some((sh.dev(), sh.ino()));
    (tmp, ev, prog)
}

#[test]
fn another_namespace_is_judged_in_its_root() {
    let (_tmp, host, prog) = exposed();
    let mut on_host = host.clone();
    let want = check(&mut on_host);
    assert!(
        want.iter().any(|h| h.writable == b(prog.parent().unwrap())),
        "{want:?}"
    );
    let mut ev = elsewhere(&host);
    let got = check(&mut ev);
    assert_eq!(got, want);
    assert!(reasons(&ev).is_empty(), "{:?}", ev.incomplete);
    assert!(
        !HijackChecker::new().check_cached(&mut elsewhere(&host)),
        "never answered from the host's cache"
    );
}

#[test]
fn a_root_not_showing_the_executed_file_is_not_judged() {
    let (_tmp, host, _) = exposed();
    let mut ev = elsewhere(&host);
    let (dev, ino) = ev.exe_dev_ino.unwrap();
    ev.exe_dev_ino = Some((dev, ino + 1));
    assert!(check(&mut ev).is_empty());
    let why = reasons(&ev);
    assert_eq!(why.len(), 1);
    assert!(
        why[0].starts_with("other_mount_namespace: the exe path in the process's root is not"),
        "{why:?}"
    );
    // The process is gone.
    let mut ev = elsewhere(&host);
    ev.pid = u32::MAX - 1;
    assert!(check(&mut ev).is_empty());
    assert!(
        reasons(&ev)[0].starts_with("other_mount_namespace: the process's root could not be"),
        "{:?}",
        ev.incomplete
    );
    // Unknown namespace: the same care.
    let mut ev = elsewhere(&host);
    ev.ns.exe_other_mnt_ns = None;
    ev.exe_dev_ino = None;
    assert!(check(&mut ev).is_empty());
    assert!(reasons(&ev)[0].contains("identity is unknown"));
}
