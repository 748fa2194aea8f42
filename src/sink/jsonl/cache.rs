//! Rendered pieces reused across lines, and the small writers they use.

use std::time::SystemTime;

use crate::linux::caps::cap_names;
use crate::linux::id_hash::IdMap;
use crate::sink::time::{push_digits, push_rfc3339};

use super::encode::{Obj, push_array, push_str};

/// Appends a capability mask as the array of its names, as in
/// `/usr/include/linux/capability.h` (unknown bits as their number).
pub(super) fn push_cap_names(out: &mut String, mask: u64) {
    push_str_array(out, cap_names(mask).iter().map(|n| n.as_ref()));
}

/// Appends `["a","b",...]`.
pub(super) fn push_str_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    push_array(out, items, push_str);
}

/// Rendered pieces reused across lines. Capability-name arrays, by mask:
/// root's full set is the same on nearly every event, and rendering 40
/// names each time dominated the cost of a line. And the last parent object
/// rendered, by the parent's exec_id: a storm's execs mostly share one.
#[derive(Default)]
pub(super) struct RenderCache {
    names: IdMap<u64, String>,
    pub(super) parent: Option<(String, String)>,
    /// Scratch space for the command line, reused across lines.
    pub(super) cmdline: String,
    pub(super) time: TimeCache,
}

/// RFC 3339 times with the `YYYY-MM-DDTHH:MM:SS` part of the last second
/// kept: an exec's two stamps, and a storm's execs, mostly share it.
#[derive(Default)]
pub(super) struct TimeCache {
    /// Seconds since the epoch, and that second's rendered prefix.
    second: Option<(u64, String)>,
}

impl TimeCache {
    /// Appends `t` exactly as [`push_rfc3339`] would.
    pub(super) fn push(&mut self, out: &mut String, t: SystemTime) {
        let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) else {
            return push_rfc3339(out, t);
        };
        let secs = d.as_secs();
        match &self.second {
            Some((s, prefix)) if *s == secs => out.push_str(prefix),
            _ => {
                let start = out.len();
                push_rfc3339(out, t);
                // "…SS.ffffffZ": the prefix is all but the last 8 bytes.
                let prefix = out[start..out.len() - 8].to_owned();
                out.truncate(out.len() - 8);
                self.second = Some((secs, prefix));
            }
        }
        out.push('.');
        push_digits(out, d.subsec_micros(), 6);
        out.push('Z');
    }
}

/// Writes `key` as a quoted RFC 3339 time.
pub(super) fn time(o: &mut Obj, key: &'static str, t: SystemTime, cache: &mut TimeCache) {
    let buf = o.key(key);
    buf.push('"');
    cache.push(buf, t);
    buf.push('"');
}

impl RenderCache {
    const MAX: usize = 256;

    pub(super) fn names(&mut self, mask: u64) -> &str {
        if self.names.len() >= Self::MAX && !self.names.contains_key(&mask) {
            self.names.clear();
        }
        self.names.entry(mask).or_insert_with(|| {
            let mut json = String::new();
            push_cap_names(&mut json, mask);
            json
        })
    }
}

#[cfg(test)]
mod time_cache_tests {
    use super::{TimeCache, push_rfc3339};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn cached_seconds_render_exactly_like_the_formatter() {
        let mut cache = TimeCache::default();
        let base = UNIX_EPOCH + Duration::new(1_795_670_770, 0);
        let times = [
            base + Duration::from_nanos(123_456_789),
            base + Duration::from_nanos(5_000), // same second: a cache hit
            base + Duration::from_nanos(999_999_999),
            base + Duration::new(1, 7_000), // the next second
            base - Duration::from_secs(86_400 * 365 * 30), // another day
            UNIX_EPOCH - Duration::from_micros(1), // before 1970: not cached
            UNIX_EPOCH,
        ];
        for t in times {
            let (mut got, mut want) = (String::new(), String::new());
            cache.push(&mut got, t);
            push_rfc3339(&mut want, t);
            assert_eq!(got, want, "{t:?}");
        }
    }
}
