//! Namespaces and cgroups taken in the kernel at the exec: real user, pid
//! and mount namespaces (unshare) and a real cgroup v2 directory, each
//! exec compared with what the kernel shows in `/proc` for the same
//! namespaces; and capabilities held in a user namespace judged as no
//! privilege on the host (JSON, `--privileged`, `--raised`, text).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use serde_json::{Value, json};

/// The namespace fields on every line, also for execs in procwatch's own
/// namespaces (where the default leaves them out).
const NS_FIELDS: &str = "+namespaces,+ns_pid,+pidns_level,+in_host_userns,+userns_owner_uid,+userns_level,+exe_other_mnt_ns";

/// The test process's own namespaces (procwatch's too: it runs beside
/// them), as the `namespaces` object of an exec in them reads.
fn own_namespaces() -> Value {
    let ns = |name: &str| -> u64 {
        let link = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        let link = link.to_str().unwrap();
        let inum = link
            .strip_prefix(&format!("{}:[", name.trim_end_matches("_for_children")))
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or_else(|| panic!("unexpected ns link {link}"));
        inum.parse().unwrap()
    };
    json!({
        "pid": ns("pid"),
        "pid_for_children": ns("pid_for_children"),
        "mnt": ns("mnt"),
        "net": ns("net"),
        "user": ns("user"),
        "uts": ns("uts"),
        "ipc": ns("ipc"),
        "cgroup": ns("cgroup"),
    })
}

/// The one exec of `program` with `tag` in its argv.
fn exec_of<'a>(lines: &'a [Value], tag: &str, program: &str) -> &'a Value {
    let found: Vec<_> = execs_with_tag(lines, tag)
        .into_iter()
        .filter(|v| v["argv"][0] == program)
        .collect();
    assert_eq!(found.len(), 1, "{program} {tag}: {found:?}");
    found[0]
}

/// `setpriv` to nobody, then `unshare -Ur`: a user namespace owned by
/// nobody, in which `program tag` runs as its root with every capability.
fn userns_as_nobody(program: &str, tag: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "unshare",
        "-Ur",
        program,
        tag,
    ]);
    c
}

#[root_test("loads eBPF")]
fn capabilities_in_a_user_namespace_are_not_host_privilege() {
    let tag = unique_tag("userns");
    let json = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS]);
    let privileged = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS, "--privileged"]);
    let raised = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS, "--raised"]);
    let text = Monitor::start(&["--format", "text", "--color", "never"]);
    run_ok(&mut userns_as_nobody("/bin/true", &tag));
    // A host-root exec of the same tag: shown by --privileged, so that
    // monitor was seeing this test's execs.
    run_ok(
        Command::new("/bin/echo")
            .arg(&tag)
            .stdout(std::process::Stdio::null()),
    );
    let lines = json.stop().json_lines();
    let ev = exec_of(&lines, &tag, "/bin/true");
    let host = exec_of(&lines, &tag, "/bin/echo");

    assert_eq!(ev["euid"], 65534);
    assert_eq!(ev["in_host_userns"], false);
    assert_eq!(ev["userns_owner_uid"], 65534);
    assert_eq!(ev["userns_level"], 1);
    let own = own_namespaces();
    assert_ne!(ev["namespaces"]["user"], own["user"]);
    for same in ["mnt", "pid", "net", "uts", "ipc", "cgroup"] {
        assert_eq!(ev["namespaces"][same], own[same], "{same}");
    }
    // The capabilities are reported as they are: the namespace's root
    // holds every capability the kernel knows.
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let all = format!("0x{:016x}", (1u64 << (last + 1)) - 1);
    assert_eq!(ev["caps_raw"]["effective"], all.as_str());
    assert_eq!(ev["caps_raw"]["permitted"], all.as_str());
    assert_eq!(ev["privilege_raised"], Value::Null);
    assert_eq!(ev["privilege_change"], Value::Null);
    assert_eq!(host["in_host_userns"], true);
    assert_eq!(host["userns_owner_uid"], Value::Null);
    assert_eq!(host["namespaces"], own);

    let shown = privileged.stop().json_lines();
    assert_eq!(exec_of(&shown, &tag, "/bin/echo")["euid"], 0);
    let hidden: Vec<_> = execs_with_tag(&shown, &tag)
        .into_iter()
        .filter(|v| v["argv"][0] == "/bin/true")
        .collect();
    assert!(hidden.is_empty(), "--privileged showed {hidden:?}");
    let shown = raised.stop().json_lines();
    let hidden: Vec<_> = execs_with_tag(&shown, &tag)
        .into_iter()
        .filter(|v| v["argv"][0] == "/bin/true")
        .collect();
    assert!(hidden.is_empty(), "--raised showed {hidden:?}");

    let out = String::from_utf8(text.stop().stdout).unwrap();
    let line = out
        .lines()
        .find(|l| l.ends_with(&format!("  /bin/true {tag}")))
        .unwrap_or_else(|| panic!("no text line for /bin/true {tag}:\n{out}"));
    assert!(line.contains(" userns "), "{line}");
    assert!(
        !line.contains("caps=ALL") && !line.contains("RAISED"),
        "{line}"
    );
}

/// The cgroup v2 mount of this host (`/sys/fs/cgroup` on a v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one), from mountinfo.
pub(crate) fn unified_mount() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split(' ').next()? == "cgroup2")
                .then(|| left.split(' ').nth(4).map(PathBuf::from))?
        })
        .expect("no cgroup2 mount in /proc/self/mountinfo")
}

