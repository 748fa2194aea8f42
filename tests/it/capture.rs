//! Capture tests against the real kernel: every tagged exec appears exactly
//! once, with the right argv, parentage, credentials and capabilities.
//! They need root (to load eBPF); CI runs them as root.

use std::process::Command;

use crate::common::*;
use serde_json::Value;

fn str_field<'a>(ev: &'a Value, key: &str) -> &'a str {
    ev[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {ev}"))
}

#[root_test("loads eBPF")]
fn sequential_execs_are_all_captured_with_exact_fields() {
    let tag = unique_tag("seq");
    let mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--fields",
        "+cmdline,+tid,+exec_tid,+filename,+argv_truncated",
    ]);
    const N: usize = 1000;
    for i in 0..N {
        run_ok(Command::new("/bin/true").arg(&tag).arg(i.to_string()));
    }
    let out = mon.stop();
    out.assert_clean_exit();
    let lines = out.json_lines();
    let execs = execs_with_tag(&lines, &tag);
    let accounting: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "loss" || l["event"] == "stop")
        .collect();
    // Complete unless a loss is reported: a loaded host (an exec storm
    // beside the tests) may overflow the ring or the queue, and then every
    // missing exec is counted.
    let stop = lines.last().unwrap();
    let lost = ["dropped", "queue_dropped"]
        .iter()
        .map(|k| stop[k].as_u64().unwrap())
        .sum::<u64>() as usize;
    assert!(
        execs.len() <= N && execs.len() + lost >= N,
        "expected {N} tagged execs, or fewer by at most the {lost} reported lost, got {}; \
         losses and stop: {accounting:?}",
        execs.len()
    );
    let me = std::process::id();
    let true_exe = canonical("/bin/true");
    let mut seen = vec![false; N];
    for ev in execs {
        let argv: Vec<&str> = ev["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv.len(), 3, "{ev}");
        assert_eq!(argv[0], "/bin/true");
        assert_eq!(argv[1], tag);
        let i: usize = argv[2].parse().unwrap();
        assert!(!seen[i], "exec {i} reported twice");
        seen[i] = true;
        assert_eq!(ev["ppid"], me, "parent is this test process");
        assert_eq!(ev["tid"], ev["pid"]);
        assert_eq!(ev["exec_tid"], ev["pid"]);
        assert_eq!(ev["uid"], 0);
        assert_eq!(ev["euid"], 0);
        assert_eq!(ev["user"], "root");
        assert_eq!(str_field(ev, "exe"), true_exe);
        assert_eq!(str_field(ev, "filename"), "/bin/true");
        assert_eq!(ev["interpreter"], Value::Null);
        assert_eq!(ev["argv_truncated"], false);
        assert_eq!(ev["privilege_raised"], Value::Null);
        assert_eq!(str_field(ev, "comm"), "true");
        assert_eq!(str_field(ev, "cmdline"), format!("/bin/true {tag} {i}"));
        assert_eq!(
            ev["exec_id"].as_str().unwrap().split(':').next().unwrap(),
            ev["pid"].to_string()
        );
    }
    assert_eq!(stop["event"], "stop");
    assert_eq!(
        stop["seen"].as_u64().unwrap(),
        stop["emitted"].as_u64().unwrap() + stop["dropped"].as_u64().unwrap()
    );
}

/// The tagged execs of `program` itself (setpriv's own exec carries the tag
/// in its argv too).
fn execs_of<'a>(lines: &'a [Value], tag: &str, program: &str) -> Vec<&'a Value> {
    execs_with_tag(lines, tag)
        .into_iter()
        .filter(|v| v["argv"][0] == program)
        .collect()
}

fn as_nobody(program: &str, tag: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        program,
        tag,
    ]);
    c
}

