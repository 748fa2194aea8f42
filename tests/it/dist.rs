//! What dist/ ships, checked with the real tools: the systemd unit with
//! `systemd-analyze verify` and its capability set with a real run, the
//! logrotate config with `logrotate -f` against a running procwatch, and
//! the man page and completions `procwatch generate` writes. The tools come
//! from ci/dist-deps.sh.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::Value;

use crate::common::output::*;
use crate::common::*;

const UNIT: &str = include_str!("../../dist/procwatch.service");
const LOGROTATE: &str = include_str!("../../dist/procwatch.logrotate");

/// The path of `tool`, or a failure that says how to get it.
fn need(tool: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} is not installed: run ci/dist-deps.sh");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `procwatch generate ARGS` into `dir`; returns what it wrote there.
fn generate(dir: &Path, args: &[&str]) -> String {
    let out = run(Command::new(PROCWATCH)
        .arg("generate")
        .args(args)
        .arg("--out")
        .arg(dir));
    assert!(out.status.success(), "{args:?}: {out:?}");
    let entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    fs::read_to_string(&entries[0]).unwrap()
}

#[test]
fn generated_man_page_and_completions_know_the_real_flags() {
    let tmp = open_tempdir();
    let sub = |name: &str| {
        let d = tmp.path().join(name);
        fs::create_dir(&d).unwrap();
        d
    };
    let man_dir = sub("man");
    let man = generate(&man_dir, &["man"]);
    assert!(
        man.starts_with(".ie") || man.starts_with(".TH"),
        "{man:.200}"
    );
    assert!(man.contains(".TH procwatch 1"), "{man:.300}");
    for flag in [
        "\\-\\-format",
        "\\-\\-output",
        "\\-\\-exe",
        "\\-\\-duration",
    ] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    assert!(man.contains("ecs"), "man page lacks the ecs format");
    for (shell, file) in [
        ("bash", "procwatch.bash"),
        ("zsh", "_procwatch"),
        ("fish", "procwatch.fish"),
    ] {
        let dir = sub(shell);
        let script = generate(&dir, &["completions", shell]);
        assert!(dir.join(file).exists(), "{shell}: no {file}");
        for flag in ["format", "output", "exclude-exe", "generate"] {
            assert!(script.contains(flag), "{shell} completions lack {flag}");
        }
        assert!(
            script.contains("jsonl") && script.contains("ecs"),
            "{shell}"
        );
    }
    // Rendered by man itself, every warning on: none.
    let out = run(Command::new(need("man"))
        .args(["--warnings", "-l"])
        .arg(man_dir.join("procwatch.1"))
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Bold and underline as overstrikes ("S\x08S") when not on a terminal.
    let text = String::from_utf8_lossy(&out.stdout);
    let text: String = text
        .split('\x08')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                &part[part.chars().next().map_or(0, char::len_utf8)..]
            }
        })
        .collect();
    assert!(out.status.success() && stderr.is_empty(), "{stderr}");
    assert!(
        text.contains("SYNOPSIS") && text.contains("--format"),
        "{text}"
    );
}

