//! `cargo bench --bench writer -- --bytes [ARGS...]`: the size of JSONL
//! exec lines over a realistic mix of root execs, with procwatch's default
//! enrichment (parent, hash, hijack check) and any extra command-line
//! ARGS (e.g. `--fields +cmdline`). Prints the median, mean and max bytes
//! per exec line, newline included, and the median line on stderr.
//!
//! The mix is a root host's day: an interactive root shell and a cron
//! `sh -c` job (both exec'd in the log, so their children's parent is
//! too), running git, systemctl, apt's unattended-upgrade, pip, logrotate
//! through env, runc as dockerd starts a container, and `true`. Every
//! process holds root's full capability set and has what the eBPF source
//! gives on a host: the exe's identity (so it is hashed), mode and owner,
//! the credentials before the exec, procwatch's own namespaces, a session
//! cgroup and the exe's mount.

use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Parser;
use procwatch::cli::Cli;
use procwatch::event::{Exit, FileInfo, FileStamp, Fork, PreExec, Privileges, ProcKey, UserNs};
use procwatch::pipeline::replay;
use procwatch::sink::make_sink;
use procwatch::source::Item;

use super::common;

/// A sink output the bench reads back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One exec: exe (a real file, so it is hashed), the path as called, argv.
type Cmd = (&'static str, &'static str, Vec<String>);

fn cmd(exe: &'static str, filename: &'static str, argv: &[&str]) -> Cmd {
    (exe, filename, argv.iter().map(|s| s.to_string()).collect())
}

/// The children of the two parents, in the order they run.
fn mix() -> Vec<Cmd> {
    let id = "4f1c0de2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2";
    let task = format!("/run/containerd/io.containerd.runtime.v2.task/moby/{id}");
    vec![
        cmd(
            "/usr/bin/git",
            "/usr/bin/git",
            &[
                "git",
                "-C",
                "/srv/app",
                "pull",
                "--ff-only",
                "origin",
                "main",
            ],
        ),
        cmd(
            "/usr/bin/git",
            "/usr/bin/git",
            &["git", "rev-parse", "--abbrev-ref", "HEAD"],
        ),
        cmd(
            "/usr/bin/systemctl",
            "/usr/bin/systemctl",
            &["systemctl", "is-active", "--quiet", "nginx.service"],
        ),
        cmd(
            "/usr/bin/systemctl",
            "/bin/systemctl",
            &["systemctl", "status", "--no-pager", "-l", "ssh.service"],
        ),
        cmd(
            "/usr/bin/python3",
            "/usr/bin/unattended-upgrade",
            &[
                "/usr/bin/python3",
                "/usr/bin/unattended-upgrade",
                "--dry-run",
                "--debug",
            ],
        ),
        cmd(
            "/usr/bin/python3",
            "/usr/bin/python3",
            &[
                "python3",
                "-m",
                "pip",
                "install",
                "--upgrade",
                "--no-cache-dir",
                "-r",
                "/srv/app/requirements.txt",
            ],
        ),
        cmd(
            "/usr/bin/env",
            "/usr/bin/env",
            &[
                "env",
                "LC_ALL=C",
                "/usr/sbin/logrotate",
                "/etc/logrotate.conf",
            ],
        ),
        (
            "/usr/bin/env",
            "/usr/bin/env",
            vec![
                "runc".into(),
                "--root".into(),
                "/var/run/docker/runtime-runc/moby".into(),
                "--log".into(),
                format!("{task}/log.json"),
                "--log-format".into(),
                "json".into(),
                "create".into(),
                "--bundle".into(),
                task.clone(),
                "--pid-file".into(),
                format!("{task}/init.pid"),
                id.into(),
            ],
        ),
        cmd("/usr/bin/true", "/bin/true", &["true"]),
        cmd(
            "/usr/bin/dash",
            "/bin/sh",
            &[
                "/bin/sh",
                "-c",
                "test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily",
            ],
        ),
    ]
}

const ROUNDS: u32 = 20;
const BASE_PID: u32 = 3_500_000;

