//! Which Windows source to use, and why: pure logic, tested on Linux.
//!
//! `auto` tries ETW, then WMI trace events, then WMI polling, then the
//! process-list snapshot. The first two need an elevated token; without one
//! they are skipped with that reason rather than tried, so the explanation
//! is "not elevated" instead of an access-denied error code. A source counts
//! only once it has started: one that fails (WMI's `ExecNotificationQuery`
//! and ETW's `OpenTraceW` do under Wine) passes to the next, with why.

/// One of the Windows mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Microsoft-Windows-Kernel-Process through ferrisetw.
    Etw,
    /// WMI `Win32_ProcessStartTrace` events.
    WmiTrace,
    /// WMI `__InstanceCreationEvent ... WITHIN n` polling.
    WmiPoll,
    /// `CreateToolhelp32Snapshot` every interval, diffed by pid and
    /// creation time.
    Snapshot,
}

impl Kind {
    /// The `source` name in the `start` event.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Etw => "etw",
            Kind::WmiTrace => "wmi-trace",
            Kind::WmiPoll => "wmi-poll",
            Kind::Snapshot => "snapshot",
        }
    }
    fn needs_admin(self) -> bool {
        matches!(self, Kind::Etw | Kind::WmiTrace)
    }
    /// Polling sources miss what lives shorter than their interval.
    pub fn polls(self) -> bool {
        matches!(self, Kind::WmiPoll | Kind::Snapshot)
    }
}

/// What the user asked for on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `--source auto`.
    Auto,
    /// `--source etw`.
    Etw,
    /// `--source wmi`: trace events when elevated, else polling.
    Wmi,
    /// `--source snapshot`.
    Snapshot,
}

/// The outcome of [`choose`]: the opened source, which kind it is, and the
/// sentence to print on stderr.
#[derive(Debug)]
pub struct Chosen<T> {
    /// The opened source.
    pub source: T,
    /// Which mechanism it is.
    pub kind: Kind,
    /// Why this one: e.g. `etw failed (...); using wmi-trace`.
    pub why: String,
}

/// The kinds to try, in order, for a request.
pub fn candidates(req: Request) -> &'static [Kind] {
    match req {
        Request::Auto => &[Kind::Etw, Kind::WmiTrace, Kind::WmiPoll, Kind::Snapshot],
        Request::Etw => &[Kind::Etw],
        Request::Wmi => &[Kind::WmiTrace, Kind::WmiPoll],
        Request::Snapshot => &[Kind::Snapshot],
    }
}

/// Tries the candidates of `req` in order with `open`, skipping those that
/// need an elevated token when `elevated` is false. Returns the first that
/// opens, or every reason for failure joined with `; `.
pub fn choose<T>(
    req: Request,
    elevated: bool,
    open: impl FnMut(Kind) -> Result<T, String>,
) -> Result<Chosen<T>, String> {
    choose_from(candidates(req), elevated, open)
}

