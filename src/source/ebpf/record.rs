//! Decodes one ring-buffer record (the layout of `procwatch.h`) into an
//! [`ExecEvent`]. Pure code: no kernel, no I/O, unit-tested on hand-built
//! records.

use crate::enrich::clock::BootClock;
use crate::enrich::raise::privilege_raise;
use crate::event::{Bytes, CapSets, Credentials, ExecEvent, FileInfo, Privileges};

/// Must match `RECORD_VERSION` in procwatch.h.
pub const RECORD_VERSION: u32 = 1;
/// `sizeof(struct record_hdr)`.
pub const HDR_LEN: usize = 160;

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

/// Why a record could not be decoded. It never happens with a matching
/// object; it is counted, not ignored, if it does.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordError {
    Short(usize),
    Version(u32),
    Lengths,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short(n) => write!(f, "record of {n} bytes is shorter than its header"),
            RecordError::Version(v) => write!(f, "record version {v}, expected {RECORD_VERSION}"),
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
}

/// The audit "unset" id.
const AUDIT_UNSET: u32 = u32::MAX;

/// Decodes a record. `clock` turns kernel boot-time stamps into wall time.
pub fn decode(rec: &[u8], clock: &BootClock) -> Result<ExecEvent, RecordError> {
    if rec.len() < HDR_LEN {
        return Err(RecordError::Short(rec.len()));
    }
    let h = Hdr(&rec[..HDR_LEN]);
    let version = h.u32(0);
    if version != RECORD_VERSION {
        return Err(RecordError::Version(version));
    }
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
    let comm = &rec[144..160];
    let comm = comm[..comm.iter().position(|&b| b == 0).unwrap_or(comm.len())].to_vec();

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
        h.u32(76),
        format!("{pid}:{exec_boot_ns}"),
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
    Ok(ev)
}

fn audit_id(flags: u32, id: u32) -> Option<u32> {
    (flags & F_HAS_AUDIT != 0 && id != AUDIT_UNSET).then_some(id)
}

/// Renders the exe path the way `/proc/<pid>/exe` does, so the two can be
/// compared: a memfd or deleted file gets the kernel's " (deleted)" suffix.
fn exe_path(path: &[u8], flags: u32) -> Bytes {
    let mut p = path.to_vec();
    if flags & (F_EXE_PSEUDO | F_EXE_UNLINKED) != 0 {
        p.extend_from_slice(b" (deleted)");
    }
    p
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
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        r[0..4].copy_from_slice(&RECORD_VERSION.to_le_bytes());
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
        for part in [argv, filename, interp, exe, cwd] {
            r.extend_from_slice(part);
        }
        r
    }

    #[test]
    fn decodes_every_field() {
        let clock = BootClock::new().unwrap();
        let rec = record(
            F_HAS_AUDIT | F_SECUREEXEC | F_HAS_INTERP,
            b"/bin/sh\0./x\0a b\0\0",
            b"./x",
            b"/bin/sh",
            b"/usr/bin/dash",
            b"/tmp",
        );
        let ev = decode(&rec, &clock).unwrap();
        assert_eq!(
            (ev.pid, ev.tid, ev.exec_tid, ev.ppid),
            (42, Some(42), Some(7), 1)
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
        assert_eq!(file.unwrap().mode, 0o104755);
        let gap = ev.time.duration_since(ev.process_start.unwrap()).unwrap();
        assert_eq!(gap.as_nanos(), 1_000_000_000);
    }

    #[test]
    fn truncated_argv_keeps_the_partial_argument() {
        let clock = BootClock::new().unwrap();
        let rec = record(F_ARGV_TRUNC, b"a\0bc", b"/x", b"", b"/x", b"/");
        let ev = decode(&rec, &clock).unwrap();
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
        let ev = decode(&rec, &clock).unwrap();
        assert_eq!(ev.exe.as_deref(), Some(&b"/memfd:t (deleted)"[..]));
        let Some(Privileges::Linux { secureexec, .. }) = &ev.privileges else {
            panic!()
        };
        assert_eq!(*secureexec, None);
    }

    #[test]
    fn rejects_malformed_records() {
        let clock = BootClock::new().unwrap();
        assert_eq!(
            decode(&[0; 10], &clock).unwrap_err(),
            RecordError::Short(10)
        );
        let mut rec = record(0, b"a\0", b"/a", b"", b"/a", b"/");
        rec.truncate(HDR_LEN + 3);
        assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Lengths);
        rec[0] = 9;
        assert_eq!(decode(&rec, &clock).unwrap_err(), RecordError::Version(9));
    }
}
