//! The writer bench itself (Linux: the hash and hijack check need it).

use std::fs;
use std::hint::black_box;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

use super::common::{self, Discard};
use clap::Parser;
use procwatch::cli::Cli;
use procwatch::event::FileStamp;
use procwatch::event::{Exit, Fork, ProcKey};
use procwatch::pipeline::replay;
use procwatch::sink::{Output, make_sink};
use procwatch::source::Item;

const EXECS: u32 = 50_000;
const RUNS: u32 = 5;
const EXE: &[u8] = b"/usr/bin/true";
/// The storm's parent (like the Python loop of bench/exec_storm.py).
const PARENT_PID: u32 = 3_000_000;

/// One exec of the storm: `/usr/bin/true <tag>` run by the parent.
fn exec_item(pid: u32, start_ns: u64, ppid: u32, meta: &fs::Metadata) -> Item {
    let mut ev = common::root_exec(
        pid,
        EXE,
        b"/bin/true",
        &[b"/bin/true", b"pwbench-0123456789abcdef0123456789abcdef"],
    );
    ev.ppid = Some(ppid);
    ev.exe_dev_ino = Some((meta.dev(), meta.ino()));
    ev.exe_stamp = Some(FileStamp::of(meta));
    Item::Exec {
        ev: Box::new(ev),
        start_ns,
        parent_start_ns: 1_000,
    }
}

/// The records of `n` execs: the parent's own exec, then fork, exec and
/// exit of each child. Built lazily, one exec at a time, as the reader
/// would hand them over (building them all up front made the allocator's
/// behaviour unlike a real run's).
fn storm(n: u32) -> impl Iterator<Item = Item> {
    let meta = fs::metadata(std::str::from_utf8(EXE).unwrap()).expect("stat /usr/bin/true");
    let parent = ProcKey {
        pid: PARENT_PID,
        start_ns: 1_000,
    };
    let first = exec_item(PARENT_PID, 1_000, 1, &meta);
    std::iter::once(first).chain((0..n).flat_map(move |i| {
        let child = ProcKey {
            pid: PARENT_PID + 1 + i,
            start_ns: 2_000 + u64::from(i) * 1_000,
        };
        [
            Item::Fork(Fork { child, parent }),
            exec_item(child.pid, child.start_ns, PARENT_PID, &meta),
            Item::Exit(Exit {
                key: child,
                ppid: PARENT_PID,
                time: SystemTime::now(),
                status: 0,
                comm: b"true".to_vec(),
                lifetime: Duration::from_micros(500),
            }),
        ]
    }))
}

/// Where the bench writes: procwatch's own output (`-o`: checked open,
/// write-error handling), a plain `BufWriter` of a file as the reference
/// for its cost, or nowhere.
#[derive(Clone, Copy)]
enum Dest {
    Output,
    BufWriter,
    Discard,
}

/// Best of `RUNS` of the writer over a fresh storm, in ns per exec. The
/// writer's set-up (seeding the table from /proc) is measured alone and
/// taken off.
fn measure(args: &[&str], to: Dest, baseline: f64) -> f64 {
    let cfg = Cli::try_parse_from(std::iter::once("procwatch").chain(args.iter().copied()))
        .expect("bench arguments")
        .config()
        .expect("bench configuration");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut best = f64::INFINITY;
    for run in 0..RUNS {
        let run_once = |n: u32| {
            let path = dir.path().join(format!("out-{run}-{n}.jsonl"));
            let out: Box<dyn Write + Send> = match to {
                Dest::BufWriter => Box::new(io::BufWriter::with_capacity(
                    64 << 10,
                    fs::File::create(path).unwrap(),
                )),
                Dest::Output => {
                    let (out, _) = Output::open(Some(&path), false, false).unwrap();
                    Box::new(out)
                }
                Dest::Discard => Box::new(Discard),
            };
            let sink = make_sink(cfg.format, out, true, cfg.sink_options.clone());
            let mut sink = procwatch::sink::syslog::attach(sink, &cfg.syslog, "bench").unwrap();
            let t = Instant::now();
            let (written, filtered) =
                replay(&cfg, sink.as_mut(), storm(n).skip(usize::from(n == 0))).expect("replay");
            (t.elapsed(), written + filtered)
        };
        let (setup, _) = run_once(0);
        let (total, handled) = run_once(EXECS);
        assert_eq!(
            handled,
            u64::from(EXECS) + 1,
            "every exec is written or filtered"
        );
        // Building the records is the baseline's work, not the writer's.
        let ns = total.saturating_sub(setup).as_nanos() as f64 / f64::from(EXECS) - baseline;
        best = best.min(ns);
    }
    best
}

pub fn main() {
    let mut baseline = f64::INFINITY;
    for _ in 0..RUNS {
        let t = Instant::now();
        for item in storm(EXECS) {
            black_box(item);
        }
        baseline = baseline.min(t.elapsed().as_nanos() as f64 / f64::from(EXECS));
    }
    println!("baseline (build the fork+exec+exit records): {baseline:>6.0} ns/exec");
    // A receiver that never reads: the kernel drops what overflows it, the
    // writer's share (render, queue) is what is measured.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let syslog: &str = Box::leak(format!("udp://{}", udp.local_addr().unwrap()).into_boxed_str());
    let cases: [(&str, &[&str], Dest); 10] = [
        ("jsonl -> file", &["--format", "jsonl"], Dest::Output),
        (
            "jsonl -> BufWriter",
            &["--format", "jsonl"],
            Dest::BufWriter,
        ),
        ("jsonl -> discard", &["--format", "jsonl"], Dest::Discard),
        (
            "jsonl + syslog udp",
            &["--format", "jsonl", "--syslog", syslog],
            Dest::Output,
        ),
        // Every message dropped at the queue: the writer's own share
        // (rendering, the message), without the sender thread's sends.
        (
            "jsonl + syslog dropped",
            &[
                "--format",
                "jsonl",
                "--syslog",
                syslog,
                "--syslog-buffer",
                "1",
            ],
            Dest::Output,
        ),
        (
            "jsonl bare -> file",
            &["--format", "jsonl", "--no-hash", "--no-hijack-check"],
            Dest::Output,
        ),
        ("text -> file", &["--format", "text"], Dest::Output),
        ("text -> BufWriter", &["--format", "text"], Dest::BufWriter),
        ("csv -> discard", &["--format", "csv"], Dest::Discard),
        (
            "jsonl all filtered",
            &["--format", "jsonl", "--uid", "4242"],
            Dest::Discard,
        ),
    ];
    // `cargo bench --bench writer -- file`: only the cases named so.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if only.iter().any(|o| o == "sigma") {
        super::sigma::main(|args| measure(args, Dest::Discard, baseline));
        return;
    }
    for (name, args, to) in cases {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let ns = measure(args, to, baseline);
        println!(
            "{name:>20}: {ns:>6.0} ns/exec  ({:.1}x baseline)",
            ns / baseline
        );
    }
}
