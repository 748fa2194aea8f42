//! The records of `procwatch.h`, mirrored as `#[repr(C)]` Rust structs.
//!
//! The layout is checked on both sides at compile time: here every struct's
//! size and every field's offset (`offset_of!`), in the header the same
//! numbers with `_Static_assert`. The unit test below reads the header's list
//! and compares it with this one, so a change made to one side only fails a
//! build or that test. Fields keep their C names.

use std::mem::{offset_of, size_of};

/// Must match `RECORD_VERSION` in procwatch.h.
pub const RECORD_VERSION: u16 = 4;

// Record kinds (`record_prefix.kind`), as in procwatch.h.
pub const K_EXEC: u16 = 1;
pub const K_FORK: u16 = 2;
pub const K_EXIT: u16 = 3;

// `record_hdr.flags`, as in procwatch.h.
pub const F_ARGV_TRUNC: u32 = 1 << 0;
pub const F_ARGV_FAULT: u32 = 1 << 1;
pub const F_FILENAME_TRUNC: u32 = 1 << 2;
pub const F_HAS_INTERP: u32 = 1 << 3;
pub const F_INTERP_UNKNOWN: u32 = 1 << 4;
pub const F_EXE_TRUNC: u32 = 1 << 5;
pub const F_EXE_PSEUDO: u32 = 1 << 6;
pub const F_EXE_UNLINKED: u32 = 1 << 7;
pub const F_CWD_TRUNC: u32 = 1 << 8;
pub const F_CWD_MISSING: u32 = 1 << 9;
pub const F_SECUREEXEC: u32 = 1 << 10;
pub const F_SECUREEXEC_UNKNOWN: u32 = 1 << 11;
pub const F_HAS_AUDIT: u32 = 1 << 12;
pub const F_NO_FILE: u32 = 1 << 13;
pub const F_HAS_PRE: u32 = 1 << 14;
pub const F_HAS_STAMP: u32 = 1 << 15;
pub const F_HAS_NS: u32 = 1 << 16;
pub const F_HAS_PIDNS: u32 = 1 << 17;
pub const F_HAS_USERNS: u32 = 1 << 18;
pub const F_HAS_MNT_ID: u32 = 1 << 19;

/// Plain record data: any bytes of the right length are a valid value, and
/// every byte of a value is initialised.
///
/// # Safety
/// Implemented only by the structs of `record_struct!`: `#[repr(C)]`,
/// integer and integer-array fields only, with no implicit padding (each
/// asserts that its fields' sizes add up to its size).
pub unsafe trait Plain: Copy {}

/// The `T` at the start of `rec`, or `None` if `rec` is shorter than `T`.
///
/// The copy is unaligned: the ring buffer aligns records to 8 bytes, but
/// the reader's batches copy raw records to any offset, and so do tests.
pub fn read<T: Plain>(rec: &[u8]) -> Option<T> {
    if rec.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `rec` holds at least size_of::<T>() readable bytes, read
    // without alignment, and `T: Plain` makes any bytes a valid `T`.
    Some(unsafe { rec.as_ptr().cast::<T>().read_unaligned() })
}

/// The bytes of a record, as the BPF program writes them (for tests that
/// build records).
#[cfg(test)]
pub fn bytes_of<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `T: Plain` has no padding, so all size_of::<T>() bytes of `v`
    // are initialised; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), size_of::<T>()) }
}

