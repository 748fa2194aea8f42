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

    /// This field in a [`FieldSet`].
    pub fn bit(self) -> FieldSet {
        1 << self.slot()
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
/// is longer than any before. A value is lower-cased only when the
/// prefilter scans it for literals that may occur anywhere, or a rule that
/// is evaluated reads it ([`Record::lower`]).
#[derive(Debug, Default)]
pub struct Record {
    orig: [String; ALL.len()],
    low: [String; ALL.len()],
    present: [bool; ALL.len()],
    /// `low` holds the value lower-cased (always, for a value that is not
    /// ASCII: the prefilter scans that form).
    lowered: [bool; ALL.len()],
}

/// A set of fields, a bit per slot.
pub type FieldSet = u16;

impl Record {
    /// The field's value as given; `None` when the event has none.
    pub fn orig(&self, f: Field) -> Option<&str> {
        let i = f.slot();
        self.present[i].then(|| self.orig[i].as_str())
    }

    /// The field's value lower-cased (by [`lower_into`]); the field must
    /// be in the set given to [`Record::lower`].
    pub fn low(&self, f: Field) -> Option<&str> {
        let i = f.slot();
        debug_assert!(!self.present[i] || self.lowered[i], "{f:?} not lowered");
        self.present[i].then(|| self.low[i].as_str())
    }

    /// The values (as given, lower-cased) of the fields that are present;
    /// all must have been lowered.
    pub fn present(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..ALL.len())
            .filter(|&i| self.present[i])
            .map(|i| (self.orig[i].as_str(), self.low[i].as_str()))
    }

    /// The present values, each by slot, in the form the prefilter
    /// searches: lower-cased when lowered already (always a value that is
    /// not ASCII), else as given (ASCII, whose case the prefilter folds).
    pub fn scan_texts(&self) -> impl Iterator<Item = (usize, &[u8])> {
        (0..ALL.len()).filter(|&i| self.present[i]).map(|i| {
            let text = if self.lowered[i] {
                &self.low[i]
            } else {
                &self.orig[i]
            };
            (i, text.as_bytes())
        })
    }

    /// Lower-cases the present values of the fields in `set` not lowered
    /// yet.
    pub fn lower(&mut self, set: FieldSet) {
        for i in 0..ALL.len() {
            if set & (1 << i) != 0 && self.present[i] && !self.lowered[i] {
                lower_into(&mut self.low[i], &self.orig[i]);
                self.lowered[i] = true;
            }
        }
    }

    /// Fills the fields marked in `used` from `ev`, the way `p` maps them.
    pub fn fill(&mut self, ev: &ExecEvent, p: Platform, used: FieldSet) {
        self.present = [false; ALL.len()];
        self.lowered = [false; ALL.len()];
        for f in ALL {
            if !f.available(p) || used & f.bit() == 0 {
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
            if present && !self.orig[i].is_ascii() {
                lower_into(&mut self.low[i], &self.orig[i]);
                self.lowered[i] = true;
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
    // Most values are valid UTF-8: validated in one pass, copied at once.
    if let Ok(s) = std::str::from_utf8(bytes) {
        buf.push_str(s);
        return true;
    }
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
