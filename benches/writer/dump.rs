//! `cargo bench --bench writer -- --dump DIR`: writes a small replayed
//! storm, in every format and with each format's options, to files in DIR,
//! so two builds can be compared byte for byte (`diff -r`).
//!
//! Deterministic: every time is fixed, the host-dependent steps whose
//! result depends on timing (the hash and hijack pools) are off for the
//! replay, and their fields are set by hand on extra events that go to the
//! sink directly, with the other event kinds (start, loss, hash, stats,
//! stop) and hostile bytes in every string.

// `..Default::default()` on structs whose fields are all set today keeps
// this building when the event model gains a field.
#![allow(clippy::needless_update)]

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use procwatch::cli::Cli;
use procwatch::event::*;
use procwatch::pipeline::replay;
use procwatch::sink::make_sink;
use procwatch::source::Item;

use super::common;

/// Execs in the dumped storm.
const EXECS: u32 = 40;
const PARENT_PID: u32 = 3_100_000;

/// 2026-11-26T05:26:10.123456789Z, and `ms` milliseconds after.
fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_670_770, 123_456_789) + Duration::from_millis(ms)
}

fn exec_item(pid: u32, start_ns: u64, ppid: u32, i: u64, argv: &[&[u8]]) -> Item {
    let mut ev = common::root_exec(pid, b"/usr/bin/true", b"/bin/true", argv);
    ev.time = at(i);
    ev.process_start = Some(at(i));
    ev.ppid = Some(ppid);
    if i % 3 == 1 {
        ev.privileges = Some(Privileges::Linux {
            creds: Credentials {
                uid: 1000,
                euid: 0,
                suid: 0,
                fsuid: 0,
                gid: 1000,
                egid: 1000,
                sgid: 1000,
                fsgid: 1000,
                login_uid: Some(1000),
                session_id: None,
            },
            caps: CapSets {
                effective: 1 << 13 | 1 << 21,
                permitted: 1 << 13,
                inheritable: 1,
                ambient: 0,
            },
            secureexec: Some(true),
            file: Some(FileInfo {
                mode: 0o104755,
                uid: 0,
                gid: 0,
            }),
            raised: Some(PrivilegeRaise::Setuid),
        });
    }
    Item::Exec {
        ev: Box::new(ev),
        start_ns,
        parent_start_ns: 1_000,
    }
}

/// The storm, with hostile argv in some execs and every exit shape.
fn storm() -> Vec<Item> {
    let parent = ProcKey {
        pid: PARENT_PID,
        start_ns: 1_000,
    };
    let mut items = vec![exec_item(
        PARENT_PID,
        1_000,
        1,
        0,
        &[b"/bin/sh", b"-c", b"loop"],
    )];
    for i in 0..EXECS {
        let child = ProcKey {
            pid: PARENT_PID + 1 + i,
            start_ns: 2_000 + u64::from(i) * 1_000,
        };
        let tag = format!("pwdump-{i:04}");
        let hostile: [&[u8]; 5] = [
            b"/bin/true",
            tag.as_bytes(),
            b"a,b\"c\r\nd \x1b]0;x\x07 \xff\xfe",
            "\u{202e}txt \u{9b}2J\x7f =cmd|' /c calc'!A1".as_bytes(),
            b"",
        ];
        let argv: &[&[u8]] = if i % 4 == 2 { &hostile } else { &hostile[..2] };
        items.push(Item::Fork(Fork { child, parent }));
        items.push(exec_item(
            child.pid,
            child.start_ns,
            PARENT_PID,
            u64::from(i) + 1,
            argv,
        ));
        items.push(Item::Exit(Exit {
            key: child,
            ppid: PARENT_PID,
            time: at(u64::from(i) + 2),
            status: match i % 3 {
                0 => 0,
                1 => 2 << 8,
                _ => 9 | 0x80,
            },
            comm: if i % 5 == 4 {
                b"\x1b[31mtr\xffue".to_vec()
            } else {
                b"true".to_vec()
            },
            lifetime: Duration::from_micros(500 + u64::from(i)),
        }));
    }
    items
}

