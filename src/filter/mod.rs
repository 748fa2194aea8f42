//! Which exec events are shown.
//!
//! The filters come from plain values ([`FilterSpec`], filled from the
//! command line) and combine with AND; several
//! values of one kind (`--uid 0 --uid 1000`, `--exe A --exe B`) combine with
//! OR. `--uid` and `--user` are two spellings of the same filter, so their
//! values form one set. Events a filter hides are still counted (the
//! pipeline counts them as `filtered` in the stop event), so statistics
//! never depend on what was displayed.
//!
//! When a field a filter needs is unknown, the filter errs on the side of
//! the reader: an unknown value never matches a positive filter (`--uid`,
//! `--exe`, `--privileged`), and is never hidden by a negative one
//! (`--exclude-exe`), because a monitor must not hide what it cannot
//! identify.
//!
//! `--exe` and `--exclude-exe` match a path only when it names the executed
//! file in procwatch's view: the exec ran in procwatch's mount namespace,
//! and the file at that path has the device and inode the kernel executed
//! (when the source reported them). A path from another mount namespace is
//! that namespace's view, where its owner can bind-mount any payload over
//! `/usr/bin/true`; such an exec never matches `--exe` and is never hidden
//! by `--exclude-exe`.

mod glob;
#[cfg(target_os = "linux")]
mod host_file;
mod place;

pub use glob::Glob;
pub use place::{ContainerSel, MIN_ID_PREFIX, OwnNs};

use crate::event::{ExecEvent, Privileges};

/// What to show, as plain values: one field per filter flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// `--uid`.
    pub uids: Vec<u32>,
    /// `--user`: names, resolved when the filter is built.
    pub users: Vec<String>,
    /// `--exe`: globs.
    pub exe: Vec<String>,
    /// `--exclude-exe`: globs.
    pub exclude_exe: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// `--raised`.
    pub raised: bool,
    /// `--hijackable`.
    pub hijackable: bool,
    /// `--container`: `any`, `none`, an id prefix or a name.
    pub containers: Vec<String>,
    /// `--host-only`.
    pub host_only: bool,
    /// `--alerts-only`.
    pub alerts_only: bool,
}

/// The event filter built from a [`FilterSpec`].
///
/// An empty filter (no filter flag given) matches every event.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `--uid` and `--user`: matches when the effective OR the real uid is
    /// one of these. Both are checked so that `--user alice` also shows
    /// what alice runs through sudo or a setuid binary (real uid alice,
    /// effective uid root).
    uids: Vec<u32>,
    /// `--exe`: at least one must match the exe.
    exe: Vec<Glob>,
    /// `--exclude-exe`: none may match the exe.
    exclude_exe: Vec<Glob>,
    /// `--privileged`: euid 0 or any effective capability.
    privileged: bool,
    /// `--raised`: more privilege than the parent, or raised by this exec.
    raised: bool,
    /// `--hijackable`: at least one hijackable finding.
    hijackable: bool,
    /// `--container`: at least one must match.
    containers: Vec<ContainerSel>,
    /// `--host-only`: procwatch's namespaces, read when the filter is built.
    host_only: Option<OwnNs>,
    /// The file identities behind the exe rule (shared by clones).
    #[cfg(target_os = "linux")]
    host_files: std::sync::Arc<host_file::HostFiles>,
    /// `--alerts-only`: at least one Sigma rule matched.
    alerts_only: bool,
}

impl Filter {
    /// Builds the filter, resolving `--user` names through NSS (so
    /// LDAP/sssd users work). Fails with a message for the user when a name
    /// is unknown or a glob is malformed.
    pub fn new(spec: &FilterSpec) -> Result<Filter, String> {
        Self::with_lookup(spec, lookup_uid)
    }

