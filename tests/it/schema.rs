//! The JSONL schema end to end: every event kind conforms to schema/*.json
//! with one JSON type per field, hostile bytes round-trip through `raw`,
//! the schema rejects what it must, `--fields` rejects unknown names, a
//! real run's exec lines are compact and join on `exec_id`, and DuckDB reads
//! a file of every kind with `argv` as a list of strings.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::common::*;
use procwatch::event::*;
use procwatch::sink::{Format, SinkOptions, make_sink};
use serde_json::{Value, json};

const HOSTILE: &[u8] = b"x\xff\xfe\x1b[31m";

/// A file of every event kind, hostile bytes in every byte field, written
/// by the JSONL sink with `fields` (as `--fields` items).
fn every_kind(path: &Path, fields: &[&str]) {
    let changes: Vec<_> = fields
        .iter()
        .map(|f| procwatch::sink::jsonl::parse_field_change(f).unwrap())
        .collect();
    let opts = SinkOptions {
        jsonl_fields: procwatch::sink::jsonl::Fields::new(&changes),
        ..SinkOptions::default()
    };
    let out = std::fs::File::create(path).unwrap();
    let mut sink = make_sink(Format::Jsonl, Box::new(out), true, opts);
    let t = SystemTime::now();
    let b = |s: &[u8]| [s, HOSTILE].concat();
    let start = StartInfo {
        time: t,
        source: "ebpf".into(),
        attach: "tp_btf/sched_process_exec".into(),
        version: "0.1.0".into(),
        hostname: "schema-host".into(),
        boot_id: "b".into(),
        guarantees: "g".into(),
        can_miss: "c".into(),
        pid: 1,
        coverage: Coverage::default(),
        continuation: false,
        rules: RulesSummary {
            loaded: 1,
            skipped: vec![SkippedRule {
                file: String::from_utf8_lossy(&b(b"/rules/x.yml")).into_owned(),
                reason: "unsupported: timeframe".into(),
            }],
        },
    };
    let mut linux = ExecEvent::new(t, 4242, Some(1), "4242:99".into());
    linux.process_start = Some(t);
    linux.exe = Some(b(b"/tmp/exe"));
    linux.filename = Some(b(b"./exe"));
    linux.interpreter = Some(b(b"/bin/sh"));
    linux.argv = Some(vec![b"exe".to_vec(), b(b"arg"), b"plain".to_vec(), vec![]]);
    linux.cwd = Some(b(b"/tmp"));
    linux.comm = Some(b(b"c"));
    linux.user = Some("root".into());
    linux.detections = vec![Arc::new(Detection {
        id: Some("e2072cab-8c9a-459b-b63c-40ae79e27031".into()),
        title: "Shell spawned by awk".into(),
        level: Some(Level::High),
        tags: vec!["attack.execution".into()],
        status: None,
    })];
    linux.privileges = Some(Privileges::Linux {
        creds: Credentials {
            suid: 7,
            ..Credentials::default()
        },
        caps: CapSets {
            effective: 0x1ff_ffff_ffff & !(1 << 24),
            permitted: 0x1ff_ffff_ffff,
            inheritable: 1 << 12,
            ambient: 0,
        },
        secureexec: Some(false),
        file: Some(FileInfo {
            mode: 0o104755,
            uid: 0,
            gid: 0,
        }),
        raised: Some(PrivilegeRaise::Setuid),
    });
    let image = Arc::new(ProcessImage {
        exec_id: None,
        exe: Some(b(b"/parent")),
        argv: Some(vec![b(b"parent"), b"-x".to_vec()]),
        user: Some("alice".into()),
        euid: Some(1000),
        caps_effective: Some(0),
    });
    linux.parent = Some(ParentInfo {
        pid: 1,
        start: Some(t - Duration::from_secs(5)),
        image: Arc::clone(&image),
    });
    linux.ancestors = vec![image];
    linux.privilege_change = Some(PrivilegeChange {
        cause: ChangeCause::Launcher,
        from_euid: 1000,
        from_caps: 0,
        to_euid: 0,
        gained_caps: 0x1ff_ffff_ffff,
        launcher: Some(b(b"/usr/bin/sudo")),
    });
    linux.hijackable = vec![Hijack {
        path: b(b"/opt/job"),
        role: HijackRole::Script,
        writable: b(b"/opt"),
        writers: vec!["others".into()],
    }];
    linux.exe_dev_ino = Some((0x801, 42));
    linux.ns.cgroup_id = Some(5);
    linux.ns.cgroup_path = Some(b(b"/user.slice/"));
    linux.mark_incomplete("exe_sha256", "hash_pending");
    let mut windows = ExecEvent::new(t, 8, None, "8:1".into());
    windows.command_line = Some(b(b"cmd.exe /c "));
    windows.privileges = Some(Privileges::Windows(WindowsToken {
        privileges: Some(vec![WinPrivilege {
            name: "SeDebugPrivilege".into(),
            attributes: 3,
        }]),
        integrity: Some(IntegrityLevel::from_rid(0x4000)),
        elevation: None,
        session_id: Some(0),
        user_sid: Some("S-1-5-18".into()),
        owner: None,
    }));
    windows.mark_incomplete("ppid", "not reported");
    let bare = ExecEvent::new(t, 9, Some(1), "9:1".into());
    let counters = Counters {
        seen: u64::MAX,
        ..Counters::default()
    };
    let events = [
        Event::Start(start),
        Event::Exec(Box::new(linux)),
        Event::Exec(Box::new(windows)),
        Event::Exec(Box::new(bare)),
        Event::Exit(Box::new(ExitEvent {
            time: t,
            pid: 4242,
            ppid: 1,
            exec_id: Some("4242:99".into()),
            exit_code: None,
            signal: Some(9),
            core_dumped: true,
            lifetime: Some(Duration::from_micros(1500)),
            comm: Some(b(b"c")),
        })),
        Event::Exit(Box::new(ExitEvent {
            time: t,
            pid: 9,
            ppid: 1,
            exec_id: None,
            exit_code: Some(1),
            signal: None,
            core_dumped: false,
            lifetime: None,
            comm: None,
        })),
        Event::Loss(LossInfo {
            time: t,
            place: LossPlace::Queue,
            dropped: 3,
            total: 3,
        }),
        Event::Loss(LossInfo {
            time: t,
            place: LossPlace::Syslog,
            dropped: 1,
            total: 4,
        }),
        Event::Hash(HashInfo {
            time: t,
            exec_id: "4242:99".into(),
            pid: 4242,
            exe_sha256: None,
            reason: Some("gone".into()),
        }),
        Event::Stats(StatsInfo { time: t, counters }),
        Event::Stop(StopInfo {
            time: t,
            reason: "signal".into(),
            counters,
        }),
    ];
    for ev in &events {
        sink.write_event(ev).unwrap();
    }
    sink.flush().unwrap();
}

