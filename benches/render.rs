//! `cargo bench --bench render`: CPU cost of the user-space path per event
//! (decode-free: enrich + render + write to a sink that discards), for each
//! format, against a baseline that only clones the event. Reports ratios
//! to the baseline measured in the same run, and ns per event.

use std::hint::black_box;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use procwatch::enrich::Enricher;
use procwatch::event::{CapSets, Credentials, Event, ExecEvent, FileInfo, Privileges};
use procwatch::sink::{Format, make_sink};

struct Discard;

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A typical root exec: short argv, all capabilities.
fn root_exec() -> ExecEvent {
    let mut ev = ExecEvent::new(SystemTime::now(), 4242, 1, "4242:123456789".into());
    ev.tid = Some(4242);
    ev.exec_tid = Some(4242);
    ev.process_start = Some(SystemTime::now());
    ev.exe = Some(b"/usr/bin/true".to_vec());
    ev.filename = Some(b"/bin/true".to_vec());
    ev.argv = Some(vec![
        b"/bin/true".to_vec(),
        b"pwbench-0123456789abcdef".to_vec(),
    ]);
    ev.argv_size = Some(35);
    ev.cwd = Some(b"/root".to_vec());
    ev.comm = Some(b"true".to_vec());
    ev.privileges = Some(Privileges::Linux {
        creds: Credentials::default(),
        caps: CapSets {
            effective: 0x1ff_ffff_ffff,
            permitted: 0x1ff_ffff_ffff,
            ..CapSets::default()
        },
        secureexec: Some(false),
        file: Some(FileInfo {
            mode: 0o100755,
            uid: 0,
            gid: 0,
        }),
        raised: None,
    });
    ev
}

fn per_event(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n
}

fn main() {
    const N: u32 = 200_000;
    let ev = root_exec();
    let baseline = per_event(N, || {
        black_box(Box::new(ev.clone()));
    });
    println!(
        "baseline (clone an event): {:>7.0} ns/event",
        baseline.as_nanos()
    );
    let mut enricher = Enricher::new();
    for (name, format) in [
        ("text", Format::Text),
        ("csv", Format::Csv),
        ("jsonl", Format::Jsonl),
    ] {
        let mut sink = make_sink(format, Box::new(Discard), false, Default::default());
        let cost = per_event(N, || {
            let mut e = Box::new(ev.clone());
            enricher.enrich(&mut e);
            sink.write_event(&Event::Exec(e)).unwrap();
        });
        println!(
            "{name:>5}: {:>7.0} ns/event  ({:.1}x baseline)",
            cost.as_nanos(),
            cost.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}
