//! Log rotation (mv + SIGHUP) and SIGUSR1 against the output file: no
//! event lost, none written twice.

use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::thread;

use crate::common::output::*;
use crate::common::*;
use serde_json::Value;

/// The tagged exec numbers in `lines`.
fn tagged_numbers(lines: &[Value], tag: &str) -> Vec<u64> {
    execs_with_tag(lines, tag)
        .iter()
        .map(|e| e["argv"][2].as_str().unwrap().parse().unwrap())
        .collect()
}

#[root_test("runs the eBPF monitor")]
fn sighup_after_mv_splits_the_execs_between_the_two_files_losing_none() {
    let dir = open_tempdir();
    let path = dir.path().join("log.jsonl");
    let rotated = dir.path().join("log.jsonl.1");
    let tag = unique_tag("hup");
    let mon = Running::start(&["--format", "jsonl", "-o", path.to_str().unwrap()]);
    wait_for("the start line", || read(&path).contains("\"start\""));
    // Execs run without pause across the rotation, until the new file
    // has some too.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let execs = {
        let (tag, stop) = (tag.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                run_ok(Command::new("/bin/true").arg(&tag).arg(n.to_string()));
                n += 1;
            }
            n
        })
    };
    wait_for("some execs", || lines_with(&path, &tag) >= 50);
    fs::rename(&path, &rotated).unwrap();
    mon.signal(libc::SIGHUP);
    wait_for("the reopen", || mon.stderr().contains("reopened"));
    wait_for("execs in the new file", || lines_with(&path, &tag) >= 50);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let n = execs.join().unwrap();
    let last = format!("\"{tag}\",\"{}\"", n - 1);
    wait_for("the last exec", || read(&path).contains(&last));
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(
        end.status.code(),
        Some(0),
        "SIGHUP is not fatal: {}",
        end.stderr
    );
    assert!(end.stderr.contains("reopened"), "{}", end.stderr);

    let old = json_lines(&read(&rotated));
    let new = json_lines(&read(&path));
    assert_eq!(old[0]["event"], "start");
    assert_eq!(old[0]["continuation"], false);
    assert!(
        old.iter().all(|l| l["event"] != "stop"),
        "the old file gets no stop"
    );
    assert_eq!(new[0]["event"], "start");
    assert_eq!(
        new[0]["continuation"], true,
        "the new file says it continues"
    );
    assert_eq!(new[0]["pid"], old[0]["pid"]);
    assert_eq!(new.last().unwrap()["event"], "stop");
    let mut seen = tagged_numbers(&old, &tag);
    let in_old = seen.len();
    seen.extend(tagged_numbers(&new, &tag));
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "each exec in exactly one file"
    );
    assert!(in_old >= 50, "split: {in_old} in the old file");
    assert_eq!(new.last().unwrap()["write_errors"], 0);
}

#[root_test("runs the eBPF monitor")]
fn sigusr1_writes_the_counters_so_far_in_the_stream() {
    let dir = open_tempdir();
    let path = dir.path().join("log.jsonl");
    let tag = unique_tag("usr1");
    let mon = Running::start(&["--format", "jsonl", "-o", path.to_str().unwrap()]);
    wait_for("the start line", || read(&path).contains("\"start\""));
    for i in 0..5 {
        run_ok(Command::new("/bin/true").arg(&tag).arg(i.to_string()));
    }
    wait_for("the execs", || lines_with(&path, &tag) == 5);
    mon.signal(libc::SIGUSR1);
    wait_for("the stats line", || read(&path).contains("\"stats\""));
    run_ok(Command::new("/bin/true").arg(&tag).arg("5"));
    wait_for("the exec after", || lines_with(&path, &tag) == 6);
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(
        end.status.code(),
        Some(0),
        "SIGUSR1 is not fatal: {}",
        end.stderr
    );
    let lines = json_lines(&read(&path));
    let at = lines.iter().position(|l| l["event"] == "stats").unwrap();
    let stats = &lines[at];
    // In the stream: exactly the execs before it were written so far.
    let before = lines[..at].iter().filter(|l| l["event"] == "exec").count() as u64;
    assert_eq!(stats["written"], before);
    assert_eq!(tagged_numbers(&lines[..at], &tag), [0, 1, 2, 3, 4]);
    assert_eq!(tagged_numbers(&lines[at..], &tag), [5]);
    // The stop event's counters, with the same JSON types.
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    for (k, v) in stop.as_object().unwrap() {
        if !["reason", "event", "time", "host"].contains(&k.as_str()) {
            assert!(v.is_u64() && stats[k].is_u64(), "{k}: {v} / {}", stats[k]);
        }
    }
    assert!(stats["received"].as_u64() >= stats["written"].as_u64());
}

#[root_test("runs the eBPF monitor")]
fn sighup_gives_a_rotated_csv_its_header_again() {
    let dir = open_tempdir();
    let path = dir.path().join("log.csv");
    let rotated = dir.path().join("log.csv.1");
    let (tag1, tag2) = (unique_tag("hupcsv1"), unique_tag("hupcsv2"));
    let mon = Running::start(&["--format", "csv", "-o", path.to_str().unwrap()]);
    wait_for("attach", || mon.stderr().contains("watching execs via"));
    run_ok(Command::new("/bin/true").arg(&tag1));
    wait_for("the first exec", || lines_with(&path, &tag1) == 1);
    fs::rename(&path, &rotated).unwrap();
    mon.signal(libc::SIGHUP);
    wait_for("the reopen", || mon.stderr().contains("reopened"));
    run_ok(Command::new("/bin/true").arg(&tag2));
    wait_for("the second exec", || lines_with(&path, &tag2) == 1);
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    for (p, tag) in [(&rotated, &tag1), (&path, &tag2)] {
        let text = read(p);
        assert!(text.starts_with("CommandLine,Time,"), "{text}");
        assert_eq!(text.matches("CommandLine,Time,").count(), 1);
        assert_eq!(lines_with(p, tag), 1);
    }
    assert_eq!(lines_with(&path, &tag1), 0);
}

#[root_test("runs the eBPF monitor")]
fn sigusr1_in_text_is_a_comment_line_and_in_csv_goes_to_stderr() {
    let dir = open_tempdir();
    let text = dir.path().join("log.txt");
    let mon = Running::start(&["--format", "text", "-o", text.to_str().unwrap()]);
    wait_for("the start line", || read(&text).starts_with("# procwatch "));
    mon.signal(libc::SIGUSR1);
    wait_for("the stats line", || {
        read(&text).contains("\n# stats: seen ")
    });
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    assert!(
        read(&text)
            .lines()
            .last()
            .unwrap()
            .starts_with("# stop (signal): ")
    );

    let csv = dir.path().join("log.csv");
    let mon = Running::start(&["--format", "csv", "-o", csv.to_str().unwrap()]);
    wait_for("attach", || mon.stderr().contains("watching execs via"));
    mon.signal(libc::SIGUSR1);
    wait_for("the stats message", || {
        mon.stderr().contains("procwatch: stats: seen ")
    });
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);
    assert!(
        !read(&csv).contains("stats"),
        "the CSV file holds only rows"
    );
}
