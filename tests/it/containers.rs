//! Containers and mount namespaces as an adversary uses them: a payload
//! bind-mounted over a system binary in a private mount namespace (as
//! nobody in a user namespace, and as root), which must neither be judged
//! by the host's file of that name nor hide behind `--exclude-exe`; and a
//! docker-named cgroup with a new pid and mount namespace, seen through
//! `--container`, `--host-only`, the CSV columns and the text tag.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::common::*;
use crate::namespaces::{TestCgroup, unified_mount};
use serde_json::{Value, json};

/// The namespace and file-identity fields these tests assert on, which the
/// compact default leaves out when they equal the host's.
const NS_FIELDS: &str = "+exe_inode,+exe_other_mnt_ns,+namespaces,+ns_pid,+pidns_level,+in_host_userns,+userns_owner_uid,+userns_level";

/// A copy of /bin/sh that anyone may run, with `mode`: the payload.
fn payload(dir: &std::path::Path, mode: u32) -> (String, (u64, u64)) {
    let p = copy_program("/bin/sh", dir, "payload", mode);
    let m = std::fs::metadata(&p).unwrap();
    (p, (m.dev(), m.ino()))
}

/// The tagged execs whose argv[0] is `argv0`.
fn tagged<'a>(lines: &'a [Value], tag: &str, argv0: &str) -> Vec<&'a Value> {
    execs_with_tag(lines, tag)
        .into_iter()
        .filter(|v| v["argv"][0] == argv0)
        .collect()
}

/// In a mount namespace of its own (and, as nobody, a user namespace):
/// bind-mounts `payload` over `target`, then runs `target -c SCRIPT TAG`.
fn bind_and_run(as_nobody: bool, payload: &str, target: &str, script: &str, tag: &str) -> Command {
    let inner = format!("mount --bind {payload} {target} && exec {target} -c '{script}' {tag}");
    let mut c = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
        c.args(["unshare", "-Urm"]);
        c
    } else {
        let mut c = Command::new("unshare");
        c.arg("-m");
        c
    };
    c.args(["/bin/sh", "-c", &inner]);
    c
}

#[root_test("loads eBPF, creates user and mount namespaces")]
fn payload_over_passwd_as_nobody_in_a_user_namespace() {
    let tag = unique_tag("passwd");
    let dir = open_tempdir();
    let (payload, payload_id) = payload(dir.path(), 0o755);
    let json = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS]);
    let text = Monitor::start(&["--format", "text", "--color", "never"]);
    run_ok(&mut bind_and_run(
        true,
        &payload,
        "/usr/bin/passwd",
        ":",
        &tag,
    ));
    let lines = json.stop().json_lines();
    let found = tagged(&lines, &tag, "/usr/bin/passwd");
    assert_eq!(found.len(), 1, "{found:?}");
    let ev = found[0];
    // The path is the namespace's view, and the file is the payload.
    assert_eq!(ev["exe"], "/usr/bin/passwd");
    assert_eq!(ev["exe_other_mnt_ns"], true);
    assert_eq!(ev["exe_inode"]["ino"], payload_id.1);
    let host = std::fs::metadata("/usr/bin/passwd").unwrap();
    assert_ne!(ev["exe_inode"]["ino"], host.ino());
    // Root of its own user namespace: no host privilege, so no judgement
    // at all, and certainly none of the host's setuid passwd.
    assert_eq!(ev["euid"], 65534);
    assert_eq!(ev["in_host_userns"], false);
    assert_eq!(ev["privilege_raised"], Value::Null);
    assert_eq!(ev["privilege_change"], Value::Null);
    assert_eq!(ev["hijackable"], Value::Null);

    let out = String::from_utf8(text.stop().stdout).unwrap();
    let line = out
        .lines()
        .find(|l| l.ends_with(&format!("  /usr/bin/passwd -c : {tag}")))
        .unwrap_or_else(|| panic!("no text line for {tag}:\n{out}"));
    assert!(line.contains(" userns "), "{line}");
    assert!(
        !line.contains("caps=ALL") && !line.contains("RAISED"),
        "{line}"
    );
}

