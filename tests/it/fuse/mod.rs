//! A minimal FUSE server for the tests, speaking the kernel protocol on
//! `/dev/fuse` directly (no libfuse, no C): one directory holding one
//! executable file, `exe`, whose READ requests are answered for everyone
//! except the threads of one process (procwatch), whose reads are held
//! until the test releases them: a filesystem that stalls exactly the
//! reader it wants to blind.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::common::canonical;

const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_RELEASE: u32 = 18;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_DESTROY: u32 = 38;
const FUSE_BATCH_FORGET: u32 = 42;
/// `FOPEN_DIRECT_IO`: reads bypass the page cache, so procwatch's read of
/// the file reaches the server even after the exec filled the cache.
const FOPEN_DIRECT_IO: u32 = 1;
const ROOT: u64 = 1;
const FILE: u64 = 2;
const HEADER: usize = 40;

/// A mounted stalling filesystem; unmounted (lazily) when dropped, which
/// also releases every held request.
pub struct StallFs {
    pub mountpoint: PathBuf,
    /// Reads held so far (from the stalled process).
    pub held: Arc<AtomicUsize>,
    dev: Arc<File>,
    /// The requests held, by their `unique` id.
    held_ids: Arc<Mutex<Vec<u64>>>,
}

impl StallFs {
    /// Mounts at `mountpoint` (an empty directory) a filesystem whose file
    /// `exe` holds `content`, stalling every READ from process `victim`.
    pub fn mount(mountpoint: &Path, content: Vec<u8>, victim: u32) -> StallFs {
        let open = || OpenOptions::new().read(true).write(true).open("/dev/fuse");
        // A fresh machine may not have loaded the module yet.
        let dev = open().or_else(|_| {
            let _ = std::process::Command::new("modprobe").arg("fuse").status();
            open()
        });
        let dev = Arc::new(dev.expect("open /dev/fuse"));
        let opts = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            dev.as_raw_fd()
        ))
        .unwrap();
        let target = CString::new(mountpoint.as_os_str().as_encoded_bytes()).unwrap();
        let (src, fstype) = (c"pwstall", c"fuse");
        // SAFETY: valid C strings; the options name our open /dev/fuse fd.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount fuse: {}", std::io::Error::last_os_error());
        let held = Arc::new(AtomicUsize::new(0));
        let held_ids = Arc::new(Mutex::new(Vec::new()));
        let server = Server {
            dev: Arc::clone(&dev),
            content,
            victim: AtomicU32::new(victim),
            held: Arc::clone(&held),
            held_ids: Arc::clone(&held_ids),
        };
        thread::spawn(move || server.serve());
        StallFs {
            mountpoint: mountpoint.to_path_buf(),
            held,
            dev,
            held_ids,
        }
    }

    /// Answers every held request with EIO, so a thread blocked in one
    /// returns.
    pub fn release(&self) {
        for unique in self.held_ids.lock().unwrap().drain(..) {
            reply(&self.dev, unique, -libc::EIO, &[]);
        }
    }

    pub fn exe(&self) -> PathBuf {
        self.mountpoint.join("exe")
    }
}

