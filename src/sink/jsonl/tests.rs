//! The JSONL sink's lines, field by field.

use super::*;
use crate::event::{
    CapSets, ExitEvent, FileInfo, HashInfo, LossPlace, Namespaces, NsInfo, PrivilegeRaise,
    Privileges, UserNs,
};
use crate::sink::escape::join_cmdline;
use crate::sink::escape::needs_escape;
use crate::sink::testutil::*;
use base64::Engine as _;
use serde_json::{Value, json};

/// A sink with the default fields and the fixtures' host name.
pub(super) fn sink(buf: &SharedBuf, fields: &[&str]) -> JsonlSink {
    let changes: Vec<FieldChange> = fields
        .iter()
        .map(|f| parse_field_change(f).unwrap())
        .collect();
    JsonlSink::with_fields(Box::new(buf.clone()), "host1".into(), Fields::new(&changes))
}

/// Every line of `text`, parsed and checked against schema/.
pub(super) fn lines(text: &str) -> Vec<Value> {
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            super::schema_check::assert_valid(&v);
            v
        })
        .collect()
}

pub(super) fn render_with(ev: &Event, fields: &[&str]) -> (String, Value) {
    let buf = SharedBuf::default();
    let mut s = sink(&buf, fields);
    s.write_event(ev).unwrap();
    s.flush().unwrap();
    let text = buf.string();
    assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
    let v = lines(&text).remove(0);
    (text, v)
}

pub(super) fn render(ev: &Event) -> (String, Value) {
    render_with(ev, &[])
}

/// The exact bytes of the string at JSON Pointer `ptr` of `line`: from
/// `raw` when they are not UTF-8, else the string itself.
fn bytes_at(line: &Value, ptr: &str) -> Vec<u8> {
    let s = line
        .pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{ptr} is not a string in {line}"));
    match line["raw"].get(ptr) {
        Some(b64) => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(b64.as_str().unwrap())
                .unwrap();
            assert_eq!(s, String::from_utf8_lossy(&b), "{ptr}: the lossy form");
            b
        }
        None => s.as_bytes().to_vec(),
    }
}

pub(super) fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn start_fields() {
    let (_, v) = render(&Event::Start(start_info()));
    assert_eq!(
        v,
        json!({
            "event": "start",
            "time": "2026-11-26T05:26:10.123456Z",
            "source": "ebpf",
            "attach": "tp_btf/sched_process_exec",
            "version": "0.1.0",
            "host": "host1",
            "hostname": "host1",
            "boot_id": "0f0e-boot",
            "guarantees": "every exec after start",
            "can_miss": "execs when the ring buffer is full (reported as loss)",
            "pid": 99,
            "short_lived_complete": false,
            "poll_interval_ms": null,
            "unavailable": [],
            "continuation": false,
            "rules_loaded": 0,
            "rules_skipped": [],
        })
    );
}

/// The namespace keys of every exec line.
pub(super) const NS_KEYS: [&str; 10] = [
    "namespaces",
    "ns_pid",
    "pidns_level",
    "in_host_userns",
    "userns_owner_uid",
    "userns_level",
    "cgroup",
    "container",
    "exe_mnt_id",
    "exe_other_mnt_ns",
];

#[test]
fn exec_namespace_fields() {
    let mut e = exec_event();
    e.ns = NsInfo {
        namespaces: Some(Namespaces {
            pid: 11,
            pid_for_children: 12,
            mnt: 13,
            net: 14,
            user: 15,
            uts: 16,
            ipc: 17,
            cgroup: 18,
        }),
        ns_pid: Some(1),
        pidns_level: Some(1),
        user_ns: Some(UserNs {
            level: 1,
            owner_uid: 65534,
        }),
        cgroup_id: Some(9876),
        cgroup_path: None,
        exe_mnt_id: Some(321),
        exe_other_mnt_ns: Some(true),
        container: Some(std::sync::Arc::new(crate::event::Container {
            id: "ab".repeat(32),
            runtime: "docker",
            delegated_uid: None,
            nested: false,
        })),
    };
    let (_, v) = render(&Event::Exec(Box::new(e.clone())));
    assert_eq!(
        v["namespaces"],
        json!({"pid": 11, "pid_for_children": 12, "mnt": 13, "net": 14,
               "user": 15, "uts": 16, "ipc": 17, "cgroup": 18})
    );
    assert_eq!(v["ns_pid"], 1);
    assert_eq!(v["pidns_level"], 1);
    assert_eq!(v["in_host_userns"], false);
    assert_eq!(v["userns_owner_uid"], 65534);
    assert_eq!(v["userns_level"], 1);
    assert_eq!(v["cgroup"], json!({"id": 9876, "path": null}));
    assert_eq!(v["exe_mnt_id"], 321);
    assert_eq!(v["exe_other_mnt_ns"], true);
    assert_eq!(
        v["container"],
        json!({"id": "ab".repeat(32), "runtime": "docker", "delegated_uid": null, "nested": false})
    );
    // In the host's user namespace the owner is null, the level 0.
    e.ns.user_ns = Some(UserNs {
        level: 0,
        owner_uid: 0,
    });
    let (_, v) = render(&Event::Exec(Box::new(e)));
    assert_eq!(v["in_host_userns"], true);
    assert_eq!(v["userns_owner_uid"], Value::Null);
    assert_eq!(v["userns_level"], 0);
}

