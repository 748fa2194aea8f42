//! Container attribution from a cgroup v2 path, by the names container
//! runtimes give the cgroups they create. No runtime API is called.
//!
//! | runtime | cgroup path component |
//! |---|---|
//! | `docker` | `docker-<64 hex>.scope` (systemd driver), `docker/<64 hex>` (cgroupfs driver) |
//! | `containerd` | `cri-containerd-<64 hex>.scope` |
//! | `cri-o` | `crio-<64 hex>.scope` or `crio-<64 hex>` (`crio-conmon-*` is the host-side monitor) |
//! | `podman` | `libpod-<64 hex>.scope` or `libpod-<64 hex>` (`libpod-conmon-*` is the host-side monitor) |
//! | `cri` | `kubepods/.../pod<uid>/<64 hex>` (kubelet's cgroupfs driver: runtime not named) |
//! | `systemd-nspawn` | `machine-<name>.scope`, name unescaped (`\x2d` is `-`) |
//! | `libvirt-lxc` | `machine-lxc\x2d<id>\x2d<name>.scope` |
//! | `lxc` | `lxc.payload.<name>`, `lxc/<name>` (`lxc.monitor.*` is host-side) |
//!
//! `machine-qemu-*` scopes hold a VM's qemu process, which runs on the
//! host: no container. The innermost matching component wins (a process
//! of a kind node or docker-in-docker belongs to the inner container);
//! [`Container::nested`] says an outer one exists.
//!
//! # What a user can spoof
//!
//! The attribution is from the path only. Whoever may create cgroups in a
//! subtree chooses the names in it: a user with a delegated subtree (every
//! login user under `user.slice/user-<uid>.slice/user@<uid>.service/`,
//! where rootless podman puts its containers) can name a cgroup
//! `docker-<any hex>.scope`, move a process into it, and be attributed to
//! "docker". Likewise root inside a container with its own cgroup
//! namespace can create a fake inner container (see `nested`). So
//! [`Container::delegated_uid`] is set when the match lies under
//! `user@<uid>.service`: the name was chosen by, or for, that user. A
//! consumer that needs certainty also checks the cgroup directory's owner
//! ([`crate::linux::cgroup::Cgroup::owner_uid`], not 0 when a user
//! created it).

use std::collections::HashMap;
use std::sync::Arc;

pub use crate::event::Container;

/// The container `path` (a cgroup v2 path, any bytes) belongs to, or `None`
/// when no component matches a runtime's pattern (the host).
pub fn parse(path: &[u8]) -> Option<Container> {
    // One pass, no allocation unless a component matches: this runs for
    // every exec on a cache hit of the cgroup path.
    let mut found: Option<Container> = None;
    let mut first: Option<&[u8]> = None;
    let mut prev: Option<&[u8]> = None;
    let mut delegated_uid = None;
    for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        if let Some((id, runtime)) = component(prev, first, c) {
            let nested = found.is_some();
            found = Some(Container {
                id,
                runtime,
                delegated_uid,
                nested,
            });
        }
        if let Some(uid) = user_manager_uid(c) {
            delegated_uid = Some(uid);
        }
        first = first.or(Some(c));
        prev = Some(c);
    }
    found
}

/// Containers by cgroup id: a path is parsed once per id (ids are never
/// reused, so the answer never changes), and a hit is a map lookup.
#[derive(Debug, Default)]
pub struct ContainerCache {
    by_id: HashMap<u64, Option<Arc<Container>>>,
}

/// Ids remembered; past this the cache starts again.
const MAX_CACHED: usize = 16_384;

impl ContainerCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// [`parse`] of `path`, the path of cgroup `id`, cached by id.
    pub fn of(&mut self, id: u64, path: &[u8]) -> Option<Arc<Container>> {
        if let Some(c) = self.by_id.get(&id) {
            return c.clone();
        }
        if self.by_id.len() >= MAX_CACHED {
            self.by_id.clear();
        }
        let c = parse(path).map(Arc::new);
        self.by_id.insert(id, c.clone());
        c
    }
}

/// The container one component names; `prev` is the component before it
/// and `first` the path's first.
fn component(
    prev: Option<&[u8]>,
    first: Option<&[u8]>,
    c: &[u8],
) -> Option<(String, &'static str)> {
    let name = c.strip_suffix(b".scope").unwrap_or(c);
    for (prefix, runtime) in [
        (&b"docker-"[..], "docker"),
        (b"cri-containerd-", "containerd"),
        (b"crio-", "cri-o"),
        (b"libpod-", "podman"),
    ] {
        if let Some(id) = name.strip_prefix(prefix) {
            // The conmon monitors ("crio-conmon-", "libpod-conmon-") are
            // not hex, so they fail here.
            return hex_id(id).map(|id| (id, runtime));
        }
    }
    if let Some(machine) = c
        .strip_prefix(b"machine-")
        .and_then(|m| m.strip_suffix(b".scope"))
    {
        let name = systemd_unescape(machine);
        if name.starts_with(b"qemu-") {
            return None;
        }
        if let Some(rest) = name.strip_prefix(b"lxc-") {
            return Some((printable(rest), "libvirt-lxc"));
        }
        return (!name.is_empty()).then(|| (printable(&name), "systemd-nspawn"));
    }
    if let Some(name) = c.strip_prefix(b"lxc.payload.") {
        return (!name.is_empty()).then(|| (printable(name), "lxc"));
    }
    match prev {
        Some(b"lxc") => return Some((printable(c), "lxc")),
        Some(b"docker") => return hex_id(c).map(|id| (id, "docker")),
        _ => {}
    }
    // kubelet's cgroupfs driver: kubepods[/<qos>]/pod<uid>/<container id>.
    let in_pod = prev.is_some_and(|p| p.starts_with(b"pod")) && first == Some(&b"kubepods"[..]);
    if in_pod {
        return hex_id(c).map(|id| (id, "cri"));
    }
    None
}

