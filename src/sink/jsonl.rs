//! JSON Lines sink: one object per event per line, every field, lossless.
//!
//! Field names are those documented in [`crate::event`]. Objects are built
//! with `serde_json::json!`, in the documented order; without serde_json's
//! `preserve_order` feature the keys come out sorted alphabetically, which
//! consumers must not depend on either way.
//!
//! Encoding rules:
//! * times are RFC 3339 UTC strings with microseconds;
//! * byte strings (argv, paths, comm) go through [`json_bytes`]: a string
//!   when valid UTF-8, otherwise `{"base64": ..., "lossy": ...}` holding the
//!   exact bytes;
//! * optional values are `null`, never omitted, so every exec line has the
//!   same keys;
//! * characters that serde_json leaves raw but a terminal would act on (DEL,
//!   C1 controls, bidi and other invisible format characters) are written as
//!   `\uXXXX` escapes, so `tail -f events.jsonl` is as safe as the text
//!   format. This changes only the JSON spelling, not the decoded value.

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::{Value, json};

use crate::enrich::caps::cap_names;
use crate::event::{
    Event, ExecEvent, ExitEvent, IntegrityLevel, LossInfo, Privileges, StartInfo, StopInfo,
    WindowsToken,
};

use super::escape::{json_bytes, needs_escape, time_rfc3339};
use super::{Sink, cmdline_of};

/// Writes one JSON object per event, each followed by `\n`.
pub struct JsonlSink {
    out: Box<dyn Write + Send>,
}

impl JsonlSink {
    /// A JSONL sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        JsonlSink { out }
    }
}

fn time(t: SystemTime) -> Value {
    Value::String(time_rfc3339(t))
}

/// Capability names, as in `/usr/include/linux/capability.h`.
fn names(mask: u64) -> Value {
    Value::Array(
        cap_names(mask)
            .into_iter()
            .map(|n| Value::String(n.into_owned()))
            .collect(),
    )
}

/// Raw capability mask as fixed-width hex, like `/proc/<pid>/status`.
fn hex(mask: u64) -> Value {
    Value::String(format!("0x{mask:016x}"))
}

fn start_json(s: &StartInfo) -> Value {
    json!({
        "event": "start",
        "time": time(s.time),
        "source": s.source,
        "attach": s.attach,
        "version": s.version,
        "hostname": s.hostname,
        "boot_id": s.boot_id,
        "guarantees": s.guarantees,
        "can_miss": s.can_miss,
        "pid": s.pid,
    })
}

fn bytes_or_null(b: &Option<Vec<u8>>) -> Value {
    b.as_deref().map_or(Value::Null, json_bytes)
}

fn exec_json(e: &ExecEvent) -> Value {
    let mut v = json!({
        "event": "exec",
        "time": time(e.time),
        "pid": e.pid,
        "tid": e.tid,
        "exec_tid": e.exec_tid,
        "ppid": e.ppid,
        "exec_id": e.exec_id,
        "process_start": e.process_start.map(time),
        "exe": bytes_or_null(&e.exe),
        "exe_truncated": e.exe_truncated,
        "filename": bytes_or_null(&e.filename),
        "interpreter": bytes_or_null(&e.interpreter),
        "argv": e.argv.as_ref().map(|argv| argv.iter().map(|a| json_bytes(a)).collect::<Vec<_>>()),
        "command_line": bytes_or_null(&e.command_line),
        "cmdline": cmdline_of(e),
        "argv_truncated": e.argv_truncated,
        "argv_size": e.argv_size,
        "cwd": bytes_or_null(&e.cwd),
        "comm": bytes_or_null(&e.comm),
        "user": e.user,
        "group": e.group,
        "login_user": e.login_user,
        "incomplete": e.incomplete.iter().map(|i| i.field).collect::<Vec<_>>(),
        "incomplete_reasons": e.incomplete.iter().map(|i| (i.field.to_string(), Value::String(i.reason.clone()))).collect::<serde_json::Map<_, _>>(),
    });
    let privs = match &e.privileges {
        Some(p) => privileges_json(p),
        None => linux_privileges_null(),
    };
    if let (Value::Object(m), Value::Object(extra)) = (&mut v, privs) {
        m.extend(extra);
        // Every exec line has the same keys: `token` is null off Windows.
        m.entry("token").or_insert(Value::Null);
    }
    v
}

