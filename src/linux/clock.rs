//! Mapping kernel boot-time timestamps to wall-clock time.
//!
//! The eBPF program stamps events with `bpf_ktime_get_boot_ns()`, which is
//! `CLOCK_BOOTTIME`: it counts suspend time and is never stepped, so it
//! orders events correctly. Users want wall-clock time, so we add the offset
//! `CLOCK_REALTIME − CLOCK_BOOTTIME`. That offset is not constant (NTP steps
//! and slews move REALTIME; BOOTTIME does not move), which is why the caller
//! must [`BootClock::resync`] periodically; [`SyncedClock`] does that for
//! every source and decoder.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time since boot from `CLOCK_MONOTONIC_COARSE`: a few ms of resolution,
/// which is plenty for a TTL in seconds, and several times cheaper than
/// `Instant::now` on this path (name and hijack caches, per exec).
pub fn coarse_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant the kernel has supported since 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Samples taken per offset measurement; the best (tightest) one wins, which
/// filters out samples where we were preempted between the clock reads.
const SAMPLES: usize = 7;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Converts `CLOCK_BOOTTIME` nanoseconds to wall-clock [`SystemTime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootClock {
    /// `CLOCK_REALTIME − CLOCK_BOOTTIME` in nanoseconds. i128 so that the
    /// subtraction and later additions cannot overflow whatever the clocks
    /// say (REALTIME can even be before 1970 on a misconfigured machine).
    offset_ns: i128,
}

impl BootClock {
    /// Measures the current offset. Fails only if the kernel lacks
    /// `CLOCK_BOOTTIME` (pre-2.6.39) or the clocks cannot be read.
    pub fn new() -> io::Result<Self> {
        Ok(BootClock {
            offset_ns: measure_offset()?,
        })
    }

    /// A clock with a fixed offset, for tests and replaying recorded data.
    pub fn with_offset_ns(offset_ns: i128) -> Self {
        BootClock { offset_ns }
    }

    /// The current `CLOCK_REALTIME − CLOCK_BOOTTIME` offset, in nanoseconds.
    pub fn offset_ns(&self) -> i128 {
        self.offset_ns
    }

    /// The wall-clock time corresponding to boot time `boot_ns`, using the
    /// offset as of the last measurement.
    ///
    /// Saturates at the representable range instead of panicking, since
    /// `boot_ns` comes from the kernel and is not ours to trust blindly.
    pub fn to_wall(&self, boot_ns: u64) -> SystemTime {
        ns_to_system_time(i128::from(boot_ns) + self.offset_ns)
    }

    /// Re-measures the offset so that NTP steps and slews of `CLOCK_REALTIME`
    /// are followed; call every few seconds. On the (practically impossible)
    /// failure to read the clocks the previous offset is kept, because a
    /// slightly stale offset is better than none.
    ///
    /// Events converted just before and just after a resync can differ by
    /// the correction, so wall times are not strictly monotonic across a
    /// resync; ordering should rely on the boot-time stamp.
    pub fn resync(&mut self) {
        if let Ok(offset) = measure_offset() {
            self.offset_ns = offset;
        }
    }

    /// Current `CLOCK_BOOTTIME` in nanoseconds: the same clock as
    /// `bpf_ktime_get_boot_ns()`. Returns 0 if the clock cannot be read,
    /// which cannot happen on kernels that can run the eBPF source.
    pub fn now_boot_ns() -> u64 {
        read_clock(libc::CLOCK_BOOTTIME)
            .ok()
            .and_then(|ns| u64::try_from(ns).ok())
            .unwrap_or(0)
    }
}

/// How often a [`SyncedClock`] re-measures the offset: often enough to
/// follow an NTP step within seconds, rarely enough to cost nothing.
pub const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// A [`BootClock`] that re-measures its offset every [`RESYNC_EVERY`]:
/// what each source (and the eBPF decoder on the writer's thread) keeps
/// to turn boot-time stamps into wall times.
#[derive(Debug, Clone, Copy)]
pub struct SyncedClock {
    clock: BootClock,
    last_resync: Instant,
}

impl SyncedClock {
    /// Measures the offset now. Fails as [`BootClock::new`] does.
    pub fn new() -> io::Result<Self> {
        Ok(SyncedClock::from(BootClock::new()?))
    }

    /// Re-measures the offset if the last measurement is older than
    /// [`RESYNC_EVERY`]; cheap otherwise (one monotonic clock read).
    pub fn resync_if_due(&mut self) {
        if self.last_resync.elapsed() >= RESYNC_EVERY {
            self.clock.resync();
            self.last_resync = Instant::now();
        }
    }

    /// The clock as of the last measurement.
    pub fn clock(&self) -> &BootClock {
        &self.clock
    }

    /// [`BootClock::to_wall`] with the offset of the last measurement.
    pub fn to_wall(&self, boot_ns: u64) -> SystemTime {
        self.clock.to_wall(boot_ns)
    }
}

impl From<BootClock> for SyncedClock {
    /// Treats `clock` as just measured.
    fn from(clock: BootClock) -> Self {
        SyncedClock {
            clock,
            last_resync: Instant::now(),
        }
    }
}

/// Reads a clock as signed nanoseconds.
fn read_clock(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i128::from(ts.tv_sec) * NANOS_PER_SEC + i128::from(ts.tv_nsec))
}

/// Reads BOOTTIME, REALTIME, BOOTTIME several times and keeps the sample
/// with the smallest bracket: the REALTIME read happened somewhere inside
/// the bracket, so its midpoint is the best estimate of the matching boot
/// time, with error at most half the bracket.
fn measure_offset() -> io::Result<i128> {
    best_offset((0..SAMPLES).map(|_| {
        let b1 = read_clock(libc::CLOCK_BOOTTIME)?;
        let r = read_clock(libc::CLOCK_REALTIME)?;
        let b2 = read_clock(libc::CLOCK_BOOTTIME)?;
        Ok((b1, r, b2))
    }))
}

/// Picks the tightest `(boot_before, real, boot_after)` sample and returns
/// its offset; the first error aborts.
fn best_offset(samples: impl Iterator<Item = io::Result<(i128, i128, i128)>>) -> io::Result<i128> {
    let mut best: Option<(i128, i128)> = None; // (bracket, offset)
    for sample in samples {
        let (b1, r, b2) = sample?;
        let bracket = b2 - b1;
        let offset = r - b1.midpoint(b2);
        if best.is_none_or(|(w, _)| bracket < w) {
            best = Some((bracket, offset));
        }
    }
    best.map(|(_, offset)| offset)
        .ok_or_else(|| io::Error::other("no clock samples"))
}

/// Converts signed nanoseconds since the Unix epoch to a `SystemTime`,
/// saturating rather than panicking on out-of-range values.
fn ns_to_system_time(ns: i128) -> SystemTime {
    let magnitude = ns.unsigned_abs();
    let secs = u64::try_from(magnitude / NANOS_PER_SEC as u128).unwrap_or(u64::MAX);
    // < 1e9, so the cast is lossless.
    let nanos = (magnitude % NANOS_PER_SEC as u128) as u32;
    let d = Duration::new(secs, nanos);
    let t = if ns >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(a: SystemTime, b: SystemTime) -> Duration {
        a.duration_since(b).unwrap_or_else(|e| e.duration())
    }

    #[test]
    fn now_maps_to_now() {
        let clock = BootClock::new().unwrap();
        let wall = clock.to_wall(BootClock::now_boot_ns());
        let d = diff(wall, SystemTime::now());
        assert!(d < Duration::from_millis(20), "off by {d:?}");
    }

    #[test]
    fn now_boot_ns_is_nonzero_and_monotonic() {
        let a = BootClock::now_boot_ns();
        let b = BootClock::now_boot_ns();
        assert!(a > 0);
        assert!(b >= a);
    }

    #[test]
    fn mapping_is_monotonic_and_linear() {
        let clock = BootClock::new().unwrap();
        let base = BootClock::now_boot_ns();
        let mut prev = clock.to_wall(base);
        for step in [1u64, 999, 1_000_000, 1_000_000_000, 3_600_000_000_000] {
            let t = clock.to_wall(base + step);
            assert!(t > prev);
            assert_eq!(
                t.duration_since(clock.to_wall(base)).unwrap(),
                Duration::from_nanos(step)
            );
            prev = t;
        }
    }

    #[test]
    fn resync_keeps_offset_stable() {
        let mut clock = BootClock::new().unwrap();
        let before = clock.offset_ns();
        clock.resync();
        // Without an NTP step in between the offset barely moves.
        assert!((clock.offset_ns() - before).abs() < 5_000_000);
    }

    #[test]
    fn resync_replaces_a_bad_offset() {
        let mut clock = BootClock::with_offset_ns(0);
        clock.resync();
        let d = diff(clock.to_wall(BootClock::now_boot_ns()), SystemTime::now());
        assert!(d < Duration::from_millis(20), "off by {d:?}");
    }

    #[test]
    fn synced_clock_keeps_a_fresh_offset() {
        let mut synced = SyncedClock::from(BootClock::with_offset_ns(0));
        synced.resync_if_due();
        assert_eq!(synced.clock().offset_ns(), 0, "re-measured before due");
    }

    #[test]
    fn synced_clock_resyncs_when_due() {
        let mut synced = SyncedClock {
            clock: BootClock::with_offset_ns(0),
            last_resync: Instant::now().checked_sub(RESYNC_EVERY).unwrap(),
        };
        synced.resync_if_due();
        // The true offset is decades; a second's slack survives any load.
        let real = BootClock::new().unwrap().offset_ns();
        assert!((synced.clock().offset_ns() - real).abs() < NANOS_PER_SEC);
        assert!(synced.last_resync.elapsed() < RESYNC_EVERY);
    }

    #[test]
    fn fixed_offset_conversion() {
        let c = BootClock::with_offset_ns(1_700_000_000 * NANOS_PER_SEC);
        assert_eq!(
            c.to_wall(1_500_000_123),
            UNIX_EPOCH + Duration::new(1_700_000_001, 500_000_123)
        );
        assert_eq!(
            c.to_wall(0),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
    }

    #[test]
    fn negative_and_extreme_values_do_not_panic() {
        let c = BootClock::with_offset_ns(-5 * NANOS_PER_SEC);
        assert_eq!(
            c.to_wall(2 * 1_000_000_000),
            UNIX_EPOCH - Duration::from_secs(3)
        );
        assert_eq!(
            c.to_wall(1_500_000_000),
            UNIX_EPOCH - Duration::new(3, 500_000_000)
        );
        // Huge values either map exactly or saturate, never panic.
        let big = BootClock::with_offset_ns(i128::from(u64::MAX));
        let _ = big.to_wall(u64::MAX);
        let _ = BootClock::with_offset_ns(i128::MAX - i128::from(u64::MAX)).to_wall(u64::MAX);
        let _ = BootClock::with_offset_ns(i128::MIN).to_wall(0);
        let _ = BootClock::with_offset_ns(i128::MIN).to_wall(u64::MAX);
    }

    #[test]
    fn best_sample_is_the_tightest() {
        let samples = vec![
            Ok((100, 1_000_150, 300)),  // bracket 200, offset 1_000_150 - 200
            Ok((500, 1_000_520, 510)),  // bracket 10, offset 1_000_520 - 505
            Ok((900, 1_001_000, 1000)), // bracket 100
        ];
        assert_eq!(best_offset(samples.into_iter()).unwrap(), 1_000_015);
    }

    #[test]
    fn best_offset_errors() {
        assert!(best_offset(std::iter::empty()).is_err());
        let samples = vec![Ok((1, 2, 3)), Err(io::Error::other("boom"))];
        assert!(best_offset(samples.into_iter()).is_err());
    }
}
