//! User and group name resolution, with a small time-bounded cache.
//!
//! Lookups go through libc's `getpwuid_r` / `getgrgid_r` rather than parsing
//! `/etc/passwd`, so every NSS source (LDAP, sssd, systemd-userdb, ...) is
//! honoured. NSS calls can be slow (network directories), and an exec storm
//! is usually a handful of users, hence the cache.

use crate::linux::clock::coarse_now;
use crate::linux::id_hash::IdMap;
use std::ffi::CStr;
use std::sync::Arc;
use std::time::Duration;

/// How long a cached answer (hit or miss) is trusted. Bounded so that users
/// created or renamed while procwatch runs show up within a minute.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// Cache size at which a table is cleared. Clearing wholesale is crude but
/// keeps memory bounded without LRU bookkeeping; real systems rarely see
/// thousands of distinct ids within one TTL.
pub const MAX_ENTRIES: usize = 4096;

/// Upper bound for the getpw*_r buffer. Real entries are a few hundred
/// bytes; huge groups can be large, but anything past this is treated as a
/// lookup error rather than growing without limit.
const MAX_BUF: usize = 1 << 20;

/// Outcome of one NSS lookup. Errors are kept apart from "not found" so a
/// transient failure (e.g. directory server down) is not cached as a miss.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    Found(String),
    NotFound,
    Error,
}

#[derive(Debug)]
struct Entry {
    name: Option<Arc<str>>,
    at: Duration,
}

/// One id → name table with expiry and a size bound.
#[derive(Debug)]
struct Table {
    entries: IdMap<u32, Entry>,
}

impl Table {
    fn new() -> Self {
        Table {
            entries: IdMap::default(),
        }
    }

    fn get_or_lookup(
        &mut self,
        id: u32,
        ttl: Duration,
        lookup: impl FnOnce(u32) -> Lookup,
    ) -> Option<Arc<str>> {
        let now = coarse_now();
        if let Some(e) = self.entries.get(&id)
            && now.saturating_sub(e.at) < ttl
        {
            return e.name.clone();
        }
        let name = match lookup(id) {
            Lookup::Found(name) => Some(Arc::from(name)),
            Lookup::NotFound => None,
            Lookup::Error => {
                // Do not cache, but keep serving a stale answer if we have
                // one: a name that was right a minute ago beats no name.
                return self.entries.get(&id).and_then(|e| e.name.clone());
            }
        };
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&id) {
            self.entries.clear();
        }
        self.entries.insert(
            id,
            Entry {
                name: name.clone(),
                at: now,
            },
        );
        name
    }
}

/// Caches uid → user name and gid → group name lookups.
///
/// Both hits and misses are cached (a uid with no name is common in
/// containers and would otherwise cost an NSS round trip per exec), and
/// entries expire after [`DEFAULT_TTL`]. Names are returned exactly as NSS
/// gives them, control characters included, because escaping is the sinks'
/// job; only invalid UTF-8 is replaced (lossily).
#[derive(Debug)]
pub struct NameCache {
    users: Table,
    groups: Table,
    ttl: Duration,
}

impl Default for NameCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NameCache {
    /// A cache with the default TTL.
    pub fn new() -> Self {
        Self::with_ttl(DEFAULT_TTL)
    }

    /// A cache whose entries expire after `ttl`; mostly for tests, where a
    /// zero TTL forces every call through NSS.
    pub fn with_ttl(ttl: Duration) -> Self {
        NameCache {
            users: Table::new(),
            groups: Table::new(),
            ttl,
        }
    }

    /// The user name of `uid`, or `None` if NSS knows no such user. Shared:
    /// a hit costs no allocation.
    pub fn user(&mut self, uid: u32) -> Option<Arc<str>> {
        self.users.get_or_lookup(uid, self.ttl, lookup_user)
    }

    /// The group name of `gid`, or `None` if NSS knows no such group.
    pub fn group(&mut self, gid: u32) -> Option<Arc<str>> {
        self.groups.get_or_lookup(gid, self.ttl, lookup_group)
    }
}

/// Initial buffer size for the reentrant lookups, from sysconf when it has
/// an opinion.
fn initial_buf_size(which: libc::c_int) -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(which) };
    usize::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1024)
        .clamp(256, MAX_BUF)
}