#[test]
fn generate_is_a_subcommand_beside_the_flags_not_among_them() {
    let out = run(Command::new(PROCWATCH).args(["--format", "jsonl", "generate", "man"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(Command::new(PROCWATCH).args(["generate", "completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // To standard output without --out.
    let out = run(Command::new(PROCWATCH).args(["generate", "completions", "bash"]));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("_procwatch()"));
}

/// The unit's `ExecStart` arguments (after the binary).
fn exec_start_args() -> Vec<String> {
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut words = line.split_whitespace().map(str::to_owned);
    assert_eq!(words.next().as_deref(), Some("/usr/local/bin/procwatch"));
    words.collect()
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let tmp = open_tempdir();
    let bin = tmp.path().join("procwatch");
    fs::copy(PROCWATCH, &bin).unwrap();
    let man1 = tmp.path().join("man/man1");
    fs::create_dir_all(&man1).unwrap();
    generate(&man1, &["man"]);
    let unit = tmp.path().join("procwatch.service");
    fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/procwatch", bin.to_str().unwrap()),
    )
    .unwrap();
    // MANPATH: `Documentation=man:procwatch(1)` is checked against the
    // generated page.
    let out = run(Command::new(need("systemd-analyze"))
        .arg("verify")
        .arg(&unit)
        .env("MANPATH", tmp.path().join("man")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on settings it ignores; it says so on stderr.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
    // The command line itself is one procwatch takes.
    let out = run(Command::new(&bin).args(exec_start_args()).arg("--help"));
    assert!(out.status.success(), "{out:?}");
}

/// The unit's capability bounding set, as setpriv spells it.
fn unit_bounding_set() -> String {
    let caps = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("CapabilityBoundingSet");
    let mut set = String::from("-all");
    for cap in caps.split_whitespace() {
        set.push_str(",+");
        set.push_str(&cap.trim_start_matches("CAP_").to_lowercase());
    }
    set
}

#[root_test("loads eBPF as root under the unit's capability bounding set")]
fn the_units_capabilities_give_complete_events_with_hashes() {
    // An executable a root without CAP_DAC_READ_SEARCH could not read: in
    // a directory only nobody may enter.
    let dir = open_tempdir();
    let private = dir.path().join("private");
    fs::create_dir(&private).unwrap();
    let exe = copy_true(&private, "t", 0o755);
    run_ok(Command::new("chown").args(["-R", "nobody"]).arg(&private));
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    let tag = unique_tag("unitcaps");
    let mut mon = Monitor::start_cmd(
        Command::new(need("setpriv"))
            .arg(format!("--bounding-set={}", unit_bounding_set()))
            .args(["--inh-caps=-all", "--"])
            .arg(PROCWATCH)
            .args(["--format", "jsonl", "--source", "ebpf"]),
    );
    run_ok(
        Command::new(need("setpriv"))
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(&exe)
            .arg(&tag),
    );
    // Its own exec, not setpriv's (whose argv holds the tag too).
    let ev = mon.wait_for(&tag, |v| v["event"] == "exec" && v["exe"] == exe.as_str());
    let out = mon.stop();
    out.assert_clean_exit();
    let lines = out.json_lines();
    let incomplete: Vec<&str> = ev["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .filter(|f| *f != "exe_sha256")
        .collect();
    assert!(incomplete.is_empty(), "{ev}");
    let (sha, why) = final_sha256(&lines, &ev);
    assert_eq!(sha, sha256_of(&exe).as_str(), "{why}");
    assert_eq!(lines.last().unwrap()["event"], "stop");
}

/// The exec numbers of `tag` in a JSONL file, in order.
fn tagged(path: &Path, tag: &str) -> Vec<u64> {
    let lines = json_lines(&read(path));
    execs_with_tag(&lines, tag)
        .iter()
        .map(|e| e["argv"][2].as_str().unwrap().parse().unwrap())
        .collect()
}

#[root_test("runs the eBPF monitor")]
fn logrotate_rotates_a_running_procwatch_losing_nothing() {
    let dir = open_tempdir();
    let logs = dir.path().join("log");
    fs::create_dir(&logs).unwrap();
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o700)).unwrap();
    let path = logs.join("procwatch.jsonl");
    let rotated = logs.join("procwatch.jsonl.1");
    let tag = unique_tag("logrotate");
    let mon = Running::start(&["--format", "jsonl", "-o", path.to_str().unwrap()]);
    wait_for("the start line", || read(&path).contains("\"start\""));
    // The shipped config, with its directory and its signal to procwatch
    // (systemctl in the service) pointed at this run.
    let hup = LOGROTATE
        .lines()
        .find(|l| l.contains("--signal=HUP"))
        .expect("the postrotate HUP line");
    let conf = dir.path().join("procwatch.logrotate");
    fs::write(
        &conf,
        LOGROTATE
            .replace("/var/log/procwatch", logs.to_str().unwrap())
            .replace(hup, &format!("        kill -HUP {}", mon.pid())),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let execs = {
        let (tag, stop) = (tag.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                run_ok(Command::new("/bin/true").arg(&tag).arg(n.to_string()));
                n += 1;
            }
            n
        })
    };
    wait_for("execs before the rotation", || {
        lines_with(&path, &tag) >= 30
    });
    let out = run(Command::new(need("logrotate"))
        .arg("-f")
        .arg("-s")
        .arg(dir.path().join("state"))
        .arg(&conf));
    assert!(out.status.success(), "logrotate: {out:?}");
    wait_for("the reopen", || mon.stderr().contains("reopened"));
    wait_for("execs after the rotation", || lines_with(&path, &tag) >= 30);
    stop.store(true, Ordering::SeqCst);
    let n = execs.join().unwrap();
    let last = format!("\"{tag}\",\"{}\"", n - 1);
    wait_for("the last exec", || read(&path).contains(&last));
    mon.signal(libc::SIGINT);
    let end = mon.wait();
    assert_eq!(end.status.code(), Some(0), "{}", end.stderr);

    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "the new file's mode: {mode:o}");
    let new: Vec<Value> = json_lines(&read(&path));
    assert_eq!(new[0]["event"], "start");
    assert_eq!(new[0]["continuation"], true);
    let mut seen = tagged(&rotated, &tag);
    assert!(seen.len() >= 30, "{} in the rotated file", seen.len());
    seen.extend(tagged(&path, &tag));
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..n).collect::<Vec<_>>(),
        "each exec in exactly one file"
    );
    assert_eq!(new.last().unwrap()["event"], "stop");
    assert_eq!(new.last().unwrap()["write_errors"], 0);
}