    /// As [`Filter::new`], with the name lookup supplied (for tests).
    /// `lookup` returns `Ok(Some(uid))`, `Ok(None)` for "no such user", or
    /// `Err` when the lookup itself failed.
    pub fn with_lookup(
        spec: &FilterSpec,
        lookup: impl Fn(&str) -> Result<Option<u32>, String>,
    ) -> Result<Filter, String> {
        let mut uids = spec.uids.clone();
        for name in &spec.users {
            uids.push(resolve_user(name, &lookup)?);
        }
        let compile = |pats: &[String], flag: &str| {
            pats.iter()
                .map(|p| Glob::new(p).map_err(|e| format!("{flag} {p:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let containers = spec
            .containers
            .iter()
            .map(|c| ContainerSel::parse(c).map_err(|e| format!("--container {c:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let host_only = if spec.host_only {
            Some(OwnNs::read().map_err(|e| format!("--host-only: {e}"))?)
        } else {
            None
        };
        Ok(Filter {
            uids,
            exe: compile(&spec.exe, "--exe")?,
            exclude_exe: compile(&spec.exclude_exe, "--exclude-exe")?,
            privileged: spec.privileged,
            raised: spec.raised,
            hijackable: spec.hijackable,
            containers,
            host_only,
            #[cfg(target_os = "linux")]
            host_files: Default::default(),
            alerts_only: spec.alerts_only,
        })
    }

    /// True when no filter is set, so every event matches; lets the
    /// pipeline skip the call.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
            && self.exe.is_empty()
            && self.exclude_exe.is_empty()
            && !self.privileged
            && !self.raised
            && !self.hijackable
            && self.containers.is_empty()
            && self.host_only.is_none()
    }

    /// Whether `ev.exe` may be matched against the globs at all (the rule
    /// in the module docs). Looked at only once a glob matched. A truncated
    /// path names no file to look up; only `--exe` lets its tail match.
    fn exe_trusted(&self, ev: &ExecEvent) -> bool {
        #[cfg(target_os = "linux")]
        if !ev.exe_truncated && !self.host_files.is_exec_file(ev) {
            return false;
        }
        place::exe_in_our_view(ev)
    }

    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &ExecEvent) -> bool {
        if !self.uids.is_empty() {
            let Some(c) = ev.linux_creds() else {
                return false;
            };
            if !self.uids.iter().any(|&u| u == c.euid || u == c.uid) {
                return false;
            }
        }
        if self.privileged && !is_privileged(ev) {
            return false;
        }
        if self.raised && !is_raised(ev) {
            return false;
        }
        if self.hijackable && ev.hijackable.is_empty() {
            return false;
        }
        if self.alerts_only && ev.detections.is_empty() {
            return false;
        }
        if !self.exe.is_empty() {
            let Some(exe) = ev.exe.as_deref() else {
                return false;
            };
            if !self.exe.iter().any(|g| g.matches_path(exe)) || !self.exe_trusted(ev) {
                return false;
            }
        }
        // A truncated exe lost its leading components; whoever chose the
        // path controls what the tail looks like, so a tail that happens to
        // match an exclusion is not proof enough to hide the event.
        if let Some(exe) = ev.exe.as_deref()
            && !ev.exe_truncated
            && self.exclude_exe.iter().any(|g| g.matches_path(exe))
            && self.exe_trusted(ev)
        {
            return false;
        }
        if !self.containers.is_empty() && !self.containers.iter().any(|c| c.matches(ev)) {
            return false;
        }
        if self.host_only.is_some_and(|own| !own.matches(ev)) {
            return false;
        }
        true
    }
}

/// euid 0, or any effective capability in the host's user namespace (a
/// capability-holding non-root daemon is as interesting as root; a
/// sandbox's capabilities in its own user namespace are not).
fn is_privileged(ev: &ExecEvent) -> bool {
    ev.host_privileged()
}

/// More privilege than the parent, or a setuid/setgid/file-caps exec (the
/// latter also covers execs whose parent procwatch never saw).
fn is_raised(ev: &ExecEvent) -> bool {
    ev.privilege_change.is_some()
        || matches!(
            ev.privileges,
            Some(Privileges::Linux {
                raised: Some(_),
                ..
            })
        )
}

/// `--user` value → uid: a user name first (as chown(1) does), then a
/// decimal uid, so a numeric name still resolves to its own uid.
fn resolve_user(
    name: &str,
    lookup: &impl Fn(&str) -> Result<Option<u32>, String>,
) -> Result<u32, String> {
    match lookup(name) {
        Ok(Some(uid)) => Ok(uid),
        Ok(None) => name
            .parse::<u32>()
            .map_err(|_| format!("--user {name:?}: no such user")),
        Err(e) => name
            .parse::<u32>()
            .map_err(|_| format!("--user {name:?}: cannot look up user: {e}")),
    }
}

/// Upper bound of the getpwnam_r buffer; real entries are far smaller.
#[cfg(unix)]
const MAX_PW_BUF: usize = 1 << 20;

/// No NSS on Windows, and its events carry no uid: `--user` takes numbers
/// only there.
#[cfg(not(unix))]
fn lookup_uid(_name: &str) -> Result<Option<u32>, String> {
    Ok(None)
}

/// The uid of user `name` via getpwnam_r (honours every NSS source).
#[cfg(unix)]
fn lookup_uid(name: &str) -> Result<Option<u32>, String> {
    let Ok(cname) = std::ffi::CString::new(name) else {
        return Ok(None);
    };
    let mut size = 4096;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: all-zero is a valid `passwd` (integers and null pointers).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and
        // `buf.len()` is the true buffer length.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => return Ok(Some(pwd.pw_uid)),
            // Some NSS modules report "not found" as an errno (getpwnam(3)).
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            libc::ERANGE if size < MAX_PW_BUF => size *= 2,
            libc::EINTR => {}
            e => return Err(std::io::Error::from_raw_os_error(e).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PrivilegeRaise, Privileges};
    use crate::sink::testutil::{hijack_dir, setuid_change};

    /// The shared test exec, run in procwatch's mount namespace.
    fn exec_event() -> ExecEvent {
        let mut ev = crate::sink::testutil::exec_event();
        ev.ns.exe_other_mnt_ns = Some(false);
        ev
    }

    /// The spec the filter flags in `args` ask for (spelled as on the
    /// command line, for readability).
    fn spec(args: &[&str]) -> FilterSpec {
        let mut s = FilterSpec::default();
        let mut it = args.iter();
        while let Some(&flag) = it.next() {
            let mut value = || (*it.next().expect("a value")).to_owned();
            match flag {
                "--uid" => s.uids.push(value().parse().unwrap()),
                "--user" => s.users.push(value()),
                "--exe" => s.exe.push(value()),
                "--exclude-exe" => s.exclude_exe.push(value()),
                "--privileged" => s.privileged = true,
                "--raised" => s.raised = true,
                "--hijackable" => s.hijackable = true,
                "--container" => s.containers.push(value()),
                "--host-only" => s.host_only = true,
                _ => panic!("not a filter flag: {flag}"),
            }
        }
        s
    }

    /// Knows alice (1000) and root (0); fails for "broken".
    fn fake_lookup(name: &str) -> Result<Option<u32>, String> {
        match name {
            "root" => Ok(Some(0)),
            "alice" => Ok(Some(1000)),
            "2000" => Ok(Some(3000)),
            "broken" => Err("directory down".into()),
            _ => Ok(None),
        }
    }

    fn filter(args: &[&str]) -> Filter {
        Filter::with_lookup(&spec(args), fake_lookup).unwrap()
    }

    fn set_ids(ev: &mut ExecEvent, uid: u32, euid: u32) {
        let Some(Privileges::Linux { creds, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        creds.uid = uid;
        creds.euid = euid;
    }

    fn set_caps(ev: &mut ExecEvent, effective: u64) {
        let Some(Privileges::Linux { caps, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        caps.effective = effective;
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = filter(&[]);
        assert!(f.is_empty());
        assert!(f.matches(&exec_event()));
        let mut ev = exec_event();
        ev.privileges = None;
        ev.exe = None;
        assert!(f.matches(&ev));
        assert!(Filter::default().is_empty());
    }

    #[test]
    fn each_flag_makes_it_non_empty() {
        for args in [
            &["--uid", "0"][..],
            &["--user", "root"],
            &["--exe", "x"],
            &["--exclude-exe", "x"],
            &["--privileged"],
            &["--raised"],
            &["--hijackable"],
            &["--container", "any"],
        ] {
            assert!(!filter(args).is_empty(), "{args:?}");
        }
        // procwatch's own namespaces are read where there are any.
        if cfg!(target_os = "linux") {
            assert!(!filter(&["--host-only"]).is_empty());
        } else {
            let e = Filter::with_lookup(&spec(&["--host-only"]), fake_lookup).unwrap_err();
            assert!(e.starts_with("--host-only: cannot read"), "{e}");
        }
    }

    #[test]
    fn uid_matches_effective_or_real() {
        let mut ev = exec_event(); // uid 1000, euid 1001
        assert!(filter(&["--uid", "1000"]).matches(&ev));
        assert!(filter(&["--uid", "1001"]).matches(&ev));
        assert!(!filter(&["--uid", "0"]).matches(&ev));
        assert!(filter(&["--uid", "0", "--uid", "1001"]).matches(&ev));
        set_ids(&mut ev, 1000, 0); // sudo from alice
        assert!(filter(&["--uid", "0"]).matches(&ev));
        assert!(filter(&["--user", "alice"]).matches(&ev));
        assert!(filter(&["--user", "root"]).matches(&ev));
        // Unknown credentials never match.
        ev.privileges = None;
        assert!(!filter(&["--uid", "0"]).matches(&ev));
    }

    #[test]
    fn uid_and_user_form_one_set() {
        let mut ev = exec_event();
        set_ids(&mut ev, 0, 0);
        assert!(filter(&["--user", "alice", "--uid", "0"]).matches(&ev));
        set_ids(&mut ev, 1000, 1000);
        assert!(filter(&["--user", "alice", "--uid", "0"]).matches(&ev));
        set_ids(&mut ev, 5, 5);
        assert!(!filter(&["--user", "alice", "--uid", "0"]).matches(&ev));
    }

    #[test]
    fn user_resolution() {
        let f = filter(&["--user", "alice", "--user", "4242", "--user", "2000"]);
        // A numeric name resolves to its own uid before the number.
        assert_eq!(f.uids, vec![1000, 4242, 3000]);
        let e = Filter::with_lookup(&spec(&["--user", "nosuchuser"]), fake_lookup).unwrap_err();
        assert!(
            e.contains("no such user") && e.contains("nosuchuser"),
            "{e}"
        );
        let e = Filter::with_lookup(&spec(&["--user", "broken"]), fake_lookup).unwrap_err();
        assert!(e.contains("directory down"), "{e}");
    }

    #[test]
    #[cfg(unix)]
    fn user_resolution_through_nss() {
        let f = Filter::new(&spec(&["--user", "root", "--user", "7"])).unwrap();
        assert_eq!(f.uids, vec![0, 7]);
        let e = Filter::new(&spec(&["--user", "procwatch-no-such-user"])).unwrap_err();
        assert!(e.contains("no such user"), "{e}");
        assert_eq!(lookup_uid("a\0b"), Ok(None));
    }

    #[test]
    fn exe_include_and_exclude() {
        let ev = exec_event(); // /usr/bin/ls
        assert!(filter(&["--exe", "/usr/bin/*"]).matches(&ev));
        assert!(filter(&["--exe", "ls"]).matches(&ev));
        assert!(!filter(&["--exe", "/tmp/*"]).matches(&ev));
        assert!(filter(&["--exe", "/tmp/*", "--exe", "l?"]).matches(&ev));
        assert!(!filter(&["--exclude-exe", "/usr/*"]).matches(&ev));
        assert!(filter(&["--exclude-exe", "/tmp/*"]).matches(&ev));
        assert!(!filter(&["--exclude-exe", "/tmp/*", "--exclude-exe", "ls"]).matches(&ev));
        // Exclusion wins over inclusion.
        assert!(!filter(&["--exe", "/usr/*", "--exclude-exe", "ls"]).matches(&ev));
    }

    #[test]
    fn unknown_or_truncated_exe() {
        let mut ev = exec_event();
        ev.exe = None;
        assert!(!filter(&["--exe", "*"]).matches(&ev));
        assert!(filter(&["--exclude-exe", "*"]).matches(&ev));
        ev.exe = Some(b"/usr/bin/ls".to_vec());
        ev.exe_truncated = true;
        assert!(filter(&["--exe", "ls"]).matches(&ev));
        assert!(filter(&["--exclude-exe", "/usr/bin/*"]).matches(&ev));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn exe_of_another_mount_namespace_is_neither_matched_nor_hidden() {
        let mut ev = exec_event();
        ev.ns.exe_other_mnt_ns = Some(true);
        assert!(!filter(&["--exe", "/usr/bin/ls"]).matches(&ev));
        assert!(filter(&["--exclude-exe", "/usr/bin/ls"]).matches(&ev));
        ev.ns.exe_other_mnt_ns = None;
        assert!(!filter(&["--exe", "ls"]).matches(&ev));
        assert!(filter(&["--exclude-exe", "ls"]).matches(&ev));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn exe_must_be_the_file_at_the_path() {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata("/proc/self/exe").unwrap();
        let me = std::fs::read_link("/proc/self/exe").unwrap();
        let mut ev = exec_event();
        ev.exe = Some(me.as_os_str().as_encoded_bytes().to_vec());
        ev.exe_dev_ino = Some((m.dev(), m.ino()));
        let f = filter(&["--exclude-exe", "/*"]);
        assert!(!f.matches(&ev), "our own binary at its own path");
        ev.exe_dev_ino = Some((m.dev(), m.ino() + 1));
        assert!(f.matches(&ev), "another file at that path is not hidden");
        assert!(!filter(&["--exe", "/*"]).matches(&ev));
    }

    #[test]
    fn bad_glob_is_an_error() {
        // The command-line parser already rejects these; a spec built in
        // code is checked again here.
        let e = Filter::with_lookup(&spec(&["--exe", "/tmp/[x"]), fake_lookup).unwrap_err();
        assert!(e.starts_with("--exe \"/tmp/[x\": unterminated"), "{e}");
        let e = Filter::with_lookup(&spec(&["--exclude-exe", "a\\"]), fake_lookup).unwrap_err();
        assert!(e.contains("--exclude-exe"), "{e}");
    }

    #[test]
    fn privileged() {
        let f = filter(&["--privileged"]);
        let mut ev = exec_event();
        assert!(!f.matches(&ev));
        set_ids(&mut ev, 1000, 0);
        assert!(f.matches(&ev));
        set_ids(&mut ev, 0, 1000);
        assert!(!f.matches(&ev), "real uid 0 alone is not privileged");
        set_caps(&mut ev, 1 << 13);
        assert!(f.matches(&ev));
        ev.privileges = None;
        assert!(!f.matches(&ev));
    }

    #[test]
    fn capabilities_in_another_user_namespace_are_not_privileged() {
        let f = filter(&["--privileged"]);
        let mut ev = exec_event();
        set_ids(&mut ev, 65534, 65534);
        set_caps(&mut ev, u64::MAX >> 23);
        let userns = |level| {
            Some(crate::event::UserNs {
                level,
                owner_uid: 65534,
            })
        };
        ev.ns.user_ns = userns(1);
        assert!(!f.matches(&ev), "a sandbox's caps are not host privilege");
        ev.ns.user_ns = userns(0);
        assert!(f.matches(&ev), "the same caps in the host's namespace are");
        // Host root is privileged in any user namespace.
        ev.ns.user_ns = userns(2);
        set_ids(&mut ev, 0, 0);
        assert!(f.matches(&ev));
    }

    #[test]
    fn raised() {
        let f = filter(&["--raised"]);
        let mut ev = exec_event();
        assert!(!f.matches(&ev));
        ev.privilege_change = Some(setuid_change());
        assert!(f.matches(&ev));
        ev.privilege_change = None;
        let Some(Privileges::Linux { raised, .. }) = &mut ev.privileges else {
            unreachable!()
        };
        *raised = Some(PrivilegeRaise::Setgid);
        assert!(f.matches(&ev));
    }

    #[test]
    fn hijackable() {
        let f = filter(&["--hijackable"]);
        let mut ev = exec_event();
        assert!(!f.matches(&ev));
        ev.hijackable.push(hijack_dir());
        assert!(f.matches(&ev));
    }

    #[test]
    fn flags_combine_with_and() {
        let f = filter(&[
            "--user",
            "root",
            "--privileged",
            "--hijackable",
            "--exe",
            "sh",
            "--exe",
            "bash",
        ]);
        let mut ev = exec_event();
        ev.exe = Some(b"/usr/bin/bash".to_vec());
        set_ids(&mut ev, 0, 0);
        assert!(!f.matches(&ev), "not hijackable yet");
        ev.hijackable.push(hijack_dir());
        assert!(f.matches(&ev));
        ev.exe = Some(b"/usr/bin/python3".to_vec());
        assert!(!f.matches(&ev), "exe fails");
        ev.exe = Some(b"/bin/sh".to_vec());
        assert!(f.matches(&ev));
        set_ids(&mut ev, 1000, 1000);
        assert!(!f.matches(&ev), "uid fails");

        let f = filter(&["--raised", "--exclude-exe", "sudo"]);
        let mut ev = exec_event();
        ev.privilege_change = Some(setuid_change());
        assert!(f.matches(&ev));
        ev.exe = Some(b"/usr/bin/sudo".to_vec());
        assert!(!f.matches(&ev));
    }
}