/// Runs a `get*id_r`-style call, growing the buffer on ERANGE.
///
/// `call` gets the buffer and returns the function's return code plus the
/// name pointer when an entry was found.
fn lookup_with(
    which: libc::c_int,
    mut call: impl FnMut(&mut [libc::c_char]) -> (libc::c_int, Option<*const libc::c_char>),
) -> Lookup {
    let mut size = initial_buf_size(which);
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        let (rc, name) = call(&mut buf);
        match (rc, name) {
            (0, Some(ptr)) => {
                // SAFETY: on success the name points into `buf`, which is
                // still alive, and is NUL-terminated.
                let name = unsafe { CStr::from_ptr(ptr) };
                return Lookup::Found(name.to_string_lossy().into_owned());
            }
            // "Not found" is reported as rc 0 with a NULL result, but some
            // NSS modules return one of these errnos instead (see getpwnam(3)).
            (0, None) | (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => {
                return Lookup::NotFound;
            }
            (libc::ERANGE, _) if size < MAX_BUF => size = (size * 2).min(MAX_BUF),
            (libc::EINTR, _) => {}
            _ => return Lookup::Error,
        }
    }
}

fn lookup_user(uid: u32) -> Lookup {
    lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
        // SAFETY: all-zero is a valid `passwd` (integers and null pointers).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the duration of the call and
        // `buf.len()` is the true buffer length.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &raw mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        let name =
            (!result.is_null() && !pwd.pw_name.is_null()).then_some(pwd.pw_name.cast_const());
        (rc, name)
    })
}