/// The Linux privilege fields, all null: the source could not read them.
fn linux_privileges_null() -> Value {
    json!({
        "uid": null, "euid": null, "suid": null, "fsuid": null,
        "gid": null, "egid": null, "sgid": null, "fsgid": null,
        "login_uid": null, "session_id": null,
        "caps": null, "caps_raw": null,
        "secureexec": null, "file": null, "privilege_raised": null,
    })
}

fn privileges_json(p: &Privileges) -> Value {
    match p {
        Privileges::Windows(token) => {
            let mut v = linux_privileges_null();
            if let Value::Object(m) = &mut v {
                m.insert("token".into(), windows_token_json(token));
            }
            v
        }
        Privileges::Linux {
            creds,
            caps,
            secureexec,
            file,
            raised,
        } => json!({
            "uid": creds.uid,
            "euid": creds.euid,
            "suid": creds.suid,
            "fsuid": creds.fsuid,
            "gid": creds.gid,
            "egid": creds.egid,
            "sgid": creds.sgid,
            "fsgid": creds.fsgid,
            "login_uid": creds.login_uid,
            "session_id": creds.session_id,
            "caps": {
                "effective": names(caps.effective),
                "permitted": names(caps.permitted),
                "inheritable": names(caps.inheritable),
                "ambient": names(caps.ambient),
            },
            "caps_raw": {
                "effective": hex(caps.effective),
                "permitted": hex(caps.permitted),
                "inheritable": hex(caps.inheritable),
                "ambient": hex(caps.ambient),
            },
            "secureexec": secureexec,
            // Permission and set-id bits only (the file type is always
            // "regular" for an exec), as a zero-padded octal string like
            // `stat -c %a` with a leading 0.
            "file": file.map(|f| json!({
                "mode": format!("0{:04o}", f.mode & 0o7777),
                "uid": f.uid,
                "gid": f.gid,
            })),
            "privilege_raised": raised.map(|r| r.as_str()),
        }),
    }
}

/// The `token` object of a Windows exec: every privilege with its four
/// states and raw attributes, integrity, elevation, session and SID. The
/// owner (`DOMAIN\user`) is the top-level `user`. Parts that could not be
/// read are null and listed in `incomplete` as `token.<name>`.
fn windows_token_json(t: &WindowsToken) -> Value {
    json!({
        "privileges": t.privileges.as_ref().map(|list| list.iter().map(|p| json!({
            "name": p.name,
            "enabled": p.enabled(),
            "enabled_by_default": p.enabled_by_default(),
            "removed": p.removed(),
            "used_for_access": p.used_for_access(),
            "attributes": format!("0x{:08x}", p.attributes),
        })).collect::<Vec<_>>()),
        "integrity": t.integrity.map(|i| i.name()),
        "integrity_rid": t.integrity.map(IntegrityLevel::rid),
        "elevation_type": t.elevation.map(|e| e.as_str()),
        "session_id": t.session_id,
        "user_sid": t.user_sid,
    })
}

fn exit_json(x: &ExitEvent) -> Value {
    json!({
        "event": "exit",
        "time": time(x.time),
        "pid": x.pid,
        "ppid": x.ppid,
        "exec_id": x.exec_id,
        "exit_code": x.exit_code,
        "signal": x.signal,
        "core_dumped": x.core_dumped,
        "lifetime_ms": x.lifetime.map(|d| d.as_secs_f64() * 1000.0),
        "comm": bytes_or_null(&x.comm),
    })
}

