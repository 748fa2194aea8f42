//! Memory under a stalled writer: a chain of execs with 16 KiB argv while
//! procwatch's output is blocked must stay within the queue's byte bound,
//! with every dropped exec counted and reported in-band.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// `VmHWM` (peak) and `VmRSS` of `pid`, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    };
    (kb("VmHWM:"), kb("VmRSS:"))
}

#[root_test("runs the eBPF monitor")]
fn big_argv_chain_with_a_blocked_writer_stays_within_the_memory_bound() {
    const LIMIT: u64 = 128 << 20;
    const EXECS_PER_THREAD: usize = 4000;
    let tag = unique_tag("bigargv");
    let mut child = Command::new(PROCWATCH)
        .args(["--format", "jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn procwatch");
    let pid = child.id();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let err_reader = collect(child.stderr.take().unwrap(), Arc::clone(&stderr));
    // Read the start line only; from then on nobody reads stdout, so the
    // writer blocks once the pipe is full while the reader keeps queueing.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"event\":\"start\""), "{first}");
    let big = "x".repeat(16 << 10);
    let t0 = Instant::now();
    let spawners: Vec<_> = (0..2)
        .map(|t| {
            let (tag, big) = (tag.clone(), big.clone());
            thread::spawn(move || {
                for i in 0..EXECS_PER_THREAD {
                    let _ = Command::new("/bin/true")
                        .args([&tag, &format!("{t}-{i}"), &big])
                        .status();
                }
            })
        })
        .collect();
    let mut peak_seen = 0;
    while spawners.iter().any(|s| !s.is_finished()) {
        peak_seen = peak_seen.max(rss(pid).1);
        thread::sleep(Duration::from_millis(50));
    }
    for s in spawners {
        s.join().unwrap();
    }
    let storm = t0.elapsed();
    // Give the reader time to queue what the ring still holds.
    thread::sleep(Duration::from_millis(500));
    let (hwm, now) = rss(pid);
    // Unblock the writer, then stop.
    let stdout = Arc::new(Mutex::new(first.into_bytes()));
    let out_reader = collect(out, Arc::clone(&stdout));
    thread::sleep(Duration::from_millis(500));
    // SAFETY: kill with a pid we own.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    out_reader.join().unwrap();
    err_reader.join().unwrap();
    let stderr = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
    assert!(status.success(), "{status}: {stderr}");
    let text = String::from_utf8(std::mem::take(&mut *stdout.lock().unwrap())).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(parse_line).collect();
    let tagged = execs_with_tag(&lines, &tag).len();
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop", "{stop}");
    let n = |k: &str| stop[k].as_u64().unwrap_or_else(|| panic!("{k} in {stop}"));
    eprintln!(
        "{} execs of 16 KiB argv in {storm:?} with the writer blocked: peak RSS {} MiB \
         (sampled {} MiB, {} MiB after), {tagged} tagged written, queue_dropped {}, \
         kernel dropped {}",
        2 * EXECS_PER_THREAD,
        hwm >> 20,
        peak_seen >> 20,
        now >> 20,
        n("queue_dropped"),
        n("dropped"),
    );
    assert!(hwm < LIMIT, "peak RSS {} MiB", hwm >> 20);
    // The bound was reached: execs were dropped, counted and reported.
    assert!(n("queue_dropped") > 0, "{stop}");
    let reported: u64 = lines
        .iter()
        .filter(|v| v["event"] == "loss" && v["place"] == "queue")
        .map(|v| v["dropped"].as_u64().unwrap())
        .sum();
    assert!(
        reported >= n("queue_dropped"),
        "loss events report {reported}"
    );
    assert_eq!(
        n("received"),
        n("written") + n("filtered") + n("queue_dropped"),
        "every exec read is written, filtered or counted as dropped: {stop}"
    );
}
