//! Fake Win32 functions for the token routine's unit tests on Linux.
//!
//! On non-Windows targets `windows-sys` declares its imports without a
//! library, so these `#[no_mangle] extern "system"` definitions are what the
//! test binary links against. They model one machine with a few processes
//! whose tokens are known, and check the arguments that are easy to get
//! wrong (process access right, token access right).
// Win32 spells its functions and constants this way; the bodies are small
// enough that per-operation `unsafe` blocks would only add noise.
#![allow(non_snake_case, non_upper_case_globals, unsafe_op_in_unsafe_fn)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;

use windows_sys::Win32::Foundation::{
    BOOL, ERROR_ACCESS_DENIED, ERROR_INSUFFICIENT_BUFFER, ERROR_INVALID_PARAMETER, FILETIME,
    HANDLE, HLOCAL, LUID, WIN32_ERROR,
};
use windows_sys::Win32::Security::{
    LUID_AND_ATTRIBUTES, PSID, SID_AND_ATTRIBUTES, SID_NAME_USE, TOKEN_INFORMATION_CLASS,
    TOKEN_MANDATORY_LABEL, TOKEN_QUERY, TOKEN_USER, TokenElevationType, TokenIntegrityLevel,
    TokenPrivileges, TokenSessionId, TokenUser,
};
use windows_sys::Win32::System::Threading::PROCESS_QUERY_LIMITED_INFORMATION;
use windows_sys::core::{PCWSTR, PWSTR};

use crate::event::{
    SE_PRIVILEGE_ENABLED, SE_PRIVILEGE_ENABLED_BY_DEFAULT, SE_PRIVILEGE_USED_FOR_ACCESS,
};

/// A process whose token has every interesting privilege state.
pub const FULL_PID: u32 = 100;
/// A process that exited before it was opened.
pub const EXITED_PID: u32 = 200;
/// A process that can be opened but whose token cannot.
pub const ACCESS_DENIED_TOKEN_PID: u32 = 300;
/// A process whose account names exceed the first buffer size.
pub const LONG_NAME_PID: u32 = 400;

const ERROR_NO_SUCH_PRIVILEGE: WIN32_ERROR = 1313;

thread_local! {
    static LAST_ERROR: Cell<WIN32_ERROR> = const { Cell::new(0) };
    static HANDLES: Cell<i64> = const { Cell::new(0) };
    static LOCAL_ALLOCS: RefCell<HashMap<usize, Vec<u16>>> = RefCell::new(HashMap::new());
}

/// Handles opened and not yet closed on this thread, plus live LocalAlloc
/// blocks: both must return to where they were.
pub fn open_handles() -> i64 {
    HANDLES.get() + LOCAL_ALLOCS.with_borrow(|m| m.len()) as i64
}

fn fail(code: WIN32_ERROR) -> BOOL {
    LAST_ERROR.set(code);
    0
}

/// The binary layout of a SID with room for a few sub-authorities.
#[repr(C)]
struct FakeSid {
    revision: u8,
    count: u8,
    authority: [u8; 6],
    sub: [u32; 5],
}

const fn sid(authority: u8, sub: [u32; 5], count: u8) -> FakeSid {
    FakeSid {
        revision: 1,
        count,
        authority: [0, 0, 0, 0, 0, authority],
        sub,
    }
}

// `static mut` only because the API hands out `*mut` SIDs; never written.
static mut ALICE: FakeSid = sid(5, [21, 1, 2, 3, 1001], 5);
static mut LONG: FakeSid = sid(5, [21, 1, 2, 3, 1002], 5);
static mut HIGH: FakeSid = sid(16, [0x3000, 0, 0, 0, 0], 1);
static mut MEDIUM: FakeSid = sid(16, [0x2000, 0, 0, 0, 0], 1);

fn handle(pid: u32, kind: usize) -> HANDLE {
    HANDLES.set(HANDLES.get() + 1);
    ((pid as usize) << 4 | kind) as HANDLE
}

fn pid_of(h: HANDLE) -> u32 {
    (h as usize >> 4) as u32
}

fn bytes_of<T>(v: &T) -> Vec<u8> {
    // SAFETY: any initialised value can be viewed as bytes.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()).to_vec() }
}