/// Execs with the fields the replay leaves out (hash, hijackable, parent,
/// privilege change, Windows token, incomplete), hostile throughout.
fn direct_execs() -> Vec<ExecEvent> {
    let mut a = ExecEvent::new(at(500), 4242, Some(1000), "4242:123456789".to_owned());
    a.tid = Some(4242);
    a.exec_tid = Some(4243);
    a.process_start = Some(at(100));
    a.exe = Some(b"/tmp/\x1b[2Jevil,\"dir\"\n/\xc3(x".to_vec());
    a.exe_truncated = true;
    a.filename = Some(b"./\xff".to_vec());
    a.interpreter = Some(b"/bin/\x1bsh".to_vec());
    a.argv = Some(vec![
        b"-sh".to_vec(),
        b"-c".to_vec(),
        b"echo \x1b]0;pwned\x07; rm -rf / # \xff\xfe".to_vec(),
        "=HYPERLINK(\"x\") \u{1F600} \u{2028}".as_bytes().to_vec(),
    ]);
    a.argv_truncated = true;
    a.argv_size = Some(131_072);
    a.cwd = Some(b"/tmp/\r\n".to_vec());
    a.comm = Some(b"\x1b[31m".to_vec());
    a.privileges = Some(Privileges::Linux {
        creds: Credentials {
            uid: 1000,
            euid: 0,
            suid: 0,
            fsuid: 0,
            gid: 100,
            egid: 0,
            sgid: 0,
            fsgid: 0,
            login_uid: None,
            session_id: Some(3),
        },
        caps: CapSets {
            effective: (1 << 41) - 1,
            permitted: (1 << 41) - 1,
            inheritable: 0,
            ambient: 1 << 45,
        },
        secureexec: None,
        file: Some(FileInfo {
            mode: 0o106755,
            uid: 0,
            gid: 0,
        }),
        raised: Some(PrivilegeRaise::FileCaps),
    });
    a.user = Some("bob\x1b[0m".into());
    a.group = Some("wh\"eel".into());
    a.login_user = Some("alice".into());
    a.exe_sha256 = Some("ab".repeat(32));
    a.privilege_change = Some(PrivilegeChange {
        cause: ChangeCause::Launcher,
        from_euid: 1000,
        from_caps: 0,
        to_euid: 0,
        gained_caps: 1 << 13 | 1 << 12,
        launcher: Some(b"/tmp/x) HIJACKABLE(\x1b[0m".to_vec()),
    });
    a.hijackable = vec![
        Hijack {
            path: b"/opt/job.sh".to_vec(),
            role: HijackRole::InterpreterArg,
            writable: b"/opt".to_vec(),
            writers: vec!["user alice".to_owned(), "others".to_owned()],
        },
        Hijack {
            path: b"/opt/a b/\xff".to_vec(),
            role: HijackRole::Binary,
            writable: b"/opt/a b/\xff".to_vec(),
            writers: vec!["group st\x1baff".to_owned()],
        },
    ];
    let image = Arc::new(ProcessImage {
        exec_id: Some("4000:1".to_owned()),
        exe: Some(b"/usr/bin/su\xffdo".to_vec()),
        argv: Some(vec![b"sudo".to_vec(), b"-i\n".to_vec()]),
        user: Some("alice".into()),
        euid: Some(1000),
        caps_effective: Some(0),
        ..Default::default()
    });
    a.parent = Some(ParentInfo {
        pid: 4000,
        start: Some(at(400)),
        image: image.clone(),
    });
    a.ancestors = vec![image];
    a.pre_exec = Some(PreExec {
        uid: 1000,
        euid: 1000,
        caps_effective: 0,
    });
    a.mark_incomplete("hijackable", "hijack_pending: \"slow\"\nfs");
    a.mark_incomplete("ppid", "gone \x1b");

    let mut b = ExecEvent::new(at(600), 77, None, "77:5".to_owned());
    b.command_line = Some(b"C:\\Windows\\cmd.exe /c \"echo\x1b\"".to_vec());
    b.exe = Some(b"C:\\Windows\\cmd.exe".to_vec());
    b.privileges = Some(Privileges::Windows(WindowsToken {
        privileges: Some(vec![
            WinPrivilege {
                name: "SeDebugPrivilege".to_owned(),
                attributes: SE_PRIVILEGE_ENABLED,
            },
            WinPrivilege {
                name: "SeBackupPrivilege".to_owned(),
                attributes: SE_PRIVILEGE_ENABLED_BY_DEFAULT | SE_PRIVILEGE_USED_FOR_ACCESS,
            },
        ]),
        integrity: Some(IntegrityLevel::High),
        elevation: Some(ElevationType::Full),
        session_id: Some(1),
        user_sid: Some("S-1-5-18".to_owned()),
        owner: None,
    }));
    b.mark_incomplete("argv", "Windows reports one command line");

    let mut c = ExecEvent::new(at(700), 78, Some(1), "78:6".to_owned());
    c.privileges = Some(Privileges::Windows(WindowsToken::default()));
    c.mark_incomplete("exe_sha256", "hash_pending");
    vec![a, b, c]
}

fn counters(k: u64) -> Counters {
    Counters {
        seen: 100 * k,
        emitted: 88 * k,
        dropped: 12 * k,
        truncated: 3,
        received: 88,
        queue_dropped: 5,
        aux_dropped: 1,
        written: 83,
        filtered: 2,
        netlink_enobufs: 4,
        proc_read_failures: 6,
        too_late: 7,
        write_errors: 8,
        output_dropped: u64::MAX,
        ..Default::default()
    }
}

