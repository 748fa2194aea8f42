//! What identifies a file's content without reading it: device, inode,
//! size and change times. The exe hash and the hijackable check key their
//! caches by it. ctime is included besides mtime because mtime can be set
//! back by the owner (`touch -d`), ctime cannot; any write, chmod, chown,
//! truncate or replacement changes one of these.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::event::{ExecEvent, FileStamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub stamp: FileStamp,
}

impl FileKey {
    /// As `stat`/`lstat` sees the file now.
    pub fn of(m: &Metadata) -> Self {
        FileKey {
            dev: m.dev(),
            ino: m.ino(),
            stamp: FileStamp::of(m),
        }
    }

    /// The executed file as the kernel saw it at the exec (`exe_dev_ino`
    /// and `exe_stamp`, eBPF only): no syscall needed.
    pub fn of_exe(ev: &ExecEvent) -> Option<Self> {
        let ((dev, ino), stamp) = ev.exe_dev_ino.zip(ev.exe_stamp)?;
        Some(FileKey { dev, ino, stamp })
    }
}
