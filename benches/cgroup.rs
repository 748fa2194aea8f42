//! `cargo bench --bench cgroup` (as root): per-event cost of naming an
//! exec's cgroup and container, on a cache hit and on a miss (file handle,
//! and the walk used when handles fail). The baseline, measured in the
//! same run, is cloning an exec event, the least the writer does per
//! event; the report gives ns per event and the ratio to it.

#[cfg(target_os = "linux")]
#[path = "common/mod.rs"]
mod common;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;
    use std::hint::black_box;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    use crate::common::{self, per_event};
    use procwatch::enrich::container;
    use procwatch::linux::cgroup::CgroupPaths;

    fn report(name: &str, cost: Duration, baseline: Duration) {
        println!(
            "{name:<48} {:>9} ns/event  ({:>7.2}x baseline)",
            cost.as_nanos(),
            cost.as_secs_f64() / baseline.as_secs_f64(),
        );
    }

    /// Removes the bench's cgroup tree, deepest first, even on a panic.
    struct Tree(Vec<std::path::PathBuf>);
    impl Drop for Tree {
        fn drop(&mut self) {
            for d in self.0.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
    }

    pub fn main() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("cgroup bench: needs root (creates cgroups, opens by handle); skipped");
            return;
        }
        const HITS: u32 = 1_000_000;
        const MISSES: u32 = 20_000;
        const WALKS: u32 = 200;
        const WIDTH: usize = 200;

        let paths = CgroupPaths::new().expect("cgroup2 mount");
        let mount = paths.mount().to_path_buf();
        drop(paths);
        // A kubepods-shaped tree, WIDTH pods wide, as a busy node has.
        let top = mount.join(format!("procwatch-bench-{}", std::process::id()));
        let mut tree = Tree(vec![top.clone()]);
        fs::create_dir(&top).expect("mkdir");
        let mut leaf = None;
        for i in 0..WIDTH {
            let pod = top.join(format!("kubepods-besteffort-pod{i}.slice"));
            fs::create_dir(&pod).expect("mkdir");
            tree.0.push(pod.clone());
            let scope = pod.join(format!("cri-containerd-{:064x}.scope", i + 1));
            fs::create_dir(&scope).expect("mkdir");
            tree.0.push(scope.clone());
            leaf = Some(scope);
        }
        let leaf = leaf.unwrap();
        let id = fs::metadata(&leaf).unwrap().ino();

        let ev = common::root_exec(4_999_999, b"/bin/true", b"/bin/true", &[b"/bin/true"]);
        let baseline = per_event(HITS, || {
            black_box(Box::new(ev.clone()));
        });
        println!(
            "{:<48} {:>9} ns/event",
            "baseline (clone an event)",
            baseline.as_nanos()
        );

        let mut paths = CgroupPaths::new().unwrap();
        let path = paths.path_of(id).expect("resolves");
        assert!(container::parse(&path).is_some());
        let cost = per_event(HITS, || {
            black_box(paths.path_of(black_box(id)).unwrap());
        });
        report("path_of, cache hit", cost, baseline);
        let cost = per_event(HITS, || {
            let p = paths.path_of(black_box(id)).unwrap();
            black_box(container::parse(&p));
        });
        report("path_of + container::parse, cache hit", cost, baseline);
        let mut containers = container::ContainerCache::new();
        let cost = per_event(HITS, || {
            let p = paths.path_of(black_box(id)).unwrap();
            black_box(containers.of(id, &p));
        });
        report("path_of + ContainerCache::of, cache hits", cost, baseline);
        assert_eq!(paths.walks(), 0);

        let open = per_event(MISSES, || {
            black_box(CgroupPaths::at(&mount).unwrap());
        });
        report("CgroupPaths::at (subtract from the next)", open, baseline);
        let cost = per_event(MISSES, || {
            let mut p = CgroupPaths::at(&mount).unwrap();
            black_box(p.path_of(id).unwrap());
        });
        report("CgroupPaths::at + miss by file handle", cost, baseline);
        report(
            "  miss by file handle alone",
            cost.saturating_sub(open),
            baseline,
        );

        let cost = per_event(WALKS, || {
            let mut p = CgroupPaths::at(&mount)
                .unwrap()
                .without_handles()
                .walk_limits(usize::MAX, Duration::from_secs(60));
            black_box(p.path_of(id).unwrap());
        });
        report(
            &format!("miss by walk ({} dirs)", 2 * WIDTH + 1),
            cost,
            baseline,
        );
        drop(tree);
    }
}
