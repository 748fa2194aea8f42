//! Rendering of Windows exec events in every format. Built through
//! the same assembly code the Windows sources use, so the test covers what
//! a real event looks like.

use std::time::Duration;

use serde_json::{Value, json};

use super::testutil::{SharedBuf, t0};
use super::{Format, Sink, make_sink};
use crate::event::{
    ElevationType, Event, IntegrityLevel, SE_PRIVILEGE_ENABLED, SE_PRIVILEGE_ENABLED_BY_DEFAULT,
    SE_PRIVILEGE_REMOVED, SE_PRIVILEGE_USED_FOR_ACCESS, WinPrivilege, WindowsToken,
};
use crate::source::windows::record::{ProcessSnapshot, RawStart, to_exec_event};

fn windows_event(command_line: &str) -> Event {
    let p = |name: &str, attributes| WinPrivilege {
        name: name.into(),
        attributes,
    };
    let raw = RawStart {
        time: Some(t0()),
        pid: 4242,
        ppid: Some(1000),
        created: Some(t0() - Duration::from_millis(3)),
        command_line: Some(command_line.into()),
        exe: Some("C:\\Windows\\System32\\cmd.exe".into()),
        problems: Vec::new(),
    };
    let snap = ProcessSnapshot {
        token: WindowsToken {
            privileges: Some(vec![
                p("SeShutdownPrivilege", 0),
                p(
                    "SeChangeNotifyPrivilege",
                    SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT,
                ),
                p(
                    "SeDebugPrivilege",
                    SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_USED_FOR_ACCESS,
                ),
                p("SeTcbPrivilege", SE_PRIVILEGE_REMOVED),
            ]),
            integrity: Some(IntegrityLevel::High),
            elevation: Some(ElevationType::Full),
            session_id: Some(1),
            user_sid: Some("S-1-5-21-1-2-3-1001".into()),
            owner: Some("DESKTOP\\alice".into()),
        },
        created: raw.created,
        ..ProcessSnapshot::default()
    };
    Event::Exec(Box::new(to_exec_event(&raw, snap, "etw", t0())))
}

fn render(format: Format, ev: &Event) -> String {
    let buf = SharedBuf::default();
    let mut sink: Box<dyn Sink> =
        make_sink(format, Box::new(buf.clone()), true, Default::default());
    sink.write_event(ev).unwrap();
    sink.flush().unwrap();
    let out = buf.string();
    if format == Format::Jsonl {
        for line in out.lines() {
            super::jsonl::schema_check::assert_valid(&serde_json::from_str(line).unwrap());
        }
    }
    out
}

#[test]
fn csv_has_the_standard_columns_with_enabled_privileges() {
    let out = render(Format::Csv, &windows_event("cmd.exe /c \"dir, x\""));
    let rows: Vec<Vec<String>> = ::csv::Reader::from_reader(out.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        rows,
        [[
            "cmd.exe /c \"dir, x\"",
            "2026-11-26T05:26:10.123456Z",
            "C:\\Windows\\System32\\cmd.exe",
            "1000",
            "4242",
            "DESKTOP\\alice",
            "SeChangeNotifyPrivilege|SeDebugPrivilege",
        ]]
    );
}

#[test]
fn csv_guards_a_hostile_command_line() {
    let out = render(Format::Csv, &windows_event("=cmd|' /c calc'!A0\x1b[2J"));
    let row = out.lines().nth(1).unwrap();
    // The escape character forces `$'...'` quoting, which also defuses
    // the formula.
    assert!(row.starts_with("$'=cmd|"), "{row}");
    assert!(!out.contains('\x1b'));
}

#[test]
fn jsonl_has_the_token_under_documented_names() {
    let out = render(Format::Jsonl, &windows_event("cmd.exe /c dir"));
    let v: Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(v["event"], "exec");
    assert_eq!(v["user"], "DESKTOP\\alice");
    assert_eq!(v["command_line"], "cmd.exe /c dir");
    assert_eq!(v["argv"], Value::Null);
    assert_eq!(v["exe"], "C:\\Windows\\System32\\cmd.exe");
    assert_eq!(v["uid"], Value::Null);
    assert_eq!(v["caps"], Value::Null);
    assert_eq!(
        v["token"],
        json!({
            "privileges": [
                {"name": "SeShutdownPrivilege", "enabled": false, "enabled_by_default": false,
                 "removed": false, "used_for_access": false, "attributes": "0x00000000"},
                {"name": "SeChangeNotifyPrivilege", "enabled": true, "enabled_by_default": true,
                 "removed": false, "used_for_access": false, "attributes": "0x00000003"},
                {"name": "SeDebugPrivilege", "enabled": true, "enabled_by_default": false,
                 "removed": false, "used_for_access": true, "attributes": "0x80000002"},
                {"name": "SeTcbPrivilege", "enabled": false, "enabled_by_default": false,
                 "removed": true, "used_for_access": false, "attributes": "0x00000004"},
            ],
            "integrity": "high",
            "integrity_rid": 0x3000,
            "elevation_type": "full",
            "session_id": 1,
            "user_sid": "S-1-5-21-1-2-3-1001",
        })
    );
    let incomplete: Vec<&str> = v["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        incomplete,
        ["argv", "tid", "exec_tid", "filename", "cwd", "comm"]
    );
}

#[test]
fn jsonl_unread_token_is_null_parts_with_reasons() {
    let raw = RawStart {
        pid: 5,
        ..RawStart::default()
    };
    let mut snap = ProcessSnapshot::default();
    snap.missing("token", "access denied (OpenProcessToken)");
    let ev = Event::Exec(Box::new(to_exec_event(&raw, snap, "wmi-poll", t0())));
    let v: Value = serde_json::from_str(render(Format::Jsonl, &ev).trim_end()).unwrap();
    assert_eq!(v["token"]["privileges"], Value::Null);
    assert_eq!(v["token"]["integrity"], Value::Null);
    assert_eq!(
        v["incomplete_reasons"]["token"],
        "access denied (OpenProcessToken)"
    );
}

#[test]
fn text_line_shows_user_integrity_and_enabled_privileges() {
    // With no argv, the real image is always shown: the command line is
    // chosen by the parent and proves nothing about what runs.
    let out = render(Format::Text, &windows_event("cmd.exe /c dir"));
    assert_eq!(
        out,
        "05:26:10.123     4242     1000  DESKTOP\\alice  high:changenotify,debug  cmd.exe /c dir \
         (exe: 'C:\\Windows\\System32\\cmd.exe')\n"
    );
    let hostile = render(Format::Text, &windows_event("a\nb\x1b]0;x\x07"));
    assert_eq!(hostile.lines().count(), 1);
    assert!(!hostile.contains('\x1b'));
}

#[test]
fn text_summary_of_an_empty_or_unread_token() {
    use super::privileges_summary;
    use crate::event::Privileges;
    let empty = WindowsToken {
        privileges: Some(Vec::new()),
        integrity: Some(IntegrityLevel::Low),
        ..WindowsToken::default()
    };
    assert_eq!(privileges_summary(&Privileges::Windows(empty)), "low:-");
    assert_eq!(
        privileges_summary(&Privileges::Windows(WindowsToken::default())),
        "?:?"
    );
}