#[root_test("loads eBPF")]
fn setuid_exec_is_reported_as_a_raise() {
    let dir = open_tempdir();
    let suid = copy_true(dir.path(), "suid-true", 0o4755);
    let tag = unique_tag("suid");
    let mon = Monitor::start(&["--format", "jsonl", "--fields", "+suid"]);
    run_ok(&mut as_nobody(&suid, &tag));
    let lines = mon.stop().json_lines();
    let execs = execs_of(&lines, &tag, &suid);
    assert_eq!(execs.len(), 1, "{execs:?}");
    let ev = execs[0];
    assert_eq!(str_field(ev, "exe"), suid);
    assert_eq!(ev["uid"], 65534);
    assert_eq!(ev["euid"], 0);
    assert_eq!(ev["suid"], 0);
    assert_eq!(ev["gid"], 65534);
    assert_eq!(ev["user"], "root");
    assert_eq!(ev["privilege_raised"], "setuid");
    assert_eq!(ev["secureexec"], true);
    assert_eq!(ev["file"]["mode"], "04755");
    // Root's set is (nearly) full, so `caps` says ALL; the mask is exact.
    let eff = ev["caps_raw"]["effective"].as_str().unwrap();
    let mask = u64::from_str_radix(eff.trim_start_matches("0x"), 16).unwrap();
    assert!(
        mask & 1 << 21 != 0,
        "a setuid-root exec gets root's caps, CAP_SYS_ADMIN among them: {eff}"
    );
    assert_eq!(ev["caps"]["effective"][0], "ALL");
}

#[root_test("loads eBPF, runs setcap")]
fn file_capabilities_are_reported_as_a_raise() {
    let dir = open_tempdir();
    let capped = copy_true(dir.path(), "cap-true", 0o755);
    run_ok(Command::new("setcap").args(["cap_net_raw+ep", &capped]));
    let tag = unique_tag("fcaps");
    let mon = Monitor::start(&["--format", "jsonl"]);
    run_ok(&mut as_nobody(&capped, &tag));
    let lines = mon.stop().json_lines();
    let execs = execs_of(&lines, &tag, &capped);
    assert_eq!(execs.len(), 1);
    let ev = execs[0];
    assert_eq!(ev["uid"], 65534);
    assert_eq!(ev["euid"], 65534);
    assert_eq!(ev["user"], "nobody");
    assert_eq!(ev["caps"]["effective"], serde_json::json!(["CAP_NET_RAW"]));
    assert_eq!(ev["caps"]["permitted"], serde_json::json!(["CAP_NET_RAW"]));
    assert_eq!(ev["caps"]["ambient"], serde_json::json!([]));
    assert_eq!(ev["privilege_raised"], "file_caps");
}

#[root_test("loads eBPF")]
fn unprivileged_exec_has_no_capabilities() {
    let tag = unique_tag("nobody");
    let mon = Monitor::start(&["--format", "jsonl", "--fields", "+fsuid"]);
    run_ok(&mut as_nobody("/bin/true", &tag));
    let lines = mon.stop().json_lines();
    let execs = execs_of(&lines, &tag, "/bin/true");
    assert_eq!(execs.len(), 1);
    let ev = execs[0];
    assert_eq!(
        (ev["uid"].clone(), ev["euid"].clone(), ev["fsuid"].clone()),
        (65534.into(), 65534.into(), 65534.into())
    );
    assert_eq!(ev["caps"]["effective"], serde_json::json!([]));
    assert_eq!(ev["privilege_raised"], Value::Null);
}

