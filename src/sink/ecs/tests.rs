//! The ECS documents of every event kind: exact fields, lossless bytes,
//! and every field checked against the ECS reference shipped as data.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::event::*;
use crate::sink::testutil::*;
use crate::sink::{Format, SinkOptions, make_sink};

#[path = "../../../tests/it/ecs_check.rs"]
mod ecs_check;

/// Renders `events` through the registry's ECS sink, one document each.
fn render(events: &[Event]) -> Vec<Value> {
    let buf = SharedBuf::default();
    let mut sink = make_sink(
        Format::Ecs,
        Box::new(buf.clone()),
        true,
        SinkOptions::default(),
    );
    for ev in events {
        sink.write_event(ev).unwrap();
    }
    sink.flush().unwrap();
    let text = buf.string();
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(docs.len(), events.len(), "{text}");
    docs
}

fn start() -> Event {
    Event::Start(start_info())
}

/// An exec with every finding procwatch has: a setuid raise, a hijackable
/// script, the credentials before the exec, a container, root's caps.
fn rich_exec() -> ExecEvent {
    let mut ev = exec_event();
    if let Some(Privileges::Linux { caps, raised, .. }) = &mut ev.privileges {
        caps.effective = (1 << 21) | (1 << 7);
        caps.permitted = 1 << 21;
        caps.ambient = 1 << 7;
        *raised = Some(PrivilegeRaise::Setuid);
    }
    ev.privilege_change = Some(setuid_change());
    ev.hijackable = vec![hijack_dir()];
    ev.pre_exec = Some(PreExec {
        uid: 1000,
        euid: 1000,
        caps_effective: 0,
    });
    ev.exe_sha256 = Some("ab".repeat(32));
    ev.parent = Some(ParentInfo {
        pid: 1000,
        start: None,
        image: Arc::new(ProcessImage {
            exec_id: Some("1000:5".into()),
            exe: Some(b"/usr/bin/bash".to_vec()),
            ..Default::default()
        }),
    });
    ev.ns.container = Some(Arc::new(Container {
        id: "c".repeat(64),
        runtime: "docker",
        delegated_uid: None,
        nested: false,
    }));
    ev
}

fn windows_exec() -> ExecEvent {
    let mut ev = ExecEvent::new(t0(), 4242, Some(1000), "4242:1".into());
    ev.exe = Some(b"C:\\Windows\\System32\\cmd.exe".to_vec());
    ev.command_line = Some(b"cmd.exe /c whoami".to_vec());
    ev.user = Some("DESKTOP\\alice".into());
    ev.privileges = Some(Privileges::Windows(WindowsToken {
        privileges: Some(vec![
            WinPrivilege {
                name: "SeDebugPrivilege".into(),
                attributes: SE_PRIVILEGE_ENABLED,
            },
            WinPrivilege {
                name: "SeShutdownPrivilege".into(),
                attributes: 0,
            },
        ]),
        integrity: Some(IntegrityLevel::High),
        elevation: Some(ElevationType::Full),
        session_id: Some(1),
        user_sid: Some("S-1-5-21-1-2-3-1001".into()),
        owner: Some("DESKTOP\\alice".into()),
    }));
    ev
}

/// One of every event kind, and the exec in all its shapes.
fn every_kind() -> Vec<Event> {
    let mut unknown = ExecEvent::new(t0(), 7, None, "7:1".into());
    unknown.mark_incomplete("argv", "the process exited before it was read");
    let exit = ExitEvent {
        time: t0(),
        pid: 4242,
        ppid: 1000,
        exec_id: Some("4242:123456789".into()),
        exit_code: Some(3),
        signal: None,
        core_dumped: false,
        lifetime: Some(Duration::from_micros(1500)),
        comm: Some(b"l\xffs".to_vec()),
    };
    let hash = |sha: Option<&str>, reason: Option<&str>| {
        Event::Hash(HashInfo {
            time: t0(),
            exec_id: "4242:123456789".into(),
            pid: 4242,
            exe_sha256: sha.map(str::to_owned),
            reason: reason.map(str::to_owned),
        })
    };
    vec![
        start(),
        Event::Exec(Box::new(exec_event())),
        Event::Exec(Box::new(rich_exec())),
        Event::Exec(Box::new(hostile_exec())),
        Event::Exec(Box::new(unknown)),
        Event::Exec(Box::new(windows_exec())),
        Event::Exit(Box::new(exit)),
        Event::Loss(loss_info()),
        hash(Some(&"cd".repeat(32)), None),
        hash(None, Some("file vanished")),
        Event::Stats(StatsInfo {
            time: t0(),
            counters: stop_info().counters,
        }),
        Event::Stop(stop_info()),
    ]
}

