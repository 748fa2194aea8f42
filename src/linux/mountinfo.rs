//! Lines of `/proc/<pid>/mountinfo`, as the mount table readers need them:
//! `36 35 98:0 /root /mnt/point rw master:1 - ext4 /dev/root rw`.

/// The fields of one mountinfo line that procwatch uses.
#[derive(Debug, PartialEq, Eq)]
pub struct MountLine<'a> {
    /// The mounted filesystem's device (`st_dev` of files on it).
    pub dev: u64,
    /// The mount point, unescaped.
    pub point: Vec<u8>,
    /// The filesystem type (`ext4`, `fuse.sshfs`, `cgroup2`, …).
    pub fstype: &'a [u8],
}

/// Parses one line; `None` for anything that is not a well-formed line.
pub fn parse_line(line: &[u8]) -> Option<MountLine<'_>> {
    let mut fields = line.split(|&b| b == b' ');
    let majmin = fields.nth(2)?;
    let point = unescape(fields.nth(1)?);
    let fstype = fields.skip_while(|f| *f != b"-").nth(1)?;
    let s = std::str::from_utf8(majmin).ok()?;
    let (major, minor) = s.split_once(':')?;
    let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
    Some(MountLine { dev, point, fstype })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on); a
/// backslash not followed by three octal digits stays as it is.
pub fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s.get(i + 1..i + 4) {
            Some(oct) if s[i] == b'\\' && oct.iter().all(|c| (b'0'..=b'7').contains(c)) => {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(s[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let m = parse_line(b"50 30 0:45 / /tmp/a\\040b rw,nosuid - fuse.sshfs host: rw").unwrap();
        assert_eq!(m.dev, libc::makedev(0, 45));
        assert_eq!(m.point, b"/tmp/a b");
        assert_eq!(m.fstype, b"fuse.sshfs");
        assert_eq!(parse_line(b""), None);
    }

    #[test]
    fn unescape_leaves_broken_escapes() {
        assert_eq!(unescape(b"a\\040b"), b"a b");
        assert_eq!(unescape(b"a\\04"), b"a\\04");
        assert_eq!(unescape(b"\\777"), [0xff]);
        assert_eq!(unescape(b"\\"), b"\\");
    }
}
