//! Privilege insight against the real kernel: parent snapshots, ancestry,
//! PID reuse and privilege changes. Needs root (eBPF, setcap, ns_last_pid);
//! CI runs it as root.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::common::*;
use serde_json::Value;

fn the_exec<'a>(lines: &'a [Value], tag: &str, argv0: &str) -> &'a Value {
    let found: Vec<&Value> = execs_with_tag(lines, tag)
        .into_iter()
        .filter(|v| v["argv"][0] == argv0)
        .collect();
    assert_eq!(found.len(), 1, "exactly one exec of {argv0} tagged {tag}");
    found[0]
}

#[root_test("loads eBPF")]
fn parent_snapshot_survives_the_parents_exit() {
    let tag = unique_tag("orphan");
    let argv: Vec<std::ffi::CString> = ["/bin/true", tag.as_str()]
        .iter()
        .map(|a| std::ffi::CString::new(*a).unwrap())
        .collect();
    let ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut mon = Monitor::start(&["--format", "jsonl", "--fields", "+parent.user"]);
    // A forks B and exits at once; B execs only after A is gone (B has been
    // reparented). Raw fork keeps the process structure exact (a shell may
    // fork more or less).
    // SAFETY: the children only sleep, call getppid, exec and _exit, with
    // memory prepared before the fork.
    let a = unsafe { libc::fork() };
    if a == 0 {
        unsafe {
            let a = libc::getpid();
            if libc::fork() == 0 {
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000,
                };
                while libc::getppid() == a {
                    libc::nanosleep(&ts, std::ptr::null_mut());
                }
                libc::execv(ptrs[0], ptrs.as_ptr());
                libc::_exit(127);
            }
            libc::_exit(0);
        }
    }
    let mut status = 0;
    unsafe { libc::waitpid(a, &mut status, 0) };
    mon.wait_for_exec(&tag);
    let lines = mon.stop().json_lines();
    let ev = the_exec(&lines, &tag, "/bin/true");
    assert_ne!(ev["ppid"], a, "reparented: the real parent is gone");
    let parent = &ev["parent"];
    assert_eq!(parent["pid"], a, "the parent is the process that forked it");
    let me = std::env::current_exe().unwrap();
    assert_eq!(
        parent["exe"],
        me.to_str().unwrap(),
        "A never exec'd: it ran this test binary"
    );
    assert_eq!(parent["user"], "root");
    assert_eq!(ev["ancestors"][0], me.to_str().unwrap());
    // A hash still being computed is not a missing field: a `hash` event
    // follows with it.
    let pending = ev["incomplete_reasons"]["exe_sha256"] == "hash_pending";
    let missing: Vec<&Value> = ev["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !(pending && *f == "exe_sha256"))
        .collect();
    assert!(missing.is_empty(), "{}", ev["incomplete_reasons"]);
}

#[root_test("loads eBPF")]
fn ancestors_through_three_levels() {
    let tag = unique_tag("ancestors");
    let mon = Monitor::start(&["--format", "jsonl"]);
    // Trailing commands keep each shell from exec'ing its last command.
    run_ok(Command::new("/bin/sh").args([
        "-c",
        &format!("/bin/bash -c '/bin/true {tag}; exit 0'; exit 0"),
    ]));
    let lines = mon.stop().json_lines();
    let ev = the_exec(&lines, &tag, "/bin/true");
    let ancestors: Vec<&str> = ev["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let me = std::env::current_exe().unwrap();
    assert!(ancestors.len() >= 3, "{ancestors:?}");
    assert_eq!(ancestors[0], canonical("/bin/bash"));
    assert_eq!(ancestors[1], canonical("/bin/sh"));
    assert_eq!(ancestors[2], me.to_str().unwrap(), "then this test binary");
    assert_eq!(ev["parent"]["exe"], canonical("/bin/bash"));
}

#[root_test("loads eBPF, sets ns_last_pid")]
fn reused_pid_does_not_confuse_the_parent() {
    let (tag_old, tag_new) = (unique_tag("pid-old"), unique_tag("pid-new"));
    let mon = Monitor::start(&["--format", "jsonl"]);
    // The old process: a bash that runs a command, then exits.
    let mut old = Command::new("/bin/bash")
        .args(["-c", &format!("/bin/true {tag_old}; exit 0")])
        .spawn()
        .unwrap();
    let pid = old.id();
    assert!(old.wait().unwrap().success());
    // The new process with the same pid: a dash whose child execs, once
    // the dash has the pid (it waits in `read` until then).
    let script = format!("read x; /bin/true {tag_new}; exit 0");
    let mut new = spawn_with_pid(
        pid,
        Command::new("/bin/dash")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped()),
    );
    new.release();
    assert!(new.wait().status.success());
    let lines = mon.stop().json_lines();
    let old_child = the_exec(&lines, &tag_old, "/bin/true");
    let new_child = the_exec(&lines, &tag_new, "/bin/true");
    assert_eq!(old_child["parent"]["pid"], pid);
    assert_eq!(new_child["parent"]["pid"], pid);
    assert_eq!(old_child["parent"]["exe"], canonical("/bin/bash"));
    assert_eq!(
        new_child["parent"]["exe"],
        canonical("/bin/dash"),
        "not the old bash with the same pid"
    );
    assert_ne!(
        old_child["parent"]["exec_id"],
        new_child["parent"]["exec_id"]
    );
}

