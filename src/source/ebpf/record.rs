//! Decodes one ring-buffer record (the layout of `procwatch.h`, read
//! through its mirror structs in [`super::abi`]) into an [`ExecEvent`], a
//! fork or an exit. Only the raw facts: what they mean (such as whether the
//! exec raised privileges) is decided in `enrich`. Pure code: no kernel, no
//! I/O, unit-tested on records built from the structs.

use std::mem::size_of;
use std::time::Duration;

use super::abi::{
    self, ExitRecord, F_ARGV_FAULT, F_ARGV_TRUNC, F_CWD_MISSING, F_EXE_PSEUDO, F_EXE_TRUNC,
    F_EXE_UNLINKED, F_HAS_AUDIT, F_HAS_INTERP, F_HAS_PRE, F_HAS_STAMP, F_INTERP_UNKNOWN, F_NO_FILE,
    F_SECUREEXEC, F_SECUREEXEC_UNKNOWN, ForkRecord, K_EXEC, K_EXIT, K_FORK, RECORD_VERSION,
    RecordHdr, RecordPrefix,
};

use crate::enrich::clock::BootClock;
use crate::enrich::table::{Exit, Fork, ProcKey};
use crate::event::{
    Bytes, CapSets, Credentials, ExecEvent, FileInfo, FileStamp, PreExec, Privileges,
};
use crate::source::{Item, RecordKind};

/// Why a record could not be decoded. It never happens with a matching
/// object; it is counted, not ignored, if it does.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    Short(usize),
    Version(u16),
    Kind(u16),
    Lengths,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short(n) => write!(f, "record of {n} bytes is shorter than its header"),
            RecordError::Version(v) => write!(f, "record version {v}, expected {RECORD_VERSION}"),
            RecordError::Kind(k) => write!(f, "unknown record kind {k}"),
            RecordError::Lengths => write!(f, "record field lengths exceed the record"),
        }
    }
}

/// The audit "unset" id.
const AUDIT_UNSET: u32 = u32::MAX;

/// The kind of a raw record, from its prefix alone.
pub fn kind(rec: &[u8]) -> RecordKind {
    match abi::read::<RecordPrefix>(rec) {
        Some(p) if p.kind == K_EXEC => RecordKind::Exec,
        _ => RecordKind::Aux,
    }
}

/// Decodes any record. `clock` turns kernel boot-time stamps into wall time.
pub fn decode(rec: &[u8], clock: &BootClock) -> Result<Item, RecordError> {
    let prefix = abi::read::<RecordPrefix>(rec).ok_or(RecordError::Short(rec.len()))?;
    if prefix.version != RECORD_VERSION {
        return Err(RecordError::Version(prefix.version));
    }
    match prefix.kind {
        K_EXEC => decode_exec(rec, clock),
        K_FORK => {
            let r = abi::read::<ForkRecord>(rec).ok_or(RecordError::Short(rec.len()))?;
            Ok(Item::Fork(Fork {
                child: ProcKey {
                    pid: r.pid,
                    start_ns: r.start_boot_ns,
                },
                parent: ProcKey {
                    pid: r.ppid,
                    start_ns: r.parent_start_boot_ns,
                },
            }))
        }
        K_EXIT => {
            let r = abi::read::<ExitRecord>(rec).ok_or(RecordError::Short(rec.len()))?;
            Ok(Item::Exit(Exit {
                key: ProcKey {
                    pid: r.pid,
                    start_ns: r.start_boot_ns,
                },
                ppid: r.ppid,
                status: r.exit_code,
                time: clock.to_wall(r.time_boot_ns),
                lifetime: Duration::from_nanos(r.time_boot_ns.saturating_sub(r.start_boot_ns)),
                comm: cstr(&r.comm),
            }))
        }
        k => Err(RecordError::Kind(k)),
    }
}

/// The bytes of a fixed-size, NUL-padded kernel string.
fn cstr(b: &[u8]) -> Vec<u8> {
    b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec()
}

/// Converts the kernel's dev_t encoding (major << 20 | minor) to the one
/// `stat(2)` reports, so the two can be compared.
fn user_dev(kdev: u32) -> u64 {
    libc::makedev(kdev >> 20, kdev & 0xfffff)
}

