//! The proc connector's wire format (`linux/connector.h`, `linux/cn_proc.h`):
//! building the subscribe message and decoding received datagrams.
//!
//! Everything is parsed from bytes with explicit offsets rather than by
//! casting to `#[repr(C)]` structs, so a short or hostile datagram can only
//! produce an error, never undefined behaviour.

/// `CN_IDX_PROC` / `CN_VAL_PROC`: the connector id of the proc connector,
/// also the multicast group to bind to.
pub const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN` / `PROC_CN_MCAST_IGNORE`.
pub const MCAST_LISTEN: u32 = 1;
/// Unsubscribe request.
pub const MCAST_IGNORE: u32 = 2;

const NLMSG_HDR: usize = 16;
const CN_MSG_HDR: usize = 20;
/// Offset of `proc_event.event_data` inside `proc_event`.
const EV_DATA: usize = 16;
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;

const WHAT_NONE: u32 = 0;
const WHAT_FORK: u32 = 1;
const WHAT_EXEC: u32 = 2;
const WHAT_EXIT: u32 = 0x8000_0000;

/// One decoded proc connector event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcEvent {
    /// Acknowledgement of a (un)subscribe request; `err` is an errno.
    Ack { err: u32 },
    /// A new task: a process when `child_pid == child_tgid`, else a thread.
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
        ts_ns: u64,
    },
    /// A successful exec; the kernel sends it after the new image is set up.
    Exec { pid: u32, tgid: u32, ts_ns: u64 },
    /// A task exited.
    Exit {
        pid: u32,
        tgid: u32,
        exit_code: u32,
        ts_ns: u64,
    },
    /// Anything else (uid/gid/sid/comm/ptrace/coredump changes).
    Other,
}

/// Builds the netlink message that subscribes (or unsubscribes) `op`.
pub fn control_message(op: u32, nl_pid: u32) -> Vec<u8> {
    let total = NLMSG_HDR + CN_MSG_HDR + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&nl_pid.to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // ack
    m.extend_from_slice(&4u16.to_ne_bytes()); // len
    m.extend_from_slice(&0u16.to_ne_bytes()); // flags
    m.extend_from_slice(&op.to_ne_bytes());
    m
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

/// Decodes every netlink message in one datagram. A malformed message ends
/// the walk (its length cannot be trusted) and is reported as `Err`.
pub fn decode_datagram(buf: &[u8], out: &mut Vec<ProcEvent>) -> Result<(), String> {
    let mut off = 0;
    while off + NLMSG_HDR <= buf.len() {
        let len = u32_at(buf, off).unwrap_or(0) as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            return Err(format!("bad netlink message length {len} at {off}"));
        }
        let ty = u16_at(buf, off + 4).unwrap_or(0);
        let msg = &buf[off..off + len];
        if ty == NLMSG_ERROR {
            return Err("netlink error message".into());
        }
        out.push(decode_cn(&msg[NLMSG_HDR..]).ok_or("short proc connector message")?);
        // Messages are 4-byte aligned (NLMSG_ALIGN).
        off += (len + 3) & !3;
    }
    Ok(())
}

/// Decodes the `cn_msg` + `proc_event` payload of one message.
fn decode_cn(cn: &[u8]) -> Option<ProcEvent> {
    if u32_at(cn, 0)? != CN_IDX_PROC || u32_at(cn, 4)? != CN_VAL_PROC {
        return Some(ProcEvent::Other);
    }
    let ev = cn.get(CN_MSG_HDR..)?;
    let what = u32_at(ev, 0)?;
    let ts_ns = u64_at(ev, 8)?;
    let d = |i: usize| u32_at(ev, EV_DATA + 4 * i);
    Some(match what {
        WHAT_NONE => ProcEvent::Ack { err: d(0)? },
        WHAT_FORK => ProcEvent::Fork {
            parent_tgid: d(1)?,
            child_pid: d(2)?,
            child_tgid: d(3)?,
            ts_ns,
        },
        WHAT_EXEC => ProcEvent::Exec {
            pid: d(0)?,
            tgid: d(1)?,
            ts_ns,
        },
        WHAT_EXIT => ProcEvent::Exit {
            pid: d(0)?,
            tgid: d(1)?,
            exit_code: d(2)?,
            ts_ns,
        },
        _ => ProcEvent::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel sends it, for one event.
    fn datagram(what: u32, ts: u64, data: &[u32]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes()); // cpu
        ev.extend_from_slice(&ts.to_ne_bytes());
        for d in data {
            ev.extend_from_slice(&d.to_ne_bytes());
        }
        let mut m = control_message(0, 0);
        m.truncate(NLMSG_HDR + CN_MSG_HDR);
        m.extend_from_slice(&ev);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn subscribe_message_layout() {
        let m = control_message(MCAST_LISTEN, 77);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 12), Some(77));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(MCAST_LISTEN));
    }

    #[test]
    fn decodes_each_kind() {
        let mut out = Vec::new();
        let mut buf = datagram(WHAT_EXEC, 5, &[10, 10]);
        buf.extend(datagram(WHAT_FORK, 6, &[1, 1, 11, 11]));
        buf.extend(datagram(WHAT_EXIT, 7, &[11, 11, 256, 17, 1, 1]));
        buf.extend(datagram(WHAT_NONE, 0, &[1]));
        buf.extend(datagram(0x200, 0, &[1, 1, 0, 0]));
        decode_datagram(&buf, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                ProcEvent::Exec {
                    pid: 10,
                    tgid: 10,
                    ts_ns: 5
                },
                ProcEvent::Fork {
                    parent_tgid: 1,
                    child_pid: 11,
                    child_tgid: 11,
                    ts_ns: 6
                },
                ProcEvent::Exit {
                    pid: 11,
                    tgid: 11,
                    exit_code: 256,
                    ts_ns: 7
                },
                ProcEvent::Ack { err: 1 },
                ProcEvent::Other,
            ]
        );
    }

    #[test]
    fn rejects_truncated_and_bad_lengths() {
        let mut out = Vec::new();
        let good = datagram(WHAT_EXEC, 5, &[10, 10]);
        assert!(decode_datagram(&good[..good.len() - 1], &mut out).is_err());
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(decode_datagram(&bad, &mut out).is_err());
        // Exec payload cut short inside the message.
        let mut short = datagram(WHAT_EXEC, 5, &[10]);
        let len = short.len() as u32;
        short[..4].copy_from_slice(&len.to_ne_bytes());
        assert!(decode_datagram(&short, &mut out).is_err());
        // Trailing bytes shorter than a header are ignored.
        out.clear();
        let mut tail = good.clone();
        tail.extend_from_slice(&[0; 8]);
        decode_datagram(&tail, &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }
}
