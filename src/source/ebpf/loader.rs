//! Loading, attaching and reading the eBPF program.

use super::Options;
use super::abi::Counters;
use super::{attach, record};

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use aya::maps::{Map, MapData, RingBuf};
use aya::{Ebpf, EbpfLoader};

use crate::linux::clock::SyncedClock;
use crate::source::{AttachError, Decoder, Item, KernelCounters, RecordKind, Source, SourceInfo};

/// The compiled BPF object, committed so that `cargo build` needs no C
/// toolchain. `build.sh` rebuilds it; CI checks the two agree.
static OBJECT: &[u8] = aya::include_bytes_aligned!("procwatch.bpf.o");

/// An attached eBPF program and its maps.
pub struct EbpfSource {
    info: SourceInfo,
    /// `None` once detached. Dropping it detaches and unloads the programs;
    /// the maps taken out of it below live on.
    bpf: Option<Ebpf>,
    ring: RingBuf<MapData>,
    counters: CounterMap,
    /// Decodes for [`Source::poll`]: the decoder the pipeline gets from
    /// [`Source::decoder`], kept here for callers that poll on one thread.
    poll_decoder: EbpfDecoder,
    /// Edge-triggered epoll on the ring: it fires only when the kernel
    /// sends a wakeup (`wakeup_bytes` queued), not whenever a record is
    /// there, which would turn the reader into a busy loop of tiny drains.
    epoll: OwnedFd,
    /// When the next drain is due without a wakeup.
    next_drain: Instant,
}

impl EbpfSource {
    /// Loads and attaches the program; on failure says why and what to do.
    pub fn attach(opts: &Options) -> Result<Self, AttachError> {
        attach::preflight()?;
        raise_memlock_limit();
        let mut bpf = EbpfLoader::new()
            .override_global("wakeup_bytes", &opts.wakeup_bytes, true)
            .map_max_entries("events", opts.ring_size)
            .load(OBJECT)
            .map_err(|e| load_error("loading the eBPF object failed", &e))?;

        let attached = attach::attach_all(&mut bpf, opts.attach, opts.legacy)?;

        let ring = RingBuf::try_from(bpf.take_map("events").expect("object defines `events`"))
            .map_err(|e| load_error("the ring buffer map is unusable", &e))?;
        let counters =
            CounterMap::new(bpf.take_map("counters").expect("object defines `counters`"))
                .map_err(|e| load_error("the counters map is unusable", &e))?;
        let epoll = edge_triggered_epoll(ring.as_raw_fd()).map_err(|e| AttachError {
            what: format!("cannot watch the ring buffer: {e}"),
            hint: "this should not happen on Linux".into(),
        })?;
        let clock = SyncedClock::new().map_err(|e| AttachError {
            what: format!("cannot read the clocks: {e}"),
            hint: "this should not happen on Linux".into(),
        })?;
        let info = SourceInfo {
            name: "ebpf",
            guarantees: format!(
                "every successful exec on the host, with argv, credentials and capabilities \
                 taken in the kernel at exec time; losses are counted and reported (this \
                 source needs {}; running on Linux {})",
                attach::REQUIREMENT,
                attach::kernel_release()
            ),
            can_miss: format!(
                "nothing silently: if the {} ring buffer fills (reader stalled), the kernel drops \
                 events and procwatch reports them in `loss` events; argv beyond 16 KiB is truncated \
                 and flagged; failed execs are not reported{}",
                human_size(opts.ring_size),
                attached.limit.map(|l| format!("; {l}")).unwrap_or_default()
            ),
            attach: attached.attach,
            coverage: crate::event::Coverage {
                short_lived_complete: true,
                poll_interval_ms: None,
                unavailable: attached.unavailable,
            },
        };
        Ok(EbpfSource {
            info,
            bpf: Some(bpf),
            ring,
            counters,
            poll_decoder: EbpfDecoder::new(clock),
            epoll,
            next_drain: Instant::now(),
        })
    }
}

