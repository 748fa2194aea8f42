//! The checker against real files: owners, modes, sticky directories,
//! symlinks, interpreter scripts, and the verdict cache.

use super::*;
use crate::event::{CapSets, Credentials, Privileges};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

mod root_view;

const NOBODY: u32 = 65534;
const CAP_SYS_ADMIN: u64 = 1 << 21;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails the test unless run as root: it would check nothing otherwise.
fn require_root(why: &str) {
    assert!(is_root(), "run as root: {why}");
}

/// A temp dir that is itself safe (root-owned, 0755, under a safe chain).
fn base() -> (tempfile::TempDir, PathBuf) {
    require_root("the test creates root- and 65534-owned files");
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // Physical path, so expected `writable` values compare equal.
    let path = fs::canonicalize(dir.path()).unwrap();
    let found = walk(path.as_os_str().as_bytes()).unwrap();
    assert!(
        found.is_empty(),
        "the temp dir {path:?} is itself modifiable, so no verdict under it would mean anything: {found:?}"
    );
    (dir, path)
}

fn b(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn file(p: &Path, mode: u32, uid: u32, gid: u32) {
    fs::write(p, b"#!/bin/sh\ntrue\n").unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    chown(p, Some(uid), Some(gid)).unwrap();
}

fn dir(p: &Path, mode: u32, uid: u32, gid: u32) {
    fs::create_dir(p).unwrap();
    // set_permissions after create: the umask would clear bits.
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    chown(p, Some(uid), Some(gid)).unwrap();
}

/// An exec of `exe` with `argv` in `/`, by `euid` with `effective`
/// capabilities.
pub(crate) fn exec(euid: u32, effective: u64, exe: &[u8], argv: &[&[u8]]) -> ExecEvent {
    let mut ev = ExecEvent::new(SystemTime::now(), 4242, Some(1), "4242:1".into());
    ev.ns.exe_other_mnt_ns = Some(false);
    ev.exe = Some(exe.to_vec());
    ev.filename = Some(exe.to_vec());
    ev.argv = Some(argv.iter().map(|a| a.to_vec()).collect());
    ev.cwd = Some(b"/".to_vec());
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials {
            uid: euid,
            euid,
            ..Credentials::default()
        },
        caps: CapSets {
            effective,
            permitted: effective,
            ..CapSets::default()
        },
        secureexec: None,
        file: None,
        raised: None,
    });
    ev
}

/// A root `#!` script exec: exe is the interpreter, filename the script.
fn script_exec(script: &[u8]) -> ExecEvent {
    let mut ev = exec(0, 0, b"/bin/sh", &[b"/bin/sh", script]);
    ev.interpreter = Some(b"/bin/sh".to_vec());
    ev.filename = Some(script.to_vec());
    ev
}

fn check(ev: &mut ExecEvent) -> Vec<Hijack> {
    HijackChecker::new().check(ev);
    ev.hijackable.clone()
}

/// Asserts that `got` is exactly one finding with these fields.
fn expect(got: &[Hijack], path: Vec<u8>, role: HijackRole, writable: Vec<u8>, writers: &[&str]) {
    let want = Hijack {
        path,
        role,
        writable,
        writers: writers.iter().map(|w| w.to_string()).collect(),
    };
    assert_eq!(got, [want]);
}

/// The `writable` and `writers` of the one finding in `got`.
fn only(got: &[Hijack]) -> (Vec<u8>, Vec<String>) {
    assert_eq!(got.len(), 1, "{got:?}");
    (got[0].writable.clone(), got[0].writers.clone())
}

fn nobody_group() -> String {
    NameCache::new()
        .group(NOBODY)
        .map_or_else(|| format!("group {NOBODY}"), |n| format!("group {n}"))
}

#[test]
fn world_writable_script() {
    let (_t, base) = base();
    let x = base.join("x.sh");
    file(&x, 0o777, 0, 0);
    let got = check(&mut script_exec(&b(&x)));
    // The interpreter arg naming the same script is not repeated.
    expect(&got, b(&x), HijackRole::Script, b(&x), &["others"]);
}

#[test]
fn group_writable_and_user_owned_scripts() {
    let (_t, base) = base();
    let g = base.join("g.sh");
    file(&g, 0o775, 0, NOBODY);
    let got = check(&mut script_exec(&b(&g)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].writers, vec![nobody_group()]);
    // Group root with g+w is not a non-root writer.
    let r = base.join("r.sh");
    file(&r, 0o775, 0, 0);
    assert!(check(&mut script_exec(&b(&r))).is_empty());
    // An owner can chmod, so a read-only file still counts.
    let u = base.join("u.sh");
    file(&u, 0o555, NOBODY, 0);
    let got = check(&mut script_exec(&b(&u)));
    assert_eq!(only(&got), (b(&u), vec!["user nobody".to_string()]));
}

