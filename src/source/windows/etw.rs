//! ETW: the kernel logger's process events, read through ferrisetw.
//!
//! The kernel logger (not the Microsoft-Windows-Kernel-Process manifest
//! provider) is used because its process-start record carries the command
//! line. Events arrive on ferrisetw's thread; the callback reads the new
//! process's token at once and hands the finished event to `emit`.

use std::time::SystemTime;

use ferrisetw::parser::Parser;
use ferrisetw::provider::Provider;
use ferrisetw::provider::kernel_providers::PROCESS_PROVIDER;
use ferrisetw::trace::KernelTrace;
use ferrisetw::{EventRecord, SchemaLocator};
use windows_sys::Win32::System::Diagnostics::Etw::{
    CONTROLTRACE_HANDLE, ControlTraceW, EVENT_TRACE_CONTROL_QUERY, EVENT_TRACE_PROPERTIES,
};

use super::dmtf::filetime_to_system;
use super::record::RawStart;

/// Opcode of `Process_TypeGroup1` "Start" (2 is End, 3 and 4 the rundown).
const OPCODE_START: u8 = 1;

/// A running kernel-logger session.
pub struct Etw {
    trace: Option<KernelTrace>,
    name: String,
}

impl Etw {
    /// Starts the session; `emit` is called for every process start.
    pub fn start(emit: impl Fn(RawStart) + Send + Sync + 'static) -> Result<Self, String> {
        let name = format!("procwatch-{}", std::process::id());
        let provider = Provider::kernel(&PROCESS_PROVIDER)
            .add_callback(move |record: &EventRecord, schemas: &SchemaLocator| {
                if record.opcode() != OPCODE_START {
                    return;
                }
                emit(parse(record, schemas));
            })
            .build();
        let trace = KernelTrace::new()
            .named(name.clone())
            .enable(provider)
            .start_and_process()
            .map_err(|e| format!("starting the kernel logger: {e:?}"))?;
        Ok(Etw {
            trace: Some(trace),
            name,
        })
    }

    /// ETW's own count of events it lost in this session (buffers full).
    pub fn events_lost(&self) -> Result<u64, String> {
        query_lost(&self.name)
    }

    /// Stops the session; events already delivered stay delivered.
    pub fn stop(&mut self) {
        if let Some(t) = self.trace.take() {
            let _ = t.stop();
        }
    }
}

/// Fields of the start record; what cannot be parsed stays `None` and the
/// event assembly names it.
fn parse(record: &EventRecord, schemas: &SchemaLocator) -> RawStart {
    let time = u64::try_from(record.raw_timestamp())
        .ok()
        .map(filetime_to_system)
        .or(Some(SystemTime::now()));
    let Ok(schema) = schemas.event_schema(record) else {
        return RawStart {
            time,
            ..RawStart::default()
        };
    };
    let p = Parser::create(record, &schema);
    RawStart {
        time,
        pid: p.try_parse::<u32>("ProcessId").unwrap_or(0),
        ppid: p.try_parse::<u32>("ParentId").ok(),
        created: None,
        command_line: p.try_parse::<String>("CommandLine").ok(),
        exe: None,
    }
}

/// `ControlTraceW(QUERY)` for the session's `EventsLost`.
fn query_lost(name: &str) -> Result<u64, String> {
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
        let rc = ControlTraceW(
            CONTROLTRACE_HANDLE { Value: 0 },
            wide.as_ptr(),
            props,
            EVENT_TRACE_CONTROL_QUERY,
        );
        if rc != 0 {
            return Err(format!("ControlTraceW(QUERY) failed: Win32 error {rc}"));
        }
        Ok(u64::from((*props).EventsLost) + u64::from((*props).RealTimeBuffersLost))
    }
}
