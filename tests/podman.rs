//! A real container runtime: Debian's podman starting a busybox root
//! filesystem (`podman run --rootfs DIR`), and procwatch naming the
//! container from its cgroup at the exec.
//!
//! Whether podman can start a container depends on the host (this one's
//! hybrid cgroup hierarchy, or a root without CAP_SYS_RESOURCE, makes crun
//! refuse), which only running it tells. So this binary has its own
//! `main` (`harness = false`): it tries, and when podman cannot start a
//! container it reports the test as ignored with podman's own error,
//! rather than passing without checking anything.

#[cfg(target_os = "linux")]
#[allow(dead_code, unused_imports)]
#[path = "it/common/mod.rs"]
mod common;

const NAME: &str = "podman_runs_a_busybox_container_and_procwatch_names_it";

fn main() {
    let started = std::time::Instant::now();
    println!("\nrunning 1 test");
    let outcome = std::panic::catch_unwind(run);
    let (line, counts, failed) = match outcome {
        Ok(Ok(())) => ("ok".to_owned(), (1, 0, 0), false),
        Ok(Err(why)) => (format!("ignored, {why}"), (0, 0, 1), false),
        Err(_) => ("FAILED".to_owned(), (0, 1, 0), true),
    };
    println!("test {NAME} ... {line}");
    println!(
        "\ntest result: {}. {} passed; {} failed; {} ignored; 0 measured; 0 filtered out; \
         finished in {:.2}s\n",
        if failed { "FAILED" } else { "ok" },
        counts.0,
        counts.1,
        counts.2,
        started.elapsed().as_secs_f64()
    );
    if failed {
        std::process::exit(101);
    }
}

#[cfg(not(target_os = "linux"))]
fn run() -> Result<(), String> {
    Err("Linux only".into())
}

/// `Err(why)`: the test could not run here (ignored, with why).
#[cfg(target_os = "linux")]
fn run() -> Result<(), String> {
    use common::*;
    use std::process::Command;

    if !is_root() {
        return Err("needs root: runs podman and loads eBPF".into());
    }
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("busybox is not installed (apt-get install busybox-static)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::copy(busybox, bin.join("busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", bin.join("true")).unwrap();
    let rootfs = dir.path().to_str().unwrap().to_owned();
    let podman = |args: &[&str]| Command::new("podman").args(args).output();
    let probe = podman(&["run", "--rm", "--rootfs", &rootfs, "/bin/true"])
        .map_err(|e| format!("podman is not installed (apt-get install podman): {e}"))?;
    if !probe.status.success() {
        let err = String::from_utf8_lossy(&probe.stderr);
        return Err(format!(
            "podman cannot start a container on this host: {}",
            err.trim()
        ));
    }

    let tag = unique_tag("podman");
    let cidfile = dir.path().join("cid");
    let mon = Monitor::start(&["--format", "jsonl"]);
    let out = podman(&[
        "run",
        "--rm",
        "--cidfile",
        cidfile.to_str().unwrap(),
        "--rootfs",
        &rootfs,
        "/bin/true",
        &tag,
    ])
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines = mon.stop().json_lines();
    let cid = std::fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    let found: Vec<_> = execs_with_tag(&lines, &tag)
        .into_iter()
        .filter(|v| v["argv"][0] == "/bin/true")
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let ev = found[0];
    assert_eq!(ev["container"]["id"], cid.as_str(), "{ev}");
    assert_eq!(ev["container"]["runtime"], "podman", "{ev}");
    assert_eq!(ev["exe_other_mnt_ns"], true);
    assert_eq!(ev["ns_pid"], 1);
    assert!(
        ev["cgroup"]["path"]
            .as_str()
            .is_some_and(|p| p.contains(&cid)),
        "{ev}"
    );
    Ok(())
}