#[test]
fn script_in_dir_writable_by_user() {
    let (_t, base) = base();
    let d = base.join("d");
    dir(&d, 0o755, NOBODY, NOBODY);
    let x = d.join("x.sh");
    file(&x, 0o755, 0, 0);
    let got = check(&mut script_exec(&b(&x)));
    expect(&got, b(&x), HijackRole::Script, b(&d), &["user nobody"]);
    // A deeper file under the same dir is flagged through it too.
    let sub = d.join("sub");
    dir(&sub, 0o755, 0, 0);
    let y = sub.join("y.sh");
    file(&y, 0o755, 0, 0);
    let got = check(&mut script_exec(&b(&y)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].writable, b(&d));
    // g+w with a non-root group, and o+w, name those writers.
    let gw = base.join("gw");
    dir(&gw, 0o777, 0, NOBODY);
    let z = gw.join("z.sh");
    file(&z, 0o755, 0, 0);
    let got = check(&mut script_exec(&b(&z)));
    assert_eq!(
        only(&got),
        (b(&gw), vec![nobody_group(), "others".to_string()])
    );
}

#[test]
fn root_owned_script_in_root_dir_is_safe() {
    let (_t, base) = base();
    let bin = base.join("usr-local-bin");
    dir(&bin, 0o755, 0, 0);
    let x = bin.join("backup.sh");
    file(&x, 0o755, 0, 0);
    let mut ev = script_exec(&b(&x));
    assert!(check(&mut ev).is_empty());
    // As a binary and as an interpreter arg too.
    let mut ev = exec(0, 0, &b(&x), &[&b(&x)]);
    assert!(check(&mut ev).is_empty());
    let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", &b(&x)]);
    assert!(check(&mut ev).is_empty());
}

#[test]
fn system_binaries_are_safe() {
    require_root("ownership of system files is only meaningful as root");
    for exe in [&b"/bin/true"[..], b"/usr/bin/env", b"/bin/sh"] {
        let mut ev = exec(0, 0, exe, &[exe]);
        assert!(check(&mut ev).is_empty(), "{:?}", ev.hijackable);
    }
}

#[test]
fn sticky_dir_protects_root_entries_only() {
    let (_t, base) = base();
    let tmp = base.join("tmp");
    dir(&tmp, 0o1777, 0, 0);
    let r = tmp.join("root.sh");
    file(&r, 0o755, 0, 0);
    assert!(check(&mut script_exec(&b(&r))).is_empty());
    let n = tmp.join("nobody.sh");
    file(&n, 0o755, NOBODY, NOBODY);
    let got = check(&mut script_exec(&b(&n)));
    expect(&got, b(&n), HijackRole::Script, b(&n), &["user nobody"]);
    // The sticky bit does not protect against the directory's owner.
    let own = base.join("owned-tmp");
    dir(&own, 0o1777, NOBODY, 0);
    let r2 = own.join("root.sh");
    file(&r2, 0o755, 0, 0);
    let got = check(&mut script_exec(&b(&r2)));
    assert_eq!(only(&got), (b(&own), vec!["user nobody".to_string()]));
    // A symlink owned by a non-root user in a sticky dir can be replaced
    // by that user even though it points to a safe file.
    let link = tmp.join("link.sh");
    symlink(&r, &link).unwrap();
    lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    let got = check(&mut script_exec(&b(&link)));
    assert_eq!(only(&got), (b(&link), vec!["user nobody".to_string()]));
}

