//! WMI through COM on `windows` 0.57 (the `wmi` crate does not compile on
//! Linux, so it could not be checked there).
//!
//! Lives on one thread: COM objects here are apartment-bound, so the source
//! runs this in its own worker and sends results over a channel.

use std::time::{Duration, SystemTime};

use windows::Win32::System::Com::{
    CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED, CoCreateInstance, CoInitializeEx,
    CoInitializeSecurity, CoSetProxyBlanket, EOAC_NONE, RPC_C_AUTHN_LEVEL_CALL,
    RPC_C_AUTHN_LEVEL_DEFAULT, RPC_C_IMP_LEVEL_IMPERSONATE,
};
use windows::Win32::System::Rpc::{RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE};
use windows::Win32::System::Wmi::{
    IEnumWbemClassObject, IWbemClassObject, IWbemLocator, IWbemServices, WBEM_FLAG_FORWARD_ONLY,
    WBEM_FLAG_RETURN_IMMEDIATELY, WbemLocator,
};
use windows::core::{BSTR, PCWSTR};

use super::dmtf::{filetime_i64_to_system, parse_dmtf};
use super::record::RawStart;
use super::variant;
use super::wql;

/// `WBEM_S_TIMEDOUT`: `Next` returned because the timeout expired.
const WBEM_S_TIMEDOUT: i32 = 0x40004;

/// A connected WMI event subscription.
pub struct Wmi {
    services: IWbemServices,
    events: IEnumWbemClassObject,
    trace: bool,
}

fn err(what: &str, e: windows::core::Error) -> String {
    format!("{what}: {e}")
}

impl Wmi {
    /// Connects to `ROOT\CIMV2` and subscribes: `Win32_ProcessStartTrace`
    /// when `trace`, else creation polling every `interval`.
    pub fn connect(trace: bool, interval: Duration) -> Result<Self, String> {
        // SAFETY: COM initialisation for this thread; the security call may
        // fail with RPC_E_TOO_LATE if the process already set it, which is
        // harmless, so its result is ignored.
        let services = unsafe {
            CoInitializeEx(None, COINIT_MULTITHREADED)
                .ok()
                .map_err(|e| err("CoInitializeEx", e))?;
            let _ = CoInitializeSecurity(
                None,
                -1,
                None,
                None,
                RPC_C_AUTHN_LEVEL_DEFAULT,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
                None,
            );
            let locator: IWbemLocator = CoCreateInstance(&WbemLocator, None, CLSCTX_INPROC_SERVER)
                .map_err(|e| err("WbemLocator", e))?;
            let services = locator
                .ConnectServer(
                    &BSTR::from("ROOT\\CIMV2"),
                    &BSTR::new(),
                    &BSTR::new(),
                    &BSTR::new(),
                    0,
                    &BSTR::new(),
                    None,
                )
                .map_err(|e| err("ConnectServer", e))?;
            CoSetProxyBlanket(
                &services,
                RPC_C_AUTHN_WINNT,
                RPC_C_AUTHZ_NONE,
                PCWSTR::null(),
                RPC_C_AUTHN_LEVEL_CALL,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
            )
            .map_err(|e| err("CoSetProxyBlanket", e))?;
            services
        };
        let query = if trace {
            wql::START_TRACE.to_owned()
        } else {
            wql::creation_poll(interval)
        };
        // SAFETY: valid BSTRs; the enumerator is semisynchronous.
        let events = unsafe {
            services.ExecNotificationQuery(
                &BSTR::from("WQL"),
                &BSTR::from(query),
                WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY,
                None,
            )
        }
        .map_err(|e| err("ExecNotificationQuery", e))?;
        Ok(Wmi {
            services,
            events,
            trace,
        })
    }