/// [`choose`] among `kinds`: also how a source that fails while running is
/// replaced by the candidates after it.
pub fn choose_from<T>(
    kinds: &[Kind],
    elevated: bool,
    mut open: impl FnMut(Kind) -> Result<T, String>,
) -> Result<Chosen<T>, String> {
    let mut notes: Vec<String> = Vec::new();
    for &kind in kinds {
        if kind.needs_admin() && !elevated {
            notes.push(format!("{} needs an elevated (admin) token", kind.name()));
            continue;
        }
        match open(kind) {
            Ok(source) => {
                let mut why = notes.join("; ");
                if !why.is_empty() {
                    why.push_str("; ");
                }
                why.push_str(&format!("using {}", kind.name()));
                if kind.polls() {
                    why.push_str(" (polling: processes shorter than the interval can be missed)");
                }
                return Ok(Chosen { source, kind, why });
            }
            Err(e) => notes.push(format!("{} failed: {e}", kind.name())),
        }
    }
    Err(notes.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(req: Request, elevated: bool, failing: &[Kind]) -> (Result<Kind, String>, Vec<Kind>) {
        let mut tried = Vec::new();
        let r = choose(req, elevated, |k| {
            tried.push(k);
            if failing.contains(&k) {
                Err(format!("{} broke", k.name()))
            } else {
                Ok(k)
            }
        });
        (r.map(|c| c.source), tried)
    }

    #[test]
    fn auto_prefers_etw_when_elevated() {
        let (r, tried) = trace(Request::Auto, true, &[]);
        assert_eq!(r, Ok(Kind::Etw));
        assert_eq!(tried, [Kind::Etw]);
        let c = choose(Request::Auto, true, Ok::<_, String>).unwrap();
        assert_eq!(c.why, "using etw");
    }

    #[test]
    fn auto_ends_with_the_snapshot_when_wmi_and_etw_fail() {
        // Wine: ETW and WMI queries fail; the process list works.
        let (r, tried) = trace(
            Request::Auto,
            true,
            &[Kind::Etw, Kind::WmiTrace, Kind::WmiPoll],
        );
        assert_eq!(r, Ok(Kind::Snapshot));
        assert_eq!(
            tried,
            [Kind::Etw, Kind::WmiTrace, Kind::WmiPoll, Kind::Snapshot]
        );
        let c = choose(Request::Auto, false, |k| match k {
            Kind::Snapshot => Ok(()),
            _ => Err("0x80041001".to_owned()),
        })
        .unwrap();
        assert_eq!(
            c.why,
            "etw needs an elevated (admin) token; wmi-trace needs an elevated (admin) token; \
             wmi-poll failed: 0x80041001; \
             using snapshot (polling: processes shorter than the interval can be missed)"
        );
        let (r, tried) = trace(Request::Snapshot, false, &[]);
        assert_eq!((r, tried), (Ok(Kind::Snapshot), vec![Kind::Snapshot]));
    }

    #[test]
    fn a_source_failing_while_running_is_replaced_by_the_ones_after_it() {
        // auto chose wmi-poll; it failed later: only the snapshot is left.
        let all = candidates(Request::Auto);
        let after = &all[all.iter().position(|&k| k == Kind::WmiPoll).unwrap() + 1..];
        let c = choose_from(after, true, Ok::<_, String>).unwrap();
        assert_eq!(c.kind, Kind::Snapshot);
        assert_eq!(
            c.why,
            "using snapshot (polling: processes shorter than the interval can be missed)"
        );
        assert_eq!(choose_from(&[], true, Ok::<_, String>).unwrap_err(), "");
    }

    #[test]
    fn auto_falls_back_in_order_and_says_why() {
        let (r, tried) = trace(Request::Auto, true, &[Kind::Etw]);
        assert_eq!(r, Ok(Kind::WmiTrace));
        assert_eq!(tried, [Kind::Etw, Kind::WmiTrace]);
        let c = choose(Request::Auto, true, |k| {
            if k == Kind::WmiPoll {
                Ok(())
            } else {
                Err("access denied".into())
            }
        })
        .unwrap();
        assert_eq!(c.kind, Kind::WmiPoll);
        assert_eq!(
            c.why,
            "etw failed: access denied; wmi-trace failed: access denied; \
             using wmi-poll (polling: processes shorter than the interval can be missed)"
        );
    }

    #[test]
    fn not_elevated_skips_admin_sources_without_trying_them() {
        let (r, tried) = trace(Request::Auto, false, &[]);
        assert_eq!(r, Ok(Kind::WmiPoll));
        assert_eq!(tried, [Kind::WmiPoll]);
        let c = choose(Request::Auto, false, Ok::<_, String>).unwrap();
        assert!(
            c.why
                .starts_with("etw needs an elevated (admin) token; wmi-trace needs")
        );
        let (r, tried) = trace(Request::Wmi, false, &[]);
        assert_eq!((r, tried), (Ok(Kind::WmiPoll), vec![Kind::WmiPoll]));
    }

    #[test]
    fn wmi_uses_trace_events_when_elevated() {
        assert_eq!(trace(Request::Wmi, true, &[]).0, Ok(Kind::WmiTrace));
        assert_eq!(
            trace(Request::Wmi, true, &[Kind::WmiTrace]).0,
            Ok(Kind::WmiPoll)
        );
    }

    #[test]
    fn explicit_etw_never_falls_back() {
        let (r, tried) = trace(Request::Etw, true, &[Kind::Etw]);
        assert_eq!(r, Err("etw failed: etw broke".into()));
        assert_eq!(tried, [Kind::Etw]);
        let (r, tried) = trace(Request::Etw, false, &[]);
        assert_eq!(r, Err("etw needs an elevated (admin) token".into()));
        assert!(tried.is_empty());
    }

    #[test]
    fn everything_failing_lists_every_reason() {
        let all = [Kind::Etw, Kind::WmiTrace, Kind::WmiPoll, Kind::Snapshot];
        let (r, _) = trace(Request::Auto, true, &all);
        assert_eq!(
            r,
            Err("etw failed: etw broke; wmi-trace failed: wmi-trace broke; \
                 wmi-poll failed: wmi-poll broke; snapshot failed: snapshot broke"
                .into())
        );
    }

    #[test]
    fn names_and_candidates() {
        assert_eq!(
            [Kind::Etw, Kind::WmiTrace, Kind::WmiPoll, Kind::Snapshot].map(Kind::name),
            ["etw", "wmi-trace", "wmi-poll", "snapshot"]
        );
        assert_eq!(candidates(Request::Wmi), [Kind::WmiTrace, Kind::WmiPoll]);
    }
}
