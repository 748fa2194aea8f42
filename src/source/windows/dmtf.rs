//! Windows time formats: WMI's DMTF datetime strings and FILETIME.
//!
//! WMI hands out `CreationDate` as `yyyymmddHHMMSS.ffffff±UUU`, local time
//! plus the offset from UTC in minutes. Converted here to a UTC
//! [`SystemTime`] so the sinks render it like every other time.
//!
//! Both conversions are total: a value outside what a FILETIME can hold
//! (before 1601, or 2^63 ticks and beyond) is an error, never a panic.
//! Windows' `SystemTime` is itself a FILETIME, so unchecked arithmetic
//! there overflows where Linux's would not.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a DMTF datetime string or a FILETIME was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    /// `DMTF datetime` or `FILETIME`.
    pub kind: &'static str,
    /// The rejected input (as given).
    pub input: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad {} {:?}: {}", self.kind, self.input, self.why)
    }
}

impl std::error::Error for TimeError {}

/// Seconds from 1970 to 1601-01-01, the earliest time a FILETIME holds.
const FILETIME_EPOCH_SECS: i64 = -11_644_473_600;

/// `UNIX_EPOCH` ± `secs` + `nanos`, or `None` where `SystemTime` cannot
/// represent it.
fn unix_plus(secs: i64, nanos: Duration) -> Option<SystemTime> {
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    base?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`), so no date crate is needed.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a DMTF datetime (`20240229235959.123456+060`) into UTC.
///
/// Strict on purpose: WMI uses `*` for "unknown" fields and a bad value must
/// show as a missing time, not as a plausible wrong one.
pub fn parse_dmtf(s: &str) -> Result<SystemTime, TimeError> {
    let err = |why| TimeError {
        kind: "DMTF datetime",
        input: s.to_owned(),
        why,
    };
    let b = s.as_bytes();
    if b.len() != 25 {
        return Err(err("expected 25 characters: yyyymmddHHMMSS.ffffff+UUU"));
    }
    if b[14] != b'.' {
        return Err(err("expected '.' after the seconds"));
    }
    let sign = match b[21] {
        b'+' => 1i64,
        b'-' => -1i64,
        _ => return Err(err("expected '+' or '-' before the UTC offset")),
    };
    let num = |from: usize, to: usize| -> Result<u32, TimeError> {
        let part = &b[from..to];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(err("non-digit (or '*' wildcard) in a numeric field"));
        }
        Ok(part.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0')))
    };
    let year = i64::from(num(0, 4)?);
    let (month, day) = (num(4, 6)?, num(6, 8)?);
    let (hour, min, sec) = (num(8, 10)?, num(10, 12)?, num(12, 14)?);
    let micros = num(15, 21)?;
    let offset_min = i64::from(num(22, 25)?) * sign;
    if !(1..=12).contains(&month) {
        return Err(err("month out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(err("day out of range for the month"));
    }
    // 60 is allowed for a leap second; it simply rolls into the next minute.
    if hour > 23 || min > 59 || sec > 60 {
        return Err(err("time of day out of range"));
    }
    // The string is local time; UTC = local - offset.
    let local = days_from_civil(year, month, day) * 86_400
        + i64::from(hour) * 3600
        + i64::from(min) * 60
        + i64::from(sec);
    let utc = local - offset_min * 60;
    if utc < FILETIME_EPOCH_SECS {
        return Err(err("before 1601-01-01, the earliest time Windows keeps"));
    }
    unix_plus(utc, Duration::from_micros(u64::from(micros)))
        .ok_or_else(|| err("outside the range of the system clock"))
}

/// 100 ns intervals between 1601-01-01 (the FILETIME epoch) and 1970-01-01.
pub const FILETIME_UNIX_OFFSET: u64 = 116_444_736_000_000_000;

/// Converts a FILETIME (100 ns ticks since 1601, UTC), as ETW and
/// `GetProcessTimes` report, to a [`SystemTime`]. Values of 2^63 ticks and
/// more are invalid, as `FileTimeToSystemTime` also says.
pub fn filetime_to_system(ticks: u64) -> Result<SystemTime, TimeError> {
    let err = |why| TimeError {
        kind: "FILETIME",
        input: ticks.to_string(),
        why,
    };
    if ticks >= 1 << 63 {
        return Err(err("2^63 ticks or more is not a valid FILETIME"));
    }
    let nanos = |t: u64| Duration::new(t / 10_000_000, (t % 10_000_000) as u32 * 100);
    let t = if ticks >= FILETIME_UNIX_OFFSET {
        UNIX_EPOCH.checked_add(nanos(ticks - FILETIME_UNIX_OFFSET))
    } else {
        UNIX_EPOCH.checked_sub(nanos(FILETIME_UNIX_OFFSET - ticks))
    };
    t.ok_or_else(|| err("outside the range of the system clock"))
}

/// A signed FILETIME, as ETW's `raw_timestamp` and WMI's `TIME_CREATED`
/// strings carry it: negative means before 1601 and is rejected.
pub fn filetime_i64_to_system(ticks: i64) -> Result<SystemTime, TimeError> {
    u64::try_from(ticks)
        .map_err(|_| TimeError {
            kind: "FILETIME",
            input: ticks.to_string(),
            why: "negative: before 1601-01-01",
        })
        .and_then(filetime_to_system)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::escape::time_rfc3339;

    fn rfc(s: &str) -> String {
        time_rfc3339(parse_dmtf(s).unwrap())
    }

    #[test]
    fn utc_and_offsets() {
        assert_eq!(
            rfc("20240229235959.123456+000"),
            "2024-02-29T23:59:59.123456Z"
        );
        // UTC+1 (Paris winter): an hour earlier in UTC.
        assert_eq!(
            rfc("20240131123456.000001+060"),
            "2024-01-31T11:34:56.000001Z"
        );
        // UTC-5 (New York): crosses midnight and the year forward.
        assert_eq!(
            rfc("20231231220000.500000-300"),
            "2024-01-01T03:00:00.500000Z"
        );
        // UTC+5:45 (Kathmandu) crosses midnight and a leap day backward.
        assert_eq!(
            rfc("20240301010000.000000+345"),
            "2024-02-29T19:15:00.000000Z"
        );
        assert_eq!(
            rfc("19700101000000.000000+000"),
            "1970-01-01T00:00:00.000000Z"
        );
        // Before the Unix epoch, after applying a negative offset.
        assert_eq!(
            rfc("19691231230000.250000+000"),
            "1969-12-31T23:00:00.250000Z"
        );
        assert_eq!(
            rfc("16010101000000.000000+000"),
            "1601-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn leap_second_rolls_over() {
        assert_eq!(
            rfc("20161231235960.000000+000"),
            "2017-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn malformed_is_rejected_with_a_reason() {
        for (bad, why) in [
            ("", "25 characters"),
            ("20240131123456.123456", "25 characters"),
            ("20240131123456.123456+0600", "25 characters"),
            ("20240131123456,123456+060", "'.'"),
            ("20240131123456.123456 060", "'+' or '-'"),
            ("2024013112345a.123456+060", "non-digit"),
            ("********123456.123456+060", "wildcard"),
            ("20240131123456.******+060", "wildcard"),
            ("20241301000000.000000+000", "month"),
            ("20240001000000.000000+000", "month"),
            ("20230229000000.000000+000", "day out of range"),
            ("20240431000000.000000+000", "day out of range"),
            ("20240100000000.000000+000", "day out of range"),
            ("20240101240000.000000+000", "time of day"),
            ("20240101006000.000000+000", "time of day"),
            ("20240101000061.000000+000", "time of day"),
            ("2024-01-01T00:00:00.0000Z", "'.'"),
            ("２0240101000000.000000+000", "25 characters"),
        ] {
            let e = parse_dmtf(bad).unwrap_err();
            assert!(e.why.contains(why), "{bad:?}: {e}");
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("bad DMTF datetime"));
        }
    }

    #[test]
    fn days_from_civil_round_trips() {
        // Cross-checked against the sink's own calendar walk, from 1601
        // (Windows' `SystemTime` holds nothing earlier) to the year 4160.
        for days in (-134_774i64..800_000).step_by(997) {
            let t = if days >= 0 {
                UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400)
            } else {
                UNIX_EPOCH - Duration::from_secs(days.unsigned_abs() * 86_400)
            };
            let r = time_rfc3339(t);
            let n = r.len();
            let y: i64 = r[..n - 23].parse().unwrap();
            let m: u32 = r[n - 22..n - 20].parse().unwrap();
            let d: u32 = r[n - 19..n - 17].parse().unwrap();
            assert_eq!(days_from_civil(y, m, d), days, "{r}");
        }
    }

    fn ft(ticks: u64) -> String {
        time_rfc3339(filetime_to_system(ticks).unwrap())
    }

    #[test]
    fn filetime() {
        assert_eq!(filetime_to_system(FILETIME_UNIX_OFFSET), Ok(UNIX_EPOCH));
        assert_eq!(
            ft(FILETIME_UNIX_OFFSET + 10_000_015),
            "1970-01-01T00:00:01.000001Z"
        );
        assert_eq!(ft(0), "1601-01-01T00:00:00.000000Z");
        // 2024-02-29T12:00:00Z
        assert_eq!(ft(133_536_816_000_000_000), "2024-02-29T12:00:00.000000Z");
        // The last valid FILETIME: 30828-09-14, past what DMTF can say.
        assert_eq!(ft((1 << 63) - 1), "30828-09-14T02:48:05.477580Z");
    }

    #[test]
    fn out_of_range_times_are_errors_not_panics() {
        for ticks in [1u64 << 63, u64::MAX, (1 << 63) + 1] {
            let e = filetime_to_system(ticks).unwrap_err();
            assert_eq!(e.why, "2^63 ticks or more is not a valid FILETIME");
            assert_eq!(e.input, ticks.to_string());
            assert!(e.to_string().starts_with("bad FILETIME"), "{e}");
        }
        for ticks in [-1i64, i64::MIN] {
            let e = filetime_i64_to_system(ticks).unwrap_err();
            assert_eq!(e.why, "negative: before 1601-01-01");
        }
        assert_eq!(
            filetime_i64_to_system(0).map(time_rfc3339).as_deref(),
            Ok("1601-01-01T00:00:00.000000Z")
        );
        // Before 1601, also when only the UTC offset takes it there.
        for early in [
            "00000101000000.000000+000",
            "15001231235959.999999+000",
            "16010101000000.000000+001",
        ] {
            let e = parse_dmtf(early).unwrap_err();
            assert!(e.why.starts_with("before 1601-01-01"), "{early}: {e}");
        }
        assert_eq!(
            rfc("16010101000000.000000-001"),
            "1601-01-01T00:01:00.000000Z"
        );
        assert_eq!(
            rfc("99991231235959.999999-999"),
            "10000-01-01T16:38:59.999999Z"
        );
    }
}
