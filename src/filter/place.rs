//! Filters on where an exec ran: `--container` and `--host-only`, and the
//! rule that lets `--exe`/`--exclude-exe` trust an exe path at all.
//!
//! Namespaces are the kernel's facts; container names come from cgroup
//! paths, which a user's own systemd manager can choose. So a hiding
//! decision never rests on a name a user could have picked.

use crate::event::{Container, ExecEvent};

/// `--container` values shorter than this are names, never id prefixes:
/// a prefix of two or three hex digits names too many containers.
pub const MIN_ID_PREFIX: usize = 4;

/// One `--container` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerSel {
    /// `any`: in any container.
    Any,
    /// `none`: not in a container (see [`ContainerSel::matches`]).
    None,
    /// The container whose id starts with these hex digits (at least
    /// [`MIN_ID_PREFIX`]), or whose id or name is exactly this.
    Id(String),
}

impl ContainerSel {
    /// Parses a `--container` value.
    pub fn parse(s: &str) -> Result<ContainerSel, String> {
        match s {
            "any" => Ok(ContainerSel::Any),
            "none" => Ok(ContainerSel::None),
            "" => Err("an empty container id or name".into()),
            s => Ok(ContainerSel::Id(s.to_owned())),
        }
    }

    /// Whether `ev` ran where this value says. An exec whose cgroup path is
    /// unknown matches no value: where it ran is not known.
    ///
    /// `none` also matches a container whose cgroup sits in a user's
    /// delegated subtree (rootless podman, or any name that user made up):
    /// that user chose the name, so it cannot hide the exec from a view of
    /// the host.
    pub fn matches(&self, ev: &ExecEvent) -> bool {
        if ev.ns.cgroup_path.is_none() {
            return false;
        }
        let c = ev.ns.container.as_deref();
        match self {
            ContainerSel::Any => c.is_some(),
            ContainerSel::None => c.is_none_or(|c| c.delegated_uid.is_some()),
            ContainerSel::Id(want) => c.is_some_and(|c| id_matches(c, want)),
        }
    }
}

/// `want` is the container's id or name, or a prefix of its hex id of at
/// least [`MIN_ID_PREFIX`] digits (either case).
fn id_matches(c: &Container, want: &str) -> bool {
    if c.id == want {
        return true;
    }
    want.len() >= MIN_ID_PREFIX
        && want.bytes().all(|b| b.is_ascii_hexdigit())
        && c.id.len() >= want.len()
        && c.id.as_bytes()[..want.len()].eq_ignore_ascii_case(want.as_bytes())
}

/// procwatch's own pid, mount and user namespaces: what `--host-only`
/// compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnNs {
    pub pid: u32,
    pub mnt: u32,
    pub user: u32,
}

impl OwnNs {
    /// Reads `/proc/self/ns/{pid,mnt,user}`.
    pub fn read() -> Result<OwnNs, String> {
        let get = |name| {
            crate::linux::ns::own_ns(name)
                .ok_or_else(|| format!("cannot read procwatch's own {name} namespace"))
        };
        Ok(OwnNs {
            pid: get("pid")?,
            mnt: get("mnt")?,
            user: get("user")?,
        })
    }

    /// `--host-only`: the task's own pid namespace, its mount namespace and
    /// its credentials' user namespace are all procwatch's. Unknown
    /// namespaces do not match.
    pub fn matches(&self, ev: &ExecEvent) -> bool {
        ev.ns
            .namespaces
            .is_some_and(|n| n.pid == self.pid && n.mnt == self.mnt && n.user == self.user)
    }
}

