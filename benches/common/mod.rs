//! Shared by the benchmarks: timing a step, and the event they measure.

#![allow(dead_code)]

use std::hint::black_box;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use procwatch::event::{CapSets, Credentials, ExecEvent, Privileges};

/// A sink output that discards (but cannot be optimised away).
pub struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Mean time of one call of `f` over `n` calls, after a warm-up of n/10.
pub fn per_event(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

/// A root exec with all capabilities, as the BPF source reports it.
pub fn root_exec(pid: u32, exe: &[u8], filename: &[u8], argv: &[&[u8]]) -> ExecEvent {
    let mut ev = ExecEvent::new(SystemTime::now(), pid, Some(1), format!("{pid}:123456789"));
    ev.tid = Some(pid);
    ev.exec_tid = Some(pid);
    ev.process_start = Some(SystemTime::now());
    ev.exe = Some(exe.to_vec());
    ev.filename = Some(filename.to_vec());
    ev.argv = Some(argv.iter().map(|a| a.to_vec()).collect());
    ev.argv_size = Some(argv.iter().map(|a| a.len() as u64 + 1).sum());
    ev.cwd = Some(b"/root".to_vec());
    // In procwatch's mount namespace: its paths are the host's.
    ev.ns.exe_other_mnt_ns = Some(false);
    ev.comm = Some(b"true".to_vec());
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials::default(),
        caps: CapSets {
            effective: 0x1ff_ffff_ffff,
            permitted: 0x1ff_ffff_ffff,
            ..CapSets::default()
        },
        secureexec: Some(false),
        file: None,
        raised: None,
    });
    ev
}
