//! Deciding whether an exec raised privileges through the executed file.
//!
//! "Raised" here means: the exec changed the process's identity or
//! capabilities *because of the file* (its set-user-ID / set-group-ID bit or
//! its file capabilities), as opposed to the caller already holding them.
//! Only post-exec state is available (the kernel hook runs after the new
//! credentials are committed), so the decision compares the real ids — which
//! exec never changes — with the effective ids and the file's owner.
//!
//! Sources report only those raw facts; [`decide`] makes the decision for
//! every source alike, in the enricher.

use crate::event::{CapSets, Credentials, ExecEvent, FileInfo, PrivilegeRaise, Privileges};

/// Sets the event's `privilege_raised` from the facts its source reported
/// (credentials, capability sets, the executed file's mode and owner,
/// `secureexec`, the user namespace), whatever it held before. Events without Linux privileges
/// are left alone.
///
/// A source whose facts cannot rule a raise out (credentials read from
/// /proc after the exec) marks `privilege_raised` incomplete; when the
/// facts do show a raise, the field is known and that mark is dropped.
pub fn decide(ev: &mut ExecEvent) {
    let other_userns = ev.in_other_userns();
    let Some(Privileges::Linux {
        creds,
        caps,
        secureexec,
        file,
        raised,
    }) = &mut ev.privileges
    else {
        return;
    };
    *raised = privilege_raise(creds, caps, file.as_ref(), *secureexec);
    // File capabilities granted in another user namespace are that
    // namespace's: no power on the host, so no raise.
    if other_userns && *raised == Some(PrivilegeRaise::FileCaps) {
        *raised = None;
    }
    if raised.is_some() {
        ev.incomplete.retain(|i| i.field != "privilege_raised");
    }
}

/// Set-user-ID mode bit.
const S_ISUID: u32 = 0o4000;
/// Set-group-ID mode bit.
const S_ISGID: u32 = 0o2000;
/// Group-execute mode bit; S_ISGID without it means mandatory locking.
const S_IXGRP: u32 = 0o010;