/// Every JSON Pointer in `raw` names a string whose exact bytes it holds,
/// and every such string is the lossy form of them.
fn check_raw(line: &Value) -> usize {
    let raw = line["raw"].as_object().expect("raw is an object");
    for ptr in raw.keys() {
        let bytes = json_bytes(line, ptr);
        assert!(
            bytes.ends_with(HOSTILE),
            "{ptr}: the exact bytes, hostile tail included: {bytes:?}"
        );
    }
    raw.len()
}

#[test]
fn every_event_kind_conforms_and_bytes_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for fields in [
        &[][..],
        &[
            "+cmdline",
            "+exe_inode",
            "+suid",
            "+fsuid",
            "+sgid",
            "+fsgid",
            "+token",
            "+command_line",
            "+parent.user",
            "+parent.euid",
        ][..],
    ] {
        let path = dir.path().join("all.jsonl");
        every_kind(&path, fields);
        // json_lines checks every line against its kind's schema.
        let lines = json_lines(&std::fs::read_to_string(&path).unwrap());
        let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "start", "exec", "exec", "exec", "exit", "exit", "loss", "loss", "hash", "stats",
                "stop"
            ]
        );
        for l in &lines {
            assert_eq!(l["host"], "schema-host", "{l}");
        }
        let linux = &lines[1];
        assert_eq!(check_raw(linux), 13, "{}", linux["raw"]);
        for (i, a) in linux["argv"].as_array().unwrap().iter().enumerate() {
            assert!(a.is_string(), "argv[{i}] is a string: {a}");
        }
        assert_eq!(
            json_bytes(linux, "/argv/1"),
            [&b"arg"[..], HOSTILE].concat()
        );
        assert_eq!(json_bytes(linux, "/argv/3"), b"");
        assert!(linux["raw"].get("/argv/0").is_none());
        assert_eq!(
            linux["caps"]["effective"],
            json!(["ALL", "-CAP_SYS_RESOURCE"])
        );
        assert_eq!(linux["caps"]["permitted"], json!(["ALL"]));
        assert_eq!(linux["caps"]["inheritable"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(linux["caps_raw"]["effective"], "0x000001fffeffffff");
        assert_eq!(linux["privilege_change"]["gained_caps"], json!(["ALL"]));
        // The parent was never exec'd in this file: its argv is carried.
        assert_eq!(linux["parent"]["argv"][1], "-x");
        assert_eq!(check_raw(&lines[2]), 1, "the command line");
        assert_eq!(check_raw(&lines[4]), 1, "the exit's comm");
        assert_eq!(lines[3]["raw"], json!({}));
        assert_eq!(lines[5]["raw"], json!({}));
        let forced = !fields.is_empty();
        for (line, key) in [
            (linux, "cmdline"),
            (linux, "exe_inode"),
            (linux, "fsuid"),
            (linux, "token"),
            (linux, "command_line"),
        ] {
            assert_eq!(line.get(key).is_some(), forced, "{key} in {line}");
        }
        assert_eq!(linux["suid"], 7, "a saved uid unlike euid is always there");
        assert!(lines[2]["token"].is_object(), "Windows: its token");
        assert!(lines[2]["command_line"].is_string());
    }
}

