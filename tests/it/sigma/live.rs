//! As root, with the SigmaHQ Linux rules loaded: harmless commands shaped
//! like what specific rules describe fire exactly those rules, and benign
//! look-alikes fire none. Every command carries a unique tag as a whole
//! argument, and only the execs carrying it are looked at. A command that
//! fails after its exec (setcap on a file that does not exist) still
//! exec'd: the rules are about the exec.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::corpus;
use crate::common::*;

/// One command and, for each of its execs that carries the tag (keyed by
/// argv[0]), the rule ids that must fire on it, and no others.
struct Case {
    name: &'static str,
    argv: Vec<String>,
    expect: Vec<(String, Vec<&'static str>)>,
}

const AWK_SHELL: &str = "8c1a5675-cb85-452f-a298-b01b22a51856";
const FIND_SHELL: &str = "6adfbf8f-52be-4444-9bac-81b539624146";
const INTERACTIVE_BASH: &str = "ea3ecad2-db86-4a89-ad0b-132a10d2db55";
/// Any `find`: file and directory discovery.
const FIND_DISCOVERY: &str = "d3feb4ee-ff1d-4d3d-bd10-5b28a238cc72";
const DEV_SHM: &str = "5cd16c8f-44a6-4654-81e7-a84d6db507d4";
const BASE64_DECODE: &str = "e2072cab-8c9a-459b-b63c-40ae79e27031";
const BASE64_PIPE_SH: &str = "ba592c6d-6888-43c3-b8c6-689b8fe47337";
const SHELL_PIPE_SHELL: &str = "880973f3-9708-491c-a77b-2a35a1921158";
const EXEC_FROM_TMP: &str = "312b42b1-bded-4441-8b58-163a3af58775";
const PYTHON_PTY: &str = "c4042d54-110d-45dd-a0e1-05c47822c937";
const SETCAP_SETUID: &str = "ed447910-bc30-4575-a598-3a2e49516a7a";
const GETCAP_RECURSIVE: &str = "d8d97d51-122d-4cdd-9e2f-01b4b4933530";
const READ_SUDOERS: &str = "0f79c4d2-4e1f-4683-9c36-b5469a665e06";
const LOCAL_ACCOUNT: &str = "b45e3d6f-42c6-47d8-a478-df6bd6cf534c";

fn case(name: &'static str, argv: &[&str], expect: &[(&str, &[&'static str])]) -> Case {
    let tag = unique_tag(name);
    Case {
        name,
        argv: argv.iter().map(|a| a.replace("TAG", &tag)).collect(),
        expect: expect
            .iter()
            .map(|(a0, ids)| (a0.replace("TAG", &tag), ids.to_vec()))
            .collect(),
    }
}

impl Case {
    fn tag(&self) -> String {
        self.argv
            .iter()
            .find(|a| a.contains("pwtest-"))
            .unwrap()
            .clone()
    }
}