/// The events written after the replay, straight to the sink.
fn direct_events() -> Vec<Event> {
    let mut ev = vec![Event::Start(StartInfo {
        rules: Default::default(),
        time: at(0),
        source: "ebpf".to_owned(),
        attach: "tp_btf/sched_process_exec".to_owned(),
        version: "0.1.0".to_owned(),
        hostname: "host\x1b1".to_owned(),
        boot_id: "0f0e-boot".to_owned(),
        guarantees: "every exec after start".to_owned(),
        can_miss: "execs when \"full\"".to_owned(),
        pid: 99,
        coverage: Coverage {
            short_lived_complete: true,
            poll_interval_ms: Some(100),
            unavailable: vec!["cwd", "tid"],
        },
        continuation: true,
    })];
    ev.extend(direct_execs().into_iter().map(|e| Event::Exec(Box::new(e))));
    ev.push(Event::Exit(Box::new(ExitEvent {
        time: at(800),
        pid: 4242,
        ppid: 1,
        exec_id: None,
        exit_code: None,
        signal: Some(11),
        core_dumped: true,
        lifetime: None,
        comm: None,
    })));
    for (i, place) in [
        LossPlace::Kernel,
        LossPlace::KernelAux,
        LossPlace::Queue,
        LossPlace::Undecodable,
        LossPlace::NetlinkOverrun,
        LossPlace::ProcRead,
        LossPlace::TooLate,
    ]
    .into_iter()
    .enumerate()
    {
        ev.push(Event::Loss(LossInfo {
            time: at(900 + i as u64),
            place,
            dropped: i as u64 + 1,
            total: 10 * i as u64 + 1,
        }));
    }
    ev.push(Event::Hash(HashInfo {
        time: at(1000),
        exec_id: "4242:123456789".to_owned(),
        pid: 4242,
        exe_sha256: Some("cd".repeat(32)),
        reason: None,
    }));
    ev.push(Event::Hash(HashInfo {
        time: at(1001),
        exec_id: "78:\x1b6".to_owned(),
        pid: 78,
        exe_sha256: None,
        reason: Some("not done \"in time\"\n".to_owned()),
    }));
    ev.push(Event::Stats(StatsInfo {
        time: at(1100),
        counters: counters(1),
    }));
    for (i, reason) in ["signal", "duration", "broken_pipe", "error"]
        .into_iter()
        .enumerate()
    {
        ev.push(Event::Stop(StopInfo {
            time: at(1200 + i as u64),
            reason: reason.to_owned(),
            counters: if i == 0 {
                Counters::default()
            } else {
                counters(i as u64)
            },
        }));
    }
    ev
}

/// Writes one file per format and option set into `dir`.
pub fn dump(dir: &Path) {
    fs::create_dir_all(dir).expect("create the dump directory");
    let cases: [(&str, &[&str]); 5] = [
        ("jsonl.jsonl", &["--format", "jsonl"]),
        ("text.txt", &["--format", "text", "--color", "never"]),
        ("text-color.txt", &["--format", "text", "--color", "always"]),
        ("csv.csv", &["--format", "csv"]),
        ("csv-all.csv", &["--format", "csv", "--csv-columns", "all"]),
    ];
    for (name, args) in cases {
        let fixed = ["procwatch", "--exits", "--no-hash", "--no-hijack-check"];
        let cfg = Cli::try_parse_from(fixed.iter().chain(args.iter()).copied())
            .expect("dump arguments")
            .config()
            .expect("dump configuration");
        let path = dir.join(name);
        let out = fs::File::create(&path).expect("create the dump file");
        let mut sink = make_sink(cfg.format, Box::new(out), true, cfg.sink_options.clone());
        // CSV writes its summaries to stderr: into a file beside the
        // output for the duration of the case.
        let err_path = dir.join(format!("{name}.stderr"));
        let err = fs::File::create(&err_path).expect("create the stderr dump");
        std::io::stderr().flush().ok();
        // SAFETY: plain descriptor calls on descriptors this process owns.
        let saved = unsafe { libc::dup(2) };
        assert!(saved >= 0 && unsafe { libc::dup2(err.as_raw_fd(), 2) } == 2);
        replay(&cfg, sink.as_mut(), storm()).expect("replay");
        for ev in direct_events() {
            sink.write_event(&ev).expect("write");
        }
        sink.reopened(true);
        for ev in direct_events().into_iter().take(2) {
            sink.write_event(&ev).expect("write");
        }
        sink.flush().expect("flush");
        drop(sink);
        std::io::stderr().flush().ok();
        // SAFETY: as above; `saved` is closed once restored.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
        println!("wrote {}", path.display());
    }
}
