//! Reads a new process's token and image the moment its start is reported.
//!
//! The process is opened with `PROCESS_QUERY_LIMITED_INFORMATION` (granted
//! for far more processes than `PROCESS_QUERY_INFORMATION`), every privilege is kept with its state
//! (enabled is one bit, not an equality), and nothing fails silently: each
//! part that cannot be read is listed in `incomplete` with the reason.
//!
//! Only flat `windows-sys` calls are used here, so the unit tests can link
//! fake Win32 functions and run the routine on Linux.

use std::ffi::c_void;
use std::ptr;
use std::time::SystemTime;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_PARAMETER, FILETIME,
    GetLastError, HANDLE, LUID, LocalFree,
};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    GetSidSubAuthority, GetSidSubAuthorityCount, GetTokenInformation, LUID_AND_ATTRIBUTES,
    LookupAccountSidW, LookupPrivilegeNameW, PSID, SID_NAME_USE, TOKEN_INFORMATION_CLASS,
    TOKEN_MANDATORY_LABEL, TOKEN_QUERY, TOKEN_USER, TokenElevation, TokenElevationType,
    TokenIntegrityLevel, TokenPrivileges, TokenSessionId, TokenUser,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessTimes, OpenProcess, OpenProcessToken,
    PROCESS_QUERY_LIMITED_INFORMATION, QueryFullProcessImageNameW,
};

use super::dmtf::filetime_to_system;
use super::record::ProcessSnapshot;
use crate::event::{ElevationType, IntegrityLevel, WinPrivilege};

/// Closes a handle when dropped, so every early return releases it.
pub struct Handle(pub HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful Open* call and is closed
        // exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// The last Win32 error, as a short reason for `incomplete`.
pub fn last_error_reason(call: &str) -> String {
    // SAFETY: no preconditions.
    let code = unsafe { GetLastError() };
    match code {
        // OpenProcess on a pid that no longer exists.
        ERROR_INVALID_PARAMETER => "process exited before it was read".to_owned(),
        ERROR_ACCESS_DENIED => format!("access denied ({call})"),
        _ => format!("{call} failed: Win32 error {code}"),
    }
}

/// UTF-16 to UTF-8; unpaired surrogates (possible in Windows names) become
/// U+FFFD rather than failing the whole field.
pub fn from_wide(w: &[u16]) -> String {
    let end = w.iter().position(|&c| c == 0).unwrap_or(w.len());
    String::from_utf16_lossy(&w[..end])
}

/// Opens `pid` with `access`; the error is a reason for `incomplete`.
pub fn open_process(pid: u32, access: u32) -> Result<Handle, String> {
    // SAFETY: plain call; a null result is checked.
    let raw = unsafe { OpenProcess(access, 0, pid) };
    if raw.is_null() {
        return Err(last_error_reason("OpenProcess"));
    }
    Ok(Handle(raw))
}

/// Reads everything for `pid`. Never fails: what cannot be read is listed.
pub fn read_process(pid: u32) -> ProcessSnapshot {
    let mut snap = ProcessSnapshot::default();
    let process = match open_process(pid, PROCESS_QUERY_LIMITED_INFORMATION) {
        Ok(h) => h,
        Err(why) => {
            for field in ["exe", "process_start", "token", "user"] {
                snap.missing(field, &why);
            }
            return snap;
        }
    };
    match creation_time(&process) {
        Ok(t) => snap.created = Some(t),
        Err(why) => snap.missing("process_start", &why),
    }
    read_opened(&process, &mut snap);
    snap
}

/// Reads the image path and the token of an opened process (opened with at
/// least `PROCESS_QUERY_LIMITED_INFORMATION`) into `snap`.
pub fn read_opened(process: &Handle, snap: &mut ProcessSnapshot) {
    match image_path(process) {
        Ok(p) => snap.exe = Some(p),
        Err(why) => snap.missing("exe", &why),
    }
    let mut tok: HANDLE = ptr::null_mut();
    // SAFETY: `tok` is a valid out pointer.
    if unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut tok) } == 0 {
        let why = last_error_reason("OpenProcessToken");
        snap.missing("token", &why);
        snap.missing("user", &why);
        return;
    }
    let tok = Handle(tok);
    read_token(&tok, snap);
}