#[root_test("loads eBPF, creates a mount namespace")]
fn root_exec_of_a_bind_mounted_payload_is_judged_in_its_own_root() {
    let tag = unique_tag("rootview");
    let dir = open_tempdir();
    // World-writable: anyone may change what this root process runs.
    let (payload, payload_id) = payload(dir.path(), 0o777);
    let mut mon = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS]);
    // Alive (in `read`) until procwatch has written its exec, so its root
    // can be looked through.
    let mut p = Spawned::spawn(
        bind_and_run(false, &payload, "/usr/bin/passwd", "read x", &tag).stdin(Stdio::piped()),
    );
    let ev = mon.wait_for(&tag, |v| v["argv"][0] == "/usr/bin/passwd");
    p.release();
    assert!(p.wait().status.success());
    mon.stop();
    assert_eq!(ev["exe"], "/usr/bin/passwd");
    assert_eq!(ev["exe_other_mnt_ns"], true);
    assert_eq!(ev["exe_inode"]["ino"], payload_id.1);
    assert_eq!(ev["euid"], 0);
    // The host's /usr/bin/passwd is root's and not writable: a finding can
    // only come from the namespace's own file, the payload.
    let host = std::fs::metadata("/usr/bin/passwd").unwrap();
    assert_eq!((host.uid(), host.mode() & 0o022), (0, 0));
    assert_eq!(
        ev["hijackable"],
        json!([{
            "path": "/usr/bin/passwd",
            "role": "binary",
            "writable": "/usr/bin/passwd",
            "writers": ["others"],
        }]),
        "{ev}"
    );
    assert_eq!(ev["incomplete_reasons"]["hijackable"], Value::Null, "{ev}");
}

#[root_test("loads eBPF, creates user and mount namespaces")]
fn exclude_exe_cannot_hide_a_payload_bind_mounted_over_it() {
    let tag = unique_tag("evade");
    let dir = open_tempdir();
    let (payload, _) = payload(dir.path(), 0o755);
    let true_path = canonical("/usr/bin/true");
    let excluded = Monitor::start(&[
        "--format",
        "jsonl",
        "--fields",
        NS_FIELDS,
        "--exclude-exe",
        &true_path,
    ]);
    let included = Monitor::start(&[
        "--format", "jsonl", "--fields", NS_FIELDS, "--exe", &true_path,
    ]);
    run_ok(&mut bind_and_run(true, &payload, &true_path, ":", &tag));
    // The real one, on the host, with the same tag.
    run_ok(Command::new(&true_path).arg(&tag));
    let (excluded, included) = (excluded.stop(), included.stop());
    let by_ns = |lines: &[Value], other: bool| -> usize {
        tagged(lines, &tag, &true_path)
            .into_iter()
            .filter(|v| v["exe_other_mnt_ns"] == other)
            .count()
    };
    let lines = excluded.json_lines();
    assert_eq!(by_ns(&lines, true), 1, "the payload stays visible");
    assert_eq!(by_ns(&lines, false), 0, "the host's own file is excluded");
    let lines = included.json_lines();
    assert_eq!(by_ns(&lines, false), 1, "--exe matches the host's file");
    assert_eq!(by_ns(&lines, true), 0, "--exe does not match the payload");
}

/// A docker-named cgroup v2 scope, removed on drop, and its container id.
fn docker_scope(tag: &str) -> (TestCgroup, TestCgroup, String, String) {
    let parent = TestCgroup(unified_mount().join(format!("procwatch-test-{tag}")));
    std::fs::create_dir(&parent.0).unwrap();
    let hex: String = tag.bytes().map(|b| format!("{b:02x}")).collect();
    let id = format!("{hex:0<64}")[..64].to_string();
    let scope = format!("docker-{id}.scope");
    let cg = TestCgroup(parent.0.join(&scope));
    std::fs::create_dir(&cg.0).unwrap();
    let path = format!("/procwatch-test-{tag}/{scope}");
    // Dropped in this order: the scope, then its parent.
    (cg, parent, id, path)
}

