//! Which exec fields a JSONL line carries: the compact default, changed by
//! `--fields +a,-b,...`.
//!
//! Every field keeps its one JSON type whether or not it is written; only
//! its presence changes. `event`, `time`, `host`, `pid`, `exec_id` and
//! `raw` are on every line and cannot be dropped (they identify the line
//! and make it lossless).

use std::fmt;

/// When a field is written by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// On every line.
    Always,
    /// Only with `--fields +name`.
    Never,
    /// Only when it differs from what it usually equals: `tid` and
    /// `exec_tid` from `pid`; `filename` from `exe`; `suid`, `fsuid` from
    /// `euid` and `sgid`, `fsgid` from `egid`; `pre_exec` from the
    /// credentials after the exec; the namespace fields from procwatch's
    /// own namespaces.
    WhenDiffers,
    /// Only when it has a value, or is unknown (then null and named in
    /// `incomplete`): absent means none (no interpreter, no finding, no
    /// audit login, not truncated, not Windows).
    WhenSet,
    /// `parent.argv`: only when the parent's own exec line is not in this
    /// file (it was seeded from /proc, filtered out, or in an earlier file).
    ParentNotInLog,
}

/// An exec field that `--fields` can add or drop, in line order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Field {
    Tid,
    ExecTid,
    Ppid,
    ProcessStart,
    Exe,
    ExeTruncated,
    Filename,
    Interpreter,
    Argv,
    CommandLine,
    Cmdline,
    ArgvTruncated,
    ArgvSize,
    Cwd,
    Comm,
    User,
    Group,
    LoginUser,
    Incomplete,
    Parent,
    ParentArgv,
    ParentUser,
    ParentEuid,
    Ancestors,
    ExeSha256,
    ExeInode,
    PreExec,
    PrivilegeChange,
    Hijackable,
    Namespaces,
    NsPid,
    PidnsLevel,
    InHostUserns,
    UsernsOwnerUid,
    UsernsLevel,
    Cgroup,
    Container,
    ExeMntId,
    ExeOtherMntNs,
    Uid,
    Euid,
    Suid,
    Fsuid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
    LoginUid,
    SessionId,
    Caps,
    CapsRaw,
    Secureexec,
    File,
    PrivilegeRaised,
    Token,
    Detections,
}

/// Every selectable field: its name in `--fields` and its default.
/// `incomplete` covers `incomplete_reasons` too.
pub const FIELDS: [(Field, &str, Shown); 56] = {
    use Field::*;
    use Shown::*;
    [
        (Tid, "tid", WhenDiffers),
        (ExecTid, "exec_tid", WhenDiffers),
        (Ppid, "ppid", Always),
        (ProcessStart, "process_start", Always),
        (Exe, "exe", Always),
        (ExeTruncated, "exe_truncated", WhenSet),
        (Filename, "filename", WhenDiffers),
        (Interpreter, "interpreter", WhenSet),
        (Argv, "argv", Always),
        (CommandLine, "command_line", WhenSet),
        (Cmdline, "cmdline", Never),
        (ArgvTruncated, "argv_truncated", WhenSet),
        (ArgvSize, "argv_size", Always),
        (Cwd, "cwd", Always),
        (Comm, "comm", Always),
        (User, "user", Always),
        (Group, "group", Always),
        (LoginUser, "login_user", WhenSet),
        (Incomplete, "incomplete", Always),
        (Parent, "parent", Always),
        (ParentArgv, "parent.argv", ParentNotInLog),
        (ParentUser, "parent.user", Never),
        (ParentEuid, "parent.euid", Never),
        (Ancestors, "ancestors", Always),
        (ExeSha256, "exe_sha256", Always),
        (ExeInode, "exe_inode", Never),
        (PreExec, "pre_exec", WhenDiffers),
        (PrivilegeChange, "privilege_change", WhenSet),
        (Hijackable, "hijackable", WhenSet),
        (Namespaces, "namespaces", WhenDiffers),
        (NsPid, "ns_pid", WhenDiffers),
        (PidnsLevel, "pidns_level", WhenDiffers),
        (InHostUserns, "in_host_userns", WhenDiffers),
        (UsernsOwnerUid, "userns_owner_uid", WhenDiffers),
        (UsernsLevel, "userns_level", WhenDiffers),
        (Cgroup, "cgroup", Always),
        (Container, "container", WhenSet),
        (ExeMntId, "exe_mnt_id", Always),
        (ExeOtherMntNs, "exe_other_mnt_ns", WhenDiffers),
        (Uid, "uid", Always),
        (Euid, "euid", Always),
        (Suid, "suid", WhenDiffers),
        (Fsuid, "fsuid", WhenDiffers),
        (Gid, "gid", Always),
        (Egid, "egid", Always),
        (Sgid, "sgid", WhenDiffers),
        (Fsgid, "fsgid", WhenDiffers),
        (LoginUid, "login_uid", WhenSet),
        (SessionId, "session_id", WhenSet),
        (Caps, "caps", Always),
        (CapsRaw, "caps_raw", Always),
        (Secureexec, "secureexec", Always),
        (File, "file", Always),
        (PrivilegeRaised, "privilege_raised", WhenSet),
        (Token, "token", WhenSet),
        (Detections, "detections", Always),
    ]
};

