//! The netlink proc connector source: the kernel reports every fork, exec
//! and exit on a NETLINK_CONNECTOR socket (CAP_NET_ADMIN on older kernels;
//! 6.18 lets any user listen); a dedicated thread reads `/proc/<pid>` the
//! moment an exec arrives.
//!
//! Delivery of the exec itself is complete unless the socket overruns
//! (ENOBUFS, counted), but the message carries only pids: argv, exe and
//! credentials come from `/proc`, which races the process. Short-lived
//! processes are therefore reported, but often with fields missing, each
//! listed in `incomplete`.

pub mod wire;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::convert::{Context, NEVER_AVAILABLE};
use super::observed::{self, Observed};
use super::worker::{LateSource, Outlet, Tally, Worker};
use super::{AttachError, LateOptions, SourceInfo};
use crate::event::{Bytes, Coverage};
use crate::event::{Exit, ProcKey};
use crate::linux::clock::{BootClock, SyncedClock};
use crate::linux::proc_reader::{self, Failure, ProcDir};
use wire::ProcEvent;

/// Receive buffer requested for the socket: a larger buffer absorbs longer
/// bursts before the kernel reports ENOBUFS.
const RCVBUF: libc::c_int = 32 << 20;
/// How long to wait for the kernel's acknowledgement of the subscription.
const ACK_TIMEOUT_MS: libc::c_int = 2000;
/// Real-time priority of the reading thread with `--realtime`: above normal
/// threads, well below kernel-critical ones.
const RT_PRIORITY: libc::c_int = 10;
/// How often the thread checks whether it should stop.
const STOP_CHECK_MS: libc::c_int = 100;
/// At most this many datagrams are taken into one batch, so the first exec
/// of a burst is not kept waiting for its `/proc` read.
const BATCH: usize = 64;
/// At most this many datagrams are taken after a stop request.
const FINAL_DRAIN: usize = 1 << 16;
/// Bound on the per-process maps (parents, start times): entries whose
/// exit was lost to an overrun would otherwise stay forever.
const TABLE_CAP: usize = 1 << 20;

/// The proc connector source; [`NetlinkSource::attach`] starts it.
pub struct NetlinkSource;

impl NetlinkSource {
    /// Subscribes to the proc connector and starts the reading thread.
    pub fn attach(opts: &LateOptions) -> Result<LateSource, AttachError> {
        let sock = subscribe().map_err(|e| AttachError {
            what: format!("cannot subscribe to the netlink proc connector: {e}"),
            hint: "the netlink source needs the initial namespaces, and on older kernels \
                   CAP_NET_ADMIN (run as root)"
                .into(),
        })?;
        let clock = SyncedClock::new().map_err(|e| AttachError {
            what: format!("cannot read the clocks: {e}"),
            hint: "this should not happen on Linux".into(),
        })?;
        let mono_to_boot = mono_to_boot_offset();
        let (realtime, pause) = (opts.realtime, opts.pause);
        // The thread sets its own priority; attach waits for the outcome so
        // the start line claims SCHED_FIFO only when it was granted.
        let (rt_tx, rt_rx) = std::sync::mpsc::sync_channel(1);
        let worker = Worker::spawn("procwatch-netlink", move |out| {
            let _ = rt_tx.send(realtime && go_realtime());
            // Events wait in the socket buffer meanwhile (a test hook).
            std::thread::sleep(pause);
            read_loop(&sock, &out, clock, mono_to_boot);
            // Polite: lower the kernel's listener count before closing.
            let msg = wire::control_message(wire::MCAST_IGNORE, 0);
            // SAFETY: valid socket and buffer.
            unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        })
        .map_err(|e| AttachError {
            what: format!("cannot start the netlink thread: {e}"),
            hint: "check the thread limits".into(),
        })?;
        let realtime = rt_rx.recv().unwrap_or(false);
        Ok(LateSource::new(
            SourceInfo {
                name: "netlink",
                attach: format!(
                    "NETLINK_CONNECTOR proc connector{}",
                    if realtime { ", SCHED_FIFO reader" } else { "" }
                ),
                guarantees: "every exec is announced by the kernel; argv, exe and credentials \
                             are read from /proc right after, and any field that could not be \
                             read is null and listed in `incomplete`"
                    .into(),
                can_miss: "argv/exe/credentials of processes that exit or exec again before \
                           /proc is read (common under load: they are reported incomplete); \
                           events when the socket overruns (ENOBUFS, counted); credentials \
                           are those at read time; filename, interpreter and exec_tid are \
                           never available"
                    .into(),
                coverage: Coverage {
                    short_lived_complete: false,
                    poll_interval_ms: None,
                    unavailable: NEVER_AVAILABLE.to_vec(),
                },
            },
            worker,
            Context {
                clock,
                hz: proc_reader::ticks_per_second(),
            },
        ))
    }
}

