//! Which keys an exec line has: every field on request, the compact
//! default, and the parent object against what the file holds.

use super::tests::{keys, lines, render, render_with, sink};
use super::*;
use crate::event::ExecEvent;
use crate::sink::testutil::*;
use serde_json::{Value, json};

/// The exec fields left out of a default line whatever their value.
const NEVER_BY_DEFAULT: [&str; 3] = ["cmdline", "exe_inode", "token"];

#[test]
fn every_exec_has_the_same_keys() {
    // Every field on request: the same keys, whatever the values.
    let all: Vec<String> = FIELDS.iter().map(|(_, n, _)| format!("+{n}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut bare = ExecEvent::new(t0(), 7, Some(1), "7:1".into());
    bare.mark_incomplete("argv", "process exited before it was read");
    bare.mark_incomplete("caps", "process exited before it was read");
    let full: Vec<Value> = [exec_event(), hostile_exec(), bare.clone()]
        .into_iter()
        .map(|e| render_with(&Event::Exec(Box::new(e)), &all).1)
        .collect();
    for v in &full {
        assert_eq!(keys(v), keys(&full[0]));
    }
    // event, time, host, pid, exec_id, raw, incomplete_reasons (with
    // incomplete) and the selectable ones, less the parent's three members.
    assert_eq!(keys(&full[0]).len(), 7 + FIELDS.len() - 3);
    // The default: what is left out for this fixture, and nothing else.
    let (_, a) = render(&Event::Exec(Box::new(exec_event())));
    let mut want = keys(&full[0]);
    want.retain(|k| {
        !NEVER_BY_DEFAULT.contains(k)
            && ![
                "tid",
                "command_line",
                "exe_truncated",
                "argv_truncated",
                "interpreter",
                "privilege_change",
                "hijackable",
                "container",
                "privilege_raised",
            ]
            .contains(k)
    });
    assert_eq!(keys(&a), want);
    // A source that could not read anything: its fields null, and the
    // ones whose null would mean "none" left out.
    let (_, c) = render(&Event::Exec(Box::new(bare)));
    for k in ["suid", "login_uid", "session_id", "privilege_raised"] {
        assert_eq!(c.get(k), None, "{k}");
    }
    assert_eq!(c["tid"], Value::Null, "unknown, unlike the pid");
    for k in [
        "argv",
        "exe",
        "uid",
        "euid",
        "caps",
        "user",
        "process_start",
    ] {
        assert_eq!(c[k], Value::Null, "{k}");
    }
    assert_eq!(c["incomplete"], json!(["argv", "caps"]));
    assert_eq!(
        c["incomplete_reasons"]["argv"],
        "process exited before it was read"
    );
}

/// A forked child runs its parent's image: two parents with one exec_id
/// (bash and its subshell) are still told apart by pid and start, and a
/// parent whose exec line is in the file leaves its argv to that line.
#[test]
fn parents_sharing_an_image_keep_their_own_pid_and_argv_follows_the_file() {
    use crate::event::{ParentInfo, ProcessImage};
    let image = std::sync::Arc::new(ProcessImage {
        exec_id: Some("100:5".into()),
        exe: Some(b"/usr/bin/bash".to_vec()),
        argv: Some(vec![b"bash".to_vec()]),
        ..Default::default()
    });
    let child = |pid: u32, parent_pid: u32, secs: u64| {
        let mut ev = exec_event();
        ev.pid = pid;
        ev.exec_id = format!("{pid}:9");
        ev.parent = Some(ParentInfo {
            pid: parent_pid,
            start: Some(t0() - std::time::Duration::from_secs(secs)),
            image: std::sync::Arc::clone(&image),
        });
        Event::Exec(Box::new(ev))
    };
    let mut bash = exec_event();
    bash.pid = 100;
    bash.exec_id = "100:5".into();
    let buf = SharedBuf::default();
    let mut s = sink(&buf, &[]);
    for ev in [
        child(201, 100, 9),
        child(202, 150, 3),
        Event::Exec(Box::new(bash)),
        child(203, 150, 3),
    ] {
        s.write_event(&ev).unwrap();
    }
    s.flush().unwrap();
    let v = lines(&buf.string());
    assert_eq!(v[0]["parent"]["pid"], 100);
    assert_eq!(v[1]["parent"]["pid"], 150, "the subshell, not bash");
    assert_ne!(v[0]["parent"]["start"], v[1]["parent"]["start"]);
    assert_eq!(
        v[1]["parent"]["argv"],
        json!(["bash"]),
        "bash not in the file yet"
    );
    assert_eq!(v[3]["parent"]["exec_id"], v[2]["exec_id"]);
    assert_eq!(v[3]["parent"].get("argv"), None, "bash's own line holds it");
    // A new file (SIGHUP) holds no parent's line.
    s.reopened(true);
    s.write_event(&child(204, 150, 3)).unwrap();
    s.flush().unwrap();
    let v = lines(&buf.string());
    assert_eq!(v[4]["parent"]["argv"], json!(["bash"]));
}

/// Every field of every schema is named in README.md (in backticks), and
/// every field `--fields` knows is in the exec schema.
#[test]
fn every_field_is_in_the_schema_and_the_readme() {
    let readme = include_str!("../../../README.md");
    let words: std::collections::HashSet<&str> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|code| code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    let mut exec_props = Vec::new();
    for (kind, text) in super::schema_check::SCHEMAS {
        let v: Value = serde_json::from_str(text).unwrap();
        let props: Vec<String> = v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for k in &props {
            assert!(
                words.contains(k.as_str()),
                "{kind}: `{k}` is not in README.md"
            );
        }
        if kind == "exec" {
            exec_props = props;
        }
    }
    for (_, name, _) in FIELDS {
        let top = name.split('.').next().unwrap();
        assert!(
            exec_props.iter().any(|p| p == top),
            "{name} not in schema/exec.json"
        );
    }
}
