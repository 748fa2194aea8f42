//! Decodes one ring-buffer record (the layout of `procwatch.h`) into an
//! [`ExecEvent`]. Pure code: no kernel, no I/O, unit-tested on hand-built
//! records.

use std::time::Duration;

use crate::enrich::raise::privilege_raise;
use crate::event::{
    Bytes, CapSets, Credentials, ExecEvent, FileInfo, FileStamp, PreExec, Privileges,
};
use crate::event::{Exit, Fork, ProcKey};
use crate::linux::clock::BootClock;
use crate::source::{Item, RecordKind};

/// Must match `RECORD_VERSION` in procwatch.h.
pub const RECORD_VERSION: u16 = 3;
/// Record kinds, as in procwatch.h.
pub const K_EXEC: u16 = 1;
pub const K_FORK: u16 = 2;
pub const K_EXIT: u16 = 3;
/// `sizeof(struct record_hdr)`.
pub const HDR_LEN: usize = 232;
/// `sizeof(struct fork_record)`.
pub const FORK_LEN: usize = 40;
/// `sizeof(struct exit_record)`.
pub const EXIT_LEN: usize = 48;

// record_hdr.flags, as in procwatch.h.
pub const F_ARGV_TRUNC: u32 = 1 << 0;
pub const F_ARGV_FAULT: u32 = 1 << 1;
pub const F_FILENAME_TRUNC: u32 = 1 << 2;
pub const F_HAS_INTERP: u32 = 1 << 3;
pub const F_INTERP_UNKNOWN: u32 = 1 << 4;
pub const F_EXE_TRUNC: u32 = 1 << 5;
pub const F_EXE_PSEUDO: u32 = 1 << 6;
pub const F_EXE_UNLINKED: u32 = 1 << 7;
pub const F_CWD_TRUNC: u32 = 1 << 8;
pub const F_CWD_MISSING: u32 = 1 << 9;
pub const F_SECUREEXEC: u32 = 1 << 10;
pub const F_SECUREEXEC_UNKNOWN: u32 = 1 << 11;
pub const F_HAS_AUDIT: u32 = 1 << 12;
pub const F_NO_FILE: u32 = 1 << 13;
pub const F_HAS_PRE: u32 = 1 << 14;
pub const F_HAS_STAMP: u32 = 1 << 15;

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

/// Little-endian field reader over the header.
struct Hdr<'a>(&'a [u8]);

impl Hdr<'_> {
    fn u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.0[off..off + 2].try_into().unwrap())
    }
    fn u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0[off..off + 4].try_into().unwrap())
    }
    fn u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.0[off..off + 8].try_into().unwrap())
    }
    fn i64(&self, off: usize) -> i64 {
        i64::from_le_bytes(self.0[off..off + 8].try_into().unwrap())
    }
}

/// The audit "unset" id.
const AUDIT_UNSET: u32 = u32::MAX;

/// The kind of a raw record, from its header alone.
pub fn kind(rec: &[u8]) -> RecordKind {
    match rec.get(2..4) {
        Some(k) if u16::from_le_bytes([k[0], k[1]]) == K_EXEC => RecordKind::Exec,
        _ => RecordKind::Aux,
    }
}

