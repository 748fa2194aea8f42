//! The table against synthetic forks, execs and exits.

use super::*;
use crate::event::{Bytes, CapSets, ChangeCause, Credentials, PrivilegeRaise};
use std::time::SystemTime;

/// An exec as the writer does it: related, then committed (with a
/// copy, so the test can still look at the event).
fn run_exec(t: &mut ProcessTable, ev: &mut ExecEvent, start_ns: u64, parent_start_ns: u64) {
    let k = t.exec(ev, start_ns, parent_start_ns);
    t.commit_exec(k, &mut ev.clone(), true);
}

fn exes(ancestors: &[Arc<ProcessImage>]) -> Vec<Bytes> {
    ancestors.iter().map(|a| a.exe.clone().unwrap()).collect()
}

fn key(pid: u32, start_ns: u64) -> ProcKey {
    ProcKey { pid, start_ns }
}

fn exec_event(
    pid: u32,
    ppid: u32,
    exe: &str,
    euid: u32,
    caps: u64,
    raised: Option<PrivilegeRaise>,
) -> ExecEvent {
    let mut ev = ExecEvent::new(SystemTime::now(), pid, Some(ppid), format!("{pid}:{exe}"));
    ev.exe = Some(exe.as_bytes().to_vec());
    ev.argv = Some(vec![exe.as_bytes().to_vec()]);
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials {
            euid,
            uid: euid,
            ..Credentials::default()
        },
        caps: CapSets {
            effective: caps,
            permitted: caps,
            ..CapSets::default()
        },
        secureexec: None,
        file: None,
        raised,
    });
    ev
}

#[test]
fn parent_snapshot_survives_parent_exit_and_reexec() {
    let mut t = ProcessTable::new(100);
    let mut a = exec_event(10, 1, "/bin/bash", 1000, 0, None);
    run_exec(&mut t, &mut a, 100, 1);
    t.fork(Fork {
        child: key(11, 200),
        parent: key(10, 100),
    });
    // The parent execs something else, then exits.
    let mut a2 = exec_event(10, 1, "/usr/bin/other", 1000, 0, None);
    run_exec(&mut t, &mut a2, 100, 1);
    let x = Exit {
        key: key(10, 100),
        ppid: 1,
        time: SystemTime::now(),
        status: 0,
        comm: b"other".to_vec(),
        lifetime: Duration::from_secs(1),
    };
    t.exit(&x);
    let mut b = exec_event(11, 1, "/bin/true", 1000, 0, None);
    run_exec(&mut t, &mut b, 200, 0);
    let p = b.parent.expect("parent known");
    assert_eq!(p.pid, 10);
    assert_eq!(
        p.exe.as_deref(),
        Some(&b"/bin/bash"[..]),
        "the parent as it was at fork"
    );
    assert_eq!(p.exec_id.as_deref(), Some("10:/bin/bash"));
    assert!(b.incomplete.is_empty());
}

#[test]
fn reused_pid_is_not_confused() {
    let mut t = ProcessTable::new(100);
    let mut old = exec_event(20, 1, "/usr/sbin/cron", 0, !0 >> 23, None);
    run_exec(&mut t, &mut old, 100, 1);
    t.exit(&Exit {
        key: key(20, 100),
        ppid: 1,
        time: SystemTime::now(),
        status: 0,
        comm: vec![],
        lifetime: Duration::ZERO,
    });
    // A new process gets pid 20 again, forked by an unprivileged shell.
    let mut sh = exec_event(30, 1, "/bin/sh", 1000, 0, None);
    run_exec(&mut t, &mut sh, 50, 1);
    t.fork(Fork {
        child: key(20, 900),
        parent: key(30, 50),
    });
    let mut child = exec_event(21, 20, "/bin/true", 1000, 0, None);
    // Its child's fork names pid 20 with the NEW start time.
    t.fork(Fork {
        child: key(21, 950),
        parent: key(20, 900),
    });
    run_exec(&mut t, &mut child, 950, 900);
    let p = child.parent.unwrap();
    assert_eq!(p.exe.as_deref(), Some(&b"/bin/sh"[..]), "not the old cron");
    // And a lookup with the old start time finds nothing live.
    let mut orphan = exec_event(22, 20, "/bin/true", 1000, 0, None);
    run_exec(&mut t, &mut orphan, 990, 123);
    assert!(orphan.parent.is_none());
    assert_eq!(orphan.incomplete[0].field, "parent");
}

