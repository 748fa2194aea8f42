//! Times as the sinks write them: RFC 3339 UTC with microseconds (JSONL,
//! CSV) and `HH:MM:SS.mmm` UTC (text), without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar time broken into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub micros: u32,
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`), so no date crate is
/// needed.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Splits `t` into UTC fields, truncating to microseconds (towards the
/// past, also before 1970).
pub(crate) fn utc(t: SystemTime) -> UtcTime {
    // Seconds fit an i64 for any SystemTime (±292 billion years).
    let (secs, micros): (i64, u32) = match t.duration_since(UNIX_EPOCH) {
        // The common case, without 128-bit division.
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(e) => {
            let nanos = -(e.duration().as_nanos() as i128);
            (
                nanos.div_euclid(1_000_000_000) as i64,
                (nanos.rem_euclid(1_000_000_000) / 1000) as u32,
            )
        }
    };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    UtcTime {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
        micros,
    }
}

/// Formats `t` as RFC 3339 in UTC with 6 fractional digits, e.g.
/// `2026-11-26T05:26:10.123456Z`.
///
/// Microseconds are enough for ordering execs and match what most log
/// tools parse; the fraction is truncated, not rounded, so a time never
/// moves into the next second. Years outside 0000–9999 (not reachable from
/// a kernel clock) are printed with more digits or a sign.
pub fn time_rfc3339(t: SystemTime) -> String {
    let mut out = String::with_capacity(27);
    push_rfc3339(&mut out, t);
    out
}

/// Appends [`time_rfc3339`] of `t` to `out` (no allocation, no `fmt`).
pub fn push_rfc3339(out: &mut String, t: SystemTime) {
    let u = utc(t);
    if (0..=9999).contains(&u.year) {
        push_digits(out, u.year as u32, 4);
    } else {
        out.push_str(itoa::Buffer::new().format(u.year));
    }
    for (sep, v, width) in [
        ('-', u.month, 2),
        ('-', u.day, 2),
        ('T', u.hour, 2),
        (':', u.minute, 2),
        (':', u.second, 2),
        ('.', u.micros, 6),
    ] {
        out.push(sep);
        push_digits(out, v, width);
    }
    out.push('Z');
}

/// Appends the last `width` decimal digits of `v`, zero-padded.
pub(crate) fn push_digits(out: &mut String, mut v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let width = width.min(buf.len());
    for d in buf[..width].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[..width]).unwrap_or_default());
}

/// `HH:MM:SS.mmm` in UTC, for the compact text format.
pub(crate) fn time_hms_millis(t: SystemTime) -> String {
    let u = utc(t);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        u.hour,
        u.minute,
        u.second,
        u.micros / 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64, nanos: u32) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
                + Duration::from_nanos(u64::from(nanos))
        }
    }

    #[test]
    fn rfc3339_known_values() {
        let cases: &[(i64, u32, &str)] = &[
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (0, 999, "1970-01-01T00:00:00.000000Z"),
            (0, 1_000, "1970-01-01T00:00:00.000001Z"),
            (1, 999_999_999, "1970-01-01T00:00:01.999999Z"),
            (68_255_999, 0, "1972-02-29T23:59:59.000000Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000000Z"),
            (951_868_800, 0, "2000-03-01T00:00:00.000000Z"),
            (978_307_199, 0, "2000-12-31T23:59:59.000000Z"),
            (1_709_164_800, 0, "2024-02-29T00:00:00.000000Z"),
            (1_735_689_599, 0, "2024-12-31T23:59:59.000000Z"),
            (1_735_689_600, 0, "2025-01-01T00:00:00.000000Z"),
            (1_795_670_770, 123_456_789, "2026-11-26T05:26:10.123456Z"),
            (4_107_456_000, 0, "2100-02-28T00:00:00.000000Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000000Z"),
            (-1, 0, "1969-12-31T23:59:59.000000Z"),
            (-1, 500_000_000, "1969-12-31T23:59:59.500000Z"),
            (-86_400 * 365, 0, "1969-01-01T00:00:00.000000Z"),
        ];
        for &(s, n, want) in cases {
            assert_eq!(time_rfc3339(at(s, n)), want, "secs {s} nanos {n}");
        }
    }

    #[test]
    fn civil_from_days_matches_a_day_by_day_walk() {
        // Walk forward from 1970-01-01 across several 400-year cycles'
        // worth of leap rules (1900, 2000, 2100 are the interesting ones).
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let dim = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for days in 0..(200 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > dim(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!(civil_from_days(-25_567), (1900, 1, 1));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }

    #[test]
    fn hms_millis() {
        assert_eq!(
            time_hms_millis(at(1_795_670_770, 123_999_999)),
            "05:26:10.123"
        );
        assert_eq!(time_hms_millis(at(86_399, 999_999_999)), "23:59:59.999");
    }
}