#[root_test("loads eBPF, runs setcap and setpriv")]
fn privilege_changes_name_their_cause() {
    let dir = open_tempdir();
    let suid = copy_true(dir.path(), "suid-true", 0o4755);
    let capped = copy_true(dir.path(), "cap-true", 0o755);
    run_ok(Command::new("setcap").args(["cap_net_raw+ep", &capped]));
    let (t_suid, t_caps, t_launch, t_drop) = (
        unique_tag("chg-suid"),
        unique_tag("chg-caps"),
        unique_tag("chg-launch"),
        unique_tag("chg-drop"),
    );
    let mon = Monitor::start(&["--format", "jsonl"]);
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    run_ok(
        Command::new("setpriv")
            .args(nobody)
            .args([suid.as_str(), &t_suid]),
    );
    // Through a shell: setpriv itself keeps root's effective capabilities
    // until its exec, which a shell run as nobody does not.
    let sh_cmd = format!("{capped} {t_caps}; exit 0");
    run_ok(
        Command::new("setpriv")
            .args(nobody)
            .args(["/bin/bash", "-c", &sh_cmd]),
    );
    // A launcher: nobody holding CAP_SETUID switches to root, no file bit.
    run_ok(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args([
                "--inh-caps=+setuid,+setgid",
                "--ambient-caps=+setuid,+setgid",
                "--",
            ])
            .args([
                "setpriv",
                "--reuid=0",
                "--regid=0",
                "--clear-groups",
                "--",
                "/bin/true",
                &t_launch,
            ]),
    );
    // Root dropping to nobody is no raise.
    run_ok(
        Command::new("setpriv")
            .args(nobody)
            .args(["/bin/true", &t_drop]),
    );
    let lines = mon.stop().json_lines();

    let ev = the_exec(&lines, &t_suid, &suid);
    let c = &ev["privilege_change"];
    assert_eq!(c["cause"], "setuid", "{ev}");
    assert_eq!(
        (c["from_euid"].clone(), c["to_euid"].clone()),
        (65534.into(), 0.into())
    );
    assert_eq!(ev["pre_exec"]["euid"], 65534);

    let ev = the_exec(&lines, &t_caps, &capped);
    let c = &ev["privilege_change"];
    assert_eq!(c["cause"], "file_caps", "{ev}");
    assert_eq!(c["gained_caps"], serde_json::json!(["CAP_NET_RAW"]));
    assert_eq!(ev["pre_exec"]["caps_effective"], "0x0000000000000000");
    assert_eq!(ev["parent"]["exe"], canonical("/bin/bash"));

    let ev = the_exec(&lines, &t_launch, "/bin/true");
    let c = &ev["privilege_change"];
    assert_eq!(c["cause"], "launcher", "{ev}");
    assert_eq!(c["from_euid"], 65534);
    assert_eq!(c["to_euid"], 0);
    assert_eq!(c["launcher"], canonical("/usr/bin/setpriv"));
    assert_eq!(
        ev["privilege_raised"],
        Value::Null,
        "no file bit was involved"
    );

    let ev = the_exec(&lines, &t_drop, "/bin/true");
    assert_eq!(ev["privilege_change"], Value::Null);
}