/// Decodes any record. `clock` turns kernel boot-time stamps into wall time.
pub fn decode(rec: &[u8], clock: &BootClock) -> Result<Item, RecordError> {
    if rec.len() < 4 {
        return Err(RecordError::Short(rec.len()));
    }
    let h = Hdr(rec);
    let version = h.u16(0);
    if version != RECORD_VERSION {
        return Err(RecordError::Version(version));
    }
    match h.u16(2) {
        K_EXEC => decode_exec(rec, clock),
        K_FORK if rec.len() >= FORK_LEN => Ok(Item::Fork(Fork {
            child: ProcKey {
                pid: h.u32(4),
                start_ns: h.u64(24),
            },
            parent: ProcKey {
                pid: h.u32(8),
                start_ns: h.u64(32),
            },
        })),
        K_EXIT if rec.len() >= EXIT_LEN => {
            let (time_ns, start_ns) = (h.u64(16), h.u64(24));
            Ok(Item::Exit(Exit {
                key: ProcKey {
                    pid: h.u32(4),
                    start_ns,
                },
                ppid: h.u32(8),
                status: h.u32(12),
                time: clock.to_wall(time_ns),
                lifetime: Duration::from_nanos(time_ns.saturating_sub(start_ns)),
                comm: cstr(&rec[32..48]),
            }))
        }
        K_FORK | K_EXIT => Err(RecordError::Short(rec.len())),
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
    if rec.len() < HDR_LEN {
        return Err(RecordError::Short(rec.len()));
    }
    let h = Hdr(&rec[..HDR_LEN]);
    let flags = h.u32(4);
    let exec_boot_ns = h.u64(8);
    let start_boot_ns = h.u64(16);
    let argv_size = h.u64(24);
    let caps = CapSets {
        effective: h.u64(32),
        permitted: h.u64(40),
        inheritable: h.u64(48),
        ambient: h.u64(56),
    };
    let pid = h.u32(64);
    let creds = Credentials {
        uid: h.u32(80),
        euid: h.u32(84),
        suid: h.u32(88),
        fsuid: h.u32(92),
        gid: h.u32(96),
        egid: h.u32(100),
        sgid: h.u32(104),
        fsgid: h.u32(108),
        login_uid: audit_id(flags, h.u32(112)),
        session_id: audit_id(flags, h.u32(116)),
    };
    let file = (flags & F_NO_FILE == 0).then(|| FileInfo {
        mode: h.u32(120),
        uid: h.u32(124),
        gid: h.u32(128),
    });
    let lens = [h.u16(132), h.u16(134), h.u16(136), h.u16(138), h.u16(140)].map(usize::from);
    let comm = cstr(&rec[144..160]);
    let (file_ino, file_dev, parent_start_ns) = (h.u64(160), h.u32(168), h.u64(176));

    let mut data = &rec[HDR_LEN..];
    let mut fields: [&[u8]; 5] = [&[]; 5];
    for (field, len) in fields.iter_mut().zip(lens) {
        if len > data.len() {
            return Err(RecordError::Lengths);
        }
        let (head, rest) = data.split_at(len);
        *field = head;
        data = rest;
    }
    let [argv_bytes, filename, interp, exe, cwd] = fields;

    let secureexec = (flags & F_SECUREEXEC_UNKNOWN == 0).then_some(flags & F_SECUREEXEC != 0);
    let raised = privilege_raise(&creds, &caps, file.as_ref(), secureexec);
    let mut ev = ExecEvent::new(
        clock.to_wall(exec_boot_ns),
        pid,
        Some(h.u32(76)),
        exec_id(pid, exec_boot_ns),
    );
    ev.tid = Some(h.u32(68));
    ev.exec_tid = Some(h.u32(72));
    ev.process_start = Some(clock.to_wall(start_boot_ns));
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
    ev.argv_size = Some(argv_size);
    ev.cwd = (flags & F_CWD_MISSING == 0 && !cwd.is_empty()).then(|| cwd.to_vec());
    ev.comm = Some(comm);
    ev.privileges = Some(Privileges::Linux {
        creds,
        caps,
        secureexec,
        file,
        raised,
    });
    ev.exe_dev_ino = (flags & F_NO_FILE == 0).then(|| (user_dev(file_dev), file_ino));
    ev.pre_exec = (flags & F_HAS_PRE != 0).then(|| PreExec {
        uid: h.u32(184),
        euid: h.u32(188),
        caps_effective: h.u64(192),
    });
    ev.exe_stamp = (flags & (F_NO_FILE | F_HAS_STAMP) == F_HAS_STAMP).then(|| FileStamp {
        size: h.u64(200),
        mtime: (h.i64(208), i64::from(h.u32(224))),
        ctime: (h.i64(216), i64::from(h.u32(228))),
    });
    Ok(Item::Exec {
        ev: Box::new(ev),
        start_ns: start_boot_ns,
        parent_start_ns,
    })
}

/// `"<pid>:<exec boot ns>"`, built right to left in a stack buffer and
/// copied into a String of exactly its length: one allocation, where
/// `format!` grew its String two or three times through the fmt machinery.
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
    // Sized exactly: collecting grew the Vec for more than four arguments.
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
        let mut f = vec![0u8; FORK_LEN];
        f[0..2].copy_from_slice(&RECORD_VERSION.to_le_bytes());
        f[2..4].copy_from_slice(&K_FORK.to_le_bytes());
        f[4..8].copy_from_slice(&11u32.to_le_bytes());
        f[8..12].copy_from_slice(&10u32.to_le_bytes());
        f[24..32].copy_from_slice(&200u64.to_le_bytes());
        f[32..40].copy_from_slice(&100u64.to_le_bytes());
        match decode(&f, &clock).unwrap() {
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
        let mut x = vec![0u8; EXIT_LEN];
        x[0..2].copy_from_slice(&RECORD_VERSION.to_le_bytes());
        x[2..4].copy_from_slice(&K_EXIT.to_le_bytes());
        x[4..8].copy_from_slice(&11u32.to_le_bytes());
        x[8..12].copy_from_slice(&1u32.to_le_bytes());
        x[12..16].copy_from_slice(&(3u32 << 8).to_le_bytes());
        x[16..24].copy_from_slice(&2_000_000_200u64.to_le_bytes());
        x[24..32].copy_from_slice(&200u64.to_le_bytes());
        x[32..37].copy_from_slice(b"sleep");
        match decode(&x, &clock).unwrap() {
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
            decode(&x[..20], &clock).unwrap_err(),
            RecordError::Short(20)
        );
        x[2] = 9;
        assert_eq!(decode(&x, &clock).unwrap_err(), RecordError::Kind(9));
    }

    /// Builds a record the way the BPF program lays it out.
    fn record(
        flags: u32,
        argv: &[u8],
        filename: &[u8],
        interp: &[u8],
        exe: &[u8],
        cwd: &[u8],
    ) -> Vec<u8> {
        let mut r = vec![0u8; HDR_LEN];
        r[0..2].copy_from_slice(&RECORD_VERSION.to_le_bytes());
        r[2..4].copy_from_slice(&K_EXEC.to_le_bytes());
        r[4..8].copy_from_slice(&flags.to_le_bytes());
        r[8..16].copy_from_slice(&5_000_000_000u64.to_le_bytes());
        r[16..24].copy_from_slice(&4_000_000_000u64.to_le_bytes());
        r[24..32].copy_from_slice(&(argv.len() as u64).to_le_bytes());
        r[32..40].copy_from_slice(&(1u64 << 13).to_le_bytes());
        r[40..48].copy_from_slice(&(1u64 << 13).to_le_bytes());
        for (i, v) in [
            42u32, 42, 7, 1, 1000, 0, 1000, 0, 2000, 0, 2000, 0, 1000, 3, 0o104755, 0, 0,
        ]
        .iter()
        .enumerate()
        {
            let o = 64 + 4 * i;
            r[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
        for (i, l) in [
            argv.len(),
            filename.len(),
            interp.len(),
            exe.len(),
            cwd.len(),
        ]
        .iter()
        .enumerate()
        {
            let o = 132 + 2 * i;
            r[o..o + 2].copy_from_slice(&(*l as u16).to_le_bytes());
        }
        r[144..148].copy_from_slice(b"true");
        r[160..168].copy_from_slice(&777u64.to_le_bytes());
        r[168..172].copy_from_slice(&((8u32 << 20) | 1).to_le_bytes());
        r[176..184].copy_from_slice(&3_000_000_000u64.to_le_bytes());
        r[184..188].copy_from_slice(&1000u32.to_le_bytes());
        r[188..192].copy_from_slice(&1000u32.to_le_bytes());
        r[200..208].copy_from_slice(&39_256u64.to_le_bytes());
        r[208..216].copy_from_slice(&1_700_000_000i64.to_le_bytes());
        r[216..224].copy_from_slice(&1_700_000_500i64.to_le_bytes());
        r[224..228].copy_from_slice(&123_456_789u32.to_le_bytes());
        r[228..232].copy_from_slice(&999_999_999u32.to_le_bytes());
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
            ..
        }) = &ev.privileges
        else {
            unreachable!()
        };
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
        let mut rec = record(F_HAS_STAMP, b"x\0", b"/x", b"", b"/x", b"/");
        rec[208..216].copy_from_slice(&(-2i64).to_le_bytes());
        let ev = exec_of(decode(&rec, &clock).unwrap());
        assert_eq!(ev.exe_stamp.unwrap().mtime, (-2, 123_456_789));
    }

    #[test]
    fn rejects_malformed_records() {
        let clock = BootClock::new().unwrap();
        assert_eq!(decode(&[0; 3], &clock).unwrap_err(), RecordError::Short(3));
        let mut rec = record(0, b"a\0", b"/a", b"", b"/a", b"/");
        rec.truncate(HDR_LEN + 3);
        assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Lengths);
        rec[0] = 9;
        assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Version(9));
    }
}
