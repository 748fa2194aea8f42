//! The eBPF program variants made for older kernels (a path walk without
//! bpf_loop, an exit program without group_dead, pre-exec with probe
//! reads), forced on this kernel with the hidden `--debug-ebpf-legacy`,
//! report the same events as the default programs for the same execs: three
//! monitors (default, legacy, legacy on the classic tracepoint) run side by
//! side and see every tagged exec and exit. The kernel matrix (ci/kernels)
//! runs the same binary on the kernels that need the variants.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use serde_json::Value;

/// Exec fields that come from the kernel program and must not depend on the
/// variant. (`time` and `exec_id` are left out: both hold the moment each
/// program ran.)
const SAME: &[&str] = &[
    "pid",
    "tid",
    "exec_tid",
    "ppid",
    "exe",
    "exe_truncated",
    "filename",
    "interpreter",
    "argv",
    "cwd",
    "comm",
    "user",
    "group",
    "incomplete",
    "exe_inode",
    "pre_exec",
    "privilege_change",
    "namespaces",
    "ns_pid",
    "pidns_level",
    "in_host_userns",
    "userns_owner_uid",
    "userns_level",
    "cgroup",
    "exe_mnt_id",
    "exe_other_mnt_ns",
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "sgid",
    "fsgid",
    "caps_raw",
    "secureexec",
    "file",
    "privilege_raised",
];

/// A tmpfs mounted at `dir/t` and `dir/src` bind-mounted at `dir/b`,
/// unmounted on drop.
struct Mounts {
    dir: tempfile::TempDir,
}