#[test]
fn exec_fields() {
    let (_, v) = render(&Event::Exec(Box::new(exec_event())));
    // Fields beyond the macro's recursion limit, checked on their own.
    assert_eq!(v.get("command_line"), None, "Windows only");
    assert_eq!(v.get("cmdline"), None, "only with --fields +cmdline");
    assert_eq!(v.get("exe_inode"), None, "only with --fields +exe_inode");
    assert_eq!(v["raw"], json!({}));
    assert_eq!(v["incomplete"], json!([]));
    assert_eq!(v["incomplete_reasons"], json!({}));
    let mut v = v;
    for k in [
        "ancestors",
        "exe_sha256",
        "hijackable",
        "parent",
        "privilege_change",
    ] {
        assert!(
            v[k].is_null() || v[k] == json!([]),
            "{k}: nothing enriched yet"
        );
    }
    assert_eq!(v.get("token"), None, "Windows only");
    for k in NS_KEYS {
        assert!(v[k].is_null(), "{k}: no namespace facts in the fixture");
    }
    for k in NS_KEYS.into_iter().chain([
        "raw",
        "incomplete",
        "incomplete_reasons",
        "ancestors",
        "exe_sha256",
        "hijackable",
        "parent",
        "pre_exec",
        "privilege_change",
    ]) {
        v.as_object_mut().unwrap().remove(k);
    }
    // No rule loaded: an empty array, the type every exec line has.
    assert_eq!(
        v.as_object_mut().unwrap().remove("detections"),
        Some(json!([]))
    );
    assert_eq!(
        v,
        json!({
            "event": "exec",
            "time": "2026-11-26T05:26:10.123456Z",
            "host": "host1",
            "pid": 4242,
            "exec_tid": 4243,
            "ppid": 1000,
            "exec_id": "4242:123456789",
            "process_start": "2026-11-26T05:26:08.123456Z",
            "exe": "/usr/bin/ls",
            "filename": "/bin/ls",
            "argv": ["ls", "-la", "/tmp"],
            "argv_size": 12,
            "cwd": "/home/alice",
            "comm": "ls",
            "uid": 1000, "euid": 1001, "suid": 1002, "fsuid": 1003,
            "gid": 100, "egid": 101, "sgid": 102, "fsgid": 103,
            "user": "alice",
            "group": "users",
            "login_uid": 1000,
            "login_user": "alice",
            "session_id": 7,
            "caps": {"effective": [], "permitted": [], "inheritable": [], "ambient": []},
            "caps_raw": {
                "effective": "0x0000000000000000",
                "permitted": "0x0000000000000000",
                "inheritable": "0x0000000000000000",
                "ambient": "0x0000000000000000",
            },
            "secureexec": false,
            "file": {"mode": "00755", "uid": 0, "gid": 0},
        })
    );
}