/// One `--fields` item: `+name` (or a bare `name`) writes the field on
/// every line, `-name` on none; `all` stands for every field (`+all`: the
/// full record, for forensics; `-all,+argv`: only what is named and the
/// fields that are never dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldChange {
    /// `None`: every field.
    pub field: Option<Field>,
    pub on: bool,
}

/// Parses one `--fields` item; an unknown name is an error that lists the
/// valid ones.
pub fn parse_field_change(s: &str) -> Result<FieldChange, String> {
    let (on, name) = match s.as_bytes().first() {
        Some(b'+') => (true, &s[1..]),
        Some(b'-') => (false, &s[1..]),
        _ => (true, s),
    };
    if name == "all" {
        return Ok(FieldChange { field: None, on });
    }
    FIELDS
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|&(field, _, _)| FieldChange {
            field: Some(field),
            on,
        })
        .ok_or_else(|| {
            let names: Vec<&str> = FIELDS.iter().map(|(_, n, _)| *n).collect();
            format!(
                "unknown field {name:?}; the fields are: all, {}",
                names.join(", ")
            )
        })
}

/// The fields' presence after the `--fields` changes: each is on, off, or
/// follows its [`Shown`] default.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Bit n: field n forced on; bit n of `off`: forced off.
    on: u64,
    off: u64,
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fields")
            .field("on", &format_args!("{:#x}", self.on))
            .field("off", &format_args!("{:#x}", self.off))
            .finish()
    }
}

impl Fields {
    /// The default with `changes` applied in order (a later item wins).
    pub fn new(changes: &[FieldChange]) -> Self {
        let mut f = Fields::default();
        for c in changes {
            let bit = match c.field {
                Some(field) => 1u64 << (field as u8),
                None => (1u64 << FIELDS.len()) - 1,
            };
            if c.on {
                f.on |= bit;
                f.off &= !bit;
            } else {
                f.off |= bit;
                f.on &= !bit;
            }
        }
        f
    }

    fn default_of(field: Field) -> Shown {
        FIELDS[field as usize].2
    }

    /// Whether `field` is written, given what its default depends on:
    /// `cond` is "differs" for [`Shown::WhenDiffers`], "has a value" for
    /// [`Shown::WhenSet`], "not in the log" for
    /// [`Shown::ParentNotInLog`]; ignored otherwise.
    #[inline]
    pub fn show(&self, field: Field, cond: bool) -> bool {
        let bit = 1u64 << (field as u8);
        if self.on & bit != 0 {
            return true;
        }
        if self.off & bit != 0 {
            return false;
        }
        match Self::default_of(field) {
            Shown::Always => true,
            Shown::Never => false,
            Shown::WhenDiffers | Shown::WhenSet | Shown::ParentNotInLog => cond,
        }
    }

    /// Whether `field` is written on every line, whatever its value.
    #[inline]
    pub fn always(&self, field: Field) -> bool {
        self.show(field, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_enum_order() {
        for (i, (f, name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(*f as usize, i, "{name}");
        }
    }

    #[test]
    fn changes_apply_in_order_and_unknown_names_list_the_valid_ones() {
        let f = Fields::new(&[
            parse_field_change("+cmdline").unwrap(),
            parse_field_change("-argv").unwrap(),
            parse_field_change("exe_inode").unwrap(),
            parse_field_change("-suid").unwrap(),
            parse_field_change("+suid").unwrap(),
        ]);
        assert!(f.always(Field::Cmdline));
        assert!(!f.show(Field::Argv, true));
        assert!(f.always(Field::ExeInode));
        assert!(f.always(Field::Suid));
        assert!(!f.show(Field::Fsuid, false) && f.show(Field::Fsuid, true));
        let err = parse_field_change("+nope").unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(
            err.contains("all, ") && err.contains("cmdline, ") && err.contains("parent.argv"),
            "{err}"
        );
    }

    #[test]
    fn all_turns_every_field_on_or_off_and_later_items_still_win() {
        let every = Fields::new(&[parse_field_change("+all").unwrap()]);
        for (field, name, _) in FIELDS {
            assert!(every.always(field), "{name}");
        }
        let only = Fields::new(&[
            parse_field_change("-all").unwrap(),
            parse_field_change("+argv").unwrap(),
        ]);
        assert!(only.always(Field::Argv));
        for (field, name, _) in FIELDS {
            if field != Field::Argv {
                assert!(!only.show(field, true), "{name}");
            }
        }
    }
}
