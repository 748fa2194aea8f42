//! The exe hash under attack by the user it watches: files rewritten in
//! place or replaced by a reused inode number must never lend their hash to
//! the exec of another file; a filesystem that never answers, or a binary
//! rewritten between execs to make every hash a miss, must not delay or
//! hide any exec, nor keep procwatch from exiting.

use crate::fuse;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// Exec events whose argv holds an argument starting with `prefix`, keyed
/// by that argument.
fn by_arg<'a>(lines: &'a [Value], prefix: &str) -> HashMap<String, &'a Value> {
    let mut out = HashMap::new();
    for v in lines.iter().filter(|v| v["event"] == "exec") {
        for a in v["argv"].as_array().into_iter().flatten() {
            if let Some(s) = a.as_str().filter(|s| s.starts_with(prefix)) {
                assert!(out.insert(s.to_owned(), v).is_none(), "{s} seen twice");
            }
        }
    }
    out
}

#[root_test("runs the eBPF monitor and execs as nobody")]
fn rewritten_or_replaced_exe_never_gets_the_other_files_hash() {
    const N: usize = 100;
    let tag = unique_tag("rewrite");
    let dir = open_tempdir();
    let (id, env, tru) = (
        canonical("/usr/bin/id"),
        canonical("/usr/bin/env"),
        canonical("/usr/bin/true"),
    );
    // a: exec, exit, rewrite in place (same inode, other size and times);
    // b: the process itself rewrites the file while it lives, once it
    //    exec'd something else (a running image cannot be written);
    // c: exec, delete, and move a new file with a likely reused inode
    //    number onto the path.
    let script = r#"
        T=$1; N=$2; ID=$3; ENV=$4; TRUE=$5
        for i in $(seq 1 "$N"); do
            cp "$ID" m; ./m "$T-a-$i" >/dev/null 2>&1; cat "$TRUE" > m
            cp "$ENV" r; ./r "$T-b-$i=1" TRUE="$TRUE" /bin/sh -c 'cat "$TRUE" > r'
            cp "$ID" x; ./x "$T-c-$i" >/dev/null 2>&1; rm x; cp "$TRUE" y; mv y x
            stat -c %i x >> inodes
        done
    "#;
    let mon = Monitor::start(&["--format", "jsonl", "--fields", "+exe_inode"]);
    run_ok(Command::new("sh").current_dir(dir.path()).args([
        "-c",
        script,
        "sh",
        &tag,
        &N.to_string(),
        &id,
        &env,
        &tru,
    ]));
    let done = mon.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let execs = by_arg(&lines, &tag);
    let (sha_id, sha_env, sha_true) = (sha256_of(&id), sha256_of(&env), sha256_of(&tru));
    // How often the replacement really got the executed file's inode
    // number (filesystem-dependent, so only reported).
    let inodes = std::fs::read_to_string(dir.path().join("inodes")).unwrap();
    let inodes: Vec<u64> = inodes.lines().map(|l| l.parse().unwrap()).collect();
    let reused = (1..=N)
        .filter(|i| execs[&format!("{tag}-c-{i}")]["exe_inode"]["ino"] == inodes[i - 1])
        .count();
    let mut right = 0;
    let mut null = 0;
    for (kind, want) in [("a", &sha_id), ("b", &sha_env), ("c", &sha_id)] {
        for i in 1..=N {
            let arg = match kind {
                "b" => format!("{tag}-b-{i}=1"),
                _ => format!("{tag}-{kind}-{i}"),
            };
            let ev = execs
                .get(&arg)
                .unwrap_or_else(|| panic!("exec {arg} missing"));
            let (sha, why) = final_sha256(&lines, ev);
            assert_ne!(sha, sha_true.as_str(), "{arg}: the replacement's hash");
            match sha.as_str() {
                Some(s) => {
                    assert_eq!(s, want.as_str(), "{arg}: a hash of another file");
                    right += 1;
                }
                None => {
                    assert!(
                        why.as_str().is_some_and(|w| !w.is_empty()),
                        "{arg}: null without a reason"
                    );
                    null += 1;
                }
            }
        }
    }
    eprintln!(
        "{} execs: {right} with the right hash, {null} null with a reason; \
         inode number reused by the replacement in {reused} of {N}",
        3 * N
    );
}

