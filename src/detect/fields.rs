//! The Sigma `process_creation` fields and where each comes from in an
//! exec event, on Linux and on Windows; and the per-exec record of their
//! values, built into reused buffers.

use crate::event::{Bytes, ExecEvent, IntegrityLevel, Privileges};

/// The platform whose rules (`logsource.product`) and fields apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Linux,
    Windows,
}

impl Platform {
    /// The platform procwatch was built for.
    pub fn host() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Linux
        }
    }

    /// The `logsource.product` of its rules.
    pub fn product(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Windows => "windows",
        }
    }
}

/// A field a rule can name. Each has a slot in the [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Image,
    CommandLine,
    ParentImage,
    ParentCommandLine,
    User,
    ParentUser,
    LogonId,
    CurrentDirectory,
    OriginalFileName,
    ProcessId,
    ParentProcessId,
    IntegrityLevel,
}

/// Every field, in slot order.
pub const ALL: [Field; 12] = [
    Field::Image,
    Field::CommandLine,
    Field::ParentImage,
    Field::ParentCommandLine,
    Field::User,
    Field::ParentUser,
    Field::LogonId,
    Field::CurrentDirectory,
    Field::OriginalFileName,
    Field::ProcessId,
    Field::ParentProcessId,
    Field::IntegrityLevel,
];

/// Sysmon fields procwatch has no source for on either platform, and why:
/// the reason a rule naming one is skipped.
const UNAVAILABLE: &[(&str, &str)] = &[
    (
        "Hashes",
        "the exe hash is computed after the exec is written",
    ),
    ("Description", "PE version resources are not read"),
    ("Product", "PE version resources are not read"),
    ("Company", "PE version resources are not read"),
    ("FileVersion", "PE version resources are not read"),
];

impl Field {
    /// The field a rule names, if procwatch knows it.
    pub fn by_name(name: &str) -> Option<Field> {
        ALL.iter().copied().find(|f| f.name() == name)
    }

    /// The Sigma (Sysmon) name.
    pub fn name(self) -> &'static str {
        match self {
            Field::Image => "Image",
            Field::CommandLine => "CommandLine",
            Field::ParentImage => "ParentImage",
            Field::ParentCommandLine => "ParentCommandLine",
            Field::User => "User",
            Field::ParentUser => "ParentUser",
            Field::LogonId => "LogonId",
            Field::CurrentDirectory => "CurrentDirectory",
            Field::OriginalFileName => "OriginalFileName",
            Field::ProcessId => "ProcessId",
            Field::ParentProcessId => "ParentProcessId",
            Field::IntegrityLevel => "IntegrityLevel",
        }
    }

    pub fn slot(self) -> usize {
        self as usize
    }

    /// Whether the events of `p` fill this field.
    pub fn available(self, p: Platform) -> bool {
        match self {
            Field::IntegrityLevel => p == Platform::Windows,
            // The Windows token carries no logon session id.
            Field::LogonId => p == Platform::Linux,
            _ => true,
        }
    }
}

/// Why a rule naming `name` cannot be evaluated on `p`, or `None` when it
/// can.
pub fn unavailable(name: &str, p: Platform) -> Option<String> {
    match Field::by_name(name) {
        Some(f) if f.available(p) => None,
        Some(_) => Some(format!("field {name} is not available on {}", p.product())),
        None => Some(match UNAVAILABLE.iter().find(|(n, _)| *n == name) {
            Some((_, why)) => format!("field {name} is not available: {why}"),
            None => format!("field {name} is not a process_creation field procwatch fills"),
        }),
    }
}

/// The values of one exec's fields: as given (for `cased` and `re`) and
/// lower-cased (for the default case-insensitive matching). The buffers
/// are kept from exec to exec, so filling them allocates only when a value
/// is longer than any before.
#[derive(Debug, Default)]
pub struct Record {
    orig: [String; ALL.len()],
    low: [String; ALL.len()],
    present: [bool; ALL.len()],
    /// Every present lower-cased value, NUL-separated: what the prefilter
    /// scans in one pass (a literal found across two values only makes a
    /// rule evaluated, never skipped).
    all_low: String,
    /// Where each value in `all_low` ends, and its field slot.
    ends: Vec<(usize, u8)>,
}

impl Record {
    /// The field's value as given; `None` when the event has none.
    pub fn orig(&self, f: Field) -> Option<&str> {
        let i = f.slot();
        self.present[i].then(|| self.orig[i].as_str())
    }

    /// The field's value lower-cased (by [`lower_into`]).
    pub fn low(&self, f: Field) -> Option<&str> {
        let i = f.slot();
        self.present[i].then(|| self.low[i].as_str())
    }