#[test]
fn every_field_of_every_kind_is_in_the_ecs_reference_with_its_type() {
    let reference = ecs_check::reference();
    for doc in render(&every_kind()) {
        let errs = ecs_check::violations(&doc, &reference);
        assert!(errs.is_empty(), "{errs:#?}\nin {doc}");
        assert_eq!(doc["ecs"]["version"], super::ECS_VERSION);
        assert!(ecs_check::is_rfc3339(doc["@timestamp"].as_str().unwrap()));
    }
}

#[test]
fn every_field_keeps_one_json_type_across_documents() {
    let mixed = ecs_check::mixed_types(&render(&every_kind()));
    assert!(mixed.is_empty(), "{mixed:#?}");
}

#[test]
fn exec_maps_to_the_ecs_process_fields_exactly() {
    let docs = render(&[start(), Event::Exec(Box::new(rich_exec()))]);
    let d = &docs[1];
    assert_eq!(d["@timestamp"], "2026-11-26T05:26:10.123456Z");
    assert_eq!(
        d["event"],
        json!({"kind": "event", "category": ["process"], "type": ["start"],
               "action": "exec", "module": "procwatch", "dataset": "procwatch.process"})
    );
    assert_eq!(d["host"]["name"], "host1");
    assert_eq!(d["host"]["boot"]["id"], "0f0e-boot");
    let p = &d["process"];
    assert_eq!(p["pid"], 4242);
    assert_eq!(p["entity_id"], "4242:123456789");
    assert_eq!(p["executable"], "/usr/bin/ls");
    assert_eq!(p["name"], "ls");
    assert_eq!(p["args"], json!(["ls", "-la", "/tmp"]));
    assert_eq!(p["args_count"], 3);
    assert_eq!(p["command_line"], "ls -la /tmp");
    assert_eq!(p["working_directory"], "/home/alice");
    assert_eq!(p["start"], "2026-11-26T05:26:08.123456Z");
    assert_eq!(
        p["parent"],
        json!({"pid": 1000, "entity_id": "1000:5", "executable": "/usr/bin/bash"})
    );
    assert_eq!(p["user"], json!({"id": "1001", "name": "alice"}));
    assert_eq!(p["real_user"], json!({"id": "1000"}));
    assert_eq!(p["saved_user"], json!({"id": "1002"}));
    assert_eq!(p["group"], json!({"id": "101", "name": "users"}));
    assert_eq!(p["real_group"], json!({"id": "100"}));
    assert_eq!(p["saved_group"], json!({"id": "102"}));
    assert_eq!(
        p["thread"]["capabilities"],
        json!({"effective": ["CAP_SETUID", "CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"]})
    );
    assert_eq!(p["hash"]["sha256"], "ab".repeat(32));
    assert_eq!(d["user"], json!({"id": "1001", "name": "alice"}));
    assert_eq!(
        d["container"],
        json!({"id": "c".repeat(64), "runtime": "docker"})
    );
    let w = &d["procwatch"];
    assert_eq!(
        w["privilege_change"],
        json!({"cause": "setuid", "from_euid": 1000, "to_euid": 0,
               "gained_caps": [], "launcher": null})
    );
    assert_eq!(
        w["hijackable"],
        json!([{"path": "/opt/job.sh", "role": "interpreter_arg",
                "writable": "/opt", "writers": ["user alice"]}])
    );
    assert_eq!(
        w["pre_exec"],
        json!({"uid": 1000, "euid": 1000, "caps_effective": "0x0000000000000000"})
    );
    assert_eq!(w["privilege_raised"], "setuid");
    assert_eq!(w["caps_ambient"], json!(["CAP_SETUID"]));
    assert_eq!(w["caps_raw"]["effective"], "0x0000000000200080");
    assert_eq!(w["raw"], json!({}));
    assert_eq!(w["incomplete"], json!([]));
}

#[test]
fn non_utf8_bytes_are_lossy_strings_and_exact_base64_under_raw() {
    let ev = hostile_exec();
    let d = &render(&[Event::Exec(Box::new(ev.clone()))])[0];
    let argv = ev.argv.as_ref().unwrap();
    let args = d["process"]["args"].as_array().unwrap();
    assert_eq!(args.len(), argv.len());
    for (a, want) in args.iter().zip(argv) {
        assert_eq!(a.as_str().unwrap(), String::from_utf8_lossy(want));
    }
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let raw = &d["procwatch"]["raw"];
    // Only argv[2] ("... \xff\xfe") is not UTF-8.
    let raw_args = raw["args"].as_array().unwrap();
    assert_eq!(raw_args.len(), 1, "{raw}");
    assert_eq!(raw_args[0]["index"], 2);
    assert_eq!(b64(&raw_args[0]["base64"]), argv[2]);
    assert_eq!(b64(&raw["executable"]), *ev.exe.as_ref().unwrap());
    assert_eq!(b64(&raw["filename"]), *ev.filename.as_ref().unwrap());
    assert_eq!(
        d["process"]["executable"],
        String::from_utf8_lossy(ev.exe.as_ref().unwrap()).as_ref()
    );
    // UTF-8 strings need no raw copy.
    assert!(raw.get("hijackable").is_none(), "{raw}");
    assert!(raw.get("working_directory").is_none(), "{raw}");
    assert!(raw.get("interpreter").is_none(), "{raw}");
}