/// Mounts at `mnt` a `StallFs` whose `exe` is a copy of sleep, in a mount
/// namespace of its own as a container's would be (procwatch's own mount
/// table does not list it), and runs it there as `argv0 secs`.
pub fn sleep_in_own_mount_ns(mnt: &Path, victim: u32, argv0: &str, secs: &str) -> (StallFs, Child) {
    let (mnt, argv0, secs) = (mnt.to_path_buf(), argv0.to_owned(), secs.to_owned());
    thread::spawn(move || {
        // SAFETY: this thread alone gets a new mount namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNS) }, 0);
        let (root, none) = (c"/", c"none");
        // SAFETY: valid C strings; only this namespace's propagation.
        let rc = unsafe {
            libc::mount(
                none.as_ptr(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0);
        let sleep_bin = std::fs::read(canonical("/usr/bin/sleep")).unwrap();
        let fs = StallFs::mount(&mnt, sleep_bin, victim);
        let child = Command::new(fs.exe())
            .arg0(argv0)
            .arg(secs)
            .spawn()
            .unwrap();
        (fs, child)
    })
    .join()
    .unwrap()
}

impl Drop for StallFs {
    fn drop(&mut self) {
        self.release();
        let target = CString::new(self.mountpoint.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        let _ = &self.dev;
    }
}

struct Server {
    dev: Arc<File>,
    content: Vec<u8>,
    victim: AtomicU32,
    held: Arc<AtomicUsize>,
    held_ids: Arc<Mutex<Vec<u64>>>,
}

/// The thread group of thread `tid` (FUSE reports the requesting thread).
fn tgid_of(tid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

impl Server {
    fn serve(self) {
        let mut buf = vec![0u8; 1 << 20 | 4096];
        let mut dev = &*self.dev;
        loop {
            let n = match dev.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                // ENODEV: unmounted.
                Err(_) => return,
            };
            if n < HEADER {
                continue;
            }
            let req = &buf[..n];
            let (opcode, unique, nodeid, pid) = (
                u32_at(req, 4),
                u64_at(req, 8),
                u64_at(req, 16),
                u32_at(req, 32),
            );
            let body = &req[HEADER..];
            match opcode {
                FUSE_INIT => {
                    let mut out = Vec::with_capacity(64);
                    out.extend_from_slice(&7u32.to_ne_bytes());
                    out.extend_from_slice(&31u32.to_ne_bytes());
                    out.extend_from_slice(&u32_at(body, 8).to_ne_bytes()); // max_readahead
                    out.extend_from_slice(&0u32.to_ne_bytes()); // flags
                    out.extend_from_slice(&16u16.to_ne_bytes()); // max_background
                    out.extend_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
                    out.extend_from_slice(&(128u32 << 10).to_ne_bytes()); // max_write
                    out.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
                    out.resize(64, 0);
                    self.reply(unique, 0, &out);
                }
                FUSE_LOOKUP => {
                    let name = body.split(|&b| b == 0).next().unwrap_or_default();
                    if nodeid == ROOT && name == b"exe" {
                        let mut out = Vec::with_capacity(128);
                        out.extend_from_slice(&FILE.to_ne_bytes()); // nodeid
                        out.extend_from_slice(&0u64.to_ne_bytes()); // generation
                        out.extend_from_slice(&3600u64.to_ne_bytes()); // entry_valid
                        out.extend_from_slice(&3600u64.to_ne_bytes()); // attr_valid
                        out.extend_from_slice(&[0u8; 8]); // the two nsec fields
                        out.extend_from_slice(&self.attr(FILE));
                        self.reply(unique, 0, &out);
                    } else {
                        self.reply(unique, -libc::ENOENT, &[]);
                    }
                }
                FUSE_GETATTR => {
                    let mut out = Vec::with_capacity(104);
                    out.extend_from_slice(&3600u64.to_ne_bytes());
                    out.extend_from_slice(&[0u8; 8]);
                    out.extend_from_slice(&self.attr(nodeid));
                    self.reply(unique, 0, &out);
                }
                FUSE_OPEN => {
                    let mut out = Vec::with_capacity(16);
                    out.extend_from_slice(&1u64.to_ne_bytes()); // fh
                    out.extend_from_slice(&FOPEN_DIRECT_IO.to_ne_bytes());
                    out.extend_from_slice(&0u32.to_ne_bytes());
                    self.reply(unique, 0, &out);
                }
                FUSE_READ => {
                    if tgid_of(pid) == Some(self.victim.load(Ordering::SeqCst)) {
                        // Not answered until `release`.
                        self.held_ids.lock().unwrap().push(unique);
                        self.held.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let (offset, size) = (u64_at(body, 8) as usize, u32_at(body, 16) as usize);
                    let start = offset.min(self.content.len());
                    let end = (start + size).min(self.content.len());
                    self.reply(unique, 0, &self.content[start..end]);
                }
                FUSE_RELEASE | FUSE_FLUSH => self.reply(unique, 0, &[]),
                FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT | FUSE_DESTROY => {}
                _ => self.reply(unique, -libc::ENOSYS, &[]),
            }
        }
    }

    /// `struct fuse_attr` of the root directory or the file.
    fn attr(&self, node: u64) -> Vec<u8> {
        let (mode, size, nlink) = if node == FILE {
            (libc::S_IFREG | 0o755, self.content.len() as u64, 1u32)
        } else {
            (libc::S_IFDIR | 0o755, 0, 2)
        };
        let mut a = Vec::with_capacity(88);
        a.extend_from_slice(&node.to_ne_bytes()); // ino
        a.extend_from_slice(&size.to_ne_bytes());
        a.extend_from_slice(&size.div_ceil(512).to_ne_bytes()); // blocks
        for _ in 0..3 {
            a.extend_from_slice(&1_700_000_000u64.to_ne_bytes()); // a/m/ctime
        }
        a.extend_from_slice(&[0u8; 12]); // a/m/ctime nsec
        a.extend_from_slice(&mode.to_ne_bytes());
        a.extend_from_slice(&nlink.to_ne_bytes());
        a.extend_from_slice(&0u32.to_ne_bytes()); // uid
        a.extend_from_slice(&0u32.to_ne_bytes()); // gid
        a.extend_from_slice(&0u32.to_ne_bytes()); // rdev
        a.extend_from_slice(&4096u32.to_ne_bytes()); // blksize
        a.extend_from_slice(&0u32.to_ne_bytes()); // flags
        a
    }

    fn reply(&self, unique: u64, error: i32, body: &[u8]) {
        reply(&self.dev, unique, error, body);
    }
}

fn reply(dev: &File, unique: u64, error: i32, body: &[u8]) {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&error.to_ne_bytes());
    out.extend_from_slice(&unique.to_ne_bytes());
    out.extend_from_slice(body);
    // A request interrupted meanwhile is answered with ENOENT: ignored.
    let _ = (&*dev).write_all(&out);
}
