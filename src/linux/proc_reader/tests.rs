//! The reader against fabricated `/proc` files and this process's own.

use super::*;

const STAT: &[u8] = b"1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
    98765 1000 100 18446744073709551615 4096 8192 140000 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 \
    9000 9100 9200 777 888 999 1111 0\n";

#[test]
fn stat_with_hostile_comm() {
    let s = parse_stat(STAT).unwrap();
    assert_eq!(s.comm, b"a) b (c)");
    assert_eq!(s.state, b'S');
    assert_eq!(s.ppid, 1);
    assert_eq!(s.flags, 4194560);
    assert_eq!(s.start_ticks, 98765);
    assert_eq!(s.layout, [4096, 8192, 777, 888]);
    assert!(!s.is_kernel_thread());
    assert!(!s.is_dead());
}

#[test]
fn stat_rejects_garbage() {
    for bad in [
        &b""[..],
        b"12 (x",
        b"12 x) S 1",
        b"12 (x) S",
        b"12 (x) S notanumber 1 1 0 -1 0",
    ] {
        assert_eq!(parse_stat(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn kernel_thread_and_zombie_flags() {
    let k = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 3 0 0";
    let s = parse_stat(k).unwrap();
    assert!(s.is_kernel_thread());
    assert_eq!(s.layout, [0; 4]);
    let z = b"77 (sh) Z 1 0 0 0 -1 4228108 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0";
    assert!(parse_stat(z).unwrap().is_dead());
    let exiting = b"78 (renamed) R 1 0 0 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 56 0 0";
    assert!(parse_stat(exiting).unwrap().is_exiting());
    let running = b"79 (sh) R 1 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 57 0 0";
    assert!(!parse_stat(running).unwrap().is_exiting());
}

#[test]
fn status_ids_and_caps() {
    let text = "Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nCapInh:\t0000000000000000\n\
                CapPrm:\t000001ffffffffff\nCapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\n\
                CapAmb:\t0000000000000001\n";
    let s = parse_status(text).unwrap();
    assert_eq!(
        (s.creds.uid, s.creds.euid, s.creds.suid, s.creds.fsuid),
        (1, 2, 3, 4)
    );
    assert_eq!(
        (s.creds.gid, s.creds.egid, s.creds.sgid, s.creds.fsgid),
        (5, 6, 7, 8)
    );
    assert_eq!(s.caps.effective, 0x3000);
    assert_eq!(s.caps.permitted, 0x1ff_ffff_ffff);
    assert_eq!(s.caps.ambient, 1);
    assert_eq!(parse_status("Uid:\t1 2\n"), None);
    assert_eq!(parse_status(""), None);
}

#[test]
fn cmdline_splitting() {
    assert_eq!(
        split_cmdline(b"a\0b c\0\0"),
        vec![b"a".to_vec(), b"b c".to_vec(), vec![]]
    );
    assert_eq!(split_cmdline(b"a\0b\0"), vec![b"a".to_vec(), b"b".to_vec()]);
    // setproctitle without a trailing NUL.
    assert_eq!(
        split_cmdline(b"worker: idle"),
        vec![b"worker: idle".to_vec()]
    );
    assert_eq!(split_cmdline(b""), Vec::<Bytes>::new());
    assert_eq!(split_cmdline(b"\0"), vec![Vec::<u8>::new()]);
}

#[test]
fn reads_self() {
    let me = std::process::id();
    let dir = ProcDir::open("/proc", me).unwrap();
    let snap = dir.snapshot(None).unwrap();
    assert_eq!(snap.pid, me);
    assert!(!snap.cmdline.unwrap().argv.is_empty());
    assert_eq!(
        snap.exe.unwrap(),
        std::fs::read_link("/proc/self/exe")
            .unwrap()
            .as_os_str()
            .as_encoded_bytes()
    );
    assert!(snap.status.is_ok());
    // The executable's identity, for the exe hash to be checked against.
    let m = std::fs::metadata("/proc/self/exe").unwrap();
    assert_eq!(snap.exe_key, Some(FileKey::of(&m)));
    let start = snap.stat.start_ticks;
    assert_eq!(dir.snapshot(Some(start + 1)).unwrap_err(), Failure::Reused);
}

#[test]
fn vanished_process() {
    let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    let dir = ProcDir::open("/proc", pid).unwrap();
    child.wait().unwrap();
    // Reaped: the directory fd now refers to a dead process.
    assert_eq!(dir.stat().unwrap_err(), Failure::Exited);
    assert_eq!(dir.snapshot(None).unwrap_err(), Failure::Exited);
}

#[test]
fn zombie_fields_are_unavailable() {
    let child = std::process::Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    // Not reaped yet: wait until it is a zombie without collecting it.
    let dir = ProcDir::open("/proc", pid).unwrap();
    loop {
        let s = dir.stat().unwrap();
        if s.is_dead() {
            break;
        }
        std::thread::yield_now();
    }
    let snap = dir.snapshot(None).unwrap();
    assert_eq!(snap.cmdline.unwrap_err(), Failure::Zombie);
    assert_eq!(snap.exe.unwrap_err(), Failure::Zombie);
    drop(child); // std does not reap on drop; reap explicitly.
    // SAFETY: waiting on our own child.
    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
}

#[test]
fn kernel_thread() {
    // kthreadd is pid 2 on every Linux system with a kernel thread tree.
    let Ok(dir) = ProcDir::open("/proc", 2) else {
        return;
    };
    let snap = dir.snapshot(None).unwrap();
    if snap.stat.is_kernel_thread() {
        assert_eq!(snap.cmdline.unwrap_err(), Failure::KernelThread);
        assert_eq!(snap.exe.unwrap_err(), Failure::KernelThread);
    }
}

#[test]
fn ticks_conversion() {
    assert_eq!(ticks_to_boot_ns(150, 100), 1_500_000_000);
    assert_eq!(ticks_to_boot_ns(u64::MAX, 100), u64::MAX);
}