    /// Waits up to `timeout` for the next process start.
    pub fn next(&self, timeout: Duration) -> Result<Option<RawStart>, String> {
        let mut objs: [Option<IWbemClassObject>; 1] = [None];
        let mut got = 0u32;
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one output slot, as passed.
        let hr = unsafe { self.events.Next(ms, &mut objs, &mut got) };
        if hr.0 == WBEM_S_TIMEDOUT || got == 0 {
            return hr
                .ok()
                .map(|()| None)
                .map_err(|e| err("IEnumWbemClassObject::Next", e));
        }
        let Some(event) = objs[0].take() else {
            return Ok(None);
        };
        Ok(Some(if self.trace {
            self.read_trace(&event)
        } else {
            from_instance(&event)
        }))
    }

    /// A trace event carries the pid and parent; the rest comes from
    /// `Win32_Process` at once, while the process most likely still runs.
    fn read_trace(&self, event: &IWbemClassObject) -> RawStart {
        let pid = variant::u32_of(event, "ProcessID").unwrap_or(0);
        let mut raw = self.lookup(pid).unwrap_or(RawStart {
            pid,
            ..RawStart::default()
        });
        event_time(event, &mut raw);
        raw.ppid = raw.ppid.or(variant::u32_of(event, "ParentProcessID"));
        raw
    }

    fn lookup(&self, pid: u32) -> Option<RawStart> {
        // SAFETY: valid BSTRs; forward-only synchronous enumeration.
        let list = unsafe {
            self.services.ExecQuery(
                &BSTR::from("WQL"),
                &BSTR::from(wql::process_by_pid(pid)),
                WBEM_FLAG_FORWARD_ONLY | WBEM_FLAG_RETURN_IMMEDIATELY,
                None,
            )
        }
        .ok()?;
        let mut objs: [Option<IWbemClassObject>; 1] = [None];
        let mut got = 0u32;
        // SAFETY: one output slot. WBEM_INFINITE is -1; 2 s bounds a stuck query.
        unsafe { list.Next(2000, &mut objs, &mut got) }.ok().ok()?;
        objs[0].take().map(|p| process_fields(&p))
    }
}

/// `__InstanceCreationEvent`: the process is in `TargetInstance`.
fn from_instance(event: &IWbemClassObject) -> RawStart {
    let mut raw = variant::object(event, "TargetInstance")
        .map(|p| process_fields(&p))
        .unwrap_or_default();
    event_time(event, &mut raw);
    raw
}

/// The event's `TIME_CREATED` (a FILETIME as a decimal string); the time
/// it was received when that is missing or unusable, with the reason.
fn event_time(event: &IWbemClassObject, raw: &mut RawStart) {
    let text = variant::string(event, "TIME_CREATED");
    let parsed = text.as_deref().map(|s| {
        s.parse::<i64>()
            .map_err(|_| format!("bad TIME_CREATED {s:?}: not a number"))
            .and_then(|t| filetime_i64_to_system(t).map_err(|e| e.to_string()))
    });
    match parsed {
        Some(Ok(t)) => raw.time = Some(t),
        Some(Err(why)) => {
            raw.time = Some(SystemTime::now());
            raw.problem(
                "time",
                format!("{why}; the time the event was received is shown"),
            );
        }
        None => raw.time = raw.time.or(Some(SystemTime::now())),
    }
}

/// The fields of a `Win32_Process` instance that every WMI event carries:
/// pid, parent, command line, exe and creation time.
fn process_fields(p: &IWbemClassObject) -> RawStart {
    let mut raw = RawStart {
        pid: variant::u32_of(p, "ProcessId").unwrap_or(0),
        ppid: variant::u32_of(p, "ParentProcessId"),
        command_line: variant::string(p, "CommandLine"),
        exe: variant::string(p, "ExecutablePath"),
        ..RawStart::default()
    };
    if let Some(s) = variant::string(p, "CreationDate") {
        match parse_dmtf(&s) {
            Ok(t) => raw.created = Some(t),
            Err(e) => raw.problem("process_start", e),
        }
    }
    raw
}
