//! The WQL queries the WMI source sends, built in one place so their exact
//! text is unit-tested.

use std::time::Duration;

/// Polling query: WMI compares `Win32_Process` snapshots every `interval`.
/// Processes that start and exit between two snapshots
/// are never seen, which is why the source says so on start.
pub fn creation_poll(interval: Duration) -> String {
    format!(
        "SELECT * FROM __InstanceCreationEvent WITHIN {} \
         WHERE TargetInstance ISA 'Win32_Process'",
        seconds(interval)
    )
}

/// Event-driven query (needs admin): one event per process start, from the
/// kernel's process notifications, so nothing is missed between polls.
pub const START_TRACE: &str = "SELECT * FROM Win32_ProcessStartTrace";

/// The fields read from `Win32_Process` for a process a trace event named.
/// The pid is a number, so nothing needs quoting.
pub fn process_by_pid(pid: u32) -> String {
    format!(
        "SELECT CommandLine, CreationDate, ExecutablePath, ParentProcessId, ProcessId \
         FROM Win32_Process WHERE ProcessId = {pid}"
    )
}

/// `WITHIN` takes seconds and accepts fractions; written without an
/// exponent or trailing zeros (`1`, `0.5`, `2.25`), to the millisecond.
pub fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_query_text() {
        assert_eq!(
            creation_poll(Duration::from_secs(1)),
            "SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Win32_Process'"
        );
        assert_eq!(
            creation_poll(Duration::from_millis(250)),
            "SELECT * FROM __InstanceCreationEvent WITHIN 0.25 WHERE TargetInstance ISA 'Win32_Process'"
        );
    }

    #[test]
    fn seconds_formatting() {
        assert_eq!(seconds(Duration::from_secs(10)), "10");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
        assert_eq!(seconds(Duration::from_millis(2250)), "2.25");
        assert_eq!(seconds(Duration::from_millis(1001)), "1.001");
        assert_eq!(seconds(Duration::from_micros(1_500_900)), "1.5");
    }

    #[test]
    fn per_pid_and_trace_queries() {
        assert_eq!(
            process_by_pid(4242),
            "SELECT CommandLine, CreationDate, ExecutablePath, ParentProcessId, ProcessId \
             FROM Win32_Process WHERE ProcessId = 4242"
        );
        assert_eq!(process_by_pid(u32::MAX).matches("4294967295").count(), 1);
        assert_eq!(START_TRACE, "SELECT * FROM Win32_ProcessStartTrace");
    }
}
