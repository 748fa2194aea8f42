//! Rendered pieces reused across lines, and the small writers they use.

use std::time::SystemTime;

use crate::event::Namespaces;
use crate::linux::caps::cap_names;
use crate::linux::id_hash::IdMap;
use crate::sink::time::{push_digits, push_rfc3339};
use crate::sink::{known_caps_mask, nearly_all_caps};

use super::encode::{Obj, Raw, push_array, push_str};

/// Appends a capability mask as the array of its names, as in
/// `/usr/include/linux/capability.h` (unknown bits as their number); a
/// set holding every known capability, or nearly every one, as `"ALL"`
/// followed by `"-NAME"` for each missing one (and unknown bits' numbers).
pub(super) fn push_cap_names(out: &mut String, mask: u64) {
    if mask != 0 && nearly_all_caps(mask) {
        let missing = cap_names(known_caps_mask() & !mask);
        let unknown = cap_names(mask & !known_caps_mask());
        let items = std::iter::once("ALL".into())
            .chain(missing.iter().map(|n| format!("-{n}").into()))
            .chain(unknown.iter().cloned());
        let items: Vec<std::borrow::Cow<str>> = items.collect();
        push_str_array(out, items.iter().map(|n| n.as_ref()));
    } else {
        push_str_array(out, cap_names(mask).iter().map(|n| n.as_ref()));
    }
}

/// Appends `["a","b",...]`.
pub(super) fn push_str_array<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    push_array(out, items, push_str);
}

/// Rendered pieces reused across lines. Capability-name arrays, by mask:
/// root's full set is the same on nearly every event, and rendering its
/// names each time dominated the cost of a line. And the last parent object
/// rendered (see [`CachedParent`]): a storm's execs mostly share one.
#[derive(Default)]
pub(super) struct RenderCache {
    names: IdMap<u64, String>,
    pub(super) parent: Option<CachedParent>,
    /// The exec_ids of the exec lines in the current file.
    pub(super) logged: Logged,
    /// The `raw` members of the line being written.
    pub(super) raw: Raw,
    /// procwatch's own namespaces (the host's, usually): an exec in all of
    /// them leaves the namespace fields out.
    pub(super) own_ns: Option<Namespaces>,
    /// Scratch space for the command line, reused across lines.
    pub(super) cmdline: String,
    pub(super) time: TimeCache,
}

/// A rendered parent object and the `raw` members it adds, keyed by what
/// it was rendered from: a forked child runs its parent's image (same
/// exec_id) under its own pid and start.
pub(super) struct CachedParent {
    pub(super) exec_id: String,
    pub(super) pid: u32,
    pub(super) start: Option<std::time::SystemTime>,
    pub(super) with_argv: bool,
    pub(super) json: String,
    pub(super) raw: Raw,
}

/// The exec_ids of the exec lines written to the current file, so that a
/// child's `parent` can leave out what the parent's own line holds. Two
/// generations of at most [`Logged::GENERATION`] ids each bound the memory;
/// an id forgotten makes a child's line carry its parent's argv again,
/// never lose it.
#[derive(Default)]
pub(super) struct Logged {
    current: std::collections::HashSet<String>,
    previous: std::collections::HashSet<String>,
}

impl Logged {
    const GENERATION: usize = 32_768;

    pub(super) fn insert(&mut self, exec_id: &str) {
        if self.current.len() >= Self::GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(exec_id.to_owned());
    }

    pub(super) fn contains(&self, exec_id: &str) -> bool {
        self.current.contains(exec_id) || self.previous.contains(exec_id)
    }

    /// A new file: none of its lines are written yet.
    pub(super) fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
    }
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

    /// A cache for a sink in procwatch's own namespaces, read now.
    pub(super) fn new() -> Self {
        RenderCache {
            own_ns: crate::linux::ns::own_namespaces(),
            ..RenderCache::default()
        }
    }

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