/// `CLOCK_BOOTTIME − CLOCK_MONOTONIC` in ns: proc connector timestamps are
/// monotonic, everything else in procwatch is boot time. They differ only
/// by time spent suspended, which is fixed while we run unless the machine
/// suspends (then exec times are off by the suspend time).
fn mono_to_boot_offset() -> u64 {
    let read = |clock| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: valid clock id and out pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
    };
    let mono = read(libc::CLOCK_MONOTONIC);
    read(libc::CLOCK_BOOTTIME).saturating_sub(mono)
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Opens the socket, joins the proc connector group and waits for the
/// kernel to acknowledge the subscription: once this returns, every later
/// exec is announced.
fn subscribe() -> io::Result<OwnedFd> {
    // SAFETY: plain socket call; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_CONNECTOR,
        )
    })?;
    // SAFETY: fd is new and ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let size = RCVBUF;
    let setopt = |opt| {
        // SAFETY: valid socket, option and value pointer of the right size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // FORCE goes beyond rmem_max but needs CAP_NET_ADMIN; without it
    // fall back to the size capped by net.core.rmem_max.
    if setopt(libc::SO_RCVBUFFORCE) != 0 {
        setopt(libc::SO_RCVBUF);
    }
    // SAFETY: zeroed sockaddr_nl is valid; fields set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr.nl_groups = wire::CN_IDX_PROC;
    // SAFETY: valid socket and address of the stated size.
    cvt(unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_nl).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    let msg = wire::control_message(wire::MCAST_LISTEN, 0);
    // SAFETY: valid socket and buffer.
    if unsafe { libc::send(fd, msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    wait_for_ack(&sock)?;
    Ok(sock)
}

/// Reads until the kernel's reply to our subscription. Events that arrive
/// before it are from before the start line and are discarded.
fn wait_for_ack(sock: &OwnedFd) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_millis(ACK_TIMEOUT_MS as u64);
    while std::time::Instant::now() < deadline {
        if !readable(sock, ACK_TIMEOUT_MS)? {
            break;
        }
        let n = match recv(sock, &mut buf) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
            Err(e) => return Err(e),
        };
        events.clear();
        let _ = wire::decode_datagram(&buf[..n], &mut events);
        for ev in &events {
            if let ProcEvent::Ack { err } = ev {
                return match *err {
                    0 => Ok(()),
                    e => Err(io::Error::from_raw_os_error(e as i32)),
                };
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "the kernel did not acknowledge the subscription",
    ))
}

fn readable(sock: &OwnedFd, timeout_ms: libc::c_int) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match unsafe { libc::poll(&mut p, 1, timeout_ms) } {
        n if n < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        n => Ok(n > 0),
    }
}