#[root_test("loads eBPF")]
fn exit_codes_signals_and_lifetimes() {
    let (t_code, t_sig, t_life) = (
        unique_tag("exit-code"),
        unique_tag("exit-sig"),
        unique_tag("exit-life"),
    );
    let mon = Monitor::start(&["--format", "jsonl", "--exits"]);
    // $0 carries the tag, so the exec event can be found by argv.
    let st = Command::new("/bin/sh")
        .args(["-c", "exit 3", &t_code])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
    let st = Command::new("/bin/sh")
        .args(["-c", "kill -TERM $$", &t_sig])
        .status()
        .unwrap();
    assert!(st.code().is_none());
    run_ok(Command::new("/bin/sh").args(["-c", "sleep 0.3", &t_life]));
    let lines = mon.stop().json_lines();
    let exit_of = |tag: &str| -> &Value {
        let exec = the_exec(&lines, tag, "/bin/sh");
        let id = exec["exec_id"].as_str().unwrap();
        let exits: Vec<&Value> = lines
            .iter()
            .filter(|l| l["event"] == "exit" && l["exec_id"] == id)
            .collect();
        assert_eq!(exits.len(), 1, "one exit for {tag}");
        assert_eq!(exits[0]["pid"], exec["pid"]);
        exits[0]
    };
    let x = exit_of(&t_code);
    assert_eq!(
        (x["exit_code"].clone(), x["signal"].clone()),
        (3.into(), Value::Null)
    );
    let x = exit_of(&t_sig);
    assert_eq!(
        (x["exit_code"].clone(), x["signal"].clone()),
        (Value::Null, 15.into())
    );
    assert_eq!(x["core_dumped"], false);
    let x = exit_of(&t_life);
    assert_eq!(x["exit_code"], 0);
    assert!(
        x["lifetime_ms"].as_f64().unwrap() >= 300.0,
        "it slept 0.3 s: {x}"
    );
    // Exit events come after their exec, in kernel order.
    let exec_at = lines
        .iter()
        .position(|l| l["argv"][3] == t_life.as_str())
        .unwrap();
    let exit_at = lines.iter().position(|l| std::ptr::eq(l, x)).unwrap();
    assert!(exit_at > exec_at);
}

#[root_test("loads eBPF")]
fn filters_show_only_matching_execs_and_count_the_rest() {
    let dir = open_tempdir();
    let suid = copy_true(dir.path(), "suid-true", 0o4755);
    let filters: Vec<Vec<&str>> = vec![
        vec!["--uid", "65534"],
        vec!["--user", "nobody"],
        vec!["--exe", "/usr/bin/true"],
        vec!["--exclude-exe", "*/true"],
        vec!["--privileged"],
        vec!["--raised"],
        vec!["--privileged", "--exe", "*/suid-tru?"],
    ];
    let monitors: Vec<Monitor> = filters
        .iter()
        .map(|f| {
            let mut args = vec!["--format", "jsonl"];
            args.extend(f);
            Monitor::start(&args)
        })
        .collect();
    let (t_root, t_nobody, t_suid) = (
        unique_tag("f-root"),
        unique_tag("f-nobody"),
        unique_tag("f-suid"),
    );
    let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    run_ok(Command::new("/bin/true").arg(&t_root));
    // Through bash so the exec under test has no capabilities left.
    run_ok(Command::new("setpriv").args(nobody).args([
        "/bin/bash",
        "-c",
        &format!("/bin/true {t_nobody}; exit 0"),
    ]));
    run_ok(Command::new("setpriv").args(nobody).args([
        "/bin/bash",
        "-c",
        &format!("{suid} {t_suid}; exit 0"),
    ]));
    // Which of (root, nobody, suid) each filter shows.
    let expected = [
        (false, true, true),  // --uid 65534: real or effective uid
        (false, true, true),  // --user nobody
        (true, true, false),  // --exe /usr/bin/true
        (false, false, true), // --exclude-exe */true
        (true, false, true),  // --privileged
        (false, false, true), // --raised
        (false, false, true), // --privileged --exe */suid-tru?
    ];
    for ((mon, want), filter) in monitors.into_iter().zip(expected).zip(&filters) {
        let out = mon.stop();
        out.assert_clean_exit();
        let lines = out.json_lines();
        let shown = |tag: &str| {
            execs_with_tag(&lines, tag)
                .into_iter()
                .any(|v| v["argv"][1] == tag)
        };
        assert_eq!(
            (shown(&t_root), shown(&t_nobody), shown(&t_suid)),
            want,
            "filter {filter:?}"
        );
        let stop = lines.last().unwrap();
        let (written, filtered, received) = (
            stop["written"].as_u64().unwrap(),
            stop["filtered"].as_u64().unwrap(),
            stop["received"].as_u64().unwrap(),
        );
        assert!(filtered > 0, "filter {filter:?} hid something");
        assert_eq!(
            written + filtered,
            received,
            "filtered execs are still counted"
        );
        let execs = lines.iter().filter(|l| l["event"] == "exec").count() as u64;
        assert_eq!(execs, written);
    }
}

/// A script that exits 0, with `mode`, owned by `owner`.
fn script(path: &std::path::Path, mode: u32, owner: u32) {
    std::fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(path, Some(owner), Some(owner)).unwrap();
}

