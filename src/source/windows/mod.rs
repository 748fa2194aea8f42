//! Windows sources: ETW (Microsoft-Windows-Kernel-Process) and WMI
//! (`Win32_ProcessStartTrace` events, or `__InstanceCreationEvent` polling).
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
pub mod etw;
#[cfg(any(windows, winapi_check))]
pub mod source;
#[cfg(any(windows, winapi_check))]
pub mod token;
#[cfg(any(windows, winapi_check))]
mod variant;
#[cfg(any(windows, winapi_check))]
pub mod wmi;

/// Windows-only settings from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--interval`: WMI polling period (WQL `WITHIN`).
    pub interval: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval: std::time::Duration::from_secs(1),
        }
    }
}