    /// The values (as given, lower-cased) of the fields that are present.
    pub fn present(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..ALL.len())
            .filter(|&i| self.present[i])
            .map(|i| (self.orig[i].as_str(), self.low[i].as_str()))
    }

    /// The lower-cased values of the fields that are present.
    pub fn present_low(&self) -> impl Iterator<Item = &str> {
        (0..ALL.len())
            .filter(|&i| self.present[i])
            .map(|i| self.low[i].as_str())
    }

    /// The present lower-cased values, NUL-separated, and where each ends
    /// with its field slot.
    pub fn all_low(&self) -> (&str, &[(usize, u8)]) {
        (&self.all_low, &self.ends)
    }

    /// Fills the fields marked in `used` from `ev`, the way `p` maps them.
    pub fn fill(&mut self, ev: &ExecEvent, p: Platform, used: &[bool; ALL.len()]) {
        self.present = [false; ALL.len()];
        self.all_low.clear();
        self.ends.clear();
        for f in ALL {
            if !f.available(p) || !used[f.slot()] {
                continue;
            }
            let i = f.slot();
            let buf = &mut self.orig[i];
            buf.clear();
            let present = match f {
                Field::Image => put_opt(buf, ev.exe.as_deref()),
                Field::CommandLine => match (&ev.argv, &ev.command_line) {
                    (_, Some(line)) if p == Platform::Windows => put(buf, line),
                    (Some(argv), _) => join_argv(buf, argv),
                    (None, Some(line)) => put(buf, line),
                    (None, None) => false,
                },
                Field::ParentImage => {
                    put_opt(buf, ev.parent.as_ref().and_then(|p| p.exe.as_deref()))
                }
                Field::ParentCommandLine => {
                    match ev.parent.as_ref().and_then(|p| p.argv.as_ref()) {
                        Some(argv) => join_argv(buf, argv),
                        None => false,
                    }
                }
                Field::User => put_str(buf, ev.user.as_deref()),
                Field::ParentUser => {
                    put_str(buf, ev.parent.as_ref().and_then(|p| p.user.as_deref()))
                }
                Field::LogonId => match ev.linux_creds().and_then(|c| c.login_uid) {
                    Some(id) => put_num(buf, id),
                    None => false,
                },
                Field::CurrentDirectory => put_opt(buf, ev.cwd.as_deref()),
                Field::OriginalFileName => match ev.exe.as_deref() {
                    Some(exe) => put(buf, basename(exe)),
                    None => false,
                },
                Field::ProcessId => put_num(buf, ev.pid),
                Field::ParentProcessId => match ev.ppid {
                    Some(pid) => put_num(buf, pid),
                    None => false,
                },
                Field::IntegrityLevel => match &ev.privileges {
                    Some(Privileges::Windows(t)) => put_str(buf, t.integrity.map(integrity_name)),
                    _ => false,
                },
            };
            self.present[i] = present;
            if present {
                lower_into(&mut self.low[i], &self.orig[i]);
                self.all_low.push_str(&self.low[i]);
                self.ends.push((self.all_low.len(), i as u8));
                self.all_low.push('\0');
            }
        }
    }
}

/// Sysmon's spelling of an integrity level.
fn integrity_name(l: IntegrityLevel) -> &'static str {
    match l {
        IntegrityLevel::Untrusted => "Untrusted",
        IntegrityLevel::Low => "Low",
        IntegrityLevel::Medium => "Medium",
        IntegrityLevel::MediumPlus => "MediumPlus",
        IntegrityLevel::High => "High",
        IntegrityLevel::System => "System",
        IntegrityLevel::Protected => "Protected",
        IntegrityLevel::Other(_) => "Unknown",
    }
}

fn basename(path: &[u8]) -> &[u8] {
    let cut = path.iter().rposition(|&b| b == b'/' || b == b'\\');
    cut.map_or(path, |i| &path[i + 1..])
}

/// Appends `bytes` as text: bytes that are not UTF-8 become U+FFFD, so a
/// rule can never match across them.
fn put(buf: &mut String, bytes: &[u8]) -> bool {
    for chunk in bytes.utf8_chunks() {
        buf.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            buf.push(char::REPLACEMENT_CHARACTER);
        }
    }
    true
}

fn put_opt(buf: &mut String, bytes: Option<&[u8]>) -> bool {
    bytes.is_some_and(|b| put(buf, b))
}

fn put_str(buf: &mut String, s: Option<&str>) -> bool {
    s.inspect(|s| buf.push_str(s)).is_some()
}

fn put_num(buf: &mut String, n: u32) -> bool {
    buf.push_str(itoa::Buffer::new().format(n));
    true
}

/// `CommandLine` on Linux: argv joined with single spaces, unquoted, as
/// Sysmon for Linux and auditd pipelines give it (the rules are written
/// against that form).
fn join_argv(buf: &mut String, argv: &[Bytes]) -> bool {
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            buf.push(' ');
        }
        put(buf, a);
    }
    true
}

/// Lower-cases `s` into `out` character by character (never the
/// context-dependent final sigma of `str::to_lowercase`), so the lowered
/// form of a substring is always a substring of the lowered text: the
/// property the prefilter and `contains` rely on.
pub fn lower_into(out: &mut String, s: &str) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        out.extend(s.chars().flat_map(char::to_lowercase));
    }
}

/// [`lower_into`] into a new string (rule compilation).
pub fn lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    lower_into(&mut out, s);
    out
}
