//! Where an exec ran: its namespaces, its pid namespace view, its user
//! namespace and its cgroup, as the source saw them at the exec.

use super::Bytes;

/// `namespaces`: the inode numbers of the task's namespaces, as
/// `readlink /proc/<pid>/ns/<name>` shows them (`mnt:[4026531841]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// `pid`: the task's own pid namespace (`ns/pid`).
    pub pid: u32,
    /// `pid_for_children`: the one its children get (`ns/pid_for_children`).
    pub pid_for_children: u32,
    pub mnt: u32,
    pub net: u32,
    pub user: u32,
    pub uts: u32,
    pub ipc: u32,
    pub cgroup: u32,
}

impl Namespaces {
    /// Each inode number from `ns`, given its name under `/proc/<pid>/ns`;
    /// the first failure is the result.
    pub fn try_from_fn<E>(mut ns: impl FnMut(&'static str) -> Result<u32, E>) -> Result<Self, E> {
        Ok(Namespaces {
            pid: ns("pid")?,
            pid_for_children: ns("pid_for_children")?,
            mnt: ns("mnt")?,
            net: ns("net")?,
            user: ns("user")?,
            uts: ns("uts")?,
            ipc: ns("ipc")?,
            cgroup: ns("cgroup")?,
        })
    }
}

/// The user namespace of the exec's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNs {
    /// `userns_level`: its depth; 0 is the initial (host) user namespace.
    pub level: u32,
    /// `userns_owner_uid`: the uid, as the host sees it, that created it.
    pub owner_uid: u32,
}

impl UserNs {
    /// `in_host_userns`: capabilities held here are host capabilities.
    pub fn is_host(&self) -> bool {
        self.level == 0
    }
}

/// Namespace and cgroup facts of one exec; every part is `None` (null, with
/// the reason in `incomplete`) when the source could not read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsInfo {
    /// `namespaces`.
    pub namespaces: Option<Namespaces>,
    /// `ns_pid`: the pid as the process sees itself, in its own pid
    /// namespace.
    pub ns_pid: Option<u32>,
    /// `pidns_level`: the depth of that pid namespace (0: the host's).
    pub pidns_level: Option<u32>,
    /// `in_host_userns`, `userns_owner_uid`, `userns_level`.
    pub user_ns: Option<UserNs>,
    /// `cgroup.id`: the cgroup v2 id (the inode of its directory).
    pub cgroup_id: Option<u64>,
    /// `cgroup.path`: the cgroup v2 path, from the unified hierarchy's root.
    pub cgroup_path: Option<Bytes>,
    /// `exe_mnt_id`: the mount id of the executed file's mount, as in
    /// `/proc/<pid>/mountinfo` of a process in the same mount namespace.
    pub exe_mnt_id: Option<u32>,
    /// `exe_other_mnt_ns`: the exec ran in a mount namespace other than
    /// procwatch's, so `exe` and the other paths are that namespace's view
    /// (enrichment).
    pub exe_other_mnt_ns: Option<bool>,
    /// `container`: the container the cgroup path names, `None` on the
    /// host or when the path is unknown (then listed in `incomplete`).
    pub container: Option<std::sync::Arc<Container>>,
}

/// A container a cgroup path belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The runtime's id: 64 lowercase hex for docker, containerd, cri-o,
    /// podman and `cri`; the machine or container name for nspawn, libvirt
    /// and lxc (bytes that are not printable UTF-8 escaped as `\xHH`).
    pub id: String,
    /// Which naming pattern matched (see the module docs).
    pub runtime: &'static str,
    /// The uid whose systemd user manager owns the subtree the match is in
    /// (`user@<uid>.service`): that user chose, and may have forged, the name.
    pub delegated_uid: Option<u32>,
    /// Another container's cgroup encloses this one.
    pub nested: bool,
}