/// A new cgroup v2 directory, removed on drop (once its processes ended).
pub(crate) struct TestCgroup(pub(crate) PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[root_test("loads eBPF, creates namespaces and a cgroup")]
fn pid_and_mount_namespaces_and_cgroup_are_taken_at_the_exec() {
    let tag = unique_tag("pidns");
    // Named as docker's systemd driver names a container's cgroup.
    let parent = TestCgroup(unified_mount().join(format!("procwatch-test-{tag}")));
    std::fs::create_dir(&parent.0).unwrap();
    let hex: String = tag.bytes().map(|b| format!("{b:02x}")).collect();
    let container_id = format!("{hex:0<64}")[..64].to_string();
    let scope = format!("docker-{container_id}.scope");
    let cg = TestCgroup(parent.0.join(&scope));
    std::fs::create_dir(&cg.0).unwrap();
    let cgroup_id = std::fs::metadata(&cg.0).unwrap().ino();
    let mon = Monitor::start(&["--format", "jsonl", "--fields", NS_FIELDS]);
    // The shell moves itself into the cgroup, then becomes unshare: pid 1
    // of a new pid namespace is `sh`, whose child runs /bin/true.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -p -m -f --mount-proc /bin/sh -c '/bin/true {tag}; :' {tag}",
        cg.0.display()
    );
    run_ok(Command::new("/bin/sh").arg("-c").arg(&script));
    run_ok(Command::new("/bin/true").arg(&tag));
    let lines = mon.stop().json_lines();
    let own = own_namespaces();

    let level = |n: u32| {
        let found: Vec<_> = execs_with_tag(&lines, &tag)
            .into_iter()
            .filter(|v| v["argv"][0] == "/bin/true" && v["pidns_level"] == n)
            .collect();
        assert_eq!(found.len(), 1, "pid namespace level {n}: {found:?}");
        found[0]
    };
    let (host, ev) = (level(0), level(1));
    let sh = exec_of(&lines, &tag, "/bin/sh");
    let unshare = exec_of(&lines, &tag, "unshare");

    // The host exec: the test's own namespaces, the host's view.
    assert_eq!(host["namespaces"], own);
    assert_eq!(host["pidns_level"], 0);
    assert_eq!(host["ns_pid"], host["pid"]);
    assert_eq!(host["exe_other_mnt_ns"], false);

    // unshare itself runs in the new cgroup, in the host's namespaces.
    assert_eq!(unshare["cgroup"]["id"], cgroup_id);
    assert_eq!(unshare["namespaces"], own);

    // sh is pid 1 of the new pid namespace; /bin/true its child.
    assert_eq!(sh["ns_pid"], 1);
    assert_eq!(sh["pidns_level"], 1);
    assert_eq!(ev["ns_pid"], 2);
    assert_ne!(ev["pid"], 2);
    assert_eq!(ev["namespaces"]["pid"], sh["namespaces"]["pid"]);
    assert_ne!(ev["namespaces"]["pid"], own["pid"]);
    assert_ne!(ev["namespaces"]["mnt"], own["mnt"]);
    assert_eq!(ev["namespaces"]["net"], own["net"]);
    assert_eq!(ev["namespaces"]["user"], own["user"]);
    assert_eq!(ev["in_host_userns"], true);
    assert_eq!(ev["exe_other_mnt_ns"], true);
    // The cgroup is inherited, and its id is its directory's inode.
    assert_eq!(ev["cgroup"]["id"], cgroup_id);
    assert_eq!(sh["cgroup"]["id"], cgroup_id);
    assert_ne!(host["cgroup"]["id"], cgroup_id);
    // The path is looked up from the kernel's id, and names the container.
    let path = format!("/procwatch-test-{tag}/{scope}");
    assert_eq!(ev["cgroup"]["path"], path.as_str());
    assert_eq!(unshare["cgroup"]["path"], path.as_str());
    assert_eq!(
        ev["container"],
        json!({"id": container_id, "runtime": "docker", "delegated_uid": null, "nested": false})
    );
    // The exe's mount is the new namespace's copy of the host's mount.
    assert!(ev["exe_mnt_id"].as_u64().is_some());
    assert_ne!(ev["exe_mnt_id"], host["exe_mnt_id"]);
}

#[root_test("uses the netlink proc connector, creates namespaces")]
fn netlink_source_reads_the_namespaces_from_proc() {
    let tag = unique_tag("nsnetlink");
    let mut mon = Monitor::start(&[
        "--source", "netlink", "--format", "jsonl", "--fields", NS_FIELDS,
    ]);
    // pid 1 of a new pid and mount namespace, kept alive (in `read`) until
    // procwatch has reported it: /proc is read after the exec.
    let mut sh = Spawned::spawn(
        Command::new("unshare")
            .args([
                "-p",
                "-m",
                "-f",
                "--mount-proc",
                "/bin/sh",
                "-c",
                "read x",
                &tag,
            ])
            .stdin(std::process::Stdio::piped()),
    );
    let ev = mon.wait_for(&tag, |v| v["argv"][0] == "/bin/sh");
    sh.release();
    assert!(sh.wait().status.success());
    mon.stop();
    let own = own_namespaces();
    assert_eq!(ev["ns_pid"], 1);
    assert_eq!(ev["pidns_level"], 1);
    assert_ne!(ev["namespaces"]["pid"], own["pid"]);
    assert_ne!(ev["namespaces"]["mnt"], own["mnt"]);
    assert_eq!(ev["namespaces"]["user"], own["user"]);
    assert_eq!(ev["in_host_userns"], true);
    assert_eq!(ev["exe_other_mnt_ns"], true);
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    assert_eq!(ev["cgroup"], json!({"id": null, "path": path}));
    assert_eq!(
        ev["incomplete_reasons"]["cgroup_id"],
        "not visible in /proc"
    );
    assert_eq!(ev["exe_mnt_id"], Value::Null);
}