fn items() -> Vec<Item> {
    let parents = [
        cmd("/usr/bin/dash", "/bin/bash", &["-bash"]),
        cmd(
            "/usr/bin/dash",
            "/bin/sh",
            &[
                "/bin/sh",
                "-c",
                "cd / && run-parts --report /etc/cron.hourly",
            ],
        ),
    ];
    let mut out = Vec::new();
    let mut pid = BASE_PID;
    let mut start_ns = 1_000u64;
    let exec = |out: &mut Vec<Item>, pid: u32, start_ns: u64, ppid: u32, c: &Cmd| {
        let argv: Vec<&[u8]> = c.2.iter().map(|a| a.as_bytes()).collect();
        let mut ev = common::root_exec(pid, c.0.as_bytes(), c.1.as_bytes(), &argv);
        ev.exec_id = format!("{pid}:{start_ns}");
        ev.ppid = Some(ppid);
        let meta = std::fs::metadata(c.0).expect("the mix's executables exist");
        ev.exe_dev_ino = Some((meta.dev(), meta.ino()));
        ev.exe_stamp = Some(FileStamp::of(&meta));
        if let Some(Privileges::Linux { file, caps, .. }) = &mut ev.privileges {
            *file = Some(FileInfo {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
            });
            ev.pre_exec = Some(PreExec {
                uid: 0,
                euid: 0,
                caps_effective: caps.effective,
            });
        }
        ev.tid = Some(pid);
        ev.exec_tid = Some(pid);
        ev.ns.namespaces = procwatch::linux::ns::own_namespaces();
        ev.ns.ns_pid = Some(pid);
        ev.ns.pidns_level = Some(0);
        ev.ns.user_ns = Some(UserNs {
            level: 0,
            owner_uid: 0,
        });
        ev.ns.cgroup_id = Some(7355);
        ev.ns.cgroup_path = Some(b"/user.slice/user-0.slice/session-3.scope".to_vec());
        ev.ns.exe_mnt_id = Some(27);
        ev.ns.exe_other_mnt_ns = Some(false);
        let base = c.0.rsplit('/').next().unwrap_or(c.0);
        ev.comm = Some(base.as_bytes()[..base.len().min(15)].to_vec());
        out.push(Item::Exec {
            ev: Box::new(ev),
            start_ns,
            parent_start_ns: 500,
        });
    };
    let mut parent_keys = Vec::new();
    for p in &parents {
        exec(&mut out, pid, start_ns, 1, p);
        parent_keys.push(ProcKey { pid, start_ns });
        pid += 1;
        start_ns += 1_000;
    }
    for round in 0..ROUNDS {
        for (i, c) in mix().iter().enumerate() {
            let parent = parent_keys[(round as usize + i) % parent_keys.len()];
            let child = ProcKey { pid, start_ns };
            out.push(Item::Fork(Fork { child, parent }));
            exec(&mut out, pid, start_ns, parent.pid, c);
            out.push(Item::Exit(Exit {
                key: child,
                ppid: parent.pid,
                time: SystemTime::now(),
                status: 0,
                comm: c.2[0].as_bytes().to_vec(),
                lifetime: Duration::from_millis(3),
            }));
            pid += 1;
            start_ns += 1_000;
        }
    }
    out
}

/// Prints bytes per exec line (median, mean, max) for the mix.
pub fn bytes(extra: &[String]) {
    let args = ["procwatch", "--format", "jsonl"]
        .into_iter()
        .map(str::to_owned)
        .chain(extra.iter().cloned());
    let cfg = Cli::try_parse_from(args)
        .expect("bench arguments")
        .config()
        .expect("bench configuration");
    let out = Shared::default();
    let mut sink = make_sink(
        cfg.format,
        Box::new(out.clone()),
        true,
        cfg.sink_options.clone(),
    );
    replay(&cfg, sink.as_mut(), items()).expect("replay");
    drop(sink);
    let text = String::from_utf8(out.0.lock().unwrap().clone()).expect("UTF-8 output");
    let mut execs: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("{\"event\":\"exec\""))
        .collect();
    assert!(!execs.is_empty(), "no exec lines in the output");
    execs.sort_by_key(|l| l.len());
    // The median line itself, to see where its bytes go.
    eprintln!("{}", execs[execs.len() / 2]);
    let sizes: Vec<usize> = execs.iter().map(|l| l.len() + 1).collect();
    let n = sizes.len();
    let median = if n % 2 == 1 {
        sizes[n / 2] as f64
    } else {
        (sizes[n / 2 - 1] + sizes[n / 2]) as f64 / 2.0
    };
    let mean = sizes.iter().sum::<usize>() as f64 / n as f64;
    println!(
        "exec lines: {n}, bytes per exec: median {median:.0}, mean {mean:.0}, max {}",
        sizes[n - 1]
    );
}
