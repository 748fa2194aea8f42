//! Linux capability numbers and their names.
//!
//! The table mirrors `include/uapi/linux/capability.h`. It is kept here
//! rather than read from the running kernel because the names are a stable
//! ABI and sinks and filters need them even when rendering offline data.
//! Bits above [`CAP_LAST_KNOWN`] (capabilities added by newer kernels) are
//! still reported, by number, so nothing the kernel hands us is hidden.

use std::borrow::Cow;

/// The highest capability number this table knows (`CAP_CHECKPOINT_RESTORE`).
pub const CAP_LAST_KNOWN: u32 = 40;

/// A mask with every capability this table knows set (bits 0..=40), for
/// telling known capabilities from ones a newer kernel added.
pub const ALL_KNOWN_CAPS: u64 = (1u64 << (CAP_LAST_KNOWN + 1)) - 1;

/// Names indexed by capability number; the index is the ABI bit number, so
/// the order must match the kernel header exactly.
const CAP_NAMES: [&str; CAP_LAST_KNOWN as usize + 1] = [
    "CAP_CHOWN",              // 0
    "CAP_DAC_OVERRIDE",       // 1
    "CAP_DAC_READ_SEARCH",    // 2
    "CAP_FOWNER",             // 3
    "CAP_FSETID",             // 4
    "CAP_KILL",               // 5
    "CAP_SETGID",             // 6
    "CAP_SETUID",             // 7
    "CAP_SETPCAP",            // 8
    "CAP_LINUX_IMMUTABLE",    // 9
    "CAP_NET_BIND_SERVICE",   // 10
    "CAP_NET_BROADCAST",      // 11
    "CAP_NET_ADMIN",          // 12
    "CAP_NET_RAW",            // 13
    "CAP_IPC_LOCK",           // 14
    "CAP_IPC_OWNER",          // 15
    "CAP_SYS_MODULE",         // 16
    "CAP_SYS_RAWIO",          // 17
    "CAP_SYS_CHROOT",         // 18
    "CAP_SYS_PTRACE",         // 19
    "CAP_SYS_PACCT",          // 20
    "CAP_SYS_ADMIN",          // 21
    "CAP_SYS_BOOT",           // 22
    "CAP_SYS_NICE",           // 23
    "CAP_SYS_RESOURCE",       // 24
    "CAP_SYS_TIME",           // 25
    "CAP_SYS_TTY_CONFIG",     // 26
    "CAP_MKNOD",              // 27
    "CAP_LEASE",              // 28
    "CAP_AUDIT_WRITE",        // 29
    "CAP_AUDIT_CONTROL",      // 30
    "CAP_SETFCAP",            // 31
    "CAP_MAC_OVERRIDE",       // 32
    "CAP_MAC_ADMIN",          // 33
    "CAP_SYSLOG",             // 34
    "CAP_WAKE_ALARM",         // 35
    "CAP_BLOCK_SUSPEND",      // 36
    "CAP_AUDIT_READ",         // 37
    "CAP_PERFMON",            // 38
    "CAP_BPF",                // 39
    "CAP_CHECKPOINT_RESTORE", // 40
];

/// The kernel name of capability `bit` (e.g. `"CAP_CHOWN"` for 0), or `None`
/// if the bit is newer than this table.
pub fn cap_name(bit: u32) -> Option<&'static str> {
    CAP_NAMES.get(usize::try_from(bit).ok()?).copied()
}

/// Names of every capability set in `mask`, in ascending bit order.
///
/// Unknown bits are rendered as their decimal number (e.g. `"41"`) rather
/// than dropped, so a capability granted by a newer kernel is never invisible
/// in the output. `Cow` avoids allocating for the common, known case.
pub fn cap_names(mask: u64) -> Vec<Cow<'static, str>> {
    (0..u64::BITS)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| match cap_name(bit) {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(bit.to_string()),
        })
        .collect()
}