#[root_test("loads eBPF")]
fn hijackable_root_jobs_are_flagged_and_safe_ones_are_not() {
    let dir = open_tempdir();
    let d = canonical(dir.path().to_str().unwrap());
    // A world-writable script in a root-owned 0755 directory.
    let ww = format!("{d}/world-writable.sh");
    script(std::path::Path::new(&ww), 0o777, 0);
    // A root-owned script in a directory that nobody (a normal user) owns.
    let user_dir = format!("{d}/nobody-dir");
    std::fs::create_dir(&user_dir).unwrap();
    std::os::unix::fs::chown(&user_dir, Some(65534), Some(65534)).unwrap();
    let in_user_dir = format!("{user_dir}/job.sh");
    script(std::path::Path::new(&in_user_dir), 0o755, 0);
    // A safe root-owned script in /usr/local/bin.
    let tag = unique_tag("safe");
    let safe = format!("/usr/local/bin/{tag}.sh");
    script(std::path::Path::new(&safe), 0o755, 0);
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Cleanup(safe.clone());

    let (t_ww, t_dir, t_safe, t_arg) = (
        unique_tag("hj-ww"),
        unique_tag("hj-dir"),
        unique_tag("hj-safe"),
        unique_tag("hj-arg"),
    );
    let mon = Monitor::start(&["--format", "jsonl"]);
    let only = Monitor::start(&["--format", "jsonl", "--hijackable"]);
    run_ok(Command::new(&ww).arg(&t_ww));
    run_ok(Command::new(&in_user_dir).arg(&t_dir));
    run_ok(Command::new(&safe).arg(&t_safe));
    // The same script passed to an interpreter, as cron jobs often do.
    run_ok(Command::new("/bin/bash").args([&in_user_dir, &t_arg]));
    let (lines, only_lines) = (mon.stop().json_lines(), only.stop().json_lines());

    let finding = |tag: &str, argv0: &str| -> Value {
        let ev = the_exec(&lines, tag, argv0);
        let h = ev["hijackable"]
            .as_array()
            .unwrap_or_else(|| panic!("not flagged: {ev}"));
        assert_eq!(h.len(), 1, "{h:?}");
        h[0].clone()
    };
    // A #! script's argv is rewritten: argv[0] is the interpreter.
    let h = finding(&t_ww, "/bin/sh");
    assert_eq!(h["path"], ww.as_str());
    assert_eq!(h["role"], "script");
    assert_eq!(h["writable"], ww.as_str());
    assert_eq!(h["writers"], serde_json::json!(["others"]));

    let h = finding(&t_dir, "/bin/sh");
    assert_eq!(h["path"], in_user_dir.as_str());
    assert_eq!(h["writable"], user_dir.as_str());
    assert_eq!(h["writers"], serde_json::json!(["user nobody"]));

    let h = finding(&t_arg, "/bin/bash");
    assert_eq!(h["path"], in_user_dir.as_str());
    assert_eq!(h["role"], "interpreter_arg");

    let ev = the_exec(&lines, &t_safe, "/bin/sh");
    assert_eq!(
        ev["hijackable"],
        Value::Null,
        "root-owned in /usr/local/bin is safe: {ev}"
    );

    // --hijackable shows exactly the flagged ones.
    for t in [&t_ww, &t_dir, &t_arg] {
        assert_eq!(execs_with_tag(&only_lines, t).len(), 1, "{t}");
    }
    assert!(execs_with_tag(&only_lines, &t_safe).is_empty());
}

#[root_test("loads eBPF")]
fn exe_hash_matches_sha256sum() {
    let tag = unique_tag("hash");
    let mon = Monitor::start(&["--format", "jsonl"]);
    run_ok(Command::new("/bin/true").arg(&tag));
    let lines = mon.stop().json_lines();
    let ev = the_exec(&lines, &tag, "/bin/true");
    let out = Command::new("sha256sum")
        .arg(canonical("/bin/true"))
        .output()
        .unwrap();
    let want = String::from_utf8(out.stdout).unwrap();
    // On the exec's line when cached, else in its later `hash` event.
    let (sha, why) = final_sha256(&lines, ev);
    assert_eq!(sha, want.split_whitespace().next().unwrap(), "{why}");
    // --no-hash turns it off.
    let mon = Monitor::start(&["--format", "jsonl", "--no-hash"]);
    run_ok(Command::new("/bin/true").arg(&tag));
    let lines = mon.stop().json_lines();
    assert_eq!(
        the_exec(&lines, &tag, "/bin/true")["exe_sha256"],
        Value::Null
    );
}