#[root_test("loads eBPF, creates namespaces and a cgroup")]
fn container_and_host_only_filters_csv_columns_and_text_tag() {
    let tag = unique_tag("ctr");
    let (cg, _parent, id, path) = docker_scope(&tag);
    let jsonl = |extra: &[&str]| {
        let mut args = vec!["--format", "jsonl", "--fields", NS_FIELDS];
        args.extend_from_slice(extra);
        Monitor::start(&args)
    };
    let by_prefix = jsonl(&["--container", &id[..12]]);
    let none = jsonl(&["--container", "none"]);
    let host_only = jsonl(&["--host-only"]);
    let csv = Monitor::start(&[
        "--format",
        "csv",
        "--csv-columns",
        "container,ns_pid,cgroup,userns",
    ]);
    let text = Monitor::start(&["--format", "text", "--color", "never"]);
    // sh moves itself into the scope and becomes unshare, in the host's
    // namespaces; its child sh is pid 1 of a new pid and mount namespace
    // and runs /bin/true as pid 2.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -p -m -f --mount-proc /bin/sh -c '/bin/true {tag}; :' {tag}",
        cg.0.display()
    );
    run_ok(Command::new("/bin/sh").arg("-c").arg(&script));
    run_ok(Command::new("/bin/true").arg(&tag));

    let level = |lines: &[Value], n: u64| -> usize {
        tagged(lines, &tag, "/bin/true")
            .into_iter()
            .filter(|v| v["pidns_level"] == n)
            .count()
    };
    let lines = by_prefix.stop().json_lines();
    assert_eq!(
        (level(&lines, 1), level(&lines, 0)),
        (1, 0),
        "--container ID"
    );
    assert_eq!(tagged(&lines, &tag, "unshare").len(), 1, "in the scope too");
    let lines = none.stop().json_lines();
    assert_eq!(
        (level(&lines, 1), level(&lines, 0)),
        (0, 1),
        "--container none"
    );
    let lines = host_only.stop().json_lines();
    assert_eq!((level(&lines, 1), level(&lines, 0)), (0, 1), "--host-only");
    // In the docker-named scope, but in the host's namespaces: host-only
    // goes by namespaces, which the kernel sets, not by a cgroup's name.
    assert_eq!(tagged(&lines, &tag, "unshare").len(), 1);

    let out = csv.stop().stdout;
    let mut rows = csv::ReaderBuilder::new().from_reader(out.as_slice());
    let header = rows.headers().unwrap().clone();
    assert_eq!(
        header.iter().skip(7).collect::<Vec<_>>(),
        ["Container", "NS PID", "Cgroup", "User Namespace"]
    );
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let cmd = format!("/bin/true {tag}");
    let mine: Vec<_> = rows.iter().filter(|r| &r[0] == cmd.as_str()).collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    let inside: Vec<_> = mine.iter().filter(|r| !r[7].is_empty()).collect();
    assert_eq!(inside.len(), 1, "{mine:?}");
    let r = inside[0];
    assert_eq!(&r[7], format!("docker:{id}").as_str());
    assert_eq!(&r[8], "2");
    assert_eq!(&r[9], path.as_str());
    assert_eq!(&r[10], "host");

    let out = String::from_utf8(text.stop().stdout).unwrap();
    let mine: Vec<_> = out
        .lines()
        .filter(|l| l.ends_with(&format!("  /bin/true {tag}")))
        .collect();
    assert_eq!(mine.len(), 2, "{out}");
    let tagged_lines: Vec<_> = mine
        .iter()
        .filter(|l| l.contains(&format!("  [{}] root ", &id[..12])))
        .collect();
    assert_eq!(tagged_lines.len(), 1, "{mine:?}");
}

#[root_test("loads eBPF, mounts FUSE in a mount namespace of its own")]
fn a_root_exec_from_fuse_in_another_namespace_is_not_looked_into() {
    let tag = unique_tag("fuseroot");
    let dir = open_tempdir();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut mon = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS, "--no-hash"]);
    let victim = mon.pid();
    // The mount exists only in a namespace of its own, as a container's
    // would: procwatch's own table does not list it.
    let (fs, mut child) = crate::fuse::sleep_in_own_mount_ns(&mnt, victim, &tag, "30");
    let ev = mon.wait_for(&tag, |v| v["event"] == "exec");
    let _ = child.kill();
    let _ = child.wait();
    let done = mon.stop();
    drop(fs);
    done.assert_clean_exit();
    assert_eq!(ev["exe_other_mnt_ns"], true);
    assert_eq!(ev["euid"], 0);
    assert_eq!(ev["hijackable"], Value::Null);
    assert_eq!(
        ev["incomplete_reasons"]["hijackable"],
        "other_mount_namespace: the executed file is on a FUSE filesystem of that namespace, \
         whose server could stall procwatch; the host's file of the same path says nothing \
         about it",
        "{ev}"
    );
}