impl Source for EbpfSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// [`Source::poll_raw`] with each record decoded at once by the same
    /// decoder as the pipeline's: one decode path, on the caller's thread.
    fn poll(&mut self, timeout: Duration, out: &mut dyn FnMut(Item)) -> std::io::Result<()> {
        self.wait_for_drain(timeout)?;
        let decoder = &mut self.poll_decoder;
        drain(&mut self.ring, |rec| out(decoder.decode(rec)));
        Ok(())
    }

    fn decoder(&self) -> Option<Box<dyn Decoder>> {
        Some(Box::new(self.poll_decoder.clone()))
    }

    fn poll_raw(
        &mut self,
        timeout: Duration,
        out: &mut dyn FnMut(RecordKind, &[u8]),
    ) -> std::io::Result<()> {
        self.wait_for_drain(timeout)?;
        drain(&mut self.ring, |rec| out(record::kind(rec), rec));
        Ok(())
    }

    fn counters(&self) -> std::io::Result<KernelCounters> {
        let Counters {
            seen,
            emitted,
            dropped,
            truncated,
            aux_seen,
            aux_emitted,
            aux_dropped,
        } = self.counters.read()?;
        Ok(KernelCounters {
            seen,
            emitted,
            dropped,
            truncated,
            aux_seen,
            aux_emitted,
            aux_dropped,
            ..KernelCounters::default()
        })
    }

    fn detach(&mut self) {
        if self.bpf.take().is_some() {
            // A program already running when the link goes away may still
            // finish its record; give it time so the final drain sees it.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl EbpfSource {
    /// Waits until the next drain is due.
    fn wait_for_drain(&mut self, timeout: Duration) -> std::io::Result<()> {
        // Drain once per `timeout`, or sooner when the kernel says that
        // `wakeup_bytes` are queued: batches stay large under load, and an
        // idle host costs one wakeup per interval.
        let now = Instant::now();
        if now < self.next_drain {
            wait_for_wakeup(&self.epoll, self.next_drain - now)?;
        }
        self.next_drain = Instant::now() + timeout;
        Ok(())
    }
}

/// Hands every queued record to `out`, in ring order.
fn drain(ring: &mut RingBuf<MapData>, mut out: impl FnMut(&[u8])) {
    while let Some(rec) = ring.next() {
        out(&rec);
    }
}

/// Decodes the records of [`EbpfSource::poll_raw`] (on the writer's
/// thread), with its own boot-clock offset. The offset's age is looked at
/// for every record (one vDSO clock read, a few ns): a count-based check
/// would leave it stale for hours on a quiet host after an NTP step.
#[derive(Clone)]
struct EbpfDecoder {
    clock: SyncedClock,
}

impl EbpfDecoder {
    fn new(clock: SyncedClock) -> Self {
        EbpfDecoder { clock }
    }
}

impl Decoder for EbpfDecoder {
    fn decode(&mut self, rec: &[u8]) -> Item {
        self.clock.resync_if_due();
        record::decode(rec, self.clock.clock()).unwrap_or_else(|e| Item::Undecodable(e.to_string()))
    }
}

/// The per-CPU counters map (one entry, a `struct counters` per CPU), read
/// with one bpf(2) lookup. aya's `PerCpuArray::get` re-reads
/// /sys/devices/system/cpu/possible on every lookup; the CPU count is taken
/// once here instead (possible CPUs do not change while running).
struct CounterMap {
    map: MapData,
    /// Number of possible CPUs: the kernel writes one value for each.
    cpus: usize,
}

impl CounterMap {
    fn new(map: Map) -> Result<Self, String> {
        let Map::PerCpuArray(map) = map else {
            return Err("`counters` is not a per-CPU array".into());
        };
        let info = map.info().map_err(|e| e.to_string())?;
        if info.value_size() as usize != size_of::<Counters>() {
            return Err(format!(
                "`counters` values are {} bytes, expected {}",
                info.value_size(),
                size_of::<Counters>()
            ));
        }
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| format!("{what}: {e}"))?;
        Ok(CounterMap { map, cpus })
    }

    /// Every counter, summed over the CPUs.
    fn read(&self) -> std::io::Result<Counters> {
        /// The part of `union bpf_attr` that BPF_MAP_LOOKUP_ELEM reads.
        #[repr(C)]
        struct LookupAttr {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
        // The kernel writes one value per possible CPU, one after the
        // other, each rounded up to 8 bytes (`Counters` is a multiple of 8,
        // and so aligned for the kernel's writes).
        const _: () = assert!(size_of::<Counters>().is_multiple_of(8));
        let mut values = vec![Counters::default(); self.cpus];
        let key = 0u32;
        let attr = LookupAttr {
            map_fd: self.map.fd().as_fd().as_raw_fd() as u32,
            _pad: 0,
            key: std::ptr::from_ref(&key) as u64,
            value: values.as_mut_ptr() as u64,
            flags: 0,
        };
        // SAFETY: a valid BPF_MAP_LOOKUP_ELEM request: the kernel reads the
        // 4-byte key and writes value_size (checked in `new`) times the
        // number of possible CPUs bytes, which is what `values` holds.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_ELEM,
                &attr as *const LookupAttr,
                std::mem::size_of::<LookupAttr>(),
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(values
            .iter()
            .fold(Counters::default(), |sum, cpu| Counters {
                seen: sum.seen.wrapping_add(cpu.seen),
                emitted: sum.emitted.wrapping_add(cpu.emitted),
                dropped: sum.dropped.wrapping_add(cpu.dropped),
                truncated: sum.truncated.wrapping_add(cpu.truncated),
                aux_seen: sum.aux_seen.wrapping_add(cpu.aux_seen),
                aux_emitted: sum.aux_emitted.wrapping_add(cpu.aux_emitted),
                aux_dropped: sum.aux_dropped.wrapping_add(cpu.aux_dropped),
            }))
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones ignore it.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct; failure is harmless here.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}

fn load_error(what: &str, err: &dyn std::fmt::Display) -> AttachError {
    let text = format!("{err:#}");
    let denied = text.contains("Operation not permitted")
        || text.contains("EPERM")
        || text.contains("permission");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let hint = if denied || !root {
        "run procwatch as root (sudo procwatch), or grant it CAP_BPF and CAP_PERFMON".to_string()
    } else {
        "the kernel refused the object (the error says why; `dmesg` may say more)".to_string()
    };
    AttachError {
        what: format!("{what}: {text}"),
        hint,
    }
}

/// An edge-triggered epoll instance watching `fd` for input.
fn edge_triggered_epoll(fd: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: epoll_create1 has no pointer arguments.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: epfd was just created and is owned from here on.
    let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 0,
    };
    // SAFETY: valid fds and a valid event struct.
    if unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(epoll)
}

/// Waits for a kernel wakeup or `timeout`; EINTR is not an error.
fn wait_for_wakeup(epoll: &OwnedFd, timeout: Duration) -> std::io::Result<()> {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // Round up: a 0 ms wait for a 0.4 ms remainder would spin.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    // SAFETY: one valid event slot.
    let rc = unsafe { libc::epoll_wait(epoll.as_raw_fd(), &mut ev, 1, ms) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

fn human_size(bytes: u32) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}