#[test]
fn ancestors_chain_is_bounded_and_ordered() {
    let mut t = ProcessTable::new(1000);
    let mut prev = key(1, 1);
    let mut init = exec_event(1, 0, "/sbin/init", 0, 0, None);
    run_exec(&mut t, &mut init, 1, 0);
    for i in 2..40u32 {
        let k = key(i, i as u64 * 10);
        t.fork(Fork {
            child: k,
            parent: prev,
        });
        let mut e = exec_event(i, prev.pid, &format!("/bin/p{i}"), 0, 0, None);
        run_exec(&mut t, &mut e, k.start_ns, prev.start_ns);
        if i == 4 {
            assert_eq!(
                exes(&e.ancestors),
                vec![
                    b"/bin/p3".to_vec(),
                    b"/bin/p2".to_vec(),
                    b"/sbin/init".to_vec()
                ]
            );
        }
        if i == 39 {
            assert_eq!(e.ancestors.len(), MAX_ANCESTORS);
            assert_eq!(exes(&e.ancestors)[0], b"/bin/p38");
        }
        prev = k;
    }
}

#[test]
fn privilege_change_causes() {
    let mut t = ProcessTable::new(100);
    let mut shell = exec_event(40, 1, "/bin/bash", 1000, 0, None);
    run_exec(&mut t, &mut shell, 400, 1);
    t.fork(Fork {
        child: key(41, 410),
        parent: key(40, 400),
    });
    let mut sudo = exec_event(
        41,
        40,
        "/usr/bin/sudo",
        0,
        0x1ff_ffff_ffff,
        Some(PrivilegeRaise::Setuid),
    );
    run_exec(&mut t, &mut sudo, 410, 400);
    let c = sudo.privilege_change.clone().unwrap();
    assert_eq!(
        (c.cause, c.from_euid, c.to_euid),
        (ChangeCause::Setuid, 1000, 0)
    );
    assert_eq!(c.gained_caps, 0x1ff_ffff_ffff);
    // sudo (root) runs a command as root: no more privilege than sudo.
    t.fork(Fork {
        child: key(42, 420),
        parent: key(41, 410),
    });
    let mut cmd = exec_event(42, 41, "/usr/bin/id", 0, 0x1ff_ffff_ffff, None);
    run_exec(&mut t, &mut cmd, 420, 410);
    assert!(cmd.privilege_change.is_none());
    // A capable launcher gives its child root without any file bit.
    let mut launcher = exec_event(50, 1, "/usr/bin/setpriv", 65534, 1 << 7, None);
    run_exec(&mut t, &mut launcher, 500, 1);
    t.fork(Fork {
        child: key(51, 510),
        parent: key(50, 500),
    });
    let mut child = exec_event(51, 50, "/bin/true", 0, 0x1ff_ffff_ffff, None);
    run_exec(&mut t, &mut child, 510, 500);
    let c = child.privilege_change.unwrap();
    assert_eq!(c.cause, ChangeCause::Launcher);
    assert_eq!(c.launcher.as_deref(), Some(&b"/usr/bin/setpriv"[..]));
    assert_eq!(c.gained_caps, 0x1ff_ffff_ffff & !(1 << 7));
}

#[test]
fn capabilities_gained_in_another_user_namespace_are_no_change() {
    // `unshare -Ur` run by nobody: the child holds every capability, but
    // in its own user namespace, with the same (host) euid.
    let mut t = ProcessTable::new(100);
    let mut launcher = exec_event(60, 1, "/usr/bin/unshare", 65534, 0, None);
    run_exec(&mut t, &mut launcher, 600, 1);
    t.fork(Fork {
        child: key(61, 610),
        parent: key(60, 600),
    });
    let mut child = exec_event(61, 60, "/bin/true", 65534, 0x1ff_ffff_ffff, None);
    child.ns.user_ns = Some(crate::event::UserNs {
        level: 1,
        owner_uid: 65534,
    });
    run_exec(&mut t, &mut child, 610, 600);
    assert_eq!(child.privilege_change, None);
}