#[test]
fn hijackable_paths_that_are_not_utf8_keep_their_bytes() {
    let mut ev = rich_exec();
    ev.hijackable.push(Hijack {
        path: b"/opt/\xffjob".to_vec(),
        role: HijackRole::Script,
        writable: b"/opt".to_vec(),
        writers: vec!["others".into()],
    });
    let d = &render(&[Event::Exec(Box::new(ev))])[0];
    assert_eq!(d["procwatch"]["hijackable"][1]["path"], "/opt/\u{fffd}job");
    assert_eq!(
        d["procwatch"]["raw"]["hijackable"],
        json!([{"index": 1, "path": "L29wdC//am9i"}])
    );
}

#[test]
fn unknown_fields_are_null_and_named_in_incomplete() {
    let mut ev = ExecEvent::new(t0(), 7, None, "7:1".into());
    ev.mark_incomplete("argv", "the process exited before it was read");
    let d = &render(&[Event::Exec(Box::new(ev))])[0];
    assert_eq!(d["process"]["args"], Value::Null);
    assert_eq!(d["process"]["args_count"], Value::Null);
    assert_eq!(d["process"]["parent"]["pid"], Value::Null);
    assert_eq!(d["process"]["user"]["id"], Value::Null);
    // Before any start event the host name is unknown, not invented.
    assert_eq!(d["host"]["name"], Value::Null);
    assert_eq!(d["procwatch"]["incomplete"], json!(["argv"]));
    assert_eq!(
        d["procwatch"]["incomplete_reasons"],
        json!([{"field": "argv", "reason": "the process exited before it was read"}])
    );
}

#[test]
fn windows_token_follows_elastic_defend() {
    let d = &render(&[Event::Exec(Box::new(windows_exec()))])[0];
    let p = &d["process"];
    assert_eq!(p["name"], "cmd.exe");
    assert_eq!(p["command_line"], "cmd.exe /c whoami");
    assert_eq!(p["user"], json!({"id": null, "name": "DESKTOP\\alice"}));
    assert_eq!(
        p["Ext"]["token"],
        json!({"integrity_level_name": "high", "elevation_type": "full",
               "sid": "S-1-5-21-1-2-3-1001",
               "privileges": [{"name": "SeDebugPrivilege", "enabled": true},
                              {"name": "SeShutdownPrivilege", "enabled": false}]})
    );
    assert_eq!(d["user"]["id"], "S-1-5-21-1-2-3-1001");
    assert_eq!(d["procwatch"]["integrity_rid"], 0x3000);
}

#[test]
fn lifecycle_documents_are_state_and_metric() {
    let docs = render(&every_kind());
    let by_action = |a: &str| {
        docs.iter()
            .find(|d| d["event"]["action"] == a)
            .unwrap_or_else(|| panic!("no {a}"))
    };
    let s = by_action("monitor-start");
    assert_eq!(s["event"]["kind"], "state");
    assert_eq!(s["procwatch"]["source"], "ebpf");
    let loss = by_action("loss");
    assert_eq!(loss["event"]["kind"], "metric");
    assert_eq!(
        loss["procwatch"]["loss"],
        json!({"place": "kernel", "dropped": 12, "total": 40, "meaning": "LOST 12 events"})
    );
    let stop = by_action("monitor-stop");
    assert_eq!(stop["event"]["kind"], "state");
    assert_eq!(stop["procwatch"]["stop_reason"], "signal");
    assert_eq!(stop["procwatch"]["counters"]["dropped"], 12);
    assert_eq!(stop["procwatch"]["counters"]["written"], 83);
    assert_eq!(by_action("stats")["event"]["kind"], "metric");
    let exit = by_action("exit");
    assert_eq!(exit["event"]["type"], json!(["end"]));
    assert_eq!(exit["process"]["exit_code"], 3);
    assert_eq!(exit["process"]["name"], "l\u{fffd}s");
    assert_eq!(exit["procwatch"]["raw"]["name"], "bP9z");
    assert_eq!(exit["procwatch"]["lifetime_us"], 1500);
    let hash = by_action("hash");
    assert_eq!(hash["process"]["hash"]["sha256"], "cd".repeat(32));
}
