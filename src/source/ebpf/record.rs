//! Decodes one ring-buffer record (the layout of `procwatch.h`, read
//! through its mirror structs in [`super::abi`]) into an [`ExecEvent`], a
//! fork or an exit. Only the raw facts: what they mean (such as whether the
//! exec raised privileges) is decided in `enrich`. Pure code: no kernel, no
//! I/O, unit-tested on records built from the structs.

use std::mem::size_of;
use std::time::Duration;

use super::abi::{
    self, ExitRecord, F_ARGV_FAULT, F_ARGV_TRUNC, F_CWD_MISSING, F_EXE_PSEUDO, F_EXE_TRUNC,
    F_EXE_UNLINKED, F_HAS_AUDIT, F_HAS_INTERP, F_HAS_MNT_ID, F_HAS_NS, F_HAS_PIDNS, F_HAS_PRE,
    F_HAS_STAMP, F_HAS_USERNS, F_INTERP_UNKNOWN, F_NO_FILE, F_SECUREEXEC, F_SECUREEXEC_UNKNOWN,
    ForkRecord, K_EXEC, K_EXIT, K_FORK, RECORD_VERSION, RecordHdr, RecordPrefix,
};

use crate::event::{
    Bytes, CapSets, Credentials, ExecEvent, FileInfo, FileStamp, Namespaces, PreExec, Privileges,
    UserNs,
};
use crate::event::{Exit, Fork, ProcKey};
use crate::linux::clock::BootClock;
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
    decode_ns(&h, &mut ev);
    Ok(Item::Exec {
        ev: Box::new(ev),
        start_ns: h.start_boot_ns,
        parent_start_ns: h.parent_start_boot_ns,
    })
}

/// The namespace, cgroup and mount fields; a group the kernel could not
/// read (its flag unset) is null with the reason.
fn decode_ns(h: &RecordHdr, ev: &mut ExecEvent) {
    const NO_FIELD: &str = "this kernel's structures lack the field";
    let flags = h.flags;
    if flags & F_HAS_NS != 0 {
        ev.ns.namespaces = Some(Namespaces {
            pid: h.ns_pid_own,
            pid_for_children: h.ns_pid_children,
            mnt: h.ns_mnt,
            net: h.ns_net,
            user: h.ns_user,
            uts: h.ns_uts,
            ipc: h.ns_ipc,
            cgroup: h.ns_cgroup,
        });
    } else {
        ev.mark_incomplete("namespaces", NO_FIELD);
    }
    if flags & F_HAS_NS != 0 && flags & F_HAS_PIDNS == 0 {
        // The task's own pid namespace is part of `namespaces`: without it
        // the object would hold a 0.
        ev.ns.namespaces = None;
        ev.mark_incomplete("namespaces", "the task's pid namespace could not be read");
    }
    if flags & F_HAS_PIDNS != 0 {
        ev.ns.ns_pid = Some(h.ns_pid);
        ev.ns.pidns_level = Some(h.pidns_level);
    } else {
        ev.mark_incomplete("ns_pid", NO_FIELD);
    }
    if flags & F_HAS_USERNS != 0 {
        ev.ns.user_ns = Some(UserNs {
            level: h.userns_level,
            owner_uid: h.userns_owner,
        });
    } else {
        ev.mark_incomplete("in_host_userns", NO_FIELD);
    }
    if h.cgroup_id != 0 {
        ev.ns.cgroup_id = Some(h.cgroup_id);
    } else {
        ev.mark_incomplete("cgroup", "the kernel gave no cgroup v2 id");
    }
    if flags & (F_HAS_MNT_ID | F_NO_FILE) == F_HAS_MNT_ID {
        ev.ns.exe_mnt_id = Some(h.exe_mnt_id);
    } else if flags & F_NO_FILE == 0 {
        ev.mark_incomplete("exe_mnt_id", NO_FIELD);
    }
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
mod tests;