#[test]
fn exec_privileged_and_optional_fields() {
    let mut ev = exec_event();
    ev.interpreter = Some(b"/bin/sh".to_vec());
    ev.cwd = None;
    ev.user = None;
    ev.group = None;
    ev.login_user = None;
    ev.privileges = Some(Privileges::Linux {
        creds: crate::event::Credentials {
            login_uid: None,
            session_id: None,
            ..Default::default()
        },
        caps: CapSets {
            effective: 1 | 1 << 21,
            permitted: (1 << 41) - 1,
            inheritable: 0,
            ambient: 1 << 63,
        },
        secureexec: None,
        file: Some(FileInfo {
            mode: 0o104755,
            uid: 0,
            gid: 0,
        }),
        raised: Some(PrivilegeRaise::Setuid),
    });
    let (_, v) = render(&Event::Exec(Box::new(ev)));
    assert_eq!(v["interpreter"], "/bin/sh");
    assert_eq!(v["cwd"], Value::Null);
    assert_eq!(v["user"], Value::Null);
    assert_eq!(v["group"], Value::Null);
    assert_eq!(v["login_user"], Value::Null);
    assert_eq!(v["login_uid"], Value::Null);
    assert_eq!(v["session_id"], Value::Null);
    assert_eq!(v["secureexec"], Value::Null);
    assert_eq!(
        v["caps"]["effective"],
        json!(["CAP_CHOWN", "CAP_SYS_ADMIN"])
    );
    // The full set is ALL; the raw mask keeps the exact bits.
    assert_eq!(v["caps"]["permitted"], json!(["ALL"]));
    assert_eq!(v["caps"]["ambient"], json!(["63"]));
    assert_eq!(v["caps_raw"]["effective"], "0x0000000000200001");
    assert_eq!(v["caps_raw"]["permitted"], "0x000001ffffffffff");
    assert_eq!(v["caps_raw"]["ambient"], "0x8000000000000000");
    assert_eq!(v["file"], json!({"mode": "04755", "uid": 0, "gid": 0}));
    assert_eq!(v["privilege_raised"], "setuid");

    for (r, s) in [
        (PrivilegeRaise::Setgid, "setgid"),
        (PrivilegeRaise::FileCaps, "file_caps"),
    ] {
        let mut ev = exec_event();
        let Some(Privileges::Linux { raised, file, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        *raised = Some(r);
        *file = None;
        let (_, v) = render(&Event::Exec(Box::new(ev)));
        assert_eq!(v["privilege_raised"], s);
        assert_eq!(v["file"], Value::Null);
    }
}

#[test]
fn insight_fields() {
    use crate::event::{ChangeCause, Hijack, HijackRole, ParentInfo, PrivilegeChange};
    let mut ev = exec_event();
    ev.parent = Some(ParentInfo {
        pid: 1000,
        start: None,
        image: std::sync::Arc::new(crate::event::ProcessImage {
            exec_id: Some("1000:5".into()),
            exe: Some(b"/usr/sbin/cron".to_vec()),
            argv: Some(vec![b"/usr/sbin/cron".to_vec(), b"-f".to_vec()]),
            user: Some("root".into()),
            euid: Some(0),
            caps_effective: None,
        }),
    });
    ev.ancestors = [&b"/usr/sbin/cron"[..], b"/sbin/init"]
        .map(|exe| {
            std::sync::Arc::new(crate::event::ProcessImage {
                exe: Some(exe.to_vec()),
                ..Default::default()
            })
        })
        .to_vec();
    ev.exe_sha256 = Some("ab".repeat(32));
    ev.exe_dev_ino = Some((0x801, 42)); // makedev(8, 1)
    ev.privilege_change = Some(PrivilegeChange {
        cause: ChangeCause::Launcher,
        from_euid: 1000,
        from_caps: 0,
        to_euid: 0,
        gained_caps: 1 << 13,
        launcher: Some(b"/usr/bin/sudo".to_vec()),
    });
    ev.hijackable = vec![Hijack {
        path: b"/opt/job.sh".to_vec(),
        role: HijackRole::Script,
        writable: b"/opt".to_vec(),
        writers: vec!["user alice".into(), "others".into()],
    }];
    let (_, v) = render_with(&Event::Exec(Box::new(ev.clone())), &["+exe_inode"]);
    // Not in this file: the parent's argv is carried.
    assert_eq!(
        v["parent"],
        json!({"pid": 1000, "exec_id": "1000:5", "exe": "/usr/sbin/cron", "start": null, "argv": ["/usr/sbin/cron", "-f"]})
    );
    assert_eq!(v["ancestors"], json!(["/usr/sbin/cron", "/sbin/init"]));
    assert_eq!(v["exe_inode"], json!({"dev": "8:1", "ino": 42}));
    let (_, v) = render_with(
        &Event::Exec(Box::new(ev.clone())),
        &["+parent.user", "+parent.euid", "-parent.argv"],
    );
    assert_eq!(v["parent"]["user"], "root");
    assert_eq!(v["parent"]["euid"], 0);
    assert_eq!(v["parent"].get("argv"), None);
    assert_eq!(v["privilege_change"]["cause"], "launcher");
    assert_eq!(v["privilege_change"]["gained_caps"], json!(["CAP_NET_RAW"]));
    assert_eq!(v["privilege_change"]["launcher"], "/usr/bin/sudo");
    assert_eq!(
        v["hijackable"],
        json!([{"path": "/opt/job.sh", "role": "script", "writable": "/opt", "writers": ["user alice", "others"]}])
    );
}

#[test]
fn hostile_exec_round_trips_and_is_terminal_safe() {
    let ev = hostile_exec();
    let (text, v) = render_with(&Event::Exec(Box::new(ev.clone())), &["+cmdline"]);
    let argv = v["argv"].as_array().unwrap();
    let ev_argv = ev.argv.clone().unwrap();
    assert_eq!(argv.len(), ev_argv.len());
    for (i, want) in ev_argv.iter().enumerate() {
        assert!(argv[i].is_string(), "argv elements are always strings");
        assert_eq!(&bytes_at(&v, &format!("/argv/{i}")), want);
    }
    // The non-UTF-8 argument's exact bytes are in raw, its string lossy.
    assert!(v["raw"].get("/argv/2").is_some(), "{v}");
    assert_eq!(argv[2], String::from_utf8_lossy(&ev_argv[2]).as_ref());
    assert!(v["raw"].get("/argv/4").is_none());
    assert_eq!(Some(bytes_at(&v, "/exe")), ev.exe);
    assert_eq!(Some(bytes_at(&v, "/filename")), ev.filename);
    assert_eq!(Some(bytes_at(&v, "/interpreter")), ev.interpreter);
    assert_eq!(Some(bytes_at(&v, "/cwd")), ev.cwd);
    assert_eq!(Some(bytes_at(&v, "/comm")), ev.comm);
    assert_eq!(v["user"], "bob\x1b[0m");
    assert_eq!(v["cmdline"], join_cmdline(ev.argv.as_deref().unwrap()));
    // Nothing a terminal would act on, raw.
    assert!(
        !text.chars().any(|c| c != '\n' && needs_escape(c)),
        "{text}"
    );
    assert!(text.contains("\\u202e"));
    assert!(text.contains("\\u009b"));
    assert!(text.contains("\\u007f"));
}

#[test]
fn astral_unsafe_chars_are_surrogate_pairs() {
    let mut start = start_info();
    start.hostname = "a\u{e0041}b\u{2066}".to_owned();
    let (text, v) = render(&Event::Start(start));
    assert!(text.contains("\"a\\udb40\\udc41b\\u2066\""), "{text}");
    assert_eq!(v["hostname"], "a\u{e0041}b\u{2066}");
    let mut start = start_info();
    start.hostname = "plain é".to_owned();
    assert!(render(&Event::Start(start)).0.contains("\"plain é\""));
}

/// The lines other than exec keep their members in alphabetical order.
#[test]
fn other_lines_list_members_alphabetically() {
    let exit = ExitEvent {
        time: t0(),
        pid: 1,
        ppid: 2,
        exec_id: Some("1:2".into()),
        exit_code: Some(0),
        signal: None,
        core_dumped: false,
        lifetime: Some(std::time::Duration::from_micros(1500)),
        comm: Some(b"x".to_vec()),
    };
    for ev in [
        Event::Start(start_info()),
        Event::Exit(Box::new(exit)),
        Event::Loss(loss_info()),
        Event::Stop(stop_info()),
        Event::Stats(crate::event::StatsInfo {
            time: t0(),
            counters: stop_info().counters,
        }),
        Event::Hash(HashInfo {
            time: t0(),
            exec_id: "1:2".into(),
            pid: 1,
            exe_sha256: None,
            reason: Some("r".into()),
        }),
    ] {
        let (text, v) = render(&ev);
        let mut at: Vec<(usize, &str)> = keys(&v)
            .into_iter()
            .map(|k| (text.find(&format!("\"{k}\":")).unwrap(), k))
            .collect();
        at.sort_unstable();
        let order: Vec<&str> = at.iter().map(|(_, k)| *k).collect();
        assert_eq!(order, keys(&v), "{text}");
    }
}

#[test]
fn exit_lifetime_is_a_float_in_milliseconds() {
    let mut exit = ExitEvent {
        time: t0(),
        pid: 1,
        ppid: 2,
        exec_id: None,
        exit_code: None,
        signal: Some(9),
        core_dumped: true,
        lifetime: Some(std::time::Duration::from_micros(1500)),
        comm: Some(b"a\xffb".to_vec()),
    };
    let (text, v) = render(&Event::Exit(Box::new(exit.clone())));
    assert!(text.contains("\"lifetime_ms\":1.5,"), "{text}");
    assert_eq!(v["comm"], "a\u{fffd}b");
    assert_eq!(v["raw"], json!({"/comm": "Yf9i"}));
    exit.lifetime = Some(std::time::Duration::from_secs(2));
    let (text, _) = render(&Event::Exit(Box::new(exit.clone())));
    assert!(text.contains("\"lifetime_ms\":2000.0,"), "{text}");
    exit.lifetime = None;
    assert_eq!(
        render(&Event::Exit(Box::new(exit))).1["lifetime_ms"],
        Value::Null
    );
}

#[test]
fn loss_fields() {
    let (_, v) = render(&Event::Loss(loss_info()));
    assert_eq!(
        v,
        json!({"event": "loss", "time": "2026-11-26T05:26:10.123456Z", "host": "host1", "place": "kernel", "dropped": 12, "total": 40})
    );
    let mut q = loss_info();
    q.place = LossPlace::Queue;
    let (_, v) = render(&Event::Loss(q));
    assert_eq!(v["place"], "queue");
}

#[test]
fn stop_fields() {
    let (_, v) = render(&Event::Stop(stop_info()));
    assert_eq!(
        v,
        json!({
            "event": "stop",
            "time": "2026-11-26T05:26:10.123456Z",
            "host": "host1",
            "reason": "signal",
            "seen": 100,
            "emitted": 88,
            "dropped": 12,
            "truncated": 3,
            "received": 88,
            "queue_dropped": 5,
            "aux_dropped": 0,
            "filtered": 4,
            "written": 83,
            "netlink_enobufs": 0,
            "proc_read_failures": 0,
            "too_late": 0,
            "write_errors": 0,
            "output_dropped": 0,
        })
    );
}

#[test]
fn stats_has_the_stop_counters_with_the_same_types() {
    let stop = stop_info();
    let (_, stats) = render(&Event::Stats(crate::event::StatsInfo {
        time: stop.time,
        counters: stop.counters,
    }));
    let (_, mut stop) = render(&Event::Stop(stop));
    assert_eq!(stats["event"], "stats");
    stop.as_object_mut().unwrap().remove("reason");
    stop["event"] = json!("stats");
    assert_eq!(stats, stop);
}

#[test]
fn big_counters_are_exact() {
    let mut s = stop_info();
    s.counters.seen = u64::MAX;
    let (text, v) = render(&Event::Stop(s));
    assert_eq!(v["seen"].as_u64(), Some(u64::MAX));
    assert!(text.contains("18446744073709551615"));
}

#[test]
fn hash_fields_keep_their_types() {
    let done = HashInfo {
        time: loss_info().time,
        exec_id: "42:7".into(),
        pid: 42,
        exe_sha256: Some("ab".repeat(32)),
        reason: None,
    };
    let (_, v) = render(&Event::Hash(done.clone()));
    assert_eq!(
        v,
        json!({"event": "hash", "time": "2026-11-26T05:26:10.123456Z", "host": "host1", "exec_id": "42:7", "pid": 42, "exe_sha256": "ab".repeat(32), "reason": null})
    );
    // The reason may quote a user's path: escaped like any string.
    let failed = HashInfo {
        exe_sha256: None,
        reason: Some("/tmp/\u{1b}[31mx: gone".into()),
        ..done
    };
    let (text, v) = render(&Event::Hash(failed));
    assert_eq!(v["exe_sha256"], Value::Null);
    assert!(v["reason"].is_string());
    assert!(!text.contains('\u{1b}'), "{text:?}");
}