/// `s` as an id if it is exactly 64 lowercase hex digits.
fn hex_id(s: &[u8]) -> Option<String> {
    (s.len() == 64 && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| String::from_utf8_lossy(s).into_owned())
}

/// The uid of a `user@<uid>.service` component.
fn user_manager_uid(c: &[u8]) -> Option<u32> {
    let n = c.strip_prefix(b"user@")?.strip_suffix(b".service")?;
    if n.is_empty() || !n.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// Undoes systemd's unit name escapes (`\x2d` is `-`); a broken escape is
/// kept as it is.
fn systemd_unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = s
            .get(i + 2..i + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match (s[i], s.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(h)) => {
                // Two ASCII hex digits: valid UTF-8 and a valid u8.
                let h = std::str::from_utf8(h).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(0));
                i += 4;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `b` as text when it is UTF-8 without control characters or `\`;
/// otherwise every byte outside printable ASCII (and `\`) as `\xHH`, so
/// distinct names stay distinct.
fn printable(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(|c| c.is_control() || c == '\\') => s.to_owned(),
        _ => b
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() && c != b'\\' || c == b' ' {
                    (c as char).to_string()
                } else {
                    format!("\\x{c:02x}")
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c2a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615243a";

    fn hit(path: &str) -> (String, &'static str) {
        let c = parse(path.as_bytes()).unwrap_or_else(|| panic!("no container in {path}"));
        (c.id, c.runtime)
    }

    fn id(runtime: &'static str) -> (String, &'static str) {
        (ID.to_owned(), runtime)
    }

    #[test]
    fn docker_both_drivers() {
        assert_eq!(
            hit(&format!("/system.slice/docker-{ID}.scope")),
            id("docker")
        );
        assert_eq!(hit(&format!("/docker/{ID}")), id("docker"));
        // A process in a sub-cgroup the container made (cgroupns, systemd).
        assert_eq!(hit(&format!("/docker/{ID}/init.scope")), id("docker"));
        // The docker daemon itself is on the host.
        assert_eq!(parse(b"/system.slice/docker.service"), None);
        assert_eq!(parse(b"/docker"), None);
    }

    #[test]
    fn containerd_and_kubepods() {
        let pod = "kubepods-besteffort-pod0d1e2f3a_4b5c_6d7e_8f90_a1b2c3d4e5f6.slice";
        let p =
            format!("/kubepods.slice/kubepods-besteffort.slice/{pod}/cri-containerd-{ID}.scope");
        assert_eq!(hit(&p), id("containerd"));
        let burst = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(hit(&burst), id("containerd"));
        // kubelet with the cgroupfs driver: the runtime is not in the name.
        assert_eq!(
            hit(&format!(
                "/kubepods/besteffort/pod0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6/{ID}"
            )),
            id("cri")
        );
        assert_eq!(hit(&format!("/kubepods/podabc/{ID}")), id("cri"));
        // The pod's sandbox slice itself is not a container.
        assert_eq!(parse(format!("/kubepods.slice/{pod}").as_bytes()), None);
        assert_eq!(parse(format!("/other/podabc/{ID}").as_bytes()), None);
    }

    #[test]
    fn crio_and_its_monitor() {
        let base = "/kubepods.slice/kubepods-pod1.slice";
        assert_eq!(hit(&format!("{base}/crio-{ID}.scope")), id("cri-o"));
        assert_eq!(hit(&format!("/kubepods/pod1/crio-{ID}")), id("cri-o"));
        assert_eq!(
            parse(format!("{base}/crio-conmon-{ID}.scope").as_bytes()),
            None
        );
    }

    #[test]
    fn podman_rootful_rootless_and_monitor() {
        let c = parse(format!("/machine.slice/libpod-{ID}.scope/container").as_bytes()).unwrap();
        assert_eq!((c.id.as_str(), c.runtime), (ID, "podman"));
        assert_eq!(c.delegated_uid, None);
        assert_eq!(hit(&format!("/libpod_parent/libpod-{ID}")), id("podman"));
        let rootless =
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope");
        let c = parse(rootless.as_bytes()).unwrap();
        assert_eq!((c.id.as_str(), c.runtime), (ID, "podman"));
        assert_eq!(c.delegated_uid, Some(1000));
        assert_eq!(
            parse(format!("/machine.slice/libpod-conmon-{ID}.scope").as_bytes()),
            None
        );
    }

    #[test]
    fn nspawn_and_machined() {
        assert_eq!(
            hit(r"/machine.slice/machine-deb\x2dbuild\x2d1.scope"),
            ("deb-build-1".to_owned(), "systemd-nspawn")
        );
        assert_eq!(
            hit(r"/machine.slice/machine-web.scope/payload/system.slice/cron.service"),
            ("web".to_owned(), "systemd-nspawn")
        );
        assert_eq!(
            hit(r"/machine.slice/machine-lxc\x2d4242\x2dbox.scope"),
            ("4242-box".to_owned(), "libvirt-lxc")
        );
        assert_eq!(
            parse(br"/machine.slice/machine-qemu\x2d1\x2dvm.scope"),
            None
        );
        assert_eq!(parse(b"/machine.slice/machine-.scope"), None);
        assert_eq!(parse(b"/machine.slice"), None);
        // Escapes that make control bytes or invalid UTF-8 come out escaped.
        assert_eq!(
            hit(r"/machine.slice/machine-a\x0ab\xff.scope"),
            (r"a\x0ab\xff".to_owned(), "systemd-nspawn")
        );
        // A broken escape is kept as written.
        assert_eq!(
            hit(r"/machine.slice/machine-a\x2.scope"),
            (r"a\x5cx2".to_owned(), "systemd-nspawn")
        );
    }

    #[test]
    fn lxc_payload_and_legacy() {
        assert_eq!(hit("/lxc.payload.web01"), ("web01".to_owned(), "lxc"));
        assert_eq!(
            hit("/lxc.payload.web01/init.scope"),
            ("web01".to_owned(), "lxc")
        );
        assert_eq!(hit("/lxc/web01"), ("web01".to_owned(), "lxc"));
        assert_eq!(parse(b"/lxc.monitor.web01"), None);
        assert_eq!(parse(b"/lxc.payload."), None);
        assert_eq!(parse(b"/lxc"), None);
    }

    #[test]
    fn host_paths_and_v1_shapes() {
        for p in [
            "/",
            "",
            "/init.scope",
            "/system.slice/cron.service",
            "/user.slice/user-1000.slice/session-3.scope",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service",
            // cgroup v1 /proc/<pid>/cgroup line text, not a v2 path.
            "4:memory:/process_api/3b666981286538b7cbe1872d7fe0b771",
        ] {
            assert_eq!(parse(p.as_bytes()), None, "{p}");
        }
        // A v1 line with a docker path still names the container.
        assert_eq!(hit(&format!("12:pids:/docker/{ID}")), id("docker"));
    }

    #[test]
    fn ids_must_be_exactly_64_lowercase_hex() {
        let upper = ID.to_uppercase();
        let short = &ID[..63];
        let long = format!("{ID}0");
        for bad in [upper.as_str(), short, long.as_str(), "", "zz"] {
            assert_eq!(
                parse(format!("/docker-{bad}.scope").as_bytes()),
                None,
                "{bad}"
            );
            assert_eq!(parse(format!("/docker/{bad}").as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn delegated_and_nested_names_are_flagged() {
        // A login user's own cgroup named like docker's: attributed, but
        // flagged as chosen by uid 1000.
        let spoof =
            format!("/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope");
        let c = parse(spoof.as_bytes()).unwrap();
        assert_eq!(
            (c.runtime, c.delegated_uid, c.nested),
            ("docker", Some(1000), false)
        );
        // Not a user manager: no delegation claimed.
        let c = parse(format!("/user@x.service/docker-{ID}.scope").as_bytes()).unwrap();
        assert_eq!(c.delegated_uid, None);
        // A container inside another: the inner one, marked nested.
        let outer = "a".repeat(64);
        let c =
            parse(format!("/system.slice/docker-{outer}.scope/docker/{ID}").as_bytes()).unwrap();
        assert_eq!((c.id.as_str(), c.runtime, c.nested), (ID, "docker", true));
    }

    #[test]
    fn cache_parses_once_per_id() {
        let mut cache = ContainerCache::new();
        let p = format!("/docker/{ID}");
        let c = cache.of(7, p.as_bytes()).unwrap();
        assert_eq!((c.id.as_str(), c.runtime), (ID, "docker"));
        // Same id: the cached answer, whatever path is passed.
        assert!(Arc::ptr_eq(&c, &cache.of(7, b"/").unwrap()));
        assert_eq!(cache.of(8, b"/"), None);
        assert_eq!(cache.of(8, p.as_bytes()), None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"/\\x2d.-scopedockerlxc@0123456789abcdef\xff\x00\n";
        for len in 0..200 {
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = parse(&p);
        }
        assert_eq!(parse(b"/\xff\xfe/docker-\xff.scope"), None);
        assert_eq!(
            hit("/machine.slice/machine-\u{e9}t\u{e9}.scope"),
            ("\u{e9}t\u{e9}".to_owned(), "systemd-nspawn")
        );
        assert_eq!(parse(b"/machine-\\x"), None);
        assert_eq!(hit("/lxc/\u{7f}x"), (r"\x7fx".to_owned(), "lxc"));
    }
}
