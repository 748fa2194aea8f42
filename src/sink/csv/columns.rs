//! The extra CSV columns (`--csv-columns`), after the standard seven.

use crate::event::ExecEvent;

use super::cell::{csv_cell, csv_cmdline};
use crate::sink::describe::{Style, hijack_reason, privilege_change_summary};
use crate::sink::escape::{display_bytes, shell_quote};

/// A column that can be added after the standard seven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CsvColumn {
    /// `Parent Executable`: the parent's exe path.
    ParentExe,
    /// `Parent CommandLine`: the parent's argv, shell-quoted.
    ParentCmdline,
    /// `Privilege Change`: e.g. `setuid 1000->0 +CAP_NET_RAW`.
    PrivilegeChange,
    /// `Hijackable`: findings joined by `; `, each
    /// `path (role): what writable by writers`.
    Hijackable,
    /// `SHA256`: hex sha256 of the executable.
    Sha256,
    /// `Exec ID`: the exec's unique id, to join with JSONL and exits.
    ExecId,
    /// `Argv Truncated`: `true` when argv was longer than the capture
    /// limit (CommandLine then ends with the truncation marker).
    ArgvTruncated,
    /// `Argv Size`: argv's full size in bytes, NULs included; empty when
    /// unknown.
    ArgvSize,
    /// `Container`: `runtime:id` (`docker:<64 hex>`, `systemd-nspawn:web`),
    /// with ` (named by uid N)` when a user's delegated cgroup subtree
    /// holds it; empty on the host or when the cgroup is unknown.
    Container,
    /// `NS PID`: the pid inside the process's own pid namespace.
    NsPid,
    /// `Cgroup`: the cgroup v2 path.
    Cgroup,
    /// `User Namespace`: `host`, or `level N owner UID` for a user
    /// namespace below the host's (its capabilities are not host ones).
    Userns,
    /// `Detections`: the Sigma rules matched (see `detect::render`).
    Detections,
}

impl CsvColumn {
    /// Every column, in the documented order (what `all` adds).
    pub const ALL: [CsvColumn; 13] = [
        CsvColumn::ParentExe,
        CsvColumn::ParentCmdline,
        CsvColumn::PrivilegeChange,
        CsvColumn::Hijackable,
        CsvColumn::Sha256,
        CsvColumn::ExecId,
        CsvColumn::ArgvTruncated,
        CsvColumn::ArgvSize,
        CsvColumn::Container,
        CsvColumn::NsPid,
        CsvColumn::Cgroup,
        CsvColumn::Userns,
        CsvColumn::Detections,
    ];

    /// The header cell, in the style of the standard header (words,
    /// capitalised).
    pub fn header(self) -> &'static str {
        match self {
            CsvColumn::ParentExe => "Parent Executable",
            CsvColumn::ParentCmdline => "Parent CommandLine",
            CsvColumn::PrivilegeChange => "Privilege Change",
            CsvColumn::Hijackable => "Hijackable",
            CsvColumn::Sha256 => "SHA256",
            CsvColumn::ExecId => "Exec ID",
            CsvColumn::ArgvTruncated => "Argv Truncated",
            CsvColumn::ArgvSize => "Argv Size",
            CsvColumn::Container => "Container",
            CsvColumn::NsPid => "NS PID",
            CsvColumn::Cgroup => "Cgroup",
            CsvColumn::Userns => "User Namespace",
            CsvColumn::Detections => "Detections",
        }
    }

    /// This column's cell for `ev`, before RFC 4180 quoting; empty when
    /// the value is unknown or absent.
    pub(crate) fn cell(self, ev: &ExecEvent) -> String {
        let parent = ev.parent.as_ref();
        let cell = match self {
            CsvColumn::ParentExe => parent
                .and_then(|p| p.exe.as_deref())
                .map(display_bytes)
                .unwrap_or_default(),
            // Shell words, guarded by their own quoting (see csv_cmdline).
            CsvColumn::ParentCmdline => {
                return parent
                    .and_then(|p| p.argv.as_deref())
                    .map(csv_cmdline)
                    .unwrap_or_default();
            }
            CsvColumn::PrivilegeChange => ev
                .privilege_change
                .as_ref()
                .map(|pc| privilege_change_summary(pc, Style::Csv))
                .unwrap_or_default(),
            CsvColumn::Hijackable => ev
                .hijackable
                .iter()
                .map(|h| {
                    format!(
                        "{} ({}): {}",
                        shell_quote(&h.path),
                        h.role.as_str(),
                        hijack_reason(h)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            // Produced by procwatch, but an id from another source is
            // still escaped: nothing in a cell is trusted blindly.
            CsvColumn::Sha256 => ev
                .exe_sha256
                .as_deref()
                .map(|h| display_bytes(h.as_bytes()))
                .unwrap_or_default(),
            CsvColumn::ExecId => display_bytes(ev.exec_id.as_bytes()),
            CsvColumn::ArgvTruncated => ev.argv_truncated.to_string(),
            CsvColumn::ArgvSize => ev.argv_size.map(|n| n.to_string()).unwrap_or_default(),
            CsvColumn::Container => ev
                .ns
                .container
                .as_deref()
                .map(|c| {
                    let by = c
                        .delegated_uid
                        .map(|u| format!(" (named by uid {u})"))
                        .unwrap_or_default();
                    display_bytes(format!("{}:{}{by}", c.runtime, c.id).as_bytes())
                })
                .unwrap_or_default(),
            CsvColumn::NsPid => ev.ns.ns_pid.map(|n| n.to_string()).unwrap_or_default(),
            CsvColumn::Cgroup => ev
                .ns
                .cgroup_path
                .as_deref()
                .map(display_bytes)
                .unwrap_or_default(),
            CsvColumn::Userns => match ev.ns.user_ns {
                Some(u) if u.is_host() => "host".to_owned(),
                Some(u) => format!("level {} owner {}", u.level, u.owner_uid),
                None => String::new(),
            },
            CsvColumn::Detections => crate::detect::render::csv_cell(&ev.detections),
        };
        csv_cell(&cell)
    }
}
