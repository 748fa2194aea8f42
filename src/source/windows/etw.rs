//! ETW: the kernel logger's process events, read through ferrisetw.
//!
//! The kernel logger (not the Microsoft-Windows-Kernel-Process manifest
//! provider) is used because its process-start record carries the command
//! line. Events arrive on ferrisetw's thread; the callback reads the new
//! process's token at once and hands the finished event to `emit`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use ferrisetw::parser::Parser;
use ferrisetw::provider::Provider;
use ferrisetw::provider::kernel_providers::PROCESS_PROVIDER;
use ferrisetw::trace::{KernelTrace, TraceTrait};
use ferrisetw::{EventRecord, SchemaLocator};
use windows_sys::Win32::System::Diagnostics::Etw::{
    CONTROLTRACE_HANDLE, ControlTraceW, EVENT_TRACE_CONTROL, EVENT_TRACE_CONTROL_QUERY,
    EVENT_TRACE_CONTROL_STOP, EVENT_TRACE_PROPERTIES,
};

use super::dmtf::filetime_i64_to_system;
use super::record::RawStart;

/// Opcode of `Process_TypeGroup1` "Start" (2 is End, 3 and 4 the rundown).
const OPCODE_START: u8 = 1;

/// A running kernel-logger session.
pub struct Etw {
    trace: Option<KernelTrace>,
    name: String,
    stopping: Arc<AtomicBool>,
}

impl Etw {
    /// Starts the session; `emit` is called for every process start, and
    /// `ended` once if event processing ends before [`Etw::stop`], with why.
    pub fn start(
        emit: impl Fn(RawStart) + Send + Sync + 'static,
        ended: impl FnOnce(String) + Send + 'static,
    ) -> Result<Self, String> {
        let name = format!("procwatch-{}", std::process::id());
        let provider = Provider::kernel(&PROCESS_PROVIDER)
            .add_callback(move |record: &EventRecord, schemas: &SchemaLocator| {
                if record.opcode() != OPCODE_START {
                    return;
                }
                emit(parse(record, schemas));
            })
            .build();
        let trace = match KernelTrace::new()
            .named(name.clone())
            .enable(provider)
            .start()
        {
            Ok(started) => started,
            Err(e) => {
                // ferrisetw leaves the session running when a step after
                // StartTraceW fails (OpenTraceW, as under Wine): a session
                // is a system-wide resource that outlives the process, so
                // stop it by its name, which holds procwatch's pid.
                let stopped = match control(&name, EVENT_TRACE_CONTROL_STOP) {
                    Ok(_) => "; the session it had started was stopped".to_owned(),
                    // StartTraceW itself failed: nothing was left running.
                    Err(NO_SUCH_SESSION) => String::new(),
                    Err(rc) => format!("; stopping its session failed: Win32 error {rc}"),
                };
                return Err(format!("starting the kernel logger: {e:?}{stopped}"));
            }
        };
        let (trace, handle) = trace;
        let stopping = Arc::new(AtomicBool::new(false));
        let stop_seen = Arc::clone(&stopping);
        // ferrisetw's own processing thread drops ProcessTrace's result;
        // this one reports it, so a session that dies is noticed.
        std::thread::Builder::new()
            .name("procwatch-etw".into())
            .spawn(move || {
                let result = KernelTrace::process_from_handle(handle);
                if !stop_seen.load(Ordering::SeqCst) {
                    ended(match result {
                        Ok(()) => "ProcessTrace returned: the session ended".to_owned(),
                        Err(e) => format!("ProcessTrace failed: {e:?}"),
                    });
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Etw {
            trace: Some(trace),
            name,
            stopping,
        })
    }

    /// ETW's own count of events it lost in this session (buffers full).
    pub fn events_lost(&self) -> Result<u64, String> {
        query_lost(&self.name)
    }

    /// Stops the session; events already delivered stay delivered.
    pub fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(t) = self.trace.take() {
            let _ = t.stop();
        }
    }
}

/// Fields of the start record; what cannot be parsed stays `None` and the
/// event assembly names it.
fn parse(record: &EventRecord, schemas: &SchemaLocator) -> RawStart {
    let mut raw = RawStart::default();
    match filetime_i64_to_system(record.raw_timestamp()) {
        Ok(t) => raw.time = Some(t),
        Err(e) => {
            raw.time = Some(SystemTime::now());
            raw.problem(
                "time",
                format!("{e}; the time the event was received is shown"),
            );
        }
    }
    let Ok(schema) = schemas.event_schema(record) else {
        return raw;
    };
    let p = Parser::create(record, &schema);
    raw.pid = p.try_parse::<u32>("ProcessId").unwrap_or(0);
    raw.ppid = p.try_parse::<u32>("ParentId").ok();
    raw.command_line = p.try_parse::<String>("CommandLine").ok();
    raw
}

/// `ControlTraceW(QUERY)` for the session's `EventsLost`.
fn query_lost(name: &str) -> Result<u64, String> {
    control(name, EVENT_TRACE_CONTROL_QUERY)
        .map_err(|rc| format!("ControlTraceW(QUERY) failed: Win32 error {rc}"))
}

/// `ERROR_WMI_INSTANCE_NOT_FOUND`: no session has that name.
const NO_SUCH_SESSION: u32 = 4201;

/// `ControlTraceW(code)` on the session called `name`; returns the events
/// it lost (the properties the call writes back), or the Win32 error.
fn control(name: &str, code: EVENT_TRACE_CONTROL) -> Result<u64, u32> {
    // The properties block is followed by room for the two names the call
    // writes back; u64 elements keep it aligned.
    let mut buf = vec![0u64; (size_of::<EVENT_TRACE_PROPERTIES>() + 2048).div_ceil(8)];
    let props = buf.as_mut_ptr().cast::<EVENT_TRACE_PROPERTIES>();
    let wide: Vec<u16> = name.encode_utf16().chain([0]).collect();
    // SAFETY: `props` points to a zeroed, aligned block of the size given
    // in BufferSize; the name is NUL-terminated.
    unsafe {
        (*props).Wnode.BufferSize = (buf.len() * 8) as u32;
        (*props).LoggerNameOffset = size_of::<EVENT_TRACE_PROPERTIES>() as u32;
        let rc = ControlTraceW(CONTROLTRACE_HANDLE { Value: 0 }, wide.as_ptr(), props, code);
        if rc != 0 {
            return Err(rc);
        }
        Ok(u64::from((*props).EventsLost) + u64::from((*props).RealTimeBuffersLost))
    }
}