#[root_test("loads eBPF")]
fn classic_tracepoint_fallback_captures_execs() {
    let dir = open_tempdir();
    let suid = copy_true(dir.path(), "suid-true", 0o4755);
    let tag = unique_tag("tp");
    let mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--fields",
        "+filename",
        "--debug-attach",
        "tracepoint",
    ]);
    run_ok(Command::new("/bin/true").arg(&tag));
    run_ok(&mut as_nobody(&suid, &tag));
    let out = mon.stop();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let lines = out.json_lines();
    assert_eq!(lines[0]["event"], "start");
    assert_eq!(lines[0]["attach"], "tracepoint/sched/sched_process_exec");
    assert_eq!(lines[0]["unavailable"], serde_json::json!([]));
    let execs = execs_of(&lines, &tag, "/bin/true");
    assert_eq!(execs.len(), 1);
    let ev = execs[0];
    assert_eq!(str_field(ev, "exe"), canonical("/bin/true"));
    assert_eq!(str_field(ev, "filename"), "/bin/true");
    assert_eq!(ev["uid"], 0);
    // The classic tracepoint has no linux_binprm: secureexec is unknown, not false.
    assert_eq!(ev["secureexec"], Value::Null);
    // The pre-exec programs attach there too: the credentials before a
    // setuid exec, and the change it made.
    let execs = execs_of(&lines, &tag, &suid);
    assert_eq!(execs.len(), 1, "{execs:?}");
    let ev = execs[0];
    assert_eq!(ev["euid"], 0);
    assert_eq!(ev["pre_exec"]["uid"], 65534);
    assert_eq!(ev["pre_exec"]["euid"], 65534);
    assert_eq!(ev["privilege_change"]["cause"], "setuid");
    assert_eq!(ev["privilege_change"]["from_euid"], 65534);
    assert_eq!(ev["privilege_change"]["to_euid"], 0);
}

/// Runs `program tag` under an in-process eBPF source (the stamp is not in
/// any output format yet, so this reads the decoded events directly) and
/// returns the `exe_stamp` of its exec.
fn exe_stamp_of(
    attach: procwatch::source::ebpf::Attach,
    program: &str,
    tag: &str,
) -> Option<procwatch::event::FileStamp> {
    use procwatch::source::{Item, Source, ebpf};
    use std::time::{Duration, Instant};

    let mut src = ebpf::EbpfSource::attach(&ebpf::Options {
        ring_size: 1 << 20,
        wakeup_bytes: 1,
        attach,
        legacy: false,
    })
    .expect("attach the eBPF source");
    run_ok(Command::new(program).arg(tag));
    let want = tag.as_bytes();
    let deadline = Instant::now() + PATIENCE;
    let mut found = Vec::new();
    while found.is_empty() && Instant::now() < deadline {
        src.poll(Duration::from_millis(50), &mut |item| {
            if let Item::Exec { ev, .. } = item
                && ev
                    .argv
                    .as_ref()
                    .is_some_and(|a| a.iter().any(|x| x == want))
            {
                found.push(*ev);
            }
        })
        .unwrap();
    }
    src.detach();
    assert_eq!(found.len(), 1, "one tagged exec");
    let ev = found.pop().unwrap();
    assert_eq!(ev.exe.as_deref(), Some(program.as_bytes()));
    ev.exe_stamp
}

#[root_test("loads eBPF")]
fn exec_carries_the_executed_files_stamp() {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, UNIX_EPOCH};

    let dir = open_tempdir();
    let prog = copy_true(dir.path(), "stamped-true", 0o755);
    {
        // A size and an mtime that no other file has by chance.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&prog)
            .unwrap();
        f.write_all(&[0u8; 123]).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::new(1_000_000_007, 123_456_789))
            .unwrap();
    }
    let md = std::fs::metadata(&prog).unwrap();
    let want = procwatch::event::FileStamp {
        size: md.size(),
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (md.ctime(), md.ctime_nsec()),
    };
    assert_eq!(want.mtime, (1_000_000_007, 123_456_789));
    for attach in [
        procwatch::source::ebpf::Attach::Auto,
        procwatch::source::ebpf::Attach::Tracepoint,
    ] {
        let tag = unique_tag("stamp");
        assert_eq!(
            exe_stamp_of(attach, &prog, &tag),
            Some(want),
            "{attach:?}: the stamp is the file's stat"
        );
    }
}