/// Runs three tagged execs of /bin/true and insists each is written
/// within a second of its start, whatever the hasher is stuck on; returns
/// where a search of the output may resume.
fn later_execs_are_written_at_once(mon: &Monitor, tag: &str) -> usize {
    let mut from = 0;
    for i in 0..3 {
        let arg = format!("{tag}-later-{i}");
        let t = Instant::now();
        run_ok(Command::new("/bin/true").arg(&arg));
        let (seen, at) = mon
            .wait_for_text(&arg, from, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{arg} not written within 10 s"));
        from = at;
        let latency = seen - t;
        assert!(
            latency < Duration::from_secs(1),
            "{arg} written after {latency:?}"
        );
    }
    from
}

#[root_test("runs the eBPF monitor and mounts FUSE")]
fn a_stalling_fuse_file_costs_its_hash_never_an_exec_or_the_exit() {
    let tag = unique_tag("fuse");
    let dir = open_tempdir();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mon = Monitor::start(&["--format", "jsonl"]);
    let true_bin = std::fs::read(canonical("/usr/bin/true")).unwrap();
    let fs = fuse::StallFs::mount(&mnt, true_bin, mon.pid());
    // Root runs a binary from the FUSE mount; its server would hold any
    // read procwatch made of it.
    let on_fuse = format!("{tag}-on-fuse");
    run_ok(Command::new(fs.exe()).arg(&on_fuse));
    later_execs_are_written_at_once(&mon, &tag);
    // Time for the hasher and the checker to do whatever they would.
    thread::sleep(Duration::from_millis(500));
    // Were a read held after all, procwatch could not finish exiting until
    // the server lets go: release it after a while, so the test fails on
    // the assertions below instead of hanging.
    let fs = Arc::new(fs);
    let ended = Arc::new(AtomicBool::new(false));
    let guard = {
        let (fs, ended) = (Arc::clone(&fs), Arc::clone(&ended));
        thread::spawn(move || {
            let t = Instant::now();
            while !ended.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(8) {
                thread::sleep(Duration::from_millis(50));
            }
            fs.release();
        })
    };
    let (done, took) = mon.terminate();
    ended.store(true, Ordering::SeqCst);
    guard.join().unwrap();
    let held = fs.held.load(Ordering::SeqCst);
    drop(fs);
    assert!(took < Duration::from_secs(4), "SIGTERM took {took:?}");
    assert_eq!(held, 0, "procwatch sent reads to the FUSE server");
    done.assert_clean_exit();
    let lines = done.json_lines();
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"], "stop", "{stop}");
    assert_eq!(stop["reason"], "signal");
    let execs = by_arg(&lines, &tag);
    assert_eq!(execs.len(), 4, "every tagged exec is written");
    let ev = execs[on_fuse.as_str()];
    let (sha, why) = final_sha256(&lines, ev);
    assert_eq!(sha, Value::Null);
    assert!(why.as_str().unwrap_or_default().contains("FUSE"), "{why}");
    let hijack = ev["incomplete_reasons"]["hijackable"]
        .as_str()
        .unwrap_or_default();
    assert!(hijack.contains("FUSE"), "{}", ev["incomplete_reasons"]);
}

#[root_test("runs the eBPF monitor")]
fn a_binary_rewritten_between_execs_cannot_delay_a_root_exec() {
    let tag = unique_tag("cost");
    let dir = open_tempdir();
    // /usr/bin/true padded to ~60 MB: still runs, and costs a full read to
    // hash whenever its times change.
    let big = dir.path().join("big");
    let mut content = std::fs::read(canonical("/usr/bin/true")).unwrap();
    content.resize(60 << 20, 0);
    std::fs::write(&big, &content).unwrap();
    drop(content);
    std::fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mon = Monitor::start(&["--format", "jsonl"]);
    let cpu0 = mon.cpu_time();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let toucher = {
        let (stop, big) = (Arc::clone(&stop), big.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _ = Command::new("touch").arg(&big).status();
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let runner = {
        let (stop, big, tag) = (Arc::clone(&stop), big.clone(), tag.clone());
        thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let _ = Command::new(&big)
                    .arg(format!("{tag}-big-{n}"))
                    .stdout(Stdio::null())
                    .status();
                n += 1;
            }
            n
        })
    };
    let mut from = 0;
    let mut worst = Duration::ZERO;
    for i in 0..25 {
        thread::sleep(Duration::from_millis(200));
        let arg = format!("{tag}-root-{i}");
        let t = Instant::now();
        run_ok(Command::new("/bin/true").arg(&arg));
        let (seen, at) = mon
            .wait_for_text(&arg, from, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("{arg} not written within 30 s"));
        from = at;
        worst = worst.max(seen - t);
    }
    stop.store(true, Ordering::SeqCst);
    toucher.join().unwrap();
    let big_execs = runner.join().unwrap();
    let cpu = mon.cpu_time() - cpu0;
    let wall = t0.elapsed();
    let done = mon.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "{big_execs} execs of a 60 MB binary touched every 20 ms: worst root exec latency \
         {worst:?}, procwatch CPU {cpu:?} in {wall:?} ({:.0}% of one CPU)",
        share * 100.0
    );
    assert!(worst < Duration::from_secs(1), "a root exec took {worst:?}");
    assert!(share < 0.5, "procwatch used {:.0}% of a CPU", share * 100.0);
    // The budget, not luck, kept it cheap: some execs were not hashed.
    let budget = by_arg(&lines, &format!("{tag}-big-"))
        .values()
        .filter(|v| {
            v["incomplete_reasons"]["exe_sha256"]
                .as_str()
                .is_some_and(|r| r.starts_with("hash_budget"))
        })
        .count();
    assert!(big_execs < 5 || budget > 0, "no exec hit the byte budget");
}

