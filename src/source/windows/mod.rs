//! Windows sources: ETW (the kernel logger's process events), WMI
//! (`Win32_ProcessStartTrace` events, or `__InstanceCreationEvent` polling)
//! and the process-list snapshot (`CreateToolhelp32Snapshot`), plus the
//! console control handler that stops a run on Ctrl-C.
//!
//! The pure parts (time formats, WQL text, source choice) compile on every
//! platform so their unit tests run on Linux CI. The parts that call Win32
//! are gated with `cfg(any(windows, winapi_check))`: `winapi_check` lets
//! Linux CI type-check and lint them (`RUSTFLAGS='--cfg winapi_check'`),
//! and lets the token routine's tests run against fake Win32 functions.

pub mod dmtf;
pub mod record;
pub mod select;
pub mod wql;

#[cfg(any(windows, winapi_check))]
pub mod cmdline;
#[cfg(any(windows, winapi_check))]
pub mod console;
#[cfg(any(windows, winapi_check))]
pub mod etw;
#[cfg(any(windows, winapi_check))]
pub mod snapshot;
#[cfg(any(windows, winapi_check))]
pub mod source;
#[cfg(any(windows, winapi_check))]
pub mod token;
#[cfg(any(windows, winapi_check))]
mod variant;
#[cfg(any(windows, winapi_check))]
pub mod wmi;

use std::time::Duration;

/// Windows-only settings from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `--interval`: the polling period of WMI polling (WQL `WITHIN`) and of
    /// the snapshot source; `None` for each one's default.
    pub interval: Option<Duration>,
}

/// WMI polling's default period (`WITHIN 1`); processes that live
/// shorter than one period can be missed.
pub const WMI_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The snapshot source's default period: a Toolhelp list is cheap, and
/// anything shorter than this is missed.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(100);

impl Options {
    /// The polling period for `kind` (`--interval`, or its default).
    pub fn interval_for(&self, kind: select::Kind) -> Duration {
        self.interval.unwrap_or(match kind {
            select::Kind::Snapshot => SNAPSHOT_INTERVAL,
            _ => WMI_POLL_INTERVAL,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_polling_source_has_its_default_interval() {
        let o = Options::default();
        assert_eq!(
            o.interval_for(select::Kind::Snapshot),
            Duration::from_millis(100)
        );
        assert_eq!(
            o.interval_for(select::Kind::WmiPoll),
            Duration::from_secs(1)
        );
        let o = Options {
            interval: Some(Duration::from_millis(250)),
        };
        assert_eq!(
            o.interval_for(select::Kind::Snapshot),
            Duration::from_millis(250)
        );
        assert_eq!(
            o.interval_for(select::Kind::WmiPoll),
            Duration::from_millis(250)
        );
    }
}
