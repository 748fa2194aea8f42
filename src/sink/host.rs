//! The machine's name: the start event's `hostname` and the `host` of
//! every JSONL line.

/// The kernel's host name (as `uname -n`), or empty when it cannot be read.
#[cfg(not(windows))]
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Windows sets `COMPUTERNAME` for every process.
#[cfg(windows)]
pub fn host_name() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_default()
}
