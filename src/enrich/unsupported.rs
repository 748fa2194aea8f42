//! Stand-ins for the Linux-only enrichers on other systems (Windows). They
//! do nothing, so the fields they would fill (`exe_sha256`, `hijackable`,
//! the names of Linux ids) stay null instead of being guessed. Windows
//! events carry their own `DOMAIN\user` from the source.

pub mod hash {
    use crate::event::ExecEvent;

    /// Hashing needs the exec's dev/ino to be sure the file read is the one
    /// executed; Windows sources do not report them, so nothing is hashed.
    #[derive(Debug, Default)]
    pub struct ExeHasher;

    impl ExeHasher {
        pub fn new(_max_size: u64) -> Self {
            ExeHasher
        }

        /// Leaves `exe_sha256` unset.
        pub fn hash(&mut self, _ev: &mut ExecEvent) {}
    }
}

pub mod hash_pool {
    use std::time::Duration;

    use crate::event::{ExecEvent, HashInfo};

    pub const DEFAULT_RATE: u64 = 32 << 20;

    /// The settings the Linux hasher takes; unused here.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HashOptions {
        pub max_size: u64,
        pub rate: u64,
        pub timeout: Duration,
    }

    /// Nothing is hashed (see [`super::hash::ExeHasher`]), so nothing is
    /// ever pending.
    pub struct HashService;

    impl HashService {
        pub fn new(_opts: HashOptions) -> Self {
            HashService
        }

        pub fn pending(&self) -> usize {
            0
        }

        /// Leaves `exe_sha256` unset.
        pub fn submit(&mut self, _ev: &mut ExecEvent) {}

        pub fn poll(&mut self, _out: &mut Vec<HashInfo>) {}

        pub fn finish(&mut self, _wait: Duration, _out: &mut Vec<HashInfo>) {}
    }
}

pub mod hijack {
    use crate::event::ExecEvent;

    /// The check reads unix owners and modes; Windows ACLs are not modelled.
    #[derive(Debug, Default)]
    pub struct HijackChecker;

    impl HijackChecker {
        pub fn new() -> Self {
            HijackChecker
        }

        /// Leaves `hijackable` unset.
        pub fn check(&mut self, _ev: &mut ExecEvent) {}
    }
}

pub mod hijack_pool {
    use crate::event::ExecEvent;

    /// See [`super::hijack::HijackChecker`]: nothing is checked.
    #[derive(Debug, Default)]
    pub struct HijackService;

    impl HijackService {
        pub fn new() -> Self {
            HijackService
        }

        /// Leaves `hijackable` unset.
        pub fn check(&mut self, _ev: &mut ExecEvent) {}
    }
}

pub mod names {
    /// No NSS: Linux uids and gids have no names here.
    #[derive(Debug, Default)]
    pub struct NameCache;

    impl NameCache {
        pub fn new() -> Self {
            NameCache
        }

        pub fn user(&mut self, _uid: u32) -> Option<std::sync::Arc<str>> {
            None
        }

        pub fn group(&mut self, _gid: u32) -> Option<std::sync::Arc<str>> {
            None
        }
    }
}
