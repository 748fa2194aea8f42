//! Namespace facts judged against procwatch's own: whether an exec's paths
//! are the host's view.

use crate::event::ExecEvent;
pub use crate::linux::ns::own_ns;

/// Sets `exe_other_mnt_ns` from the exec's mount namespace and procwatch's
/// (`own_mnt`, read once at start).
pub fn judge(ev: &mut ExecEvent, own_mnt: Option<u32>) {
    match (ev.ns.namespaces, own_mnt) {
        (Some(n), Some(own)) => ev.ns.exe_other_mnt_ns = Some(n.mnt != own),
        (Some(_), None) => {
            ev.ns.exe_other_mnt_ns = None;
            ev.mark_incomplete(
                "exe_other_mnt_ns",
                "procwatch could not read its own mount namespace",
            );
        }
        // The source's reason for `namespaces` covers it.
        (None, _) => ev.ns.exe_other_mnt_ns = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Namespaces;
    use std::time::SystemTime;

    #[test]
    fn other_mount_namespace_is_judged_against_ours() {
        let mut ev = ExecEvent::new(SystemTime::UNIX_EPOCH, 1, None, "1:1".into());
        ev.ns.namespaces = Some(Namespaces {
            mnt: 5,
            ..Namespaces::default()
        });
        judge(&mut ev, Some(5));
        assert_eq!(ev.ns.exe_other_mnt_ns, Some(false));
        judge(&mut ev, Some(6));
        assert_eq!(ev.ns.exe_other_mnt_ns, Some(true));
        judge(&mut ev, None);
        assert_eq!(ev.ns.exe_other_mnt_ns, None);
        assert_eq!(ev.incomplete[0].field, "exe_other_mnt_ns");
    }
}
