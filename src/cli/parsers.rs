//! Value parsers of the flags: each turns a string into a checked value, so
//! a bad one is a usage error (status 2) before anything starts.

use std::time::Duration;

/// Parses `--interval`: positive seconds, at least 1 ms (WQL's resolution
/// here) and at most a day.
pub(super) fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid interval {s:?}: expected seconds, e.g. 1 or 0.5"))?;
    if !(0.001..=86_400.0).contains(&secs) {
        return Err(format!(
            "interval must be between 0.001 and 86400 seconds, got {s:?}"
        ));
    }
    Ok(secs)
}

/// Parses a byte count: a decimal integer with an optional binary suffix
/// `K`, `M` or `G` (case-insensitive, optionally followed by `B` or `iB`),
/// e.g. `4096`, `64K`, `16M`, `1GiB`. Fractions are rejected because ring
/// sizes must be exact.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!(
            "invalid size {s:?}: expected a number like 4096, 64K, 16M or 1G"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown suffix {suffix:?} (use K, M or G)"
            ));
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: number too large"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: number too large"))
}

/// The system page size, which the kernel requires ring sizes to be a
/// multiple of (4096 on x86-64; 16K/64K on some arm64 kernels).
#[cfg(unix)]
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// No sysconf on Windows, where `--ring-size` (eBPF) does not apply.
#[cfg(not(unix))]
pub fn page_size() -> u64 {
    4096
}

/// Parses `--ring-size`: a size that is a power of two, a multiple of the
/// page size, and fits the kernel's 32-bit map size. Checked here so a bad
/// value is a usage error, not an obscure EINVAL at attach time.
pub fn parse_ring_size(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    if !n.is_power_of_two() {
        return Err(format!("ring size {n} is not a power of two (try 16M)"));
    }
    let page = page_size();
    if n % page != 0 {
        return Err(format!(
            "ring size {n} is not a multiple of the page size ({page})"
        ));
    }
    u32::try_from(n).map_err(|_| format!("ring size {n} is too large (at most 2G)"))
}

/// Parses `--duration`: positive, finite seconds that fit a [`Duration`].
pub(super) fn parse_duration(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected seconds, e.g. 10 or 0.5"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration must be greater than 0, got {s:?}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is too large"))?;
    Ok(secs)
}

/// Checks a `--exe`/`--exclude-exe` glob, so a malformed one is a usage
/// error (status 2) rather than a failure after start; the filter compiles
/// it again from the kept string.
pub(super) fn parse_glob(s: &str) -> Result<String, String> {
    crate::filter::Glob::new(s)?;
    Ok(s.to_owned())
}

/// Parses `--queue-len`: at least 1, since a zero-capacity queue would drop
/// everything (or turn into a rendezvous that stalls the reader).
pub(super) fn parse_queue_len(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid queue length {s:?}"))?;
    if n == 0 {
        return Err("queue length must be at least 1".into());
    }
    Ok(n)
}

/// `--syslog-max`: a size (see [`parse_size`]) of at least
/// [`crate::sink::syslog::MIN_MAX`] bytes.
pub fn parse_syslog_max(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    let min = crate::sink::syslog::MIN_MAX as u64;
    if n < min {
        return Err(format!("at least {min} bytes (RFC 5424's minimum)"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_parser_accepts() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("16mb"), Ok(16 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
    }

    #[test]
    fn size_parser_rejects() {
        for bad in [
            "", "K", "-1", "+4K", "1.5M", "16 M", "16T", "16MM", "0x1000", "abc", "1e6",
            "٣K", // non-ASCII digit
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("18446744073709551616").is_err());
        assert!(parse_size("17179869184G").is_err());
        assert!(parse_size("17179869183G").is_ok());
    }

    #[test]
    fn ring_size_validation() {
        let page = page_size();
        assert_eq!(parse_ring_size("16M"), Ok(16 << 20));
        assert_eq!(parse_ring_size("1G"), Ok(1 << 30));
        assert_eq!(parse_ring_size("2G"), Ok(1 << 31));
        assert_eq!(parse_ring_size(&page.to_string()), Ok(page as u32));

        let e = parse_ring_size("3M").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("100000").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("2048").unwrap_err();
        assert!(e.contains("page size"), "{e}");
        let e = parse_ring_size("0").unwrap_err();
        assert!(e.contains("power of two"), "{e}");
        let e = parse_ring_size("4G").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(parse_ring_size("lots").is_err());
    }

    #[test]
    fn interval_validation() {
        assert_eq!(parse_interval("1"), Ok(1.0));
        assert_eq!(parse_interval("0.001"), Ok(0.001));
        for bad in ["0", "-1", "0.0001", "nan", "inf", "x", "", "86401"] {
            assert!(parse_interval(bad).is_err(), "{bad:?}");
        }
    }
}
