//! `--format ecs` against the real kernel: tagged execs come out as ECS
//! process start and end documents with exact fields, and every document of the
//! run fits the ECS field reference (tests/data/ecs_fields.tsv).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;

use crate::common::*;
use crate::ecs_check;

/// The ECS exec documents whose `process.args` hold `tag`.
fn ecs_execs<'a>(docs: &'a [Value], tag: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["event"]["action"] == "exec")
        .filter(|d| {
            d["process"]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(tag)))
        })
        .collect()
}

#[root_test("loads eBPF")]
fn real_execs_are_ecs_documents_that_fit_the_reference() {
    let tag = unique_tag("ecs");
    let mon = Monitor::start(&["--format", "ecs", "--exits"]);
    let child_pid = run_tracked(
        Command::new("/bin/true")
            .arg(&tag)
            .arg(OsStr::from_bytes(b"bad\xffutf8")),
    )
    .pid;
    let out = mon.stop();
    out.assert_clean_exit();
    let docs = out.json_lines();
    let reference = ecs_check::reference();
    for d in &docs {
        let errs = ecs_check::violations(d, &reference);
        assert!(errs.is_empty(), "{errs:#?}\nin {d}");
    }
    let mixed = ecs_check::mixed_types(&docs);
    assert!(mixed.is_empty(), "{mixed:#?}");
    assert_eq!(docs[0]["event"]["action"], "monitor-start");
    assert_eq!(docs.last().unwrap()["event"]["action"], "monitor-stop");
    let execs = ecs_execs(&docs, &tag);
    assert_eq!(execs.len(), 1, "{execs:#?}");
    let d = execs[0];
    let p = &d["process"];
    assert_eq!(p["pid"], child_pid);
    assert_eq!(p["executable"], canonical("/bin/true").as_str());
    assert_eq!(p["name"], "true");
    assert_eq!(
        p["args"],
        serde_json::json!(["/bin/true", tag, "bad\u{fffd}utf8"])
    );
    assert_eq!(p["args_count"], 3);
    assert_eq!(p["parent"]["pid"], std::process::id());
    assert_eq!(p["user"]["id"], "0");
    assert_eq!(p["user"]["name"], "root");
    assert_eq!(d["user"]["id"], "0");
    assert_eq!(p["real_user"]["id"], "0");
    assert!(
        p["thread"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".into()),
        "{p}"
    );
    assert_eq!(
        p["entity_id"].as_str().unwrap().split(':').next().unwrap(),
        child_pid.to_string()
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(d["host"]["name"], host.trim());
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(d["host"]["boot"]["id"], boot.trim());
    let raw = &d["procwatch"]["raw"]["args"];
    assert_eq!(raw[0]["index"], 2, "{raw}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw[0]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, b"bad\xffutf8");
    // Its exit: a process end event for the same entity.
    let exits: Vec<&Value> = docs
        .iter()
        .filter(|e| e["event"]["action"] == "exit" && e["process"]["entity_id"] == p["entity_id"])
        .collect();
    assert_eq!(exits.len(), 1, "{exits:#?}");
    assert_eq!(exits[0]["event"]["type"], serde_json::json!(["end"]));
    assert_eq!(exits[0]["process"]["pid"], child_pid);
    assert_eq!(exits[0]["process"]["exit_code"], 0);
    assert_eq!(exits[0]["process"]["name"], "true");
}