fn decode_exec(rec: &[u8], clock: &BootClock) -> Result<Item, RecordError> {
    let h = abi::read::<RecordHdr>(rec).ok_or(RecordError::Short(rec.len()))?;
    let flags = h.flags;
    let caps = CapSets {
        effective: h.cap_effective,
        permitted: h.cap_permitted,
        inheritable: h.cap_inheritable,
        ambient: h.cap_ambient,
    };
    let creds = Credentials {
        uid: h.uid,
        euid: h.euid,
        suid: h.suid,
        fsuid: h.fsuid,
        gid: h.gid,
        egid: h.egid,
        sgid: h.sgid,
        fsgid: h.fsgid,
        login_uid: audit_id(flags, h.loginuid),
        session_id: audit_id(flags, h.sessionid),
    };
    let file = (flags & F_NO_FILE == 0).then_some(FileInfo {
        mode: h.file_mode,
        uid: h.file_uid,
        gid: h.file_gid,
    });

    // The variable part: the five strings back to back, in this order.
    let mut data = &rec[size_of::<RecordHdr>()..];
    let mut fields: [&[u8]; 5] = [&[]; 5];
    let lens = [
        h.argv_len,
        h.filename_len,
        h.interp_len,
        h.exe_len,
        h.cwd_len,
    ];
    for (field, len) in fields.iter_mut().zip(lens.map(usize::from)) {
        if len > data.len() {
            return Err(RecordError::Lengths);
        }
        let (head, rest) = data.split_at(len);
        *field = head;
        data = rest;
    }
    let [argv_bytes, filename, interp, exe, cwd] = fields;

    let secureexec = (flags & F_SECUREEXEC_UNKNOWN == 0).then_some(flags & F_SECUREEXEC != 0);
    let mut ev = ExecEvent::new(
        clock.to_wall(h.exec_boot_ns),
        h.pid,
        Some(h.ppid),
        exec_id(h.pid, h.exec_boot_ns),
    );
    ev.tid = Some(h.tid);
    ev.exec_tid = Some(h.exec_tid);
    ev.process_start = Some(clock.to_wall(h.start_boot_ns));
    ev.exe = (flags & F_NO_FILE == 0).then(|| exe_path(exe, flags));
    ev.exe_truncated = flags & F_EXE_TRUNC != 0;
    ev.filename = Some(filename.to_vec());
    ev.interpreter = (flags & F_HAS_INTERP != 0).then(|| interp.to_vec());
    if flags & F_INTERP_UNKNOWN != 0 {
        ev.mark_incomplete("interpreter", "the classic tracepoint does not expose it");
    }
    ev.argv = Some(split_argv(argv_bytes, flags & F_ARGV_TRUNC != 0));
    if flags & F_ARGV_FAULT != 0 {
        ev.mark_incomplete("argv", "the kernel could not read the new process's argv");
    }
    ev.argv_truncated = flags & (F_ARGV_TRUNC | F_ARGV_FAULT) != 0;
    ev.argv_size = Some(h.argv_size);
    ev.cwd = (flags & F_CWD_MISSING == 0 && !cwd.is_empty()).then(|| cwd.to_vec());
    ev.comm = Some(cstr(&h.comm));
    ev.privileges = Some(Privileges::Linux {
        creds,
        caps,
        secureexec,
        file,
        // Decided in the enricher (`enrich::raise::decide`).
        raised: None,
    });
    ev.exe_dev_ino = (flags & F_NO_FILE == 0).then(|| (user_dev(h.file_dev), h.file_ino));
    ev.pre_exec = (flags & F_HAS_PRE != 0).then_some(PreExec {
        uid: h.pre_uid,
        euid: h.pre_euid,
        caps_effective: h.pre_cap_effective,
    });
    ev.exe_stamp = (flags & (F_NO_FILE | F_HAS_STAMP) == F_HAS_STAMP).then(|| FileStamp {
        size: h.file_size,
        mtime: (h.mtime_sec, i64::from(h.mtime_nsec)),
        ctime: (h.ctime_sec, i64::from(h.ctime_nsec)),
    });
    Ok(Item::Exec {
        ev: Box::new(ev),
        start_ns: h.start_boot_ns,
        parent_start_ns: h.parent_start_boot_ns,
    })
}

/// `"<pid>:<exec boot ns>"`, built right to left in a stack buffer and
/// copied into a String of exactly its length: one allocation, where
/// `format!` grows its String two or three times through the fmt machinery.
fn exec_id(pid: u32, ns: u64) -> String {
    // u32::MAX has 10 digits and u64::MAX 20, plus the colon.
    const LEN: usize = 31;
    let mut buf = [0u8; LEN];
    let mut at = prepend_decimal(&mut buf, LEN, ns);
    at -= 1;
    buf[at] = b':';
    at = prepend_decimal(&mut buf, at, u64::from(pid));
    std::str::from_utf8(&buf[at..])
        .expect("ASCII digits")
        .to_owned()
}

/// Writes `v` in decimal to `buf` so that it ends at `end`; returns where
/// it starts.
fn prepend_decimal(buf: &mut [u8], mut end: usize, mut v: u64) -> usize {
    loop {
        end -= 1;
        buf[end] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return end;
        }
    }
}

fn audit_id(flags: u32, id: u32) -> Option<u32> {
    (flags & F_HAS_AUDIT != 0 && id != AUDIT_UNSET).then_some(id)
}

/// Renders the exe path the way `/proc/<pid>/exe` does, so the two can be
/// compared: a memfd or deleted file gets the kernel's " (deleted)" suffix.
fn exe_path(path: &[u8], flags: u32) -> Bytes {
    const DELETED: &[u8] = b" (deleted)";
    if flags & (F_EXE_PSEUDO | F_EXE_UNLINKED) != 0 {
        let mut p = Vec::with_capacity(path.len() + DELETED.len());
        p.extend_from_slice(path);
        p.extend_from_slice(DELETED);
        p
    } else {
        path.to_vec()
    }
}

/// Splits the raw argv block on NULs. A complete block ends with a NUL; a
/// truncated one ends mid-argument, and that partial argument is kept.
fn split_argv(block: &[u8], truncated: bool) -> Vec<Bytes> {
    if block.is_empty() {
        return Vec::new();
    }
    let body = match block.split_last() {
        Some((0, rest)) if !truncated => rest,
        _ => block,
    };
    // Sized exactly: collecting would grow the Vec for more than four
    // arguments.
    let mut argv = Vec::with_capacity(1 + body.iter().filter(|&&b| b == 0).count());
    argv.extend(body.split(|&b| b == 0).map(<[u8]>::to_vec));
    argv
}

#[cfg(test)]
mod tests {
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
}