#[test]
fn symlinks() {
    let (_t, base) = base();
    let safe = base.join("safe.sh");
    file(&safe, 0o755, 0, 0);
    let w = base.join("w");
    dir(&w, 0o755, NOBODY, NOBODY);
    // A symlink in a writable dir, to a safe file (relative target).
    let link = w.join("link.sh");
    symlink("../safe.sh", &link).unwrap();
    let got = check(&mut script_exec(&b(&link)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, b(&link));
    assert_eq!(got[0].writable, b(&w));
    // A safe symlink into a writable dir.
    let inner = w.join("inner.sh");
    file(&inner, 0o755, 0, 0);
    let link2 = base.join("link2.sh");
    symlink(&inner, &link2).unwrap();
    let got = check(&mut script_exec(&b(&link2)));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].writable, b(&w));
    // A chain through a directory symlink: safe -> safe dir link.
    let sd = base.join("sd");
    dir(&sd, 0o755, 0, 0);
    file(&sd.join("s.sh"), 0o755, 0, 0);
    symlink("sd", base.join("sdlink")).unwrap();
    symlink("sdlink/s.sh", base.join("chain.sh")).unwrap();
    assert!(check(&mut script_exec(&b(&base.join("chain.sh")))).is_empty());
    // `..` after a symlink is physical: w/up -> ../sd, w/up/../x is sd/../x.
    symlink("../sd", w.join("up")).unwrap();
    let via = b(&w.join("up/../safe.sh"));
    let got = check(&mut script_exec(&via));
    assert_eq!(got.len(), 1, "the link lives in a writable dir");
    assert_eq!(got[0].writable, b(&w));
    // A loop resolves to nothing: no finding.
    symlink("loop2", base.join("loop1")).unwrap();
    symlink("loop1", base.join("loop2")).unwrap();
    assert!(check(&mut script_exec(&b(&base.join("loop1")))).is_empty());
}

#[test]
fn interpreter_args() {
    let (_t, base) = base();
    let x = base.join("x.sh");
    file(&x, 0o666, 0, 0);
    let xs = b(&x);
    let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", &xs]);
    let got = check(&mut ev);
    expect(
        &got,
        xs.clone(),
        HijackRole::InterpreterArg,
        xs.clone(),
        &["others"],
    );
    let mut ev = exec(
        0,
        0,
        b"/usr/bin/python3.12",
        &[b"python3", b"-u", &xs, b"arg"],
    );
    assert_eq!(check(&mut ev).len(), 1);
    // `sh -c` has no script file; only the binary is a candidate.
    let mut ev = exec(0, 0, b"/bin/sh", &[b"sh", b"-c", &xs]);
    assert!(check(&mut ev).is_empty());
    assert_eq!(candidates(&ev).len(), 1);
}

#[test]
fn relative_paths_use_cwd() {
    let (_t, base) = base();
    let x = base.join("x.sh");
    file(&x, 0o777, 0, 0);
    let mut ev = script_exec(b"./x.sh");
    ev.argv = Some(vec![b"/bin/sh".to_vec(), b"./x.sh".to_vec()]);
    ev.cwd = Some(b(&base));
    let got = check(&mut ev);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, [b(&base), b"/./x.sh".to_vec()].concat());
    assert_eq!(got[0].writable, b(&x));
    // Without a cwd, relative files are skipped.
    ev.cwd = None;
    assert!(check(&mut ev).is_empty());
    ev.cwd = Some(b"relative/cwd".to_vec());
    assert!(check(&mut ev).is_empty());
}

#[test]
fn only_privileged_execs_are_checked() {
    let (_t, base) = base();
    let x = base.join("x.sh");
    file(&x, 0o777, 0, 0);
    let mut ev = script_exec(&b(&x));
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials {
            uid: 1000,
            euid: 1000,
            ..Credentials::default()
        },
        caps: CapSets::default(),
        secureexec: None,
        file: None,
        raised: None,
    });
    let mut c = HijackChecker::new();
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    assert_eq!(c.walks(), 0, "not even looked at");
    ev.privileges = None;
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    // Non-root with an effective capability is privileged.
    let mut ev = exec(1000, CAP_SYS_ADMIN, b"/bin/sh", &[b"sh", &b(&x)]);
    c.check(&mut ev);
    assert_eq!(ev.hijackable.len(), 1);
}

#[test]
fn pseudo_and_weird_paths_give_nothing() {
    let long = [b"/".to_vec(), vec![b'a'; 10_000]].concat();
    let deep = b"/a/".repeat(3000);
    for exe in [
        &b"/memfd:payload (deleted)"[..],
        b"/usr/bin/gone (deleted)",
        b"/nonexistent/x",
        b"/tmp/\xff\xfe-not-utf8",
        b"/tmp/nul\0byte",
        b"",
        b"/",
        &long,
        &deep,
        b"relative",
        b"/dev/fd/3",
    ] {
        let mut ev = exec(0, 0, exe, &[exe]);
        ev.interpreter = Some(b"/bin/sh".to_vec());
        ev.cwd = None;
        assert!(check(&mut ev).is_empty(), "{exe:?}");
    }
    // A truncated exe path is another file's path: not checked.
    let mut ev = exec(0, 0, b"/tmp", &[b"x"]);
    ev.exe_truncated = true;
    assert!(candidates(&ev).is_empty());
    assert!(walk(b"/etc/passwd/x").is_none(), "file used as a dir");
}