fn privileges_of(pid: u32) -> Vec<u8> {
    let luid = |low: u32, high: i32| LUID {
        LowPart: low,
        HighPart: high,
    };
    let list: Vec<LUID_AND_ATTRIBUTES> = if pid == FULL_PID {
        vec![
            (luid(19, 0), 0),
            (
                luid(23, 0),
                SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_ENABLED_BY_DEFAULT,
            ),
            (luid(20, 0), SE_PRIVILEGE_ENABLED),
            (
                luid(17, 0),
                SE_PRIVILEGE_ENABLED | SE_PRIVILEGE_USED_FOR_ACCESS,
            ),
            (luid(0x99, 1), SE_PRIVILEGE_ENABLED_BY_DEFAULT),
        ]
        .into_iter()
        .map(|(Luid, Attributes)| LUID_AND_ATTRIBUTES { Luid, Attributes })
        .collect()
    } else {
        Vec::new()
    };
    let mut out = (list.len() as u32).to_ne_bytes().to_vec();
    for la in &list {
        out.extend(bytes_of(la));
    }
    out
}

fn token_content(pid: u32, class: TOKEN_INFORMATION_CLASS) -> Vec<u8> {
    let full = pid == FULL_PID;
    let sid_and = |sid: *mut FakeSid| SID_AND_ATTRIBUTES {
        Sid: sid.cast(),
        Attributes: 0,
    };
    match class {
        TokenPrivileges => privileges_of(pid),
        TokenUser => bytes_of(&TOKEN_USER {
            User: sid_and(if full { &raw mut ALICE } else { &raw mut LONG }),
        }),
        TokenIntegrityLevel => bytes_of(&TOKEN_MANDATORY_LABEL {
            Label: sid_and(if full { &raw mut HIGH } else { &raw mut MEDIUM }),
        }),
        TokenElevationType => (if full { 2i32 } else { 3 }).to_ne_bytes().to_vec(),
        TokenSessionId => 1u32.to_ne_bytes().to_vec(),
        other => panic!("unexpected token class {other}"),
    }
}

/// Copies `s` plus a NUL into a caller buffer of `*cch` units, with the
/// Win32 convention: on success `*cch` is the length without the NUL.
unsafe fn put_wide(s: &str, buf: PWSTR, cch: *mut u32) -> bool {
    let w: Vec<u16> = s.encode_utf16().collect();
    if (*cch as usize) <= w.len() {
        *cch = w.len() as u32 + 1;
        return false;
    }
    buf.copy_from_nonoverlapping(w.as_ptr(), w.len());
    *buf.add(w.len()) = 0;
    *cch = w.len() as u32;
    true
}

#[unsafe(no_mangle)]
extern "system" fn GetLastError() -> WIN32_ERROR {
    LAST_ERROR.get()
}

#[unsafe(no_mangle)]
extern "system" fn OpenProcess(access: u32, inherit: BOOL, pid: u32) -> HANDLE {
    // Not PROCESS_QUERY_INFORMATION, which is refused for many processes.
    assert_eq!(access, PROCESS_QUERY_LIMITED_INFORMATION);
    assert_eq!(inherit, 0);
    if pid == EXITED_PID {
        fail(ERROR_INVALID_PARAMETER);
        return std::ptr::null_mut();
    }
    handle(pid, 1)
}

#[unsafe(no_mangle)]
unsafe extern "system" fn OpenProcessToken(process: HANDLE, access: u32, out: *mut HANDLE) -> BOOL {
    assert_eq!(access, TOKEN_QUERY, "query only; never ask for more");
    let pid = pid_of(process);
    if pid == ACCESS_DENIED_TOKEN_PID {
        return fail(ERROR_ACCESS_DENIED);
    }
    *out = handle(pid, 2);
    1
}

