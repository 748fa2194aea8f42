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

use crate::linux::mountinfo;

/// A table older than this is read again before a path is judged, even if
/// the kernel did not say the mounts changed.
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
    /// `/proc/self/mountinfo` kept open: the kernel flags it (POLLPRI) when
    /// this mount namespace's table changes, so a mount made a moment before
    /// an exec is seen before the exec's files are judged.
    watch: Option<std::fs::File>,
    /// Devices still unknown right after a refresh (mounts in other mount
    /// namespaces): they do not make the table be read again.
    unseen: HashSet<u64>,
}

/// Most devices remembered as unseen; more start the set afresh.
const MAX_UNSEEN: usize = 4096;

impl FuseMounts {
    /// Whether device `dev` is a FUSE mount. A device not in the table makes
    /// it be read again at once, whatever its age: a FUSE filesystem mounted
    /// just before the exec must be known before its file is read. One that
    /// is still unknown then (a mount in another namespace) is remembered,
    /// so it costs one read of the table, and is not FUSE as far as
    /// procwatch can tell.
    pub fn dev_is_fuse(&mut self, dev: u64) -> bool {
        if !self.known_devs.contains(&dev) && !self.unseen.contains(&dev) {
            self.refresh();
            if !self.known_devs.contains(&dev) {
                if self.unseen.len() >= MAX_UNSEEN {
                    self.unseen.clear();
                }
                self.unseen.insert(dev);
            }
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
        self.read_at.is_none_or(|t| t.elapsed() >= MAX_AGE) || self.changed()
    }

    /// Whether the kernel reports a change of the mount table since the
    /// last read of it (one poll(2), no wait). Without a watch: yes.
    fn changed(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Some(f) = &self.watch else {
            return true;
        };
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & (libc::POLLPRI | libc::POLLERR) != 0
    }

    fn refresh(&mut self) {
        // Take any pending change flag before reading: a change after this
        // point is flagged again and read next time.
        if self.watch.is_none() {
            self.watch = std::fs::File::open("/proc/self/mountinfo").ok();
        }
        self.changed();
        self.read_at = Some(Instant::now());
        let Ok(table) = std::fs::read("/proc/self/mountinfo") else {
            return;
        };
        self.fuse_devs.clear();
        self.known_devs.clear();
        self.points.clear();
        for line in table.split(|&b| b == b'\n') {
            if let Some(m) = mountinfo::parse_line(line) {
                self.known_devs.insert(m.dev);
                if m.fstype == b"fuse" || m.fstype == b"fuseblk" || m.fstype.starts_with(b"fuse.") {
                    self.fuse_devs.insert(m.dev);
                    self.points.push(m.point);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_points_match_whole_components() {
        let mut m = FuseMounts {
            points: vec![b"/mnt/f".to_vec()],
            read_at: Some(Instant::now() + Duration::from_secs(3600)),
            watch: std::fs::File::open("/proc/self/mountinfo").ok(),
            ..FuseMounts::default()
        };
        assert_eq!(m.fuse_point_of(b"/mnt/f/x"), Some(b"/mnt/f".to_vec()));
        assert_eq!(m.fuse_point_of(b"/mnt/f"), Some(b"/mnt/f".to_vec()));
        assert_eq!(m.fuse_point_of(b"/mnt/fx"), None);
        assert_eq!(m.fuse_point_of(b"/usr/bin/true"), None);
    }

    #[test]
    fn a_mount_made_after_a_read_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = FuseMounts::default();
        assert!(m.fuse_point_of(b"/nowhere").is_none()); // reads the table
        let target = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C strings; a tmpfs on the test's own empty dir.
        let rc = unsafe {
            libc::mount(
                c"procwatch-test".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "run as root: {}", std::io::Error::last_os_error());
        // Well within MAX_AGE of the read: only the kernel's change flag
        // can make the table be read again.
        let seen = m.stale();
        // SAFETY: the mount made above.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        assert!(seen, "a mount made after the read is reported at once");
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