fn lookup_group(gid: u32) -> Lookup {
    lookup_with(libc::_SC_GETGR_R_SIZE_MAX, |buf| {
        // SAFETY: all-zero is a valid `group` (integers and null pointers).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `lookup_user`.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &raw mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
            )
        };
        let name =
            (!result.is_null() && !grp.gr_name.is_null()).then_some(grp.gr_name.cast_const());
        (rc, name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Far above any allocated id on a test machine, below the "unset"
    /// sentinel 4294967295.
    const UNUSED_ID: u32 = 3_999_999_999;

    #[test]
    fn root_user_and_group() {
        let mut c = NameCache::new();
        assert_eq!(c.user(0).as_deref(), Some("root"));
        assert_eq!(c.group(0).as_deref(), Some("root"));
    }

    #[test]
    fn nobody() {
        let mut c = NameCache::new();
        assert_eq!(c.user(65534).as_deref(), Some("nobody"));
        // Debian calls gid 65534 "nogroup", others "nobody".
        let g = c.group(65534);
        assert!(
            matches!(g.as_deref(), Some("nogroup" | "nobody")),
            "gid 65534 = {g:?}"
        );
    }

    #[test]
    fn unused_id_is_none() {
        let mut c = NameCache::new();
        assert_eq!(c.user(UNUSED_ID), None);
        assert_eq!(c.group(UNUSED_ID), None);
        // The miss is cached.
        assert!(c.users.entries.get(&UNUSED_ID).unwrap().name.is_none());
        assert!(c.groups.entries.contains_key(&UNUSED_ID));
        assert_eq!(c.user(UNUSED_ID), None);
    }

    #[test]
    fn raw_lookups() {
        assert_eq!(lookup_user(0), Lookup::Found("root".into()));
        assert_eq!(lookup_group(0), Lookup::Found("root".into()));
        assert_eq!(lookup_user(UNUSED_ID), Lookup::NotFound);
        assert_eq!(lookup_group(UNUSED_ID), Lookup::NotFound);
    }

    #[test]
    fn cache_hit_does_not_call_lookup() {
        let mut c = NameCache::new();
        assert_eq!(c.user(0).as_deref(), Some("root"));
        // Poison the cached entry: a hit must return it unchanged.
        c.users.entries.get_mut(&0).unwrap().name = Some("cached\u{1b}[31m".into());
        assert_eq!(c.user(0).as_deref(), Some("cached\u{1b}[31m"));
        // Users and groups are separate tables.
        assert_eq!(c.group(0).as_deref(), Some("root"));
    }

    #[test]
    fn table_hits_and_misses_via_closure() {
        let mut t = Table::new();
        let ttl = Duration::from_secs(60);
        let mut calls = 0;
        for _ in 0..3 {
            let got = t.get_or_lookup(7, ttl, |_| {
                calls += 1;
                Lookup::NotFound
            });
            assert_eq!(got, None);
        }
        assert_eq!(calls, 1, "misses are cached");
        let got = t.get_or_lookup(8, ttl, |id| Lookup::Found(format!("u{id}")));
        assert_eq!(got.as_deref(), Some("u8"));
        let got = t.get_or_lookup(8, ttl, |_| panic!("should hit the cache"));
        assert_eq!(got.as_deref(), Some("u8"));
    }

    #[test]
    fn expired_entries_are_refreshed() {
        let mut c = NameCache::with_ttl(Duration::ZERO);
        assert_eq!(c.user(0).as_deref(), Some("root"));
        c.users.entries.get_mut(&0).unwrap().name = Some("stale".into());
        assert_eq!(c.user(0).as_deref(), Some("root"));

        let mut t = Table::new();
        t.get_or_lookup(1, Duration::ZERO, |_| Lookup::NotFound);
        let got = t.get_or_lookup(1, Duration::ZERO, |_| Lookup::Found("new".into()));
        assert_eq!(got.as_deref(), Some("new"), "a cached miss expires too");
    }

    #[test]
    fn errors_are_not_cached_and_keep_stale_answer() {
        let mut t = Table::new();
        assert_eq!(t.get_or_lookup(1, Duration::ZERO, |_| Lookup::Error), None);
        assert!(!t.entries.contains_key(&1));
        t.get_or_lookup(1, Duration::ZERO, |_| Lookup::Found("old".into()));
        let got = t.get_or_lookup(1, Duration::ZERO, |_| Lookup::Error);
        assert_eq!(got.as_deref(), Some("old"));
    }

    #[test]
    fn size_is_bounded() {
        let mut t = Table::new();
        let ttl = Duration::from_secs(60);
        for id in 0..MAX_ENTRIES as u32 {
            t.get_or_lookup(id, ttl, |_| Lookup::NotFound);
        }
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        // Refreshing an existing id does not clear.
        t.get_or_lookup(0, Duration::ZERO, |_| Lookup::NotFound);
        assert_eq!(t.entries.len(), MAX_ENTRIES);
        // A new id past the bound clears the table first.
        t.get_or_lookup(MAX_ENTRIES as u32, ttl, |_| Lookup::NotFound);
        assert_eq!(t.entries.len(), 1);
    }

    #[test]
    fn buffer_grows_on_erange() {
        let mut sizes = Vec::new();
        let name = c"grown";
        let got = lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
            sizes.push(buf.len());
            if buf.len() < 100_000 {
                (libc::ERANGE, None)
            } else {
                (0, Some(name.as_ptr()))
            }
        });
        assert_eq!(got, Lookup::Found("grown".into()));
        assert!(
            sizes
                .windows(2)
                .all(|w| w[1] == w[0] * 2 || w[1] == MAX_BUF)
        );
        assert!(*sizes.last().unwrap() >= 100_000);
    }

    #[test]
    fn buffer_growth_is_bounded() {
        let mut calls = 0;
        let got = lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |buf| {
            calls += 1;
            assert!(buf.len() <= MAX_BUF);
            (libc::ERANGE, None)
        });
        assert_eq!(got, Lookup::Error);
        assert!(calls < 20);
    }

    #[test]
    fn not_found_errnos_and_errors() {
        for rc in [0, libc::ENOENT, libc::ESRCH, libc::EBADF, libc::EPERM] {
            assert_eq!(
                lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |_| (rc, None)),
                Lookup::NotFound,
                "{rc}"
            );
        }
        assert_eq!(
            lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |_| (libc::EIO, None)),
            Lookup::Error
        );
        assert_eq!(
            lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |_| (libc::EMFILE, None)),
            Lookup::Error
        );
    }

    #[test]
    fn non_utf8_name_is_lossy() {
        let raw = c"b\xffd\x01";
        let got = lookup_with(libc::_SC_GETPW_R_SIZE_MAX, |_| (0, Some(raw.as_ptr())));
        assert_eq!(got, Lookup::Found("b\u{fffd}d\u{1}".into()));
    }
}