impl Mounts {
    fn new() -> Mounts {
        let dir = open_tempdir();
        for sub in ["t", "b", "src/d"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let m = Mounts { dir };
        mount(Some("tmpfs"), &m.path("t"), Some("tmpfs"), 0);
        mount(
            Some(m.path("src").to_str().unwrap()),
            &m.path("b"),
            None,
            libc::MS_BIND,
        );
        std::fs::create_dir(m.path("t/d")).unwrap();
        for d in ["t", "src"] {
            std::fs::set_permissions(m.path(d), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        m
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for sub in ["b", "t"] {
            let c = CString::new(self.path(sub).to_str().unwrap()).unwrap();
            // SAFETY: a valid path; MNT_DETACH cannot block on a busy mount.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn mount(src: Option<&str>, target: &Path, fstype: Option<&str>, flags: libc::c_ulong) {
    let src = src.map(|s| CString::new(s).unwrap());
    let target_c = CString::new(target.to_str().unwrap()).unwrap();
    let fstype = fstype.map(|s| CString::new(s).unwrap());
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: valid NUL-terminated strings or null, no mount data.
    let rc = unsafe {
        libc::mount(
            ptr(&src),
            target_c.as_ptr(),
            ptr(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    assert_eq!(
        rc,
        0,
        "mount {target:?}: {}",
        std::io::Error::last_os_error()
    );
}

/// The one exec of `program` tagged `tag`.
fn exec_of<'a>(lines: &'a [Value], tag: &str, program: &str) -> &'a Value {
    let execs: Vec<&Value> = execs_with_tag(lines, tag)
        .into_iter()
        .filter(|v| v["argv"][0] == program)
        .collect();
    assert_eq!(
        execs.len(),
        1,
        "one exec of {program} tagged {tag}: {execs:?}"
    );
    execs[0]
}

/// The exit events of the process that ran `exec`.
fn exits_of<'a>(lines: &'a [Value], exec: &Value) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["event"] == "exit" && v["exec_id"] == exec["exec_id"])
        .collect()
}

#[root_test("loads eBPF and mounts a tmpfs")]
fn legacy_programs_report_the_same_events_across_mounts() {
    let m = Mounts::new();
    let on_tmpfs = copy_true(&m.path("t"), "prog", 0o755);
    let suid = copy_true(&m.path("t"), "suid", 0o4755);
    copy_true(&m.path("src"), "prog", 0o755);
    let via_bind = m.path("b/prog").to_str().unwrap().to_string();
    let tmpfs_cwd = m.path("t/d").to_str().unwrap().to_string();
    let bind_cwd = m.path("b/d").to_str().unwrap().to_string();
    let tag = unique_tag("variants");
    let thread_script = "use POSIX; my @t = map { threads->create(sub { sleep 30 }) } 1..3; \
                         select(undef, undef, undef, 0.2); POSIX::_exit(9)";

    // Every field on every line: those left out by default (or when equal
    // to another) are compared too.
    let fields = all_fields();
    let args = ["--format", "jsonl", "--exits", "--fields", &fields];
    let default = Monitor::start(&args);
    let legacy = Monitor::start(&[&args[..], &["--debug-ebpf-legacy"]].concat());
    let classic = Monitor::start(
        &[
            &args[..],
            &["--debug-ebpf-legacy", "--debug-attach", "tracepoint"],
        ]
        .concat(),
    );
    run_ok(Command::new(&on_tmpfs).arg(&tag).current_dir(&tmpfs_cwd));
    run_ok(Command::new(&via_bind).arg(&tag).current_dir(&bind_cwd));
    run_ok(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args([&suid, &tag])
            .current_dir(&tmpfs_cwd),
    );
    let st = Command::new("/bin/sh")
        .args(["-c", "exit 7", &tag])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(7));
    // Several threads end at once (exit_group): one exit event, not one per
    // thread that sees the process dead.
    let st = Command::new("perl")
        .args(["-Mthreads", "-e", thread_script, &tag])
        .status()
        .expect("perl (with threads) runs");
    assert_eq!(st.code(), Some(9));
    let (default, legacy, classic) = (default.stop(), legacy.stop(), classic.stop());
    for out in [&default, &legacy, &classic] {
        out.assert_clean_exit();
        assert!(
            !out.stderr.contains("warning"),
            "every variant loads here: {}",
            out.stderr
        );
    }
    let (d, l, c) = (
        default.json_lines(),
        legacy.json_lines(),
        classic.json_lines(),
    );
    assert_eq!(c[0]["attach"], "tracepoint/sched/sched_process_exec");
    assert_eq!(d[0]["attach"], "tp_btf/sched_process_exec");
    assert_eq!(l[0]["attach"], "tp_btf/sched_process_exec");
    assert!(
        l[0]["can_miss"].as_str().unwrap().ends_with(
            "; paths (exe, cwd) deeper than 48 components or mount crossings lose their \
             leading ones and are flagged truncated (forced by --debug-ebpf-legacy)"
        ),
        "{}",
        l[0]["can_miss"]
    );
    assert!(
        !d[0]["can_miss"].as_str().unwrap().contains("deeper than"),
        "{}",
        d[0]["can_miss"]
    );

    let expect = [
        (on_tmpfs.as_str(), on_tmpfs.as_str(), tmpfs_cwd.as_str()),
        (via_bind.as_str(), via_bind.as_str(), bind_cwd.as_str()),
        (suid.as_str(), suid.as_str(), tmpfs_cwd.as_str()),
    ];
    for (program, exe, cwd) in expect {
        let (a, b) = (exec_of(&d, &tag, program), exec_of(&l, &tag, program));
        assert_eq!(a["exe"], exe, "{a}");
        assert_eq!(a["cwd"], cwd, "{a}");
        for f in SAME {
            assert_eq!(a[f], b[f], "{program}: {f} differs");
        }
        // The classic tracepoint has no linux_binprm: no interpreter or
        // secureexec (null, listed in incomplete); the rest is the same.
        let t = exec_of(&c, &tag, program);
        for f in SAME {
            if !["interpreter", "secureexec", "incomplete"].contains(f) {
                assert_eq!(a[f], t[f], "{program} (classic): {f} differs");
            }
        }
    }
    let raised = exec_of(&l, &tag, &suid);
    assert_eq!(raised["pre_exec"]["uid"], 65534);
    assert_eq!(raised["pre_exec"]["euid"], 65534);
    assert_eq!(raised["privilege_change"]["cause"], "setuid");
    assert_eq!(raised["privilege_change"]["to_euid"], 0);

    for (program, code) in [("/bin/sh", 7), ("perl", 9)] {
        let (a, b) = (exec_of(&d, &tag, program), exec_of(&l, &tag, program));
        let t = exec_of(&c, &tag, program);
        let (xa, xb, xt) = (exits_of(&d, a), exits_of(&l, b), exits_of(&c, t));
        assert_eq!(xa.len(), 1, "default: one exit of {program}: {xa:?}");
        assert_eq!(xb.len(), 1, "legacy: one exit of {program}: {xb:?}");
        assert_eq!(xt.len(), 1, "classic: one exit of {program}: {xt:?}");
        assert_eq!(xa[0]["exit_code"], code);
        for f in ["pid", "ppid", "exit_code", "signal", "comm"] {
            assert_eq!(xa[0][f], xb[0][f], "exit of {program}: {f} differs");
            assert_eq!(
                xa[0][f], xt[0][f],
                "exit of {program} (classic): {f} differs"
            );
        }
    }
    for lines in [&d, &l, &c] {
        let stop = lines.last().unwrap();
        assert_eq!(stop["event"], "stop");
        assert_eq!(
            stop["seen"],
            stop["emitted"].as_u64().unwrap() + stop["dropped"].as_u64().unwrap()
        );
    }
}
