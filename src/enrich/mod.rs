//! Enrichment: turning raw kernel facts into what a reader wants to see.
//!
//! Sources stay cheap and only report ids and masks; this stage adds names
//! (users, groups), the process table (parent, ancestry, privilege change),
//! the exe hash and the hijackable check, and decides privilege raises.
//! Helpers that sources and sinks share too (clock, capability names,
//! `/proc` reader) live in [`crate::linux`].

pub mod container;
pub mod namespaces;
pub mod raise;
pub mod table;

// Linux only: CLOCK_BOOTTIME, NSS lookups, unix owners and modes, and
// files compared by dev/ino. Elsewhere `unsupported` stands in and leaves
// the fields these fill null (README, Windows).
#[cfg(target_os = "linux")]
pub mod hash;
#[cfg(target_os = "linux")]
pub mod hash_pool;
#[cfg(target_os = "linux")]
pub mod hijack;
#[cfg(target_os = "linux")]
pub mod hijack_pool;
#[cfg(target_os = "linux")]
pub mod mounts;
#[cfg(target_os = "linux")]
pub mod names;
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::{hash, hash_pool, hijack, hijack_pool, names};

pub use names::NameCache;
pub use raise::privilege_raise;

use crate::event::ExecEvent;

/// Fills the name fields of exec events, caching NSS lookups across events.
///
/// It keeps state (the cache), so one `Enricher` should live for the whole
/// run on the writer side, off the ring-buffer reader's hot path.
#[derive(Debug)]
pub struct Enricher {
    names: NameCache,
    /// procwatch's own mount namespace, read once at start.
    own_mnt_ns: Option<u32>,
    /// cgroup v2 id → path, or why there is no resolver (no cgroup2 mount).
    #[cfg(target_os = "linux")]
    cgroups: Result<crate::linux::cgroup::CgroupPaths, String>,
    containers: container::ContainerCache,
}

impl Default for Enricher {
    fn default() -> Self {
        Self::new()
    }
}

impl Enricher {
    /// An enricher with an empty name cache.
    pub fn new() -> Self {
        Enricher {
            names: NameCache::new(),
            own_mnt_ns: namespaces::own_ns("mnt"),
            #[cfg(target_os = "linux")]
            cgroups: crate::linux::cgroup::CgroupPaths::new()
                .map_err(|e| format!("cgroup_lookup_failed: {e}")),
            containers: container::ContainerCache::new(),
        }
    }

    /// The cgroup path of the kernel's cgroup id, when the source gave only
    /// the id, and the container that path names.
    fn cgroup_and_container(&mut self, ev: &mut ExecEvent) {
        #[cfg(target_os = "linux")]
        if let (Some(id), None) = (ev.ns.cgroup_id, &ev.ns.cgroup_path) {
            match &mut self.cgroups {
                Ok(paths) => match paths.resolve(id) {
                    Ok(cg) => ev.ns.cgroup_path = Some(cg.path.to_vec()),
                    Err(why) => ev.mark_incomplete("cgroup_path", why.reason()),
                },
                Err(why) => ev.mark_incomplete("cgroup_path", why.clone()),
            }
        }
        ev.ns.container = match (&ev.ns.cgroup_path, ev.ns.cgroup_id) {
            (Some(path), Some(id)) => self.containers.of(id, path),
            (Some(path), None) => container::parse(path).map(std::sync::Arc::new),
            (None, _) => {
                if ev.ns.cgroup_id.is_some() {
                    ev.mark_incomplete("container", "the cgroup path is unknown");
                }
                None
            }
        };
    }

    /// Sets `user` (name of euid), `group` (name of egid) and `login_user`
    /// (name of the audit login uid, when set) from the event's credentials.
    ///
    /// The effective ids are used because they decide what the program may
    /// do; the login uid tells who is behind it across su/sudo. Fields are
    /// overwritten, and set to `None` when an id has no name, so the result
    /// depends only on the credentials. First, `privilege_raised` is
    /// decided from the source's raw facts ([`raise::decide`]).
    pub fn enrich(&mut self, ev: &mut ExecEvent) {
        raise::decide(ev);
        self.cgroup_and_container(ev);
        namespaces::judge(ev, self.own_mnt_ns);
        let Some(creds) = ev.linux_creds().cloned() else {
            return;
        };
        ev.user = self.names.user(creds.euid);
        ev.group = self.names.group(creds.egid);
        ev.login_user = creds.login_uid.and_then(|uid| self.names.user(uid));
    }

    /// The name cache, for naming users outside exec events (the process
    /// table's initial scan).
    pub fn names(&mut self) -> &mut NameCache {
        &mut self.names
    }
}

// The tests name real Linux ids through NSS.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::event::{CapSets, Credentials, Privileges};
    use std::time::SystemTime;

    fn event(creds: Credentials) -> ExecEvent {
        let mut ev = ExecEvent::new(SystemTime::now(), 42, Some(1), "42:1".into());
        ev.argv = Some(vec![b"true".to_vec()]);
        ev.privileges = Some(Privileges::Linux {
            creds,
            caps: CapSets::default(),
            secureexec: None,
            file: None,
            raised: None,
        });
        ev
    }

    #[test]
    fn fills_names_from_effective_ids() {
        // Real ids are unnamed; only the effective ids must be used.
        let creds = Credentials {
            uid: 3_999_999_999,
            euid: 0,
            gid: 3_999_999_999,
            egid: 0,
            login_uid: Some(65534),
            ..Credentials::default()
        };
        let mut ev = event(creds);
        let mut e = Enricher::new();
        e.enrich(&mut ev);
        assert_eq!(ev.user.as_deref(), Some("root"));
        assert_eq!(ev.group.as_deref(), Some("root"));
        assert_eq!(ev.login_user.as_deref(), Some("nobody"));
    }

    #[test]
    fn unset_login_uid_and_unknown_ids() {
        let creds = Credentials {
            euid: 3_999_999_999,
            egid: 3_999_999_999,
            login_uid: None,
            ..Credentials::default()
        };
        let mut ev = event(creds);
        ev.user = Some("stale".into());
        ev.group = Some("stale".into());
        ev.login_user = Some("stale".into());
        let mut e = Enricher::default();
        e.enrich(&mut ev);
        assert_eq!(ev.user, None);
        assert_eq!(ev.group, None);
        assert_eq!(ev.login_user, None);
    }

    #[test]
    fn reuses_cache_across_events() {
        let mut e = Enricher::new();
        for _ in 0..3 {
            let mut ev = event(Credentials {
                login_uid: Some(0),
                ..Credentials::default()
            });
            e.enrich(&mut ev);
            assert_eq!(ev.user.as_deref(), Some("root"));
            assert_eq!(ev.login_user.as_deref(), Some("root"));
        }
    }
}
