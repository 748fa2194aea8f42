//! Shared fixtures for the sink tests.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::*;

/// A `Write + Send` whose contents the test can read after the sink
/// (which owns a boxed clone) has written to it.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    pub fn string(&self) -> String {
        String::from_utf8(self.bytes()).expect("sink output is UTF-8")
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// 2026-11-26T05:26:10.123456789Z
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_670_770, 123_456_789)
}

pub fn exec_event() -> ExecEvent {
    let mut ev = ExecEvent::new(t0(), 4242, Some(1000), "4242:123456789".to_owned());
    ev.tid = Some(4242);
    ev.exec_tid = Some(4243);
    ev.process_start = Some(t0() - Duration::from_secs(2));
    ev.exe = Some(b"/usr/bin/ls".to_vec());
    ev.filename = Some(b"/bin/ls".to_vec());
    ev.argv = Some(vec![b"ls".to_vec(), b"-la".to_vec(), b"/tmp".to_vec()]);
    ev.argv_size = Some(12);
    ev.cwd = Some(b"/home/alice".to_vec());
    ev.comm = Some(b"ls".to_vec());
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials {
            uid: 1000,
            euid: 1001,
            suid: 1002,
            fsuid: 1003,
            gid: 100,
            egid: 101,
            sgid: 102,
            fsgid: 103,
            login_uid: Some(1000),
            session_id: Some(7),
        },
        caps: CapSets::default(),
        secureexec: Some(false),
        file: Some(FileInfo {
            mode: 0o100755,
            uid: 0,
            gid: 0,
        }),
        raised: None,
    });
    ev.user = Some("alice".into());
    ev.group = Some("users".into());
    ev.login_user = Some("alice".into());
    ev
}

/// setuid from uid 1000 to root, no capability named.
pub fn setuid_change() -> PrivilegeChange {
    PrivilegeChange {
        cause: ChangeCause::Setuid,
        from_euid: 1000,
        from_caps: 0,
        to_euid: 0,
        gained_caps: 0,
        launcher: None,
    }
}

/// A root job running `sh /opt/job.sh` where alice can write /opt.
pub fn hijack_dir() -> Hijack {
    Hijack {
        path: b"/opt/job.sh".to_vec(),
        role: HijackRole::InterpreterArg,
        writable: b"/opt".to_vec(),
        writers: vec!["user alice".to_owned()],
    }
}

/// An exec whose every byte field is hostile.
pub fn hostile_exec() -> ExecEvent {
    let mut ev = exec_event();
    ev.argv = Some(vec![
        b"-sh".to_vec(),
        b"-c".to_vec(),
        b"echo \x1b]0;pwned\x07; rm -rf / # \xff\xfe".to_vec(),
        b"a,b\"c\r\nd".to_vec(),
        "\u{202e}txt.exe".as_bytes().to_vec(),
        "=HYPERLINK(\"x\")".as_bytes().to_vec(),
        b"".to_vec(),
        "\u{9b}2J\x7f".as_bytes().to_vec(),
    ]);
    ev.exe = Some(b"/tmp/\x1b[2Jevil,\"dir\"\n/\xc3(x".to_vec());
    ev.filename = Some(b"./\xff".to_vec());
    ev.interpreter = Some(b"/bin/\x1bsh".to_vec());
    ev.cwd = Some(b"/tmp/\r\n".to_vec());
    ev.comm = Some(b"\x1b[31m".to_vec());
    ev.user = Some("bob\x1b[0m".into());
    ev
}

pub fn start_info() -> StartInfo {
    StartInfo {
        rules: Default::default(),
        time: t0(),
        source: "ebpf".to_owned(),
        attach: "tp_btf/sched_process_exec".to_owned(),
        version: "0.1.0".to_owned(),
        hostname: "host1".to_owned(),
        boot_id: "0f0e-boot".to_owned(),
        guarantees: "every exec after start".to_owned(),
        can_miss: "execs when the ring buffer is full (reported as loss)".to_owned(),
        pid: 99,
        coverage: Default::default(),
        continuation: false,
    }
}

pub fn loss_info() -> LossInfo {
    LossInfo {
        time: t0(),
        place: LossPlace::Kernel,
        dropped: 12,
        total: 40,
    }
}

pub fn stop_info() -> StopInfo {
    StopInfo {
        time: t0(),
        reason: "signal".to_owned(),
        counters: Counters {
            seen: 100,
            emitted: 88,
            dropped: 12,
            truncated: 3,
            received: 88,
            queue_dropped: 5,
            aux_dropped: 0,
            written: 83,
            filtered: 4,
            ..Default::default()
        },
    }
}

/// The nasty inputs used for round trips: every single byte, invalid
/// UTF-8, shell syntax, bidi and invisible characters.
pub fn nasty_inputs() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (1u8..=255).map(|b| vec![b]).collect();
    let strs: &[&[u8]] = &[
        b"",
        b"'",
        b"''",
        b"\"",
        b"a'b\"c",
        b"$(id)",
        b"`id`",
        b"${HOME}",
        b"$HOME",
        b"*",
        b"?",
        b"[a-z]",
        b"~",
        b"~root",
        b"#comment",
        b"!",
        b"!!",
        b"!-1",
        b"-rf",
        b"--",
        b"-",
        b"a b",
        b" leading",
        b"trailing ",
        b"a\nb",
        b"a\r\nb",
        b"\x1b[31mred\x1b[0m",
        b"\x1b]0;title\x07",
        b"tab\there",
        b"back\\slash",
        b"\\x41",
        b"\\'",
        b"\x01a",
        b"\x1bF",
        b"\xff\xfe",
        b"\xc3",
        b"\xc3(",
        b"\xe2\x82",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xc0\xaf",
        "caf\u{e9}".as_bytes(),
        "\u{202e}gnp.exe".as_bytes(),
        "a\u{2028}b\u{2029}c".as_bytes(),
        "\u{2066}x\u{2069}".as_bytes(),
        "zero\u{200b}width".as_bytes(),
        "\u{85}next".as_bytes(),
        "\u{9b}31m".as_bytes(),
        "nb\u{a0}sp".as_bytes(),
        "\u{e0041}tag".as_bytes(),
        "\u{1f600}".as_bytes(),
        b"a=b",
        b"%1",
        b"{a,b}",
        b"a;b|c&d>e<f",
        b"(sub)",
    ];
    v.extend(strs.iter().map(|s| s.to_vec()));
    let mut big = Vec::new();
    for i in 0..20_000u32 {
        big.push((i % 255 + 1) as u8);
    }
    v.push(big);
    v
}
