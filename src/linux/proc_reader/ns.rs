//! A process's namespaces, its pid in its own pid namespace, its user
//! namespace and its cgroup v2 path, as `/proc/<pid>` shows them: what the
//! /proc-based sources report where the kernel program reads the task.
//!
//! The `ns/*` entries are the kernel's own links (nsfs), never a user's
//! file, and are opened through the process's directory fd like the rest.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Failure, ProcDir};
use crate::event::{Bytes, Namespaces, UserNs};
use crate::linux::ns::parse_ns_link;

/// `NS_GET_PARENT` and `NS_GET_OWNER_UID` of `<linux/nsfs.h>`:
/// `_IO(0xb7, 2)` and `_IO(0xb7, 4)`.
const NS_GET_PARENT: libc::Ioctl = 0xb702;
const NS_GET_OWNER_UID: libc::Ioctl = 0xb704;

/// User namespaces nest at most 32 deep (the kernel's limit).
const MAX_USERNS_LEVEL: u32 = 32;

/// Everything the namespace fields need from one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsSnapshot {
    pub namespaces: Result<Namespaces, Failure>,
    pub user_ns: Result<UserNs, Failure>,
    /// The cgroup v2 path (`0::/path` of `cgroup`).
    pub cgroup_path: Result<Bytes, Failure>,
}

/// `NSpid:` of `status`: the pid in each pid namespace from the host's
/// down; returns the last (the process's own view) and the depth.
pub fn parse_nspid(status: &str) -> Option<(u32, u32)> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let pids: Vec<u32> = line
        .split_ascii_whitespace()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let level = u32::try_from(pids.len().checked_sub(1)?).ok()?;
    Some((*pids.last()?, level))
}

/// The cgroup v2 path: the `0::` line of `cgroup` (on a hybrid host the
/// v1 hierarchies have their own lines, with a non-zero id).
pub fn parse_cgroup_v2(cgroup: &[u8]) -> Option<Bytes> {
    cgroup
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
        .map(<[u8]>::to_vec)
}

impl ProcDir {
    /// Reads the namespace links, the user namespace and the cgroup path.
    pub fn ns_snapshot(&self) -> NsSnapshot {
        NsSnapshot {
            namespaces: self.namespaces(),
            user_ns: self.user_ns(),
            cgroup_path: self
                .read("cgroup", 1 << 16)
                .and_then(|b| parse_cgroup_v2(&b).ok_or(Failure::Malformed)),
        }
    }

    fn namespaces(&self) -> Result<Namespaces, Failure> {
        let ns = |name: &str| -> Result<u32, Failure> {
            let link = self.readlink(&format!("ns/{name}"))?;
            parse_ns_link(&link, name).ok_or(Failure::Malformed)
        };
        Namespaces::try_from_fn(ns)
    }

    /// The owner (`NS_GET_OWNER_UID`) and the depth: parents counted with
    /// `NS_GET_PARENT` until the kernel refuses (EPERM at the initial user
    /// namespace, or at procwatch's own if it runs in a nested one).
    fn user_ns(&self) -> Result<UserNs, Failure> {
        let file = self.open_file("ns/user")?;
        let mut owner: libc::uid_t = 0;
        // SAFETY: a valid nsfs fd and an out pointer to a uid_t, as the
        // ioctl expects.
        if unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_OWNER_UID, &mut owner) } != 0 {
            return Err(Failure::Io);
        }
        let mut level = 0;
        let mut at: OwnedFd = file.into();
        loop {
            // SAFETY: a valid nsfs fd; the result is checked.
            let parent = unsafe { libc::ioctl(at.as_raw_fd(), NS_GET_PARENT) };
            if parent < 0 {
                break;
            }
            // SAFETY: the ioctl returned a new fd that we own.
            at = unsafe { OwnedFd::from_raw_fd(parent) };
            level += 1;
            if level > MAX_USERNS_LEVEL {
                return Err(Failure::Malformed);
            }
        }
        Ok(UserNs {
            level,
            owner_uid: owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_and_cgroup_lines() {
        assert_eq!(parse_nspid("Name:\tx\nNSpid:\t4242\n"), Some((4242, 0)));
        assert_eq!(parse_nspid("NSpid:\t4242\t17\t1\n"), Some((1, 2)));
        assert_eq!(parse_nspid("NSpid:\t42x\n"), None);
        assert_eq!(parse_nspid("NSpid:\n"), None);
        assert_eq!(parse_nspid("Pid:\t1\n"), None);
        let hybrid = b"12:pids:/user.slice\n1:name=systemd:/x\n0::/system.slice/a b.service\n";
        assert_eq!(
            parse_cgroup_v2(hybrid).as_deref(),
            Some(&b"/system.slice/a b.service"[..])
        );
        assert_eq!(parse_cgroup_v2(b"3:cpu:/\n"), None);
    }

    #[test]
    fn own_process_matches_its_links() {
        let me = ProcDir::open("/proc", std::process::id()).unwrap();
        let snap = me.ns_snapshot();
        let n = snap.namespaces.unwrap();
        assert_eq!(Some(n.mnt), crate::linux::ns::own_ns("mnt"));
        assert_eq!(Some(n.user), crate::linux::ns::own_ns("user"));
        assert_eq!(Some(n.pid), crate::linux::ns::own_ns("pid"));
        let cg = std::fs::read("/proc/self/cgroup").unwrap();
        assert_eq!(snap.cgroup_path.ok(), parse_cgroup_v2(&cg));
        // The test runs where procwatch would: its own user namespace is
        // the deepest the ioctl can see from here.
        assert_eq!(snap.user_ns.map(|u| u.level), Ok(0));
    }
}