#[root_test("runs the eBPF monitor and mounts FUSE")]
fn a_read_stuck_in_an_unseen_fuse_mount_is_given_up_and_exit_still_writes_stop() {
    let tag = unique_tag("fusens");
    let dir = open_tempdir();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mon = Monitor::start(&["--format", "jsonl", "--hash-timeout", "1"]);
    let victim = mon.pid();
    // The mount lives in a mount namespace of its own, as a user's would
    // in a container: not in procwatch's mount table, so only the
    // watchdog stands between a held read and the writer. The process
    // stays alive, so procwatch reads it through /proc/<pid>/exe.
    let (fs, mut child) = fuse::sleep_in_own_mount_ns(&mnt, victim, &tag, "4");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs.held.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "procwatch never read the FUSE file"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // The hasher thread is stuck; execs still come out at once.
    let from = later_execs_are_written_at_once(&mon, &tag);
    // After the time budget the watchdog gives the read up.
    mon.wait_for_text("did not return within 1s", 0, Duration::from_secs(10))
        .expect("the stuck hash is reported as given up");
    // SIGTERM: the stop event is written promptly, stuck thread or not.
    let t = Instant::now();
    // SAFETY: kill with a pid we own.
    unsafe { libc::kill(victim as i32, libc::SIGTERM) };
    let (seen, _) = mon
        .wait_for_text("\"event\":\"stop\"", from, Duration::from_secs(10))
        .expect("a stop event after SIGTERM");
    let took = seen - t;
    // A thread blocked in a FUSE request cannot be killed: the process ends
    // for good once the server answers.
    fs.release();
    let done = mon.wait();
    let _ = child.kill();
    let _ = child.wait();
    drop(fs);
    assert!(
        took < Duration::from_secs(4),
        "stop written {took:?} after SIGTERM"
    );
    done.assert_clean_exit();
    let lines = done.json_lines();
    assert_eq!(lines.last().unwrap()["event"], "stop");
    let execs = execs_with_tag(&lines, &tag);
    assert_eq!(execs.len(), 1, "the exec from the FUSE mount");
    let (sha, why) = final_sha256(&lines, execs[0]);
    assert_eq!(sha, Value::Null);
    assert!(
        why.as_str().unwrap_or_default().contains("did not return"),
        "{why}"
    );
}
