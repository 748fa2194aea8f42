//! Cgroup ids to paths and paths to containers, on real cgroups: a tagged
//! tree under the unified hierarchy, a child moved into a docker-named
//! scope, and the id the kernel gives that cgroup.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::*;
use procwatch::enrich::container;
use procwatch::linux::cgroup::{CgroupPaths, Why};

/// A test's cgroup tree and the child in it: on drop (failure included)
/// the child is killed and reaped, then the directories are removed,
/// deepest first, retrying while the kernel still counts the dead child.
struct Tree {
    child: Option<Child>,
    dirs: Vec<PathBuf>,
}

impl Tree {
    fn mkdir(&mut self, p: PathBuf) {
        fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        self.dirs.push(p);
    }

    fn clean(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let start = Instant::now();
        while let Some(d) = self.dirs.last() {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // EBUSY until the kernel lets go of the reaped child.
                Err(_) if start.elapsed() < PATIENCE => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(e) => panic!("rmdir {}: {e}", d.display()),
            }
            self.dirs.pop();
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.clean();
    }
}

/// The cgroup id as the kernel encodes it in a cgroupfs file handle
/// (`FILEID_KERNFS`, the 8-byte node id), which is what
/// `bpf_get_current_cgroup_id` returns.
fn handle_id(p: &Path) -> u64 {
    #[repr(C)]
    struct Handle {
        bytes: u32,
        kind: i32,
        id: [u8; 64],
    }
    let mut h = Handle {
        bytes: 64,
        kind: 0,
        id: [0; 64],
    };
    let mut mount_id = 0;
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a C string, `h` a file_handle with 64 payload bytes.
    let r = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            c.as_ptr(),
            &mut h as *mut Handle,
            &mut mount_id as *mut i32,
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "name_to_handle_at: {}",
        std::io::Error::last_os_error()
    );
    assert_eq!((h.kind, h.bytes), (0xfe, 8), "not a kernfs handle");
    u64::from_ne_bytes(h.id[..8].try_into().unwrap())
}

/// The `0::` (unified) line of `/proc/<pid>/cgroup`.
fn unified_line(pid: u32) -> Vec<u8> {
    let text = fs::read(format!("/proc/{pid}/cgroup")).unwrap();
    text.split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
        .expect("no unified line")
        .to_vec()
}

#[root_test("creates cgroups and moves a process into one")]
fn resolves_ids_of_real_cgroups_and_names_the_container() {
    let mut paths = CgroupPaths::new().expect("cgroup2 mount");
    let mount = paths.mount().to_path_buf();
    let tag = unique_tag("cgroup");
    let nanos = exec_ns_now();
    let hex = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        std::process::id(),
        nanos,
        nanos.rotate_left(17),
        0xdead_beef_u64
    );
    let top_name = format!("procwatch-test-{tag}");
    let scope_name = format!("docker-{hex}.scope");
    let mut tree = Tree {
        child: None,
        dirs: Vec::new(),
    };
    tree.mkdir(mount.join(&top_name));
    let scope = mount.join(&top_name).join(&scope_name);
    tree.mkdir(scope.clone());
    // A hostile name: not UTF-8, and ending in the suffix readlink gives a
    // removed directory (cgroupfs refuses newlines).
    let evil_name = OsStr::from_bytes(b"evil\xff name (deleted)");
    let evil = mount.join(&top_name).join(evil_name);
    tree.mkdir(evil.clone());

    let child = Command::new("sleep")
        .arg0(&tag)
        .arg("600")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    tree.child = Some(child);
    fs::write(scope.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");

    let want = format!("/{top_name}/{scope_name}");
    assert_eq!(unified_line(pid), want.as_bytes(), "kernel's view");
    let id = handle_id(&scope);
    assert_eq!(id, fs::metadata(&scope).unwrap().ino(), "id is the inode");

    // By file handle, then from the cache.
    assert_eq!(paths.path_of(id).as_deref(), Ok(want.as_bytes()));
    assert_eq!(paths.path_of(id).as_deref(), Ok(want.as_bytes()));
    assert_eq!(paths.resolve(id).unwrap().owner_uid, 0);
    let evil_want = [format!("/{top_name}/").as_bytes(), evil_name.as_bytes()].concat();
    assert_eq!(
        paths.path_of(handle_id(&evil)).as_deref(),
        Ok(&evil_want[..])
    );
    let root_id = fs::metadata(&mount).unwrap().ino();
    assert_eq!(paths.path_of(root_id).as_deref(), Ok(&b"/"[..]));
    assert_eq!(paths.walks(), 0, "file handles failed");

    // By walking, as without CAP_DAC_READ_SEARCH; time bound lifted, as
    // the host may be loaded far past the default.
    let mut walker = CgroupPaths::new()
        .unwrap()
        .without_handles()
        .walk_limits(1_000_000, PATIENCE);
    assert_eq!(walker.path_of(id).as_deref(), Ok(want.as_bytes()));
    // That walk cached the rest of the tree on its way.
    assert_eq!(
        walker.path_of(handle_id(&evil)).as_deref(),
        Ok(&evil_want[..])
    );
    assert_eq!(walker.walks(), 1);
    // A walk that may read only the root directory cannot reach the scope
    // two levels down: bounded, it gives up rather than read on.
    let mut short = CgroupPaths::new()
        .unwrap()
        .without_handles()
        .walk_limits(1, PATIENCE);
    assert_eq!(short.path_of(id), Err(Why::NotFound));

    let c = container::parse(want.as_bytes()).expect("a container");
    assert_eq!(c.id, hex);
    assert_eq!(c.runtime, "docker");
    assert_eq!(c.delegated_uid, None);
    assert!(!c.nested);

    // A removed cgroup is gone for a fresh resolver; ids are not reused,
    // so the first resolver's cached path stays right.
    tree.clean();
    assert!(!scope.exists());
    let mut fresh = CgroupPaths::new().unwrap();
    assert_eq!(fresh.path_of(id), Err(Why::Gone));
    assert_eq!(fresh.walks(), 0, "a removed cgroup needs no walk");
    assert_eq!(paths.path_of(id).as_deref(), Ok(want.as_bytes()));
}

/// Nanoseconds of the realtime clock, for a hex id unique to this run.
fn exec_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