/// The rule ids of an exec line's `detections`.
fn ids(ev: &Value) -> BTreeSet<String> {
    ev["detections"]
        .as_array()
        .expect("detections is always an array")
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[root_test("loads eBPF")]
fn sigma_rules_fire_on_exactly_the_commands_they_describe() {
    let Some(root) = corpus() else { return };
    let rules = root.join("rules/linux");
    let dir = open_tempdir();
    let shm = format!("/dev/shm/{}", unique_tag("shm"));
    copy_true(std::path::Path::new("/dev/shm"), &shm[9..], 0o755);
    let in_tmp = copy_true(dir.path(), "plain-true", 0o755);
    let cases = vec![
        case(
            "awk",
            &["awk", "BEGIN {system(\"/bin/sh -c true\")}", "TAG"],
            &[("awk", &[AWK_SHELL])],
        ),
        case(
            "awk-benign",
            &["awk", "BEGIN {print 1}", "TAG"],
            &[("awk", &[])],
        ),
        case(
            "find",
            &[
                "find",
                ".",
                "-maxdepth",
                "0",
                "-exec",
                "/bin/sh",
                "-c",
                "true",
                "TAG",
                ";",
            ],
            &[("find", &[FIND_SHELL, FIND_DISCOVERY]), ("/bin/sh", &[])],
        ),
        case(
            "find-benign",
            &["find", ".", "-maxdepth", "0", "-name", "TAG"],
            &[("find", &[FIND_DISCOVERY])],
        ),
        case("shm", &[&shm, "TAG"], &[(&shm, &[DEV_SHM])]),
        case("tmp", &[&in_tmp, "TAG"], &[(&in_tmp, &[EXEC_FROM_TMP])]),
        case(
            "shm-benign",
            &["/usr/bin/true", "TAG"],
            &[("/usr/bin/true", &[])],
        ),
        case(
            "b64",
            &["base64", "-d", "TAG"],
            &[("base64", &[BASE64_DECODE])],
        ),
        case("b64-benign", &["base64", "TAG"], &[("base64", &[])]),
        case(
            "b64sh",
            &["sh", "-c", "echo dHJ1ZQo= | base64 -d | sh -s", "TAG"],
            &[("sh", &[BASE64_PIPE_SH, SHELL_PIPE_SHELL])],
        ),
        case(
            "b64sh-benign",
            &["sh", "-c", "echo dHJ1ZQo= | base64 -d > /dev/null", "TAG"],
            &[("sh", &[])],
        ),
        case(
            "setcap",
            &["setcap", "cap_setuid+ep", "TAG"],
            &[("setcap", &[SETCAP_SETUID])],
        ),
        case(
            "setcap-benign",
            &["setcap", "cap_net_raw+ep", "TAG"],
            &[("setcap", &[])],
        ),
        case(
            "getcap",
            &["getcap", "-r", "TAG"],
            &[("getcap", &[GETCAP_RECURSIVE])],
        ),
        case("getcap-benign", &["getcap", "TAG"], &[("getcap", &[])]),
        case(
            "sudoers",
            &["cat", "/etc/sudoers", "TAG"],
            &[("cat", &[READ_SUDOERS, LOCAL_ACCOUNT])],
        ),
        case(
            "sudoers-benign",
            &["cat", "/etc/hostname", "TAG"],
            &[("cat", &[])],
        ),
    ];
    let rules_arg = rules.to_str().unwrap();
    let mut mon = Monitor::start(&[
        "--format",
        "jsonl",
        "--no-hash",
        "--no-hijack-check",
        "--rules",
        rules_arg,
    ]);
    for c in &cases {
        let status = Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let _ = status; // some fail after their exec, on purpose
        mon.wait_for_exec(&c.tag());
    }
    // python's pty, run from `bash -i` (the rule wants that parent).
    let py = case(
        "pty",
        &["/usr/bin/python3", "-c", "import pty; pty.spawn", "TAG"],
        &[("/usr/bin/python3", &[INTERACTIVE_BASH, PYTHON_PTY])],
    );
    let py_benign = case(
        "pty-benign",
        &["/usr/bin/python3", "-c", "print(1)", "TAG"],
        &[("/usr/bin/python3", &[])],
    );
    let mut bash = Command::new("bash")
        .arg("-i")
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let script = format!(
        "/usr/bin/python3 -c 'import pty; pty.spawn' {}\n/usr/bin/python3 -c 'print(1)' {}\nexit\n",
        py.tag(),
        py_benign.tag()
    );
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(bash.wait().unwrap().success());
    mon.wait_for_exec(&py_benign.tag());
    let done = mon.stop();
    done.assert_clean_exit();
    let lines = done.json_lines();
    let start = &lines[0];
    assert_eq!(start["event"], "start");
    assert_eq!(start["rules_loaded"], 122, "{}", start["rules_skipped"]);
    assert_eq!(start["rules_skipped"], serde_json::json!([]));
    assert!(done.stderr.contains("rules: 122 loaded"), "{}", done.stderr);
    for c in cases.iter().chain([&py, &py_benign]) {
        let execs = execs_with_tag(&lines, &c.tag());
        let got: Vec<(String, BTreeSet<String>)> = execs
            .iter()
            .map(|ev| (ev["argv"][0].as_str().unwrap().to_string(), ids(ev)))
            .collect();
        let want: Vec<(String, BTreeSet<String>)> = c
            .expect
            .iter()
            .map(|(a0, ids)| (a0.clone(), ids.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(got, want, "case {}", c.name);
        for ev in &execs {
            for d in ev["detections"].as_array().unwrap() {
                assert!(d["title"].is_string() && d["level"].is_string(), "{d}");
                assert!(d["tags"].is_array() && d["status"].is_string(), "{d}");
            }
        }
    }
    let _ = std::fs::remove_file(&shm);
}
