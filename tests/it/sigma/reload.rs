//! Rules written by the tests: `--alerts-only` and the text view's
//! `ALERT(...)`, SIGHUP reloading the rules (a broken set keeps the old
//! one), and a malformed rule file (named, listed, fatal only with
//! `--rules-strict`).

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A Linux rule that fires on a command line containing `needle`.
fn rule(title: &str, id: &str, needle: &str) -> String {
    format!(
        "title: {title}\nid: {id}\nstatus: test\nlevel: critical\ntags: [attack.t1059]\n\
         logsource:\n  category: process_creation\n  product: linux\n\
         detection:\n  sel:\n    CommandLine|contains: '{needle}'\n  condition: sel\n"
    )
}

fn run_true(tag: &str) {
    run_ok(Command::new("/bin/true").arg(tag));
}

#[root_test("loads eBPF")]
fn sigma_alerts_only_shows_alert_lines_and_nothing_else() {
    let dir = open_tempdir();
    let hit = unique_tag("alert-hit");
    let miss = unique_tag("alert-miss");
    std::fs::write(
        dir.path().join("r.yml"),
        rule("Tagged hit", "aaaaaaaa-0000-4000-8000-000000000001", &hit),
    )
    .unwrap();
    let rules = dir.path().to_str().unwrap();
    let mon = Monitor::start(&[
        "--no-hash",
        "--color",
        "never",
        "--rules",
        rules,
        "--alerts-only",
    ]);
    run_true(&miss);
    run_true(&hit);
    assert!(
        mon.wait_for_text(&hit, 0, PATIENCE).is_some(),
        "the matching exec is shown"
    );
    let done = mon.stop();
    done.assert_clean_exit();
    let text = String::from_utf8(done.stdout).unwrap();
    let line = text.lines().find(|l| l.contains(&hit)).unwrap();
    assert!(line.contains("ALERT(critical: Tagged hit)"), "{line}");
    assert!(
        !text.contains(&miss),
        "--alerts-only hides what no rule matched:\n{text}"
    );
    assert!(done.stderr.contains("rules: 1 loaded"), "{}", done.stderr);
}

/// The ids of the detections on the exec tagged `tag`.
fn detected(mon: &mut Monitor, tag: &str) -> Vec<String> {
    let ev = mon.wait_for_exec(tag);
    ev["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn sighup(mon: &Monitor) {
    // SAFETY: kill with a pid we own.
    unsafe { libc::kill(mon.pid() as i32, libc::SIGHUP) };
}

#[root_test("loads eBPF")]
fn sigma_sighup_reloads_the_rules_and_keeps_them_when_the_new_set_is_broken() {
    let dir = open_tempdir();
    let a = unique_tag("reload-a");
    let b = unique_tag("reload-b");
    let (id_a, id_b) = (
        "aaaaaaaa-0000-4000-8000-00000000000a",
        "bbbbbbbb-0000-4000-8000-00000000000b",
    );
    let file = dir.path().join("r.yml");
    std::fs::write(&file, rule("A", id_a, &a)).unwrap();
    let rules = dir.path().to_str().unwrap();
    let mut mon = Monitor::start(&["--format", "jsonl", "--no-hash", "--rules", rules]);
    let a1 = format!("{a}-1");
    run_true(&a1);
    assert_eq!(detected(&mut mon, &a1), [id_a]);

    // A new set: B replaces A. Standard output keeps going on SIGHUP when
    // rules are loaded, and a continuation start line says what is in force.
    std::fs::write(&file, rule("B", id_b, &b)).unwrap();
    sighup(&mon);
    let first = mon.wait_for("\"continuation\":true", |v| v["event"] == "start");
    assert_eq!(first["rules_loaded"], 1);
    let (a2, b1) = (format!("{a}-2"), format!("{b}-1"));
    run_true(&a2);
    run_true(&b1);
    assert_eq!(detected(&mut mon, &a2), Vec::<String>::new());
    assert_eq!(detected(&mut mon, &b1), [id_b]);

    // A broken set (malformed YAML beside B): B stays in force.
    std::fs::write(dir.path().join("broken.yml"), "title: [unclosed\n").unwrap();
    sighup(&mon);
    let t1 = first["time"].clone();
    let second = mon.wait_for("\"continuation\":true", |v: &Value| {
        v["event"] == "start" && v["time"] != t1
    });
    assert_eq!(second["rules_loaded"], 1);
    let b2 = format!("{b}-2");
    run_true(&b2);
    assert_eq!(detected(&mut mon, &b2), [id_b]);
    let done = mon.stop();
    done.assert_clean_exit();
    assert!(
        done.stderr.contains("rules not reloaded") && done.stderr.contains("broken.yml"),
        "{}",
        done.stderr
    );
}

/// procwatch with the unprivileged procfs source for 0.2 s, JSON lines,
/// and `extra`.
fn short_procfs_run(extra: &[&str]) -> std::process::Output {
    Command::new(PROCWATCH)
        .args([
            "--source",
            "procfs",
            "--format",
            "jsonl",
            "--duration",
            "0.2",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn sigma_malformed_rule_file_is_named_and_fatal_only_when_strict() {
    let dir = open_tempdir();
    std::fs::write(
        dir.path().join("good.yml"),
        rule("G", "cccccccc-0000-4000-8000-00000000000c", "x"),
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.yml"), "title: [unclosed\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
    let rules = dir.path().to_str().unwrap();
    // Unprivileged source: this test needs no root.
    let out = short_procfs_run(&["--no-hash", "--rules", rules]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("bad.yml") && stderr.contains("rules: 1 loaded"),
        "{stderr}"
    );
    let lines = json_lines(std::str::from_utf8(&out.stdout).unwrap());
    let start = &lines[0];
    assert_eq!(start["rules_loaded"], 1);
    let skipped = start["rules_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0]["file"].as_str().unwrap().ends_with("/bad.yml"));
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed: ")
    );

    let strict = short_procfs_run(&["--rules", rules, "--rules-strict"]);
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yml"), "{stderr}");
    assert!(strict.stdout.is_empty(), "refused before the start line");
}
