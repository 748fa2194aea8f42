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

#[test]
fn a_mount_made_after_the_table_was_kept_is_seen() {
    let (_tmp, base) = base();
    let judged = std::thread::spawn(move || {
        // SAFETY: this thread alone moves to a new mount namespace, whose
        // mounts stay private to it.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
            assert_eq!(
                libc::mount(
                    c"none".as_ptr(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ),
                0
            );
        }
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let mnt_ns = fs::read_link("/proc/thread-self/ns/mnt").unwrap();
        let mnt_ns: u32 = mnt_ns.to_str().unwrap()[5..]
            .trim_end_matches(']')
            .parse()
            .unwrap();
        let exposed = |dir: &Path| {
            let prog = dir.join("prog");
            file(&prog, 0o777, 0, 0);
            let m = fs::metadata(&prog).unwrap();
            let mut ev = exec(0, 0, &b(&prog), &[b"prog"]);
            ev.exe_dev_ino = Some((m.dev(), m.ino()));
            ev.ns.exe_other_mnt_ns = Some(true);
            ev.ns.namespaces = Some(crate::event::Namespaces {
                mnt: mnt_ns,
                ..Default::default()
            });
            ev.pid = tid;
            ev
        };
        let mut checker = HijackChecker::new();
        let before = base.join("before");
        dir(&before, 0o755, 0, 0);
        let mut ev = exposed(&before);
        checker.check(&mut ev);
        assert_eq!(ev.hijackable.len(), 1, "{:?}", ev.incomplete);
        // A tmpfs mounted now: its mount id is not in the kept table.
        let after = base.join("after");
        dir(&after, 0o755, 0, 0);
        let c = std::ffi::CString::new(after.as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C strings; the mount is in this thread's namespace.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                c.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                c"mode=0755".as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let mut ev = exposed(&after);
        checker.check(&mut ev);
        let got = (ev.hijackable.clone(), reasons(&ev).join("; "));
        // SAFETY: a valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        got
    })
    .join()
    .unwrap();
    assert_eq!(judged.1, "");
    assert_eq!(judged.0.len(), 1, "{judged:?}");
    assert_eq!(judged.0[0].writers, ["others"]);
}