fn recv(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: valid socket and buffer.
    let n = unsafe {
        libc::recv(
            sock.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Asks for SCHED_FIFO for the calling thread. A failure is reported, the
/// source runs at normal priority, and false is returned.
fn go_realtime() -> bool {
    // Zeroed, then set: musl's sched_param has more fields than glibc's.
    // SAFETY: sched_param is plain integers; all-zero is a valid value.
    let mut p: libc::sched_param = unsafe { std::mem::zeroed() };
    p.sched_priority = RT_PRIORITY;
    // The raw syscall, because musl's sched_setscheduler() always fails
    // with ENOSYS (musl leaves thread scheduling to pthread_setschedparam).
    // SAFETY: pid 0 is the calling thread; valid param pointer.
    if unsafe { libc::syscall(libc::SYS_sched_setscheduler, 0, libc::SCHED_FIFO, &p) } != 0 {
        eprintln!(
            "procwatch: --realtime: cannot use SCHED_FIFO ({}): the netlink reader runs at \
             normal priority; run as root or grant CAP_SYS_NICE",
            io::Error::last_os_error()
        );
        return false;
    }
    true
}

/// The reading thread: receive, and read `/proc` for each exec at once.
fn read_loop(sock: &OwnedFd, out: &Outlet, clock: SyncedClock, mono_to_boot: u64) {
    let mut state = State::new(clock);
    let mut buf = vec![0u8; 65536];
    let mut batch = Vec::new();
    loop {
        // On stop, still take what the kernel queued before it: those
        // execs happened while we were attached.
        let last = out.stopping();
        match readable(sock, if last { 0 } else { STOP_CHECK_MS }) {
            Ok(true) => {}
            Ok(false) if last => return,
            Ok(false) => continue,
            Err(e) => {
                eprintln!("procwatch: netlink poll failed: {e}");
                return;
            }
        }
        batch.clear();
        // The final drain is bounded too: on a busy host new events never
        // stop arriving.
        for _ in 0..if last { FINAL_DRAIN } else { BATCH } {
            match recv(sock, &mut buf) {
                Ok(n) => {
                    if let Err(e) = wire::decode_datagram(&buf[..n], &mut batch) {
                        eprintln!("procwatch: skipped a malformed netlink datagram: {e}");
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    Tally::bump(&out.tally.enobufs)
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("procwatch: netlink receive failed: {e}");
                    return;
                }
            }
        }
        state.handle(&batch, out, mono_to_boot);
        if last {
            return;
        }
    }
}

/// What the reading thread remembers between batches.
struct State {
    clock: SyncedClock,
    hz: u64,
    /// Identity of each process whose exec we read, for its exit record:
    /// start time (ticks), comm and parent.
    starts: HashMap<u32, (u64, Bytes, u32)>,
    /// Parent of each process forked while we listen: known even when the
    /// child is gone before `/proc` can be read.
    parents: HashMap<u32, u32>,
    /// Per batch: index of the last exec of each tgid.
    last: HashMap<u32, usize>,
}

impl State {
    fn new(clock: SyncedClock) -> State {
        State {
            clock,
            hz: proc_reader::ticks_per_second(),
            starts: HashMap::new(),
            parents: HashMap::new(),
            last: HashMap::new(),
        }
    }

    fn remember(&mut self, pid: u32, stat: &proc_reader::Stat) {
        // Exits lost to ENOBUFS would leave entries behind forever.
        if self.starts.len() >= TABLE_CAP {
            self.starts.clear();
        }
        self.starts
            .insert(pid, (stat.start_ticks, stat.comm.clone(), stat.ppid));
    }

    /// The exit record of `pid`, identified by pid + start time: from our
    /// own exec read, else from `stat`, which the kernel keeps readable
    /// while the exit is being reported. `None` if neither is available:
    /// an exit of an unknown process would be a guess.
    fn exit_record(
        &self,
        pid: u32,
        status: u32,
        exit_ns: u64,
        ppid: Option<u32>,
        known: Option<(u64, Bytes, u32)>,
    ) -> Option<Exit> {
        let (start_ticks, comm, stat_ppid) = known.or_else(|| {
            let s = ProcDir::open("/proc", pid).and_then(|d| d.stat()).ok()?;
            Some((s.start_ticks, s.comm, s.ppid))
        })?;
        let start_ns = proc_reader::ticks_to_boot_ns(start_ticks, self.hz);
        Some(Exit {
            key: ProcKey { pid, start_ns },
            ppid: ppid.unwrap_or(stat_ppid),
            time: self.clock.to_wall(exit_ns),
            status,
            comm,
            lifetime: Duration::from_nanos(exit_ns.saturating_sub(start_ns)),
        })
    }

    fn handle(&mut self, batch: &[ProcEvent], out: &Outlet, mono_to_boot: u64) {
        self.clock.resync_if_due();
        // If the same process exec'd again later in this batch, /proc no
        // longer shows this exec: say so instead of misattributing. (A later
        // exit needs nothing special: the read then fails or finds a zombie.)
        self.last.clear();
        for (i, ev) in batch.iter().enumerate() {
            if let ProcEvent::Exec { tgid, .. } = *ev {
                self.last.insert(tgid, i);
            }
        }
        for (i, ev) in batch.iter().enumerate() {
            match *ev {
                ProcEvent::Fork {
                    parent_tgid,
                    child_pid,
                    child_tgid,
                    ..
                } if child_pid == child_tgid => {
                    if self.parents.len() >= TABLE_CAP {
                        self.parents.clear();
                    }
                    self.parents.insert(child_tgid, parent_tgid);
                }
                ProcEvent::Exec { tgid, ts_ns, .. } => {
                    Tally::bump(&out.tally.seen);
                    let superseded = self.last.get(&tgid).is_some_and(|&j| j > i);
                    let ob = observe(tgid, ts_ns + mono_to_boot, superseded, &self.parents);
                    if let Ok(snap) = &ob.snap {
                        self.remember(tgid, &snap.stat);
                    }
                    out.tally.count(&ob);
                    out.send(ob);
                }
                ProcEvent::Exit {
                    pid,
                    tgid,
                    exit_code,
                    ts_ns,
                } if pid == tgid => {
                    let ppid = self.parents.remove(&tgid);
                    let known = self.starts.remove(&tgid);
                    match self.exit_record(tgid, exit_code, ts_ns + mono_to_boot, ppid, known) {
                        Some(x) => out.send_exit(x),
                        // Gone before it could be identified.
                        None => Tally::bump(&out.tally.too_late),
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reads `/proc/<pid>` for an exec that happened at `exec_boot_ns`.
fn observe(pid: u32, exec_boot_ns: u64, superseded: bool, parents: &HashMap<u32, u32>) -> Observed {
    let seen_boot_ns = BootClock::now_boot_ns();
    let snap = if superseded {
        Err(Failure::Exited)
    } else {
        ProcDir::open("/proc", pid).and_then(|d| d.snapshot(None))
    };
    // A process that started after the exec is a different one that got
    // the same pid: nothing it shows belongs to this exec.
    let hz = proc_reader::ticks_per_second();
    let tick_ns = 1_000_000_000 / hz.max(1);
    let snap = snap.and_then(|s| {
        if proc_reader::ticks_to_boot_ns(s.stat.start_ticks, hz) > exec_boot_ns + tick_ns {
            Err(Failure::Reused)
        } else {
            Ok(s)
        }
    });
    let ppid = parents
        .get(&pid)
        .copied()
        .or_else(|| snap.as_ref().ok().map(|s| s.stat.ppid));
    Observed {
        pid,
        exec_boot_ns: Some(exec_boot_ns),
        seen_boot_ns,
        ppid: parents.get(&pid).copied(),
        snap,
        superseded,
        exec_without_fork: false,
        parent_start_ticks: ppid.and_then(observed::parent_start_ticks),
    }
}