/// Which mechanism of the executed file raised privileges at this exec, if
/// any; checked in the order setuid, setgid, file capabilities.
///
/// - `Setuid`: the file has S_ISUID, the new effective uid is the file's
///   owner, and it differs from the real uid. A transition *away* from root
///   (root running a setuid-`nobody` binary) is reported too: the identity
///   still changed through the file. When the kernel ignored the bit (nosuid
///   mount, no_new_privs, being traced) the euid stays equal to the uid, so
///   nothing is reported.
/// - `Setgid`: the file has S_ISGID *and* group-execute (S_ISGID alone marks
///   mandatory locking, not setgid), the new effective gid is the file's
///   group, and it differs from the real gid.
/// - `FileCaps`: the permitted set holds capabilities beyond the ambient set.
///   Without file capabilities a non-root exec gets exactly the ambient set,
///   so the surplus must come from the file. Root (by real or effective uid)
///   is excluded because root's full set comes from being root. When the
///   kernel's `secureexec` decision is known to be false the raise is
///   rejected, since a file-caps raise always sets it; when unknown the
///   capability test alone decides.
///
/// Limitation: because only post-exec credentials are known, a process that
/// already ran with euid X ≠ uid and then execs a setuid-X binary is reported
/// as `Setuid` although its identity did not change at this exec.
pub fn privilege_raise(
    creds: &Credentials,
    caps: &CapSets,
    file: Option<&FileInfo>,
    secureexec: Option<bool>,
) -> Option<PrivilegeRaise> {
    if let Some(f) = file {
        if f.mode & S_ISUID != 0 && creds.euid == f.uid && creds.euid != creds.uid {
            return Some(PrivilegeRaise::Setuid);
        }
        if f.mode & S_ISGID != 0
            && f.mode & S_IXGRP != 0
            && creds.egid == f.gid
            && creds.egid != creds.gid
        {
            return Some(PrivilegeRaise::Setgid);
        }
    }
    let surplus_caps = caps.permitted & !caps.ambient != 0;
    let root_by_uid = creds.uid == 0 || creds.euid == 0;
    if surplus_caps && !root_by_uid && secureexec != Some(false) {
        return Some(PrivilegeRaise::FileCaps);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP_NET_RAW: u64 = 1 << 13;
    const CAP_NET_BIND: u64 = 1 << 10;
    const FULL: u64 = (1 << 41) - 1;

    fn creds(uid: u32, euid: u32, gid: u32, egid: u32) -> Credentials {
        Credentials {
            uid,
            euid,
            suid: euid,
            fsuid: euid,
            gid,
            egid,
            sgid: egid,
            fsgid: egid,
            login_uid: Some(uid),
            session_id: Some(1),
        }
    }

    fn file(mode: u32, uid: u32, gid: u32) -> FileInfo {
        FileInfo { mode, uid, gid }
    }

    fn full_caps() -> CapSets {
        CapSets {
            effective: FULL,
            permitted: FULL,
            inheritable: 0,
            ambient: 0,
        }
    }

    fn no_caps() -> CapSets {
        CapSets::default()
    }

    #[test]
    fn setuid_root_by_user() {
        // passwd/sudo: uid 1000 runs a setuid-root binary.
        let c = creds(1000, 0, 1000, 1000);
        let f = file(0o104755, 0, 0);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            Some(PrivilegeRaise::Setuid)
        );
        // secureexec unknown does not matter for setuid.
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), None),
            Some(PrivilegeRaise::Setuid)
        );
    }

    #[test]
    fn root_running_setuid_root_is_not_a_raise() {
        let c = creds(0, 0, 0, 0);
        let f = file(0o104755, 0, 0);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(false)),
            None
        );
        assert_eq!(privilege_raise(&c, &full_caps(), Some(&f), None), None);
    }

    #[test]
    fn root_to_nobody_setuid_is_reported() {
        // Identity changed through the file, even though it is a drop.
        let c = creds(0, 65534, 0, 0);
        let f = file(0o104755, 65534, 65534);
        assert_eq!(
            privilege_raise(&c, &no_caps(), Some(&f), Some(true)),
            Some(PrivilegeRaise::Setuid)
        );
    }

    #[test]
    fn setuid_to_other_user() {
        let c = creds(1000, 1001, 1000, 1000);
        let f = file(0o104755, 1001, 1001);
        assert_eq!(
            privilege_raise(&c, &no_caps(), Some(&f), Some(true)),
            Some(PrivilegeRaise::Setuid)
        );
    }

    #[test]
    fn setuid_bit_ignored_by_kernel_is_not_reported() {
        // nosuid mount / no_new_privs: euid stays the caller's.
        let c = creds(1000, 1000, 1000, 1000);
        let f = file(0o104755, 0, 0);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), Some(false)), None);
    }

    #[test]
    fn setuid_own_binary_is_not_reported() {
        let c = creds(1000, 1000, 1000, 1000);
        let f = file(0o104755, 1000, 1000);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), None), None);
    }

    #[test]
    fn euid_differs_but_no_suid_bit() {
        // Caller already had euid 0 (e.g. from an earlier setuid); the exec
        // of a plain binary did not raise anything by itself.
        let c = creds(1000, 0, 1000, 1000);
        let f = file(0o100755, 0, 0);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            None
        );
    }

    #[test]
    fn euid_differs_from_file_owner() {
        let c = creds(1000, 0, 1000, 1000);
        let f = file(0o104755, 1001, 0);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            None
        );
    }

    #[test]
    fn setgid_binary() {
        // e.g. /usr/bin/wall setgid tty.
        let c = creds(1000, 1000, 1000, 5);
        let f = file(0o102755, 0, 5);
        assert_eq!(
            privilege_raise(&c, &no_caps(), Some(&f), Some(true)),
            Some(PrivilegeRaise::Setgid)
        );
    }

    #[test]
    fn setgid_without_group_exec_is_mandatory_locking() {
        let c = creds(1000, 1000, 1000, 5);
        let f = file(0o102745, 0, 5);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), Some(true)), None);
    }

    #[test]
    fn setgid_not_applied_or_own_group() {
        let f = file(0o102755, 0, 5);
        // Kernel ignored the bit.
        let c = creds(1000, 1000, 1000, 1000);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), None), None);
        // Caller's own group.
        let c = creds(1000, 1000, 5, 5);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), None), None);
        // egid differs but not to the file's group.
        let c = creds(1000, 1000, 1000, 6);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), None), None);
    }

    #[test]
    fn setuid_wins_over_setgid() {
        let c = creds(1000, 0, 1000, 5);
        let f = file(0o106755, 0, 5);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            Some(PrivilegeRaise::Setuid)
        );
    }

    #[test]
    fn setgid_wins_over_file_caps() {
        let c = creds(1000, 1000, 1000, 5);
        let f = file(0o102755, 0, 5);
        let caps = CapSets {
            permitted: CAP_NET_RAW,
            effective: CAP_NET_RAW,
            ..CapSets::default()
        };
        assert_eq!(
            privilege_raise(&c, &caps, Some(&f), Some(true)),
            Some(PrivilegeRaise::Setgid)
        );
    }

    #[test]
    fn file_caps_ping() {
        // ping with cap_net_raw=ep, run by an ordinary user.
        let c = creds(1000, 1000, 1000, 1000);
        let f = file(0o100755, 0, 0);
        let caps = CapSets {
            effective: CAP_NET_RAW,
            permitted: CAP_NET_RAW,
            inheritable: 0,
            ambient: 0,
        };
        assert_eq!(
            privilege_raise(&c, &caps, Some(&f), Some(true)),
            Some(PrivilegeRaise::FileCaps)
        );
        // Unknown secureexec: the cap test alone decides.
        assert_eq!(
            privilege_raise(&c, &caps, Some(&f), None),
            Some(PrivilegeRaise::FileCaps)
        );
        // File info is not needed for the cap test.
        assert_eq!(
            privilege_raise(&c, &caps, None, None),
            Some(PrivilegeRaise::FileCaps)
        );
    }

    #[test]
    fn file_caps_rejected_when_secureexec_false() {
        let c = creds(1000, 1000, 1000, 1000);
        let caps = CapSets {
            permitted: CAP_NET_RAW,
            ..CapSets::default()
        };
        assert_eq!(privilege_raise(&c, &caps, None, Some(false)), None);
    }

    #[test]
    fn ambient_caps_are_not_a_raise() {
        // Capabilities inherited through the ambient set came from the
        // caller, not the file.
        let c = creds(1000, 1000, 1000, 1000);
        let caps = CapSets {
            effective: CAP_NET_BIND,
            permitted: CAP_NET_BIND,
            inheritable: CAP_NET_BIND,
            ambient: CAP_NET_BIND,
        };
        assert_eq!(privilege_raise(&c, &caps, None, Some(true)), None);
        assert_eq!(privilege_raise(&c, &caps, None, None), None);
        // ...but a surplus beyond ambient is.
        let caps = CapSets {
            permitted: CAP_NET_BIND | CAP_NET_RAW,
            ..caps
        };
        assert_eq!(
            privilege_raise(&c, &caps, None, None),
            Some(PrivilegeRaise::FileCaps)
        );
    }

    #[test]
    fn root_caps_are_not_file_caps() {
        let f = file(0o100755, 0, 0);
        // Real root.
        let c = creds(0, 0, 0, 0);
        assert_eq!(privilege_raise(&c, &full_caps(), Some(&f), None), None);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            None
        );
        // Effective root only (non-setuid binary run with euid 0).
        let c = creds(1000, 0, 1000, 1000);
        assert_eq!(
            privilege_raise(&c, &full_caps(), Some(&f), Some(true)),
            None
        );
        // Real root, effective other (e.g. after setresuid keeping uid 0).
        let c = creds(0, 1000, 0, 0);
        let caps = CapSets {
            permitted: CAP_NET_RAW,
            ..CapSets::default()
        };
        assert_eq!(privilege_raise(&c, &caps, Some(&f), Some(true)), None);
    }

    #[test]
    fn plain_exec_is_nothing() {
        let c = creds(1000, 1000, 1000, 1000);
        let f = file(0o100755, 0, 0);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), Some(false)), None);
        assert_eq!(privilege_raise(&c, &no_caps(), Some(&f), None), None);
        assert_eq!(privilege_raise(&c, &no_caps(), None, None), None);
    }

    fn event(privileges: Option<Privileges>) -> ExecEvent {
        let mut ev = ExecEvent::new(
            std::time::SystemTime::UNIX_EPOCH,
            42,
            Some(1),
            "42:1".into(),
        );
        ev.privileges = privileges;
        ev
    }

    fn raised_of(ev: &ExecEvent) -> Option<PrivilegeRaise> {
        match &ev.privileges {
            Some(Privileges::Linux { raised, .. }) => *raised,
            other => panic!("not Linux privileges: {other:?}"),
        }
    }

    #[test]
    fn decide_sets_the_field_from_the_events_facts() {
        let linux = |c: Credentials, f: Option<FileInfo>, secureexec, raised| Privileges::Linux {
            creds: c,
            caps: no_caps(),
            secureexec,
            file: f,
            raised,
        };
        // The facts of a setuid-root exec, reported without a decision.
        let mut ev = event(Some(linux(
            creds(1000, 0, 1000, 1000),
            Some(file(0o104755, 0, 0)),
            Some(true),
            None,
        )));
        decide(&mut ev);
        assert_eq!(raised_of(&ev), Some(PrivilegeRaise::Setuid));
        // A decision the facts do not support is replaced, not kept.
        let mut ev = event(Some(linux(
            creds(1000, 1000, 1000, 1000),
            Some(file(0o100755, 0, 0)),
            None,
            Some(PrivilegeRaise::FileCaps),
        )));
        decide(&mut ev);
        assert_eq!(raised_of(&ev), None);
        // No privileges: nothing to decide.
        let mut ev = event(None);
        decide(&mut ev);
        assert_eq!(ev.privileges, None);
    }

    #[test]
    fn capabilities_in_another_user_namespace_are_no_file_caps_raise() {
        // `unshare -Ur` by nobody, seen without secureexec (the classic
        // tracepoint): a full permitted set that no file granted.
        let mut ev = event(Some(Privileges::Linux {
            creds: creds(65534, 65534, 65534, 65534),
            caps: full_caps(),
            secureexec: None,
            file: Some(file(0o100755, 0, 0)),
            raised: None,
        }));
        decide(&mut ev);
        assert_eq!(raised_of(&ev), Some(PrivilegeRaise::FileCaps));
        ev.ns.user_ns = Some(crate::event::UserNs {
            level: 1,
            owner_uid: 65534,
        });
        decide(&mut ev);
        assert_eq!(raised_of(&ev), None);
    }

    #[test]
    fn decide_drops_the_incomplete_mark_only_for_a_raise_it_finds() {
        const LATE: &str = "credentials were read after the exec, not at it";
        let proc_event = |c: Credentials, f: FileInfo| {
            let mut ev = event(Some(Privileges::Linux {
                creds: c,
                caps: no_caps(),
                secureexec: None,
                file: Some(f),
                raised: None,
            }));
            ev.mark_incomplete("cwd", "process exited before it was read");
            ev.mark_incomplete("privilege_raised", LATE);
            ev.mark_incomplete("secureexec", "not visible in /proc");
            ev
        };
        // A raise shown by the facts: known, so no longer incomplete.
        let mut ev = proc_event(creds(1000, 0, 1000, 1000), file(0o104755, 0, 0));
        decide(&mut ev);
        assert_eq!(raised_of(&ev), Some(PrivilegeRaise::Setuid));
        let left: Vec<_> = ev.incomplete.iter().map(|i| i.field).collect();
        assert_eq!(left, ["cwd", "secureexec"]);
        // No raise seen: it may have been dropped already, so it stays unknown.
        let mut ev = proc_event(creds(1000, 1000, 1000, 1000), file(0o100755, 0, 0));
        decide(&mut ev);
        assert_eq!(raised_of(&ev), None);
        let left: Vec<_> = ev
            .incomplete
            .iter()
            .map(|i| (i.field, i.reason.as_str()))
            .collect();
        assert_eq!(
            left,
            [
                ("cwd", "process exited before it was read"),
                ("privilege_raised", LATE),
                ("secureexec", "not visible in /proc"),
            ]
        );
    }

    #[test]
    fn missing_file_info_disables_id_checks() {
        let c = creds(1000, 0, 1000, 5);
        assert_eq!(privilege_raise(&c, &full_caps(), None, Some(true)), None);
    }
}