#[test]
fn the_schema_rejects_a_changed_type_and_an_undocumented_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.jsonl");
    every_kind(&path, &[]);
    let lines = json_lines(&std::fs::read_to_string(&path).unwrap());
    let exec = &lines[1];
    let changes: [(&str, Value); 6] = [
        ("/argv/1", json!({"base64": "eP8=", "lossy": "x\u{fffd}"})),
        ("/pid", json!("4242")),
        ("/caps_raw/effective", json!(8_589_934_591u64)),
        ("/parent/start", json!(1700000000)),
        ("/raw", json!([])),
        ("/host", Value::Null),
    ];
    for (ptr, bad) in changes {
        let mut v = exec.clone();
        *v.pointer_mut(ptr).unwrap() = bad;
        assert!(schema_check::check(&v).is_err(), "{ptr} accepted: {v}");
    }
    let mut v = exec.clone();
    v["detected_by_nobody"] = json!(true);
    assert!(schema_check::check(&v).is_err(), "an undocumented field");
    let mut v = lines[6].clone();
    v["place"] = json!("elsewhere");
    assert!(
        schema_check::check(&v).is_err(),
        "an undocumented loss place"
    );
}

#[test]
fn fields_flag_rejects_unknown_names_listing_the_valid_ones() {
    let out = Command::new(PROCWATCH)
        .args(["--format", "jsonl", "--fields", "+cmdline,-nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"nope\""), "{err}");
    assert!(
        err.contains("cmdline, ") && err.contains("parent.argv"),
        "{err}"
    );
    let out = Command::new(PROCWATCH)
        .args(["--format", "csv", "--fields", "+cmdline"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fields needs --format jsonl"));
}

#[root_test("loads eBPF")]
fn real_execs_are_compact_and_join_on_exec_id() {
    let tag = unique_tag("schema");
    let dir = open_tempdir();
    // A file whose name and an argument are not UTF-8.
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"tr\xffue"));
    std::fs::copy("/bin/true", &odd).unwrap();
    let mon = Monitor::start(&["--format", "jsonl", "--exits"]);
    let st = Command::new("/bin/sh")
        .args(["-c", "\"$3\" \"$1\" \"$2\"; exit 3", "sh", &tag])
        .arg(std::ffi::OsStr::from_bytes(b"a\xffb"))
        .arg(&odd)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
    let lines = mon.stop().json_lines();
    let execs = execs_with_tag(&lines, &tag);
    let sh = execs
        .iter()
        .find(|e| e["argv"][0] == "/bin/sh")
        .expect("the shell's exec");
    let child = execs
        .iter()
        .find(|e| e["argv"][0] != "/bin/sh")
        .expect("the child's exec");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for l in &lines {
        assert_eq!(l["host"], host.trim(), "{l}");
    }
    // The child's parent is the shell's own exec line: joined on exec_id,
    // its argv left to that line.
    assert_eq!(child["parent"]["exec_id"], sh["exec_id"]);
    assert_eq!(child["parent"]["pid"], sh["pid"]);
    assert_eq!(child["parent"].get("argv"), None, "{}", child["parent"]);
    // The parent's start: a time (same format, so ordered as strings)
    // before the child's own.
    let start = child["parent"]["start"].as_str().expect("parent.start");
    assert!(start <= child["process_start"].as_str().unwrap(), "{start}");
    // The shell's parent (this test) never exec'd in the log: argv carried.
    assert!(sh["parent"]["argv"].is_array(), "{}", sh["parent"]);
    assert_eq!(json_bytes(child, "/exe"), odd.as_os_str().as_bytes());
    assert_eq!(json_bytes(child, "/argv/2"), b"a\xffb");
    assert_eq!(child["argv"][2], "a\u{fffd}b");
    for key in [
        "cmdline",
        "exe_inode",
        "suid",
        "fsuid",
        "sgid",
        "fsgid",
        "token",
    ] {
        assert_eq!(child.get(key), None, "{key} is not in a default root line");
    }
    let exit = lines
        .iter()
        .find(|l| l["event"] == "exit" && l["exec_id"] == sh["exec_id"])
        .expect("the shell's exit");
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["raw"], json!({}));
}