fn loss_json(l: &LossInfo) -> Value {
    json!({
        "event": "loss",
        "time": time(l.time),
        "place": l.place.as_str(),
        "dropped": l.dropped,
        "total": l.total,
    })
}

fn stop_json(s: &StopInfo) -> Value {
    let c = &s.counters;
    json!({
        "event": "stop",
        "time": time(s.time),
        "reason": s.reason,
        "seen": c.seen,
        "emitted": c.emitted,
        "dropped": c.dropped,
        "truncated": c.truncated,
        "received": c.received,
        "queue_dropped": c.queue_dropped,
        "written": c.written,
    })
}

/// The JSON value for any event (exposed for callers that embed events in
/// other JSON, e.g. tests or a future socket sink).
pub fn event_json(ev: &Event) -> Value {
    match ev {
        Event::Start(s) => start_json(s),
        Event::Exec(e) => exec_json(e),
        Event::Exit(x) => exit_json(x),
        Event::Loss(l) => loss_json(l),
        Event::Stop(s) => stop_json(s),
    }
}

/// Rewrites terminal-unsafe characters that serde_json leaves raw as
/// `\uXXXX` (surrogate pairs above U+FFFF). In serialized JSON such
/// characters can only occur inside strings, where the escape decodes to the
/// same character, so the value is unchanged.
fn escape_unsafe(s: String) -> String {
    if !s.chars().any(needs_escape) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if needs_escape(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One serialized line, including the trailing `\n`.
fn line(ev: &Event) -> io::Result<String> {
    let text = serde_json::to_string(&event_json(ev)).map_err(io::Error::other)?;
    let mut text = escape_unsafe(text);
    text.push('\n');
    Ok(text)
}

impl Sink for JsonlSink {
    fn write_event(&mut self, ev: &Event) -> io::Result<()> {
        // One write_all per line so a line is never interleaved with
        // another writer's partial output on a shared pipe.
        self.out.write_all(line(ev)?.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CapSets, FileInfo, LossPlace, PrivilegeRaise};
    #[allow(unused_imports)]
    use crate::sink::escape::join_cmdline;
    use crate::sink::testutil::*;
    use base64::Engine as _;

    fn render(ev: &Event) -> (String, Value) {
        let buf = SharedBuf::default();
        let mut s = JsonlSink::new(Box::new(buf.clone()));
        s.write_event(ev).unwrap();
        s.flush().unwrap();
        let text = buf.string();
        assert!(text.ends_with('\n'));
        assert_eq!(text.matches('\n').count(), 1, "exactly one line: {text:?}");
        let v: Value = serde_json::from_str(&text).unwrap();
        (text, v)
    }

    /// Decodes a `json_bytes` value back to bytes.
    fn bytes_of(v: &Value) -> Vec<u8> {
        match v {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Object(o) => base64::engine::general_purpose::STANDARD
                .decode(o["base64"].as_str().unwrap())
                .unwrap(),
            other => panic!("not bytes: {other:?}"),
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
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
                "hostname": "host1",
                "boot_id": "0f0e-boot",
                "guarantees": "every exec after start",
                "can_miss": "execs when the ring buffer is full (reported as loss)",
                "pid": 99,
            })
        );
    }

    #[test]
    fn exec_fields() {
        let (_, v) = render(&Event::Exec(Box::new(exec_event())));
        // Fields beyond the macro's recursion limit, checked on their own.
        assert_eq!(v["command_line"], Value::Null);
        assert_eq!(v["incomplete"], json!([]));
        assert_eq!(v["incomplete_reasons"], json!({}));
        assert_eq!(v["token"], Value::Null);
        let mut v = v;
        for k in ["command_line", "incomplete", "incomplete_reasons", "token"] {
            v.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(
            v,
            json!({
                "event": "exec",
                "time": "2026-11-26T05:26:10.123456Z",
                "pid": 4242,
                "tid": 4242,
                "exec_tid": 4243,
                "ppid": 1000,
                "exec_id": "4242:123456789",
                "process_start": "2026-11-26T05:26:08.123456Z",
                "exe": "/usr/bin/ls",
                "exe_truncated": false,
                "filename": "/bin/ls",
                "interpreter": null,
                "argv": ["ls", "-la", "/tmp"],
                "cmdline": "ls -la /tmp",
                "argv_truncated": false,
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
                "privilege_raised": null,
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
        assert_eq!(v["caps"]["permitted"].as_array().unwrap().len(), 41);
        assert_eq!(v["caps"]["permitted"][40], "CAP_CHECKPOINT_RESTORE");
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
    fn every_exec_has_the_same_keys() {
        let (_, a) = render(&Event::Exec(Box::new(exec_event())));
        let (_, b) = render(&Event::Exec(Box::new(hostile_exec())));
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(keys(&a).len(), 40); // 39 + Windows `token`
        // A source that could not read anything still gives every key, null.
        let mut bare = ExecEvent::new(t0(), 7, 1, "7:1".into());
        bare.mark_incomplete("argv", "process exited before it was read");
        bare.mark_incomplete("caps", "process exited before it was read");
        let (_, c) = render(&Event::Exec(Box::new(bare)));
        assert_eq!(keys(&a), keys(&c));
        for k in [
            "argv",
            "cmdline",
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

    #[test]
    fn hostile_exec_round_trips_and_is_terminal_safe() {
        let ev = hostile_exec();
        let (text, v) = render(&Event::Exec(Box::new(ev.clone())));
        let argv = v["argv"].as_array().unwrap();
        let ev_argv = ev.argv.clone().unwrap();
        assert_eq!(argv.len(), ev_argv.len());
        for (got, want) in argv.iter().zip(&ev_argv) {
            assert_eq!(&bytes_of(got), want);
        }
        // The non-UTF-8 argument is an object with base64 and lossy text.
        assert!(argv[2].is_object());
        assert_eq!(
            argv[2]["lossy"],
            String::from_utf8_lossy(&ev_argv[2]).as_ref()
        );
        assert!(argv[4].is_string());
        assert_eq!(Some(bytes_of(&v["exe"])), ev.exe);
        assert_eq!(Some(bytes_of(&v["filename"])), ev.filename);
        assert_eq!(bytes_of(&v["interpreter"]), ev.interpreter.clone().unwrap());
        assert_eq!(bytes_of(&v["cwd"]), ev.cwd.clone().unwrap());
        assert_eq!(Some(bytes_of(&v["comm"])), ev.comm);
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
    fn escape_unsafe_handles_astral_chars() {
        let s = serde_json::to_string(&json!("a\u{e0041}b\u{2066}")).unwrap();
        let e = escape_unsafe(s);
        assert_eq!(e, "\"a\\udb40\\udc41b\\u2066\"");
        let back: Value = serde_json::from_str(&e).unwrap();
        assert_eq!(back, "a\u{e0041}b\u{2066}");
        assert_eq!(escape_unsafe("\"plain é\"".to_owned()), "\"plain é\"");
    }

    #[test]
    fn loss_fields() {
        let (_, v) = render(&Event::Loss(loss_info()));
        assert_eq!(
            v,
            json!({"event": "loss", "time": "2026-11-26T05:26:10.123456Z", "place": "kernel", "dropped": 12, "total": 40})
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
                "reason": "signal",
                "seen": 100,
                "emitted": 88,
                "dropped": 12,
                "truncated": 3,
                "received": 88,
                "queue_dropped": 5,
                "written": 83,
            })
        );
    }

    #[test]
    fn big_counters_are_exact() {
        let mut s = stop_info();
        s.counters.seen = u64::MAX;
        let (text, v) = render(&Event::Stop(s));
        assert_eq!(v["seen"].as_u64(), Some(u64::MAX));
        assert!(text.contains("18446744073709551615"));
    }
}
