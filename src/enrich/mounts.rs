//! Which files live on FUSE, whose server (any user who could mount one)
//! decides when, or whether, a read returns.
//!
//! A thread blocked in a FUSE request that its server never answers cannot
//! be killed: the request is already with the server, and the kernel waits
//! for the reply uninterruptibly. procwatch would write its stop event and
//! exit, yet stay a zombie until the server lets go. So the hasher and the
//! hijackable check do not touch FUSE files at all: the mount table
//! (`/proc/self/mountinfo`) tells, by device number for the executed file
//! and by mount point for other paths, without any request to the server.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A table older than this is read again before a path is judged (a FUSE
/// mount made since then would be missed for at most this long).
const MAX_AGE: Duration = Duration::from_millis(100);

/// FUSE mounts as `/proc/self/mountinfo` lists them.
#[derive(Debug, Default)]
pub struct FuseMounts {
    /// Devices of FUSE mounts.
    fuse_devs: HashSet<u64>,
    /// Every device in the table, FUSE or not.
    known_devs: HashSet<u64>,
    /// Mount points of FUSE mounts.
    points: Vec<Vec<u8>>,
    read_at: Option<Instant>,
}

impl FuseMounts {
    /// Whether device `dev` is a FUSE mount. An unknown device makes the
    /// table be read again (once per [`MAX_AGE`]); one that is still unknown
    /// (a mount in another namespace) is not FUSE as far as procwatch can
    /// tell.
    pub fn dev_is_fuse(&mut self, dev: u64) -> bool {
        if !self.known_devs.contains(&dev) && self.stale() {
            self.refresh();
        }
        self.fuse_devs.contains(&dev)
    }

    /// The FUSE mount point `path` (absolute) is on or under, if any.
    pub fn fuse_point_of(&mut self, path: &[u8]) -> Option<Vec<u8>> {
        if self.stale() {
            self.refresh();
        }
        self.points
            .iter()
            .find(|p| {
                path.starts_with(p)
                    && (p.as_slice() == b"/"
                        || path.len() == p.len()
                        || path.get(p.len()) == Some(&b'/'))
            })
            .cloned()
    }

    fn stale(&self) -> bool {
        self.read_at.is_none_or(|t| t.elapsed() >= MAX_AGE)
    }

    fn refresh(&mut self) {
        self.read_at = Some(Instant::now());
        let Ok(table) = std::fs::read("/proc/self/mountinfo") else {
            return;
        };
        self.fuse_devs.clear();
        self.known_devs.clear();
        self.points.clear();
        for line in table.split(|&b| b == b'\n') {
            if let Some((dev, point, fstype)) = parse_line(line) {
                self.known_devs.insert(dev);
                if fstype == b"fuse" || fstype == b"fuseblk" || fstype.starts_with(b"fuse.") {
                    self.fuse_devs.insert(dev);
                    self.points.push(point);
                }
            }
        }
    }
}

/// `(device, mount point, fs type)` of one mountinfo line:
/// `36 35 98:0 /root /mnt/point rw master:1 - ext4 /dev/root rw`.
fn parse_line(line: &[u8]) -> Option<(u64, Vec<u8>, &[u8])> {
    let mut fields = line.split(|&b| b == b' ');
    let majmin = fields.nth(2)?;
    let point = unescape(fields.nth(1)?);
    let fstype = fields.skip_while(|f| *f != b"-").nth(1)?;
    let s = std::str::from_utf8(majmin).ok()?;
    let (major, minor) = s.split_once(':')?;
    let dev = libc::makedev(major.parse().ok()?, minor.parse().ok()?);
    Some((dev, point, fstype))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((s[i + 1] - b'0') * 64 + (s[i + 2] - b'0') * 8 + (s[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let (dev, point, fstype) =
            parse_line(b"50 30 0:45 / /tmp/a\\040b rw,nosuid - fuse.sshfs host: rw").unwrap();
        assert_eq!(dev, libc::makedev(0, 45));
        assert_eq!(point, b"/tmp/a b");
        assert_eq!(fstype, b"fuse.sshfs");
        assert_eq!(parse_line(b""), None);
    }

    #[test]
    fn fuse_points_match_whole_components() {
        let mut m = FuseMounts {
            points: vec![b"/mnt/f".to_vec()],
            read_at: Some(Instant::now() + Duration::from_secs(3600)),
            ..FuseMounts::default()
        };
        assert_eq!(m.fuse_point_of(b"/mnt/f/x"), Some(b"/mnt/f".to_vec()));
        assert_eq!(m.fuse_point_of(b"/mnt/f"), Some(b"/mnt/f".to_vec()));
        assert_eq!(m.fuse_point_of(b"/mnt/fx"), None);
        assert_eq!(m.fuse_point_of(b"/usr/bin/true"), None);
    }

    #[test]
    fn the_root_filesystem_is_known_and_not_fuse() {
        use std::os::unix::fs::MetadataExt;
        let mut m = FuseMounts::default();
        let dev = std::fs::metadata("/proc/self/mountinfo").unwrap().dev();
        assert!(!m.dev_is_fuse(dev));
        assert!(m.known_devs.contains(&dev));
    }
}