#[test]
fn file_bits_are_judged_against_the_credentials_before_exec() {
    use crate::event::PreExec;
    let mut t = ProcessTable::new(100);
    // A root launcher (setpriv) drops to nobody after its own exec, then
    // execs a setuid-root binary: the gain is 65534 -> 0 by the setuid bit.
    let mut setpriv = exec_event(70, 1, "/usr/bin/setpriv", 0, 0x1ff_ffff_ffff, None);
    run_exec(&mut t, &mut setpriv, 700, 1);
    let mut suid = exec_event(
        70,
        1,
        "/tmp/suid-true",
        0,
        0x1ff_ffff_ffff,
        Some(PrivilegeRaise::Setuid),
    );
    suid.pre_exec = Some(PreExec {
        uid: 65534,
        euid: 65534,
        caps_effective: 0,
    });
    run_exec(&mut t, &mut suid, 700, 1);
    let c = suid.privilege_change.unwrap();
    assert_eq!(
        (c.cause, c.from_euid, c.to_euid),
        (ChangeCause::Setuid, 65534, 0)
    );
    assert_eq!(c.launcher, None);
    // Dropping privileges and exec'ing a plain binary is no change.
    let mut plain = exec_event(71, 1, "/bin/true", 65534, 0, None);
    plain.pre_exec = Some(PreExec {
        uid: 65534,
        euid: 65534,
        caps_effective: 0,
    });
    t.fork(Fork {
        child: key(71, 710),
        parent: key(70, 700),
    });
    run_exec(&mut t, &mut plain, 710, 700);
    assert!(plain.privilege_change.is_none());
}

#[test]
fn exits_decode_status_and_expire() {
    let mut t = ProcessTable::new(100);
    let mut e = exec_event(60, 1, "/bin/sleep", 0, 0, None);
    run_exec(&mut t, &mut e, 600, 1);
    let mk = |status| Exit {
        key: key(60, 600),
        ppid: 1,
        time: SystemTime::now(),
        status,
        comm: b"sleep".to_vec(),
        lifetime: Duration::from_millis(5),
    };
    let x = t.exit(&mk(3 << 8)).event(&mk(3 << 8));
    assert_eq!(
        (x.exit_code, x.signal, x.core_dumped),
        (Some(3), None, false)
    );
    assert_eq!(x.exec_id.as_deref(), Some("60:/bin/sleep"));
    let x = t.exit(&mk(9)).event(&mk(9));
    assert_eq!((x.exit_code, x.signal), (None, Some(9)));
    let x = t.exit(&mk(11 | 0x80)).event(&mk(11 | 0x80));
    assert_eq!((x.signal, x.core_dumped), (Some(11), true));
    assert_eq!(t.stats().processes, 1, "lingers after exit");
}

#[test]
fn cap_bounds_memory() {
    let mut t = ProcessTable::new(50);
    for i in 0..500u32 {
        t.fork(Fork {
            child: key(i + 100, i as u64),
            parent: key(1, 1),
        });
        t.exit(&Exit {
            key: key(i + 100, i as u64),
            ppid: 1,
            time: SystemTime::now(),
            status: 0,
            comm: vec![],
            lifetime: Duration::ZERO,
        });
    }
    assert!(t.stats().processes <= 50);
    assert!(t.stats().evicted_for_cap >= 450);
}

#[test]
#[cfg(target_os = "linux")]
fn seeds_this_process_from_proc() {
    let mut t = ProcessTable::new(100_000);
    t.seed_from_proc(&mut crate::enrich::names::NameCache::new());
    let me = std::process::id();
    let k = *t
        .by_pid
        .get(&me)
        .expect("this test process is in the table");
    let p = &t.procs[&k];
    assert!(p.image.exe.is_some());
    assert!(p.image.euid.is_some());
    assert!(p.image.user.is_some(), "named at the scan");
    assert!(
        p.parent.is_some(),
        "its parent (cargo or a shell) was running too"
    );
}
