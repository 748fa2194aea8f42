//! A process's command line and parent pid, read from the process itself.
//!
//! `NtQueryInformationProcess(ProcessCommandLineInformation)` needs only
//! `PROCESS_QUERY_LIMITED_INFORMATION` (Windows 8.1 and later). Where it is
//! not implemented the string is read from the process's PEB, which needs
//! `PROCESS_QUERY_INFORMATION | PROCESS_VM_READ`. WMI's
//! `Win32_Process.CommandLine` is not used: Wine leaves it empty for other
//! processes, and it is read later than this.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::ptr;

use windows_sys::Wdk::System::Threading::{
    NtQueryInformationProcess, ProcessBasicInformation, ProcessCommandLineInformation,
};
use windows_sys::Win32::Foundation::UNICODE_STRING;
use windows_sys::Win32::System::Diagnostics::Debug::ReadProcessMemory;
use windows_sys::Win32::System::Threading::{
    PEB, PROCESS_BASIC_INFORMATION, PROCESS_QUERY_INFORMATION, PROCESS_VM_READ,
    RTL_USER_PROCESS_PARAMETERS,
};

use super::token::{Handle, creation_ticks, from_wide, open_process};

/// A command line is at most 32,767 UTF-16 units (`CreateProcessW`).
const MAX_BYTES: usize = 32_767 * 2;

/// The parent pid the kernel recorded for the process
/// (`InheritedFromUniqueProcessId`), read through the handle so it belongs
/// to the very process that handle names.
pub fn parent_pid(process: &Handle) -> Result<u32, String> {
    let info = basic_info(process)?;
    u32::try_from(info.InheritedFromUniqueProcessId)
        .map_err(|_| "parent pid out of range".to_owned())
}

fn basic_info(process: &Handle) -> Result<PROCESS_BASIC_INFORMATION, String> {
    // SAFETY: an all-zero PROCESS_BASIC_INFORMATION is valid (integers and
    // a null pointer).
    let mut info: PROCESS_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    let mut len = 0u32;
    // SAFETY: `info` is writable and of the size passed.
    let status = unsafe {
        NtQueryInformationProcess(
            process.0,
            ProcessBasicInformation,
            ptr::from_mut(&mut info).cast(),
            size_of::<PROCESS_BASIC_INFORMATION>() as u32,
            &mut len,
        )
    };
    if status < 0 {
        return Err(format!(
            "NtQueryInformationProcess(ProcessBasicInformation) failed: NTSTATUS 0x{:08x}",
            status as u32
        ));
    }
    Ok(info)
}

/// Reads the command line of `process` (opened with at least
/// `PROCESS_QUERY_LIMITED_INFORMATION`), whose pid is `pid` and creation
/// FILETIME `created`. The PEB fallback opens the process again with more
/// rights, so it checks the creation time to be sure it read the same one.
pub fn command_line(process: &Handle, pid: u32, created: Option<u64>) -> Result<String, String> {
    let first = match query(process) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let more = open_process(pid, PROCESS_QUERY_INFORMATION | PROCESS_VM_READ)
        .map_err(|e| format!("{first}; reading the PEB: {e}"))?;
    if created.is_none() || creation_ticks(&more).ok() != created {
        return Err(format!(
            "{first}; reading the PEB: the pid now names another process"
        ));
    }
    from_peb(&more).map_err(|e| format!("{first}; reading the PEB: {e}"))
}

/// `ProcessCommandLineInformation`: a UNICODE_STRING whose buffer follows
/// it in the output.
fn query(process: &Handle) -> Result<String, String> {
    // u64 elements keep the UNICODE_STRING's pointer aligned.
    let mut buf = vec![0u64; (size_of::<UNICODE_STRING>() + MAX_BYTES + 2).div_ceil(8)];
    let bytes = buf.len() * 8;
    let mut len = 0u32;
    // SAFETY: `buf` is writable for `bytes` bytes.
    let status = unsafe {
        NtQueryInformationProcess(
            process.0,
            ProcessCommandLineInformation,
            buf.as_mut_ptr().cast(),
            bytes as u32,
            &mut len,
        )
    };
    if status < 0 {
        return Err(format!(
            "NtQueryInformationProcess(ProcessCommandLineInformation) failed: NTSTATUS 0x{:08x}",
            status as u32
        ));
    }
    // SAFETY: on success the buffer starts with a UNICODE_STRING.
    let us = unsafe { buf.as_ptr().cast::<UNICODE_STRING>().read() };
    let start = buf.as_ptr() as usize;
    let text = us.Buffer as usize;
    let n = usize::from(us.Length);
    // The string must lie inside what was returned; a kernel that wrote
    // elsewhere is not trusted.
    if us.Buffer.is_null() || text < start || text + n > start + bytes {
        return Err("ProcessCommandLineInformation returned a string outside its buffer".into());
    }
    // SAFETY: bounds checked above; UTF-16 units are 2-aligned in an
    // 8-aligned buffer at the offset the call chose, so read unaligned-safe
    // by copying.
    let units: Vec<u16> = (0..n / 2)
        .map(|i| unsafe { us.Buffer.add(i).read_unaligned() })
        .collect();
    Ok(String::from_utf16_lossy(&units))
}

/// Reads `PEB.ProcessParameters->CommandLine` from the process's memory.
/// Only the 64-bit PEB is read: procwatch is a 64-bit program, and a 32-bit
/// (WOW64) process still has one, whose parameters hold the command line.
fn from_peb(process: &Handle) -> Result<String, String> {
    let peb = basic_info(process)?.PebBaseAddress as usize;
    if peb == 0 {
        return Err("the process has no PEB".into());
    }
    let params: usize = read(process, peb + offset_of!(PEB, ProcessParameters))?;
    if params == 0 {
        return Err("the PEB has no process parameters".into());
    }
    let us: UNICODE_STRING = read(
        process,
        params + offset_of!(RTL_USER_PROCESS_PARAMETERS, CommandLine),
    )?;
    let n = usize::from(us.Length).min(MAX_BYTES) / 2;
    let mut units = vec![0u16; n];
    read_into(
        process,
        us.Buffer as usize,
        units.as_mut_ptr().cast(),
        n * 2,
    )?;
    Ok(from_wide(&units))
}

/// Reads one `T` from the process at `addr`.
fn read<T: Copy>(process: &Handle, addr: usize) -> Result<T, String> {
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    read_into(process, addr, v.as_mut_ptr().cast(), size_of::<T>())?;
    // SAFETY: every byte was written (or zeroed); T is a plain-data type
    // for which any bytes are valid (integers, pointers as addresses).
    Ok(unsafe { v.assume_init() })
}

fn read_into(process: &Handle, addr: usize, to: *mut c_void, n: usize) -> Result<(), String> {
    if n == 0 {
        return Ok(());
    }
    let mut got = 0usize;
    // SAFETY: `to` is writable for `n` bytes; the address is in the other
    // process and only read by the kernel.
    let ok = unsafe { ReadProcessMemory(process.0, addr as *const c_void, to, n, &mut got) };
    if ok == 0 || got != n {
        return Err(super::token::last_error_reason("ReadProcessMemory"));
    }
    Ok(())
}