/// Parse a capability given by a user (e.g. in a filter) into its bit number.
///
/// Accepts any case, with or without the `CAP_` prefix (`"cap_sys_admin"`,
/// `"SYS_ADMIN"`), and also a plain decimal number below 64 so that
/// capabilities newer than this table can still be named the same way
/// [`cap_names`] prints them.
pub fn parse_cap_name(s: &str) -> Option<u32> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u32>().ok().filter(|&bit| bit < u64::BITS);
    }
    let bare = match s.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("CAP_") => &s[4..],
        _ => s,
    };
    if bare.is_empty() {
        return None;
    }
    CAP_NAMES
        .iter()
        .position(|name| name[4..].eq_ignore_ascii_case(bare))
        .and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_kernel_numbers() {
        // Spot checks against include/uapi/linux/capability.h.
        assert_eq!(cap_name(0), Some("CAP_CHOWN"));
        assert_eq!(cap_name(1), Some("CAP_DAC_OVERRIDE"));
        assert_eq!(cap_name(7), Some("CAP_SETUID"));
        assert_eq!(cap_name(12), Some("CAP_NET_ADMIN"));
        assert_eq!(cap_name(21), Some("CAP_SYS_ADMIN"));
        assert_eq!(cap_name(31), Some("CAP_SETFCAP"));
        assert_eq!(cap_name(32), Some("CAP_MAC_OVERRIDE"));
        assert_eq!(cap_name(37), Some("CAP_AUDIT_READ"));
        assert_eq!(cap_name(38), Some("CAP_PERFMON"));
        assert_eq!(cap_name(39), Some("CAP_BPF"));
        assert_eq!(cap_name(40), Some("CAP_CHECKPOINT_RESTORE"));
    }

    #[test]
    fn unknown_bits_have_no_name() {
        assert_eq!(cap_name(41), None);
        assert_eq!(cap_name(63), None);
        assert_eq!(cap_name(64), None);
        assert_eq!(cap_name(u32::MAX), None);
    }

    #[test]
    fn table_is_well_formed() {
        assert_eq!(CAP_NAMES.len(), 41);
        let mut seen = std::collections::HashSet::new();
        for name in CAP_NAMES {
            assert!(name.starts_with("CAP_"), "{name}");
            assert!(seen.insert(name), "duplicate {name}");
        }
    }

    #[test]
    fn all_known_mask() {
        assert_eq!(ALL_KNOWN_CAPS, 0x1ff_ffff_ffff);
        assert_eq!(ALL_KNOWN_CAPS.count_ones(), 41);
        assert_eq!(cap_names(ALL_KNOWN_CAPS).len(), 41);
    }

    #[test]
    fn names_of_mask_ascending() {
        assert!(cap_names(0).is_empty());
        let mask = (1 << 21) | (1 << 0) | (1 << 40);
        assert_eq!(
            cap_names(mask),
            vec!["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]
        );
    }

    #[test]
    fn names_of_mask_unknown_bits_as_numbers() {
        let mask = (1 << 5) | (1 << 41) | (1 << 63);
        let names = cap_names(mask);
        assert_eq!(names, vec!["CAP_KILL", "41", "63"]);
        assert!(matches!(names[0], Cow::Borrowed(_)));
        assert!(matches!(names[1], Cow::Owned(_)));
        assert_eq!(cap_names(u64::MAX).len(), 64);
    }

    #[test]
    fn parse_round_trips_every_name() {
        for bit in 0..=CAP_LAST_KNOWN {
            let name = cap_name(bit).unwrap();
            assert_eq!(parse_cap_name(name), Some(bit));
            assert_eq!(parse_cap_name(&name.to_lowercase()), Some(bit));
            assert_eq!(parse_cap_name(&name[4..]), Some(bit));
        }
    }

    #[test]
    fn parse_variants() {
        assert_eq!(parse_cap_name("cap_sys_admin"), Some(21));
        assert_eq!(parse_cap_name("Sys_Admin"), Some(21));
        assert_eq!(parse_cap_name("CaP_bPf"), Some(39));
        assert_eq!(parse_cap_name(" net_raw "), Some(13));
        assert_eq!(parse_cap_name("41"), Some(41));
        assert_eq!(parse_cap_name("0"), Some(0));
    }

    #[test]
    fn parse_rejects_garbage() {
        assert_eq!(parse_cap_name(""), None);
        assert_eq!(parse_cap_name("CAP_"), None);
        assert_eq!(parse_cap_name("cap"), None);
        assert_eq!(parse_cap_name("CAP_NOPE"), None);
        assert_eq!(parse_cap_name("SYS_ADMINX"), None);
        assert_eq!(parse_cap_name("CAP_CAP_CHOWN"), None);
        assert_eq!(parse_cap_name("64"), None);
        assert_eq!(parse_cap_name("99999999999999"), None);
        assert_eq!(parse_cap_name("-1"), None);
        // Non-ASCII must not panic on the prefix slice.
        assert_eq!(parse_cap_name("éé"), None);
        assert_eq!(parse_cap_name("CAé_CHOWN"), None);
    }
}