#[test]
fn cache_hits_and_invalidation() {
    let (_t, base) = base();
    let d = base.join("d");
    dir(&d, 0o755, 0, 0);
    let x = d.join("x.sh");
    file(&x, 0o755, 0, 0);
    let mut c = HijackChecker::new();
    let mut ev = script_exec(&b(&x));
    c.check(&mut ev);
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    // /bin/sh and the script: one walk each, then hits.
    assert_eq!(c.walks(), 2);
    // A chmod of the file changes its ctime: seen at once.
    fs::set_permissions(&x, fs::Permissions::from_mode(0o757)).unwrap();
    c.check(&mut ev);
    assert_eq!(c.walks(), 3);
    assert_eq!(ev.hijackable.len(), 1);
    // A directory change is seen once the verdict expires.
    fs::set_permissions(&x, fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = HijackChecker::with_ttl(Duration::ZERO);
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    chown(&d, Some(NOBODY), None).unwrap();
    c.check(&mut ev);
    assert_eq!(ev.hijackable.len(), 1);
    assert_eq!(ev.hijackable[0].writable, b(&d));
}

#[test]
fn kernel_identity_of_the_binary_replaces_its_lstat() {
    let (_t, base) = base();
    let d = base.join("d");
    dir(&d, 0o755, 0, 0);
    let x = d.join("tool");
    file(&x, 0o755, 0, 0);
    // As the eBPF source reports it: the executed inode and its stamp.
    let stamped = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        let mut ev = exec(0, 0, &b(p), &[&b(p)]);
        ev.exe_dev_ino = Some((m.dev(), m.ino()));
        ev.exe_stamp = Some(crate::event::FileStamp::of(&m));
        ev
    };
    let mut c = HijackChecker::new();
    let mut ev = stamped(&x);
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    assert_eq!(c.walks(), 1);
    c.check(&mut ev);
    assert_eq!(c.walks(), 1, "same inode and stamp: a cache hit");
    // After a chmod the next exec carries a new ctime: walked again.
    fs::set_permissions(&x, fs::Permissions::from_mode(0o757)).unwrap();
    let mut ev = stamped(&x);
    c.check(&mut ev);
    assert_eq!(c.walks(), 2);
    assert_eq!(ev.hijackable.len(), 1);
    assert_eq!(ev.hijackable[0].role, HijackRole::Binary);
}

#[test]
fn cache_is_bounded() {
    let mut c = HijackChecker::new();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..MAX_ENTRIES + 10 {
        let p = dir.path().join(format!("f{i}"));
        fs::write(&p, b"").unwrap();
        c.verdict(&b(&p), None);
        assert!(c.lock().len() <= MAX_ENTRIES);
    }
    assert!(c.lock().len() >= 10);
}

#[test]
fn unnamed_ids_are_numbers() {
    let mut names = NameCache::new();
    assert_eq!(
        describe(&mut names, Writer::User(3_999_999_999)),
        "user 3999999999"
    );
    assert_eq!(
        describe(&mut names, Writer::Group(3_999_999_999)),
        "group 3999999999"
    );
    assert_eq!(describe(&mut names, Writer::Others), "others");
}

#[test]
fn files_that_cannot_be_examined_are_named_in_incomplete() {
    // A root exec of a path that does not resolve: nothing was judged, so
    // the empty list must come with the reason.
    let missing = b"/nonexistent-procwatch-test/x.sh";
    let mut ev = script_exec(missing);
    assert!(check(&mut ev).is_empty());
    let why: Vec<_> = ev
        .incomplete
        .iter()
        .filter(|i| i.field == "hijackable")
        .map(|i| i.reason.as_str())
        .collect();
    assert_eq!(
        why,
        [
            "not checked: /nonexistent-procwatch-test/x.sh could not be examined (gone, or not \
          readable by procwatch's user)"
        ]
    );
    // An unknown exe: the same, with its own reason, and only once.
    let mut ev = exec(0, 0, b"/bin/true", &[b"true"]);
    ev.exe = None;
    ev.filename = None;
    let mut c = HijackChecker::new();
    c.check(&mut ev);
    c.check(&mut ev);
    assert!(ev.hijackable.is_empty());
    let why: Vec<_> = ev
        .incomplete
        .iter()
        .map(|i| (i.field, i.reason.as_str()))
        .collect();
    assert_eq!(
        why,
        [(
            "hijackable",
            "not checked: the executed file's path is unknown"
        )]
    );
}