#[unsafe(no_mangle)]
extern "system" fn CloseHandle(h: HANDLE) -> BOOL {
    assert!(!h.is_null());
    HANDLES.set(HANDLES.get() - 1);
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn GetProcessTimes(
    _process: HANDLE,
    created: *mut FILETIME,
    _exited: *mut FILETIME,
    _kernel: *mut FILETIME,
    _user: *mut FILETIME,
) -> BOOL {
    // 2024-02-29T12:00:00Z
    let t: u64 = 133_536_816_000_000_000;
    *created = FILETIME {
        dwLowDateTime: t as u32,
        dwHighDateTime: (t >> 32) as u32,
    };
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn QueryFullProcessImageNameW(
    _process: HANDLE,
    flags: u32,
    buf: PWSTR,
    size: *mut u32,
) -> BOOL {
    assert_eq!(flags, 0, "Win32 path, not an NT device path");
    if put_wide("C:\\Windows\\System32\\cmd.exe", buf, size) {
        1
    } else {
        fail(ERROR_INSUFFICIENT_BUFFER)
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn GetTokenInformation(
    token: HANDLE,
    class: TOKEN_INFORMATION_CLASS,
    buf: *mut c_void,
    len: u32,
    ret: *mut u32,
) -> BOOL {
    let content = token_content(pid_of(token), class);
    *ret = content.len() as u32;
    if (len as usize) < content.len() {
        return fail(ERROR_INSUFFICIENT_BUFFER);
    }
    buf.cast::<u8>()
        .copy_from_nonoverlapping(content.as_ptr(), content.len());
    1
}

#[unsafe(no_mangle)]
unsafe extern "system" fn LookupPrivilegeNameW(
    system: PCWSTR,
    luid: *const LUID,
    name: PWSTR,
    cch: *mut u32,
) -> BOOL {
    assert!(system.is_null(), "local machine");
    let n = match ((*luid).HighPart, (*luid).LowPart) {
        (0, 17) => "SeBackupPrivilege",
        (0, 19) => "SeShutdownPrivilege",
        (0, 20) => "SeDebugPrivilege",
        (0, 23) => "SeChangeNotifyPrivilege",
        _ => return fail(ERROR_NO_SUCH_PRIVILEGE),
    };
    if put_wide(n, name, cch) {
        1
    } else {
        fail(ERROR_INSUFFICIENT_BUFFER)
    }
}

#[unsafe(no_mangle)]
unsafe extern "system" fn GetSidSubAuthorityCount(sid: PSID) -> *mut u8 {
    &raw mut (*sid.cast::<FakeSid>()).count
}

#[unsafe(no_mangle)]
unsafe extern "system" fn GetSidSubAuthority(sid: PSID, n: u32) -> *mut u32 {
    let s = sid.cast::<FakeSid>();
    assert!(n < u32::from((*s).count));
    (&raw mut (*s).sub).cast::<u32>().add(n as usize)
}

#[unsafe(no_mangle)]
unsafe extern "system" fn ConvertSidToStringSidW(sid: PSID, out: *mut PWSTR) -> BOOL {
    let s = &*sid.cast::<FakeSid>();
    let mut text = format!("S-{}-{}", s.revision, s.authority[5]);
    for sub in &s.sub[..usize::from(s.count)] {
        text.push_str(&format!("-{sub}"));
    }
    let mut w: Vec<u16> = text.encode_utf16().collect();
    w.push(0);
    *out = w.as_mut_ptr();
    LOCAL_ALLOCS.with_borrow_mut(|m| m.insert(w.as_ptr() as usize, w));
    1
}

#[unsafe(no_mangle)]
extern "system" fn LocalFree(mem: HLOCAL) -> HLOCAL {
    let freed = LOCAL_ALLOCS.with_borrow_mut(|m| m.remove(&(mem as usize)));
    assert!(freed.is_some(), "LocalFree of a block not from LocalAlloc");
    std::ptr::null_mut()
}

#[unsafe(no_mangle)]
unsafe extern "system" fn LookupAccountSidW(
    system: PCWSTR,
    sid: PSID,
    name: PWSTR,
    cch_name: *mut u32,
    domain: PWSTR,
    cch_domain: *mut u32,
    use_: *mut SID_NAME_USE,
) -> BOOL {
    assert!(system.is_null());
    let s = &*sid.cast::<FakeSid>();
    let (d, n) = match s.sub[4] {
        1001 => ("DESKTOP".to_owned(), "alice".to_owned()),
        _ => ("D".repeat(100), "u".repeat(200)),
    };
    let (nw, dw) = (n.encode_utf16().count(), d.encode_utf16().count());
    if (*cch_name as usize) <= nw || (*cch_domain as usize) <= dw {
        *cch_name = nw as u32 + 1;
        *cch_domain = dw as u32 + 1;
        return fail(ERROR_INSUFFICIENT_BUFFER);
    }
    put_wide(&n, name, cch_name);
    put_wide(&d, domain, cch_domain);
    *use_ = 1; // SidTypeUser
    1
}