/// `python3` with the duckdb module, which ci/python-deps.sh installs.
fn duckdb_python() -> Command {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 with the duckdb module is needed: run ci/python-deps.sh"
    );
    Command::new("python3")
}

#[test]
#[ignore = "needs python3's duckdb module (ci/python-deps.sh installs it; run with --ignored)"]
fn duckdb_reads_every_kind_with_argv_as_a_list_of_strings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.jsonl");
    every_kind(&path, &[]);
    // A second file with no hostile bytes at all: the column types must
    // not depend on the content.
    let plain = dir.path().join("plain.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut f = std::fs::File::create(&plain).unwrap();
    for l in json_lines(&text) {
        if l["event"] == "exec" && l["argv"].is_array() {
            let mut l = l.clone();
            l["argv"] = json!(["/bin/true", "x"]);
            l["raw"] = json!({});
            writeln!(f, "{l}").unwrap();
        }
    }
    drop(f);
    let script = r#"
import duckdb, json, sys
con = duckdb.connect()
out = {}
for name in sys.argv[1:]:
    rel = con.sql(f"select * from read_json_auto('{name}', format='newline_delimited')")
    types = dict(zip(rel.columns, map(str, rel.types)))
    execs = con.sql(f"""select argv[1] as a1, list_contains(argv, 'plain') as has
        from read_json_auto('{name}', format='newline_delimited')
        where event = 'exec' and argv is not null""").fetchall()
    out[name] = {"argv": types.get("argv"), "execs": execs}
print(json.dumps(out))
"#;
    let out = duckdb_python()
        .args(["-c", script])
        .arg(&path)
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = &v[path.to_str().unwrap()];
    assert_eq!(all["argv"], "VARCHAR[]", "{v}");
    assert_eq!(all["execs"], json!([["exe", true]]), "{v}");
    let plain = &v[plain.to_str().unwrap()];
    assert_eq!(plain["argv"], "VARCHAR[]", "{v}");
    assert_eq!(plain["execs"], json!([["/bin/true", false]]), "{v}");
}