/// Whether `ev.exe` is a path procwatch may match globs against: the exec
/// ran in procwatch's mount namespace, where the kernel's path is the
/// file's own from the namespace root (a chroot does not change it) and
/// only the host's root can change the mounts. Elsewhere the path is
/// another namespace's view that anyone with a mount namespace of their
/// own can bind-mount anything over. The file identity at the path is then
/// checked too, by the caller ([`super::host_file`]).
pub fn exe_in_our_view(ev: &ExecEvent) -> bool {
    // No mount namespaces there: every path is the one view.
    if cfg!(not(target_os = "linux")) {
        return true;
    }
    ev.ns.exe_other_mnt_ns == Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Namespaces;
    use crate::sink::testutil::exec_event;
    use std::sync::Arc;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn in_container(id: &str, delegated: Option<u32>) -> ExecEvent {
        let mut ev = exec_event();
        ev.ns.cgroup_path = Some(format!("/system.slice/docker-{id}.scope").into_bytes());
        ev.ns.container = Some(Arc::new(Container {
            id: id.to_owned(),
            runtime: "docker",
            delegated_uid: delegated,
            nested: false,
        }));
        ev
    }

    fn on_host() -> ExecEvent {
        let mut ev = exec_event();
        ev.ns.cgroup_path = Some(b"/user.slice/session-1.scope".to_vec());
        ev
    }

    fn sel(s: &str) -> ContainerSel {
        ContainerSel::parse(s).unwrap()
    }

    #[test]
    fn container_any_and_none() {
        let (c, h) = (in_container(ID, None), on_host());
        assert!(sel("any").matches(&c));
        assert!(!sel("any").matches(&h));
        assert!(sel("none").matches(&h));
        assert!(!sel("none").matches(&c));
        let mut unknown = on_host();
        unknown.ns.cgroup_path = None;
        for v in ["any", "none", "0123"] {
            assert!(!sel(v).matches(&unknown), "{v}");
        }
        assert!(ContainerSel::parse("").is_err());
    }

    #[test]
    fn a_user_named_container_does_not_hide_from_none() {
        let forged = in_container(ID, Some(1000));
        assert!(sel("none").matches(&forged));
        assert!(sel("any").matches(&forged));
        assert!(sel("0123456").matches(&forged));
    }

    #[test]
    fn container_id_prefix_or_exact_name() {
        let c = in_container(ID, None);
        assert!(sel("0123").matches(&c));
        assert!(sel("0123456789AB").matches(&c), "either case");
        assert!(sel(ID).matches(&c));
        assert!(!sel("012").matches(&c), "too short for a prefix");
        assert!(!sel("1234").matches(&c));
        assert!(!sel(&format!("{ID}0")).matches(&c));
        let mut named = in_container("web", None);
        Arc::get_mut(named.ns.container.as_mut().unwrap())
            .unwrap()
            .runtime = "systemd-nspawn";
        assert!(sel("web").matches(&named));
        assert!(!sel("we").matches(&named));
        assert!(!sel("web").matches(&on_host()));
    }

    #[test]
    fn host_only_needs_all_three_namespaces() {
        let own = OwnNs {
            pid: 1,
            mnt: 2,
            user: 3,
        };
        let mut ev = exec_event();
        assert!(!own.matches(&ev), "unknown namespaces");
        let host = Namespaces {
            pid: 1,
            pid_for_children: 9,
            mnt: 2,
            net: 8,
            user: 3,
            ..Namespaces::default()
        };
        ev.ns.namespaces = Some(host);
        assert!(
            own.matches(&ev),
            "other net and children's pid ns still count"
        );
        for n in [
            Namespaces { pid: 7, ..host },
            Namespaces { mnt: 7, ..host },
            Namespaces { user: 7, ..host },
        ] {
            ev.ns.namespaces = Some(n);
            assert!(!own.matches(&ev), "{n:?}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn host_only_reads_our_namespaces() {
        let own = OwnNs::read().unwrap();
        assert_eq!(Some(own.mnt), crate::linux::ns::own_ns("mnt"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn exe_view() {
        let mut ev = exec_event();
        assert!(!exe_in_our_view(&ev), "unknown mount namespace");
        ev.ns.exe_other_mnt_ns = Some(true);
        assert!(!exe_in_our_view(&ev));
        ev.ns.exe_other_mnt_ns = Some(false);
        assert!(exe_in_our_view(&ev));
    }
}
