//! The privilege-change decision: does an exec have more privilege than
//! what ran it, and why (a file bit, or a launcher).

use crate::event::{
    Bytes, ChangeCause, ExecEvent, PrivilegeChange, PrivilegeRaise, Privileges, ProcessImage,
};

/// More privilege than before: euid 0 from non-zero, or new effective
/// capabilities in the host's user namespace. The exec's own file bits are judged against the
/// credentials just before the exec (`pre_exec`); otherwise the new program
/// is compared with the program that called execve (`caller`), and a gain
/// without a file bit is the launcher's doing (sudo, su, setpriv, cron...).
/// `None` when there is no gain or nothing to compare with.
pub(super) fn privilege_change(
    ev: &ExecEvent,
    caller: Option<&ProcessImage>,
) -> Option<PrivilegeChange> {
    let Some(Privileges::Linux {
        creds,
        caps,
        raised,
        ..
    }) = &ev.privileges
    else {
        return None;
    };
    // Capabilities in another user namespace are no gain on the host.
    let to_caps = if ev.in_other_userns() {
        0
    } else {
        caps.effective
    };
    let to_euid = creds.euid;
    let gain = |from_euid: u32, from_caps: u64| {
        (to_euid == 0 && from_euid != 0) || to_caps & !from_caps != 0
    };
    let file_cause = raised.map(|r| match r {
        PrivilegeRaise::Setuid => ChangeCause::Setuid,
        PrivilegeRaise::Setgid => ChangeCause::Setgid,
        PrivilegeRaise::FileCaps => ChangeCause::FileCaps,
    });
    let change = |cause: ChangeCause, from_euid: u32, from_caps: u64, launcher: Option<Bytes>| {
        PrivilegeChange {
            cause,
            from_euid,
            from_caps,
            to_euid,
            gained_caps: to_caps & !from_caps,
            launcher,
        }
    };
    if let (Some(cause), Some(pre)) = (file_cause, ev.pre_exec)
        && gain(pre.euid, pre.caps_effective)
    {
        return Some(change(cause, pre.euid, pre.caps_effective, None));
    }
    let img = caller?;
    let (from_euid, from_caps) = (img.euid?, img.caps_effective?);
    if !gain(from_euid, from_caps) {
        return None;
    }
    Some(match file_cause {
        // No pre-exec credentials: the file bit still explains the gain.
        Some(cause) if ev.pre_exec.is_none() => change(cause, from_euid, from_caps, None),
        _ => change(ChangeCause::Launcher, from_euid, from_caps, img.exe.clone()),
    })
}
