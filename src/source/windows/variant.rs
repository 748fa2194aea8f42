//! Reads WMI properties, decoding VARIANTs by hand.
//!
//! windows-core's VARIANT conversions call propsys.dll helpers that Wine
//! lacks; reading the tag and the union directly needs nothing but the
//! struct layout. A property that is missing or NULL is `None`, never an
//! error, because WMI leaves many fields empty for protected processes.

use windows::Win32::System::Wmi::IWbemClassObject;
use windows::core::imp::{VT_BSTR, VT_I4, VT_UI4, VT_UNKNOWN};
use windows::core::{HSTRING, IUnknown, Interface, VARIANT};

/// Fetches one property; `None` when missing or null.
fn get(obj: &IWbemClassObject, name: &str) -> Option<VARIANT> {
    let mut v = VARIANT::default();
    // SAFETY: `v` is a valid out VARIANT, cleared by its Drop.
    unsafe { obj.Get(&HSTRING::from(name), 0, &mut v, None, None) }.ok()?;
    Some(v)
}

/// A string property (VT_BSTR); uint64 and datetime properties are also
/// strings in WMI.
pub fn string(obj: &IWbemClassObject, name: &str) -> Option<String> {
    let v = get(obj, name)?;
    let raw = v.as_raw();
    // SAFETY: the tag says which union member is live.
    unsafe {
        if raw.Anonymous.Anonymous.vt != VT_BSTR {
            return None;
        }
        let p = raw.Anonymous.Anonymous.Anonymous.bstrVal;
        if p.is_null() {
            return None;
        }
        // A BSTR carries its byte length in the 4 bytes before the text.
        let bytes = *p.cast::<u32>().sub(1) as usize;
        Some(String::from_utf16_lossy(std::slice::from_raw_parts(
            p,
            bytes / 2,
        )))
    }
}

/// A uint32 property (WMI hands these out as VT_I4).
pub fn u32_of(obj: &IWbemClassObject, name: &str) -> Option<u32> {
    let v = get(obj, name)?;
    let raw = v.as_raw();
    // SAFETY: as above.
    unsafe {
        match raw.Anonymous.Anonymous.vt {
            VT_I4 => Some(raw.Anonymous.Anonymous.Anonymous.lVal as u32),
            VT_UI4 => Some(raw.Anonymous.Anonymous.Anonymous.ulVal),
            _ => None,
        }
    }
}

/// An embedded object property such as `TargetInstance`.
pub fn object(obj: &IWbemClassObject, name: &str) -> Option<IWbemClassObject> {
    let v = get(obj, name)?;
    let raw = v.as_raw();
    // SAFETY: as above; the borrowed pointer is AddRef'd by `cast`.
    unsafe {
        if raw.Anonymous.Anonymous.vt != VT_UNKNOWN {
            return None;
        }
        let p = raw.Anonymous.Anonymous.Anonymous.punkVal;
        IUnknown::from_raw_borrowed(&p)?.cast().ok()
    }
}