/// Whether procwatch itself runs with an elevated token (the admin-only
/// sources are skipped otherwise). Unknown counts as not elevated.
pub fn current_is_elevated() -> bool {
    let mut tok: HANDLE = ptr::null_mut();
    // SAFETY: the pseudo-handle needs no closing; `tok` is a valid out pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut tok) } == 0 {
        return false;
    }
    let tok = Handle(tok);
    // TOKEN_ELEVATION is a single u32 flag.
    token_info(&tok, TokenElevation)
        .map(|b| b[0] as u32 != 0)
        .unwrap_or(false)
}

/// The process's creation time (`GetProcessTimes`).
pub fn creation_time(process: &Handle) -> Result<SystemTime, String> {
    filetime_to_system(creation_ticks(process)?).map_err(|e| e.to_string())
}

/// The raw creation FILETIME: with the pid, what identifies a process.
pub fn creation_ticks(process: &Handle) -> Result<u64, String> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: four valid out pointers.
    let ok =
        unsafe { GetProcessTimes(process.0, &mut created, &mut exited, &mut kernel, &mut user) };
    if ok == 0 {
        return Err(last_error_reason("GetProcessTimes"));
    }
    Ok((u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

fn image_path(process: &Handle) -> Result<String, String> {
    // Long paths (\\?\...) can exceed MAX_PATH; 32K UTF-16 units is the limit.
    let mut buf = vec![0u16; 32_768];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` holds `len` units; flags 0 asks for a Win32 path.
    let ok = unsafe { QueryFullProcessImageNameW(process.0, 0, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return Err(last_error_reason("QueryFullProcessImageNameW"));
    }
    Ok(from_wide(&buf[..len as usize]))
}

/// `GetTokenInformation` into a buffer aligned for pointers (TOKEN_USER
/// holds one), sized by a first probing call.
fn token_info(tok: &Handle, class: TOKEN_INFORMATION_CLASS) -> Result<Vec<u64>, String> {
    let mut need = 0u32;
    // SAFETY: a null buffer of length 0 only asks for the size.
    let ok = unsafe { GetTokenInformation(tok.0, class, ptr::null_mut(), 0, &mut need) };
    // SAFETY: no preconditions.
    if ok == 0 && unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
        return Err(last_error_reason("GetTokenInformation"));
    }
    let mut buf = vec![0u64; (need as usize).div_ceil(8).max(1)];
    let len = (buf.len() * 8) as u32;
    // SAFETY: `buf` is `len` bytes, writable and 8-aligned.
    let ok = unsafe { GetTokenInformation(tok.0, class, buf.as_mut_ptr().cast(), len, &mut need) };
    if ok == 0 {
        return Err(last_error_reason("GetTokenInformation"));
    }
    Ok(buf)
}

fn read_token(tok: &Handle, snap: &mut ProcessSnapshot) {
    match token_info(tok, TokenPrivileges).map(|b| privileges(&b)) {
        Ok(p) => snap.token.privileges = Some(p),
        Err(why) => snap.missing("token.privileges", &why),
    }
    match token_info(tok, TokenUser) {
        Ok(buf) => {
            // SAFETY: the buffer holds a TOKEN_USER whose SID points inside it.
            let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
            match sid_string(sid) {
                Ok(s) => snap.token.user_sid = Some(s),
                Err(why) => snap.missing("token.user_sid", &why),
            }
            match account_name(sid) {
                Ok(s) => snap.token.owner = Some(s),
                Err(why) => snap.missing("user", &why),
            }
        }
        Err(why) => {
            snap.missing("token.user_sid", &why);
            snap.missing("user", &why);
        }
    }
    match token_info(tok, TokenIntegrityLevel) {
        Ok(buf) => {
            // SAFETY: the buffer holds a TOKEN_MANDATORY_LABEL.
            let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_MANDATORY_LABEL>()).Label.Sid };
            snap.token.integrity = Some(IntegrityLevel::from_rid(last_sub_authority(sid)));
        }
        Err(why) => snap.missing("token.integrity", &why),
    }
    match token_info(tok, TokenElevationType) {
        // SAFETY (both reads): the buffers hold one 32-bit value.
        Ok(buf) => match ElevationType::from_raw(unsafe { *buf.as_ptr().cast::<i32>() }) {
            Some(e) => snap.token.elevation = Some(e),
            None => snap.missing("token.elevation_type", "unknown TOKEN_ELEVATION_TYPE"),
        },
        Err(why) => snap.missing("token.elevation_type", &why),
    }
    match token_info(tok, TokenSessionId) {
        Ok(buf) => snap.token.session_id = Some(unsafe { *buf.as_ptr().cast::<u32>() }),
        Err(why) => snap.missing("token.session_id", &why),
    }
}

/// Decodes a TOKEN_PRIVILEGES buffer, bounded by the buffer's own length
/// so a wrong count cannot read past it.
fn privileges(buf: &[u64]) -> Vec<WinPrivilege> {
    let bytes = buf.len() * 8;
    let base = buf.as_ptr().cast::<u8>();
    // SAFETY: the buffer is at least 8 bytes and starts with the count.
    let count = unsafe { *base.cast::<u32>() } as usize;
    let entry = size_of::<LUID_AND_ATTRIBUTES>();
    let fits = bytes.saturating_sub(4) / entry;
    (0..count.min(fits))
        .map(|i| {
            // SAFETY: entry i lies within the buffer (checked above); the
            // array follows the u32 count at offset 4, so read unaligned.
            let la = unsafe {
                base.add(4 + i * entry)
                    .cast::<LUID_AND_ATTRIBUTES>()
                    .read_unaligned()
            };
            WinPrivilege {
                name: privilege_name(&la.Luid),
                attributes: la.Attributes,
            }
        })
        .collect()
}

/// `SeDebugPrivilege` etc.; an unknown LUID is shown as numbers rather
/// than dropped.
fn privilege_name(luid: &LUID) -> String {
    let mut buf = [0u16; 128];
    let mut len = buf.len() as u32;
    // SAFETY: `buf` holds `len` units.
    let ok = unsafe { LookupPrivilegeNameW(ptr::null(), luid, buf.as_mut_ptr(), &mut len) };
    if ok == 0 {
        return format!("LUID 0x{:x}:0x{:x}", luid.HighPart, luid.LowPart);
    }
    from_wide(&buf[..(len as usize).min(buf.len())])
}

fn sid_string(sid: PSID) -> Result<String, String> {
    let mut out: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is valid for the life of the token buffer; on success
    // `out` is a NUL-terminated string the system allocated with LocalAlloc.
    if unsafe { ConvertSidToStringSidW(sid, &mut out) } == 0 {
        return Err(last_error_reason("ConvertSidToStringSidW"));
    }
    let mut len = 0;
    // SAFETY: NUL-terminated, see above.
    while unsafe { *out.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` units were just walked.
    let s = from_wide(unsafe { std::slice::from_raw_parts(out, len) });
    // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc.
    unsafe { LocalFree(out.cast::<c_void>()) };
    Ok(s)
}

/// `DOMAIN\user` for a SID, growing the buffers if the first try is short.
fn account_name(sid: PSID) -> Result<String, String> {
    let (mut name_len, mut dom_len) = (64u32, 64u32);
    for _ in 0..2 {
        let mut name = vec![0u16; name_len as usize];
        let mut dom = vec![0u16; dom_len as usize];
        let mut use_: SID_NAME_USE = 0;
        // SAFETY: buffers hold the lengths passed.
        let ok = unsafe {
            LookupAccountSidW(
                ptr::null(),
                sid,
                name.as_mut_ptr(),
                &mut name_len,
                dom.as_mut_ptr(),
                &mut dom_len,
                &mut use_,
            )
        };
        if ok != 0 {
            let (d, n) = (from_wide(&dom), from_wide(&name));
            return Ok(if d.is_empty() { n } else { format!("{d}\\{n}") });
        }
        // SAFETY: no preconditions.
        if unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
            break;
        }
    }
    Err(last_error_reason("LookupAccountSidW"))
}

/// The last sub-authority of a SID: the RID (for an integrity SID, the
/// mandatory level).
fn last_sub_authority(sid: PSID) -> u32 {
    // SAFETY: `sid` is a valid SID inside the token buffer; the index is
    // count-1, checked to be in range.
    unsafe {
        let count = u32::from(*GetSidSubAuthorityCount(sid));
        if count == 0 {
            return 0;
        }
        *GetSidSubAuthority(sid, count - 1)
    }
}

#[cfg(all(test, not(windows)))]
mod fake_win32;

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;
    use crate::event::WindowsToken;
    use crate::event::{
        SE_PRIVILEGE_ENABLED, SE_PRIVILEGE_ENABLED_BY_DEFAULT, SE_PRIVILEGE_USED_FOR_ACCESS,
    };
    use fake_win32::{ACCESS_DENIED_TOKEN_PID, EXITED_PID, FULL_PID, LONG_NAME_PID};

    fn fields(s: &ProcessSnapshot) -> Vec<(&str, &str)> {
        s.incomplete
            .iter()
            .map(|i| (i.field, i.reason.as_str()))
            .collect()
    }

    #[test]
    fn reads_a_full_token_with_every_privilege_state() {
        let s = read_process(FULL_PID);
        assert_eq!(s.incomplete, []);
        assert_eq!(s.exe.as_deref(), Some("C:\\Windows\\System32\\cmd.exe"));
        assert_eq!(
            s.created.map(crate::sink::escape::time_rfc3339).as_deref(),
            Some("2024-02-29T12:00:00.000000Z")
        );
        let t = &s.token;
        let privs = t.privileges.as_ref().unwrap();
        let got: Vec<(&str, u32)> = privs
            .iter()
            .map(|p| (p.name.as_str(), p.attributes))
            .collect();
        assert_eq!(
            got,
            [
                ("SeShutdownPrivilege", 0),
                (
                    "SeChangeNotifyPrivilege",
                    SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT
                ),
                ("SeDebugPrivilege", SE_PRIVILEGE_ENABLED),
                (
                    "SeBackupPrivilege",
                    SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_USED_FOR_ACCESS
                ),
                ("LUID 0x1:0x99", SE_PRIVILEGE_ENABLED_BY_DEFAULT),
            ]
        );
        // The runtime-enabled ones are kept (an equality test drops both).
        assert_eq!(
            t.enabled_names(),
            [
                "SeChangeNotifyPrivilege",
                "SeDebugPrivilege",
                "SeBackupPrivilege"
            ]
        );
        assert_eq!(t.integrity, Some(IntegrityLevel::High));
        assert_eq!(t.elevation, Some(ElevationType::Full));
        assert_eq!(t.session_id, Some(1));
        assert_eq!(t.user_sid.as_deref(), Some("S-1-5-21-1-2-3-1001"));
        assert_eq!(t.owner.as_deref(), Some("DESKTOP\\alice"));
    }

    #[test]
    fn exited_process_says_so_for_every_field() {
        let s = read_process(EXITED_PID);
        assert_eq!(s.token, WindowsToken::default());
        let why = "process exited before it was read";
        assert_eq!(
            fields(&s),
            [
                ("exe", why),
                ("process_start", why),
                ("token", why),
                ("user", why)
            ]
        );
    }

    #[test]
    fn token_access_denied_keeps_what_was_read() {
        let s = read_process(ACCESS_DENIED_TOKEN_PID);
        assert!(s.exe.is_some() && s.created.is_some());
        assert_eq!(
            fields(&s),
            [
                ("token", "access denied (OpenProcessToken)"),
                ("user", "access denied (OpenProcessToken)")
            ]
        );
    }

    #[test]
    fn long_account_names_grow_the_buffers() {
        let s = read_process(LONG_NAME_PID);
        let owner = s.token.owner.unwrap();
        assert_eq!(owner.len(), 100 + 1 + 200);
        assert!(owner.starts_with("DDDD") && owner.ends_with("uuuu"));
        assert_eq!(s.token.integrity, Some(IntegrityLevel::Medium));
        assert_eq!(s.token.elevation, Some(ElevationType::Limited));
        assert_eq!(s.token.privileges.as_deref(), Some(&[][..]));
    }

    #[test]
    fn handles_are_all_closed() {
        let before = fake_win32::open_handles();
        for pid in [FULL_PID, EXITED_PID, ACCESS_DENIED_TOKEN_PID, LONG_NAME_PID] {
            read_process(pid);
        }
        // Each test thread has its own counter, so this is exact.
        assert_eq!(fake_win32::open_handles(), before);
    }

    #[test]
    fn wide_strings() {
        assert_eq!(from_wide(&[0x41, 0x42, 0, 0x43]), "AB");
        assert_eq!(from_wide(&[0xd800, 0x41]), "\u{fffd}A");
        assert_eq!(from_wide(&[]), "");
    }
}