/// A struct's layout, for the test against procwatch.h.
#[cfg(test)]
pub struct Layout {
    pub c_name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

/// Defines a mirror struct with its C name, size and every field's offset,
/// and asserts all of them (and the absence of implicit padding) at compile
/// time.
macro_rules! record_struct {
    (
        $(#[$meta:meta])*
        struct $name:ident = $c_name:literal, size $size:literal {
            $($(#[$fmeta:meta])* $field:ident: $ty:ty = $off:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        const _: () = {
            assert!(size_of::<$name>() == $size);
            $(assert!(offset_of!($name, $field) == $off);)*
            assert!(0 $(+ size_of::<$ty>())* == $size, "implicit padding");
        };

        // SAFETY: repr(C), integer fields, no padding (asserted above).
        unsafe impl Plain for $name {}

        impl $name {
            #[cfg(test)]
            pub const LAYOUT: Layout = Layout {
                c_name: $c_name,
                size: $size,
                fields: &[$((stringify!($field), $off)),*],
            };
        }
    };
}

record_struct! {
    /// `struct record_prefix`: the start of every record.
    struct RecordPrefix = "record_prefix", size 4 {
        version: u16 = 0,
        kind: u16 = 2,
    }
}

record_struct! {
    /// `struct counters`: one CPU's value of the counters map.
    struct Counters = "counters", size 56 {
        seen: u64 = 0,
        emitted: u64 = 8,
        dropped: u64 = 16,
        truncated: u64 = 24,
        aux_seen: u64 = 32,
        aux_emitted: u64 = 40,
        aux_dropped: u64 = 48,
    }
}

record_struct! {
    /// `struct record_hdr`: an exec record's fixed part. The variable part
    /// follows it: argv, filename, interp, exe and cwd, with the lengths
    /// `argv_len` .. `cwd_len`.
    struct RecordHdr = "record_hdr", size 296 {
        version: u16 = 0,
        kind: u16 = 2,
        flags: u32 = 4,
        exec_boot_ns: u64 = 8,
        start_boot_ns: u64 = 16,
        /// The full argv size, even when the copy is truncated.
        argv_size: u64 = 24,
        cap_effective: u64 = 32,
        cap_permitted: u64 = 40,
        cap_inheritable: u64 = 48,
        cap_ambient: u64 = 56,
        pid: u32 = 64,
        tid: u32 = 68,
        exec_tid: u32 = 72,
        ppid: u32 = 76,
        uid: u32 = 80,
        euid: u32 = 84,
        suid: u32 = 88,
        fsuid: u32 = 92,
        gid: u32 = 96,
        egid: u32 = 100,
        sgid: u32 = 104,
        fsgid: u32 = 108,
        loginuid: u32 = 112,
        sessionid: u32 = 116,
        file_mode: u32 = 120,
        file_uid: u32 = 124,
        file_gid: u32 = 128,
        argv_len: u16 = 132,
        filename_len: u16 = 134,
        interp_len: u16 = 136,
        exe_len: u16 = 138,
        cwd_len: u16 = 140,
        pad: u16 = 142,
        comm: [u8; 16] = 144,
        file_ino: u64 = 160,
        /// The kernel's encoding: major << 20 | minor.
        file_dev: u32 = 168,
        pad2: u32 = 172,
        parent_start_boot_ns: u64 = 176,
        pre_uid: u32 = 184,
        pre_euid: u32 = 188,
        pre_cap_effective: u64 = 192,
        file_size: u64 = 200,
        mtime_sec: i64 = 208,
        ctime_sec: i64 = 216,
        mtime_nsec: u32 = 224,
        ctime_nsec: u32 = 228,
        /// Namespace inode numbers (`F_HAS_NS`).
        ns_pid_own: u32 = 232,
        ns_pid_children: u32 = 236,
        ns_mnt: u32 = 240,
        ns_net: u32 = 244,
        ns_user: u32 = 248,
        ns_uts: u32 = 252,
        ns_ipc: u32 = 256,
        ns_cgroup: u32 = 260,
        /// The pid in its own pid namespace, and that namespace's depth
        /// (`F_HAS_PIDNS`).
        ns_pid: u32 = 264,
        pidns_level: u32 = 268,
        /// The credentials' user namespace depth and owner (`F_HAS_USERNS`).
        userns_level: u32 = 272,
        userns_owner: u32 = 276,
        /// cgroup v2 id; 0 when unknown.
        cgroup_id: u64 = 280,
        /// `F_HAS_MNT_ID`.
        exe_mnt_id: u32 = 288,
        pad3: u32 = 292,
    }
}

record_struct! {
    /// `struct pre_creds`: a slot of the pre-exec credentials map (kernel
    /// side only; mirrored so its layout is checked with the rest).
    struct PreCreds = "pre_creds", size 32 {
        task: u64 = 0,
        tid: u32 = 8,
        uid: u32 = 12,
        euid: u32 = 16,
        pad: u32 = 20,
        cap_effective: u64 = 24,
    }
}

record_struct! {
    /// `struct fork_record`: a new process.
    struct ForkRecord = "fork_record", size 40 {
        version: u16 = 0,
        kind: u16 = 2,
        pid: u32 = 4,
        ppid: u32 = 8,
        pad: u32 = 12,
        time_boot_ns: u64 = 16,
        start_boot_ns: u64 = 24,
        parent_start_boot_ns: u64 = 32,
    }
}

record_struct! {
    /// `struct exit_record`: a process ended.
    struct ExitRecord = "exit_record", size 48 {
        version: u16 = 0,
        kind: u16 = 2,
        pid: u32 = 4,
        ppid: u32 = 8,
        exit_code: u32 = 12,
        time_boot_ns: u64 = 16,
        start_boot_ns: u64 = 24,
        comm: [u8; 16] = 32,
    }
}

// Every record starts with the prefix.
const _: () = {
    assert!(offset_of!(RecordHdr, version) == offset_of!(RecordPrefix, version));
    assert!(offset_of!(RecordHdr, kind) == offset_of!(RecordPrefix, kind));
    assert!(offset_of!(ForkRecord, version) == offset_of!(RecordPrefix, version));
    assert!(offset_of!(ForkRecord, kind) == offset_of!(RecordPrefix, kind));
    assert!(offset_of!(ExitRecord, version) == offset_of!(RecordPrefix, version));
    assert!(offset_of!(ExitRecord, kind) == offset_of!(RecordPrefix, kind));
};

#[cfg(test)]
mod tests {
    use super::*;

    /// (struct, field or "" for the size, bytes), sorted.
    type Entries = Vec<(String, String, usize)>;

    /// The `PW_SIZE(s, n);` and `PW_OFFSET(s, f, n);` lines of procwatch.h.
    fn c_layout() -> Entries {
        let mut out = Vec::new();
        for line in include_str!("procwatch.h").lines() {
            let (size, rest) = if let Some(r) = line.strip_prefix("PW_SIZE(") {
                (true, r)
            } else if let Some(r) = line.strip_prefix("PW_OFFSET(") {
                (false, r)
            } else {
                continue;
            };
            let args: Vec<&str> = rest
                .strip_suffix(");")
                .unwrap_or_else(|| panic!("unexpected layout line: {line}"))
                .split(',')
                .map(str::trim)
                .collect();
            let n = args.last().unwrap().parse().unwrap();
            let field = if size { "" } else { args[1] };
            assert_eq!(args.len(), if size { 2 } else { 3 }, "{line}");
            out.push((args[0].to_string(), field.to_string(), n));
        }
        out.sort();
        out
    }

    fn rust_layout() -> Entries {
        let mut out = Vec::new();
        for l in [
            RecordPrefix::LAYOUT,
            Counters::LAYOUT,
            RecordHdr::LAYOUT,
            PreCreds::LAYOUT,
            ForkRecord::LAYOUT,
            ExitRecord::LAYOUT,
        ] {
            out.push((l.c_name.to_string(), String::new(), l.size));
            for &(f, off) in l.fields {
                out.push((l.c_name.to_string(), f.to_string(), off));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn layout_matches_the_c_header() {
        let c = c_layout();
        // The header's list covers every struct (a parse that found
        // nothing would compare two empty lists).
        assert_eq!(c.iter().filter(|e| e.1.is_empty()).count(), 6, "{c:?}");
        let rust = rust_layout();
        let only_c: Vec<_> = c.iter().filter(|e| !rust.contains(e)).collect();
        let only_rust: Vec<_> = rust.iter().filter(|e| !c.contains(e)).collect();
        assert!(
            only_c.is_empty() && only_rust.is_empty(),
            "procwatch.h only: {only_c:?}; abi.rs only: {only_rust:?}"
        );
    }

    #[test]
    fn read_copies_unaligned_and_checks_length() {
        let hdr = ForkRecord {
            version: RECORD_VERSION,
            kind: K_FORK,
            pid: 7,
            time_boot_ns: u64::MAX - 1,
            ..ForkRecord::default()
        };
        let mut buf = vec![0xAA];
        buf.extend_from_slice(bytes_of(&hdr));
        assert_eq!(read::<ForkRecord>(&buf[1..]), Some(hdr));
        assert_eq!(read::<ForkRecord>(&buf[1..40]), None);
        let prefix = read::<RecordPrefix>(&buf[1..]).unwrap();
        assert_eq!((prefix.version, prefix.kind), (RECORD_VERSION, K_FORK));
    }
}
