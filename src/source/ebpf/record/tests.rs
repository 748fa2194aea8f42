//! Records built from the `abi` structs, decoded and checked field by field.

use super::*;

fn exec_of(r: Item) -> ExecEvent {
    match r {
        Item::Exec {
            ev,
            start_ns,
            parent_start_ns,
        } => {
            assert_eq!((start_ns, parent_start_ns), (4_000_000_000, 3_000_000_000));
            *ev
        }
        other => panic!("not an exec: {other:?}"),
    }
}

#[test]
fn decodes_fork_and_exit_records() {
    let clock = BootClock::new().unwrap();
    let f = ForkRecord {
        version: RECORD_VERSION,
        kind: K_FORK,
        pid: 11,
        ppid: 10,
        time_boot_ns: 300,
        start_boot_ns: 200,
        parent_start_boot_ns: 100,
        ..ForkRecord::default()
    };
    match decode(abi::bytes_of(&f), &clock).unwrap() {
        Item::Fork(fk) => {
            assert_eq!(
                fk.child,
                ProcKey {
                    pid: 11,
                    start_ns: 200
                }
            );
            assert_eq!(
                fk.parent,
                ProcKey {
                    pid: 10,
                    start_ns: 100
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let mut comm = [0u8; 16];
    comm[..5].copy_from_slice(b"sleep");
    let mut x = ExitRecord {
        version: RECORD_VERSION,
        kind: K_EXIT,
        pid: 11,
        ppid: 1,
        exit_code: 3 << 8,
        time_boot_ns: 2_000_000_200,
        start_boot_ns: 200,
        comm,
    };
    match decode(abi::bytes_of(&x), &clock).unwrap() {
        Item::Exit(e) => {
            assert_eq!(
                e.key,
                ProcKey {
                    pid: 11,
                    start_ns: 200
                }
            );
            assert_eq!((e.ppid, e.status), (1, 3 << 8));
            assert_eq!(e.lifetime, Duration::from_secs(2));
            assert_eq!(e.comm, b"sleep");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode(&abi::bytes_of(&x)[..20], &clock).unwrap_err(),
        RecordError::Short(20)
    );
    x.kind = 9;
    assert_eq!(
        decode(abi::bytes_of(&x), &clock).unwrap_err(),
        RecordError::Kind(9)
    );
}

/// Builds a record the way the BPF program lays it out: the header,
/// then the five strings.
fn record(
    flags: u32,
    argv: &[u8],
    filename: &[u8],
    interp: &[u8],
    exe: &[u8],
    cwd: &[u8],
) -> Vec<u8> {
    record_from(header(flags), argv, filename, interp, exe, cwd)
}

/// The header of the records below: a uid-1000 process after the exec
/// of a setuid-root file.
fn header(flags: u32) -> RecordHdr {
    let mut comm = [0u8; 16];
    comm[..4].copy_from_slice(b"true");
    RecordHdr {
        version: RECORD_VERSION,
        kind: K_EXEC,
        flags,
        exec_boot_ns: 5_000_000_000,
        start_boot_ns: 4_000_000_000,
        cap_effective: 1 << 13,
        cap_permitted: 1 << 13,
        pid: 42,
        tid: 42,
        exec_tid: 7,
        ppid: 1,
        uid: 1000,
        euid: 0,
        suid: 1000,
        fsuid: 0,
        gid: 2000,
        egid: 0,
        sgid: 2000,
        fsgid: 0,
        loginuid: 1000,
        sessionid: 3,
        file_mode: 0o104755,
        file_uid: 0,
        file_gid: 0,
        comm,
        file_ino: 777,
        file_dev: (8 << 20) | 1,
        parent_start_boot_ns: 3_000_000_000,
        pre_uid: 1000,
        pre_euid: 1000,
        file_size: 39_256,
        mtime_sec: 1_700_000_000,
        ctime_sec: 1_700_000_500,
        mtime_nsec: 123_456_789,
        ctime_nsec: 999_999_999,
        ..RecordHdr::default()
    }
}

/// `h` with its lengths and `argv_size` set, followed by the strings.
fn record_from(
    mut h: RecordHdr,
    argv: &[u8],
    filename: &[u8],
    interp: &[u8],
    exe: &[u8],
    cwd: &[u8],
) -> Vec<u8> {
    let len = |b: &[u8]| u16::try_from(b.len()).unwrap();
    h.argv_size = argv.len() as u64;
    h.argv_len = len(argv);
    h.filename_len = len(filename);
    h.interp_len = len(interp);
    h.exe_len = len(exe);
    h.cwd_len = len(cwd);
    let mut r = abi::bytes_of(&h).to_vec();
    for part in [argv, filename, interp, exe, cwd] {
        r.extend_from_slice(part);
    }
    r
}

#[test]
fn decodes_every_field() {
    let clock = BootClock::new().unwrap();
    let rec = record(
        F_HAS_AUDIT | F_SECUREEXEC | F_HAS_INTERP | F_HAS_STAMP,
        b"/bin/sh\0./x\0a b\0\0",
        b"./x",
        b"/bin/sh",
        b"/usr/bin/dash",
        b"/tmp",
    );
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(
        (ev.pid, ev.tid, ev.exec_tid, ev.ppid),
        (42, Some(42), Some(7), Some(1))
    );
    assert_eq!(ev.exec_id, "42:5000000000");
    assert_eq!(
        ev.argv.unwrap(),
        vec![
            b"/bin/sh".to_vec(),
            b"./x".to_vec(),
            b"a b".to_vec(),
            Vec::new()
        ]
    );
    assert!(!ev.argv_truncated);
    assert_eq!(ev.filename.as_deref(), Some(&b"./x"[..]));
    assert_eq!(ev.interpreter.as_deref(), Some(&b"/bin/sh"[..]));
    assert_eq!(ev.exe.as_deref(), Some(&b"/usr/bin/dash"[..]));
    assert_eq!(ev.cwd.as_deref(), Some(&b"/tmp"[..]));
    assert_eq!(ev.comm.as_deref(), Some(&b"true"[..]));
    let Some(Privileges::Linux {
        creds,
        caps,
        secureexec,
        file,
        raised,
    }) = &ev.privileges
    else {
        unreachable!()
    };
    // A setuid-root exec, but the enricher decides that, not the decoder.
    assert_eq!(*raised, None);
    assert_eq!(
        (creds.uid, creds.euid, creds.suid, creds.fsuid),
        (1000, 0, 1000, 0)
    );
    assert_eq!(
        (creds.gid, creds.egid, creds.sgid, creds.fsgid),
        (2000, 0, 2000, 0)
    );
    assert_eq!(creds.login_uid, Some(1000));
    assert_eq!(creds.session_id, Some(3));
    assert_eq!(caps.effective, 1 << 13);
    assert_eq!(*secureexec, Some(true));
    assert_eq!(ev.exe_dev_ino, Some((libc::makedev(8, 1), 777)));
    assert_eq!(ev.pre_exec, None, "no F_HAS_PRE");
    let h = RecordHdr {
        pre_cap_effective: 1 << 21,
        ..header(F_HAS_PRE)
    };
    let pre = exec_of(decode(&record_from(h, b"", b"/x", b"", b"/x", b"/"), &clock).unwrap());
    assert_eq!(
        pre.pre_exec,
        Some(PreExec {
            uid: 1000,
            euid: 1000,
            caps_effective: 1 << 21,
        })
    );
    assert_eq!(file.unwrap().mode, 0o104755);
    assert_eq!(
        ev.exe_stamp,
        Some(FileStamp {
            size: 39_256,
            mtime: (1_700_000_000, 123_456_789),
            ctime: (1_700_000_500, 999_999_999),
        })
    );
    let gap = ev.time.duration_since(ev.process_start.unwrap()).unwrap();
    assert_eq!(gap.as_nanos(), 1_000_000_000);
}

#[test]
fn truncated_argv_keeps_the_partial_argument() {
    let clock = BootClock::new().unwrap();
    let rec = record(F_ARGV_TRUNC, b"a\0bc", b"/x", b"", b"/x", b"/");
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(ev.argv.unwrap(), [b"a".to_vec(), b"bc".to_vec()]);
    assert!(ev.argv_truncated);
    assert_eq!(ev.interpreter, None);
    let Some(Privileges::Linux {
        creds, secureexec, ..
    }) = &ev.privileges
    else {
        unreachable!()
    };
    assert_eq!(creds.login_uid, None, "no F_HAS_AUDIT: unknown, not 1000");
    assert_eq!(*secureexec, Some(false));
}

#[test]
fn memfd_exe_is_rendered_like_proc_exe() {
    let clock = BootClock::new().unwrap();
    let rec = record(
        F_EXE_PSEUDO | F_SECUREEXEC_UNKNOWN,
        b"x\0",
        b"/dev/fd/3",
        b"",
        b"/memfd:t",
        b"/",
    );
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(ev.exe.as_deref(), Some(&b"/memfd:t (deleted)"[..]));
    let Some(Privileges::Linux { secureexec, .. }) = &ev.privileges else {
        panic!()
    };
    assert_eq!(*secureexec, None);
}

#[test]
fn exec_id_is_pid_colon_ns() {
    for (pid, ns) in [
        (0, 0),
        (1, 9),
        (42, 5_000_000_000),
        (4_194_304, 123_456_789_012),
        (u32::MAX, u64::MAX),
    ] {
        assert_eq!(exec_id(pid, ns), format!("{pid}:{ns}"));
    }
}

#[test]
fn stamp_needs_its_flag_and_a_file() {
    let clock = BootClock::new().unwrap();
    // An older kernel (no discrete inode time fields): no flag, no stamp.
    let rec = record(0, b"x\0", b"/x", b"", b"/x", b"/");
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert!(ev.exe_dev_ino.is_some());
    assert_eq!(ev.exe_stamp, None);
    // No file at all: no stamp even if the flag were set.
    let rec = record(F_NO_FILE | F_HAS_STAMP, b"x\0", b"/x", b"", b"", b"/");
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!((ev.exe_dev_ino, ev.exe_stamp), (None, None));
    // Times before the epoch keep their sign.
    let h = RecordHdr {
        mtime_sec: -2,
        ..header(F_HAS_STAMP)
    };
    let rec = record_from(h, b"x\0", b"/x", b"", b"/x", b"/");
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(ev.exe_stamp.unwrap().mtime, (-2, 123_456_789));
}

#[test]
fn namespace_groups_need_their_flags() {
    let clock = BootClock::new().unwrap();
    let all = F_HAS_NS | F_HAS_PIDNS | F_HAS_USERNS | F_HAS_MNT_ID;
    let h = RecordHdr {
        ns_pid_own: 101,
        ns_pid_children: 102,
        ns_mnt: 103,
        ns_net: 104,
        ns_user: 105,
        ns_uts: 106,
        ns_ipc: 107,
        ns_cgroup: 108,
        ns_pid: 3,
        pidns_level: 1,
        userns_level: 2,
        userns_owner: 65534,
        cgroup_id: 4242,
        exe_mnt_id: 77,
        ..header(all)
    };
    let rec = record_from(h, b"x\0", b"/x", b"", b"/x", b"/");
    let ev = exec_of(decode(&rec, &clock).unwrap());
    let want = Namespaces {
        pid: 101,
        pid_for_children: 102,
        mnt: 103,
        net: 104,
        user: 105,
        uts: 106,
        ipc: 107,
        cgroup: 108,
    };
    assert_eq!(ev.ns.namespaces, Some(want));
    assert_eq!((ev.ns.ns_pid, ev.ns.pidns_level), (Some(3), Some(1)));
    assert_eq!(
        ev.ns.user_ns,
        Some(UserNs {
            level: 2,
            owner_uid: 65534
        })
    );
    assert_eq!(ev.ns.cgroup_id, Some(4242));
    assert_eq!(ev.ns.exe_mnt_id, Some(77));
    assert!(ev.incomplete.is_empty(), "{:?}", ev.incomplete);

    // The same values without the flags: every group null, with a reason,
    // never the zeros or stale values of the record.
    let rec = record_from(
        RecordHdr {
            flags: 0,
            cgroup_id: 0,
            ..h
        },
        b"x\0",
        b"/x",
        b"",
        b"/x",
        b"/",
    );
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(ev.ns, crate::event::NsInfo::default());
    let fields: Vec<_> = ev.incomplete.iter().map(|i| i.field).collect();
    assert_eq!(
        fields,
        [
            "namespaces",
            "ns_pid",
            "in_host_userns",
            "cgroup",
            "exe_mnt_id"
        ]
    );
    // Namespaces without the task's own pid namespace: no object holding 0.
    let rec = record_from(
        RecordHdr {
            flags: F_HAS_NS | F_HAS_USERNS,
            ..h
        },
        b"x\0",
        b"/x",
        b"",
        b"/x",
        b"/",
    );
    let ev = exec_of(decode(&rec, &clock).unwrap());
    assert_eq!(ev.ns.namespaces, None);
}

#[test]
fn rejects_malformed_records() {
    let clock = BootClock::new().unwrap();
    assert_eq!(decode(&[0; 3], &clock).unwrap_err(), RecordError::Short(3));
    let mut rec = record(0, b"a\0", b"/a", b"", b"/a", b"/");
    rec.truncate(size_of::<RecordHdr>() + 3);
    assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Lengths);
    let h = RecordHdr {
        version: 9,
        ..header(0)
    };
    let rec = record_from(h, b"a\0", b"/a", b"", b"/a", b"/");
    assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Version(9));
    let rec = record(0, b"", b"", b"", b"", b"");
    let short = size_of::<RecordHdr>() - 1;
    assert_eq!(
        decode(&rec[..short], &clock).unwrap_err(),
        RecordError::Short(short)
    );
}
