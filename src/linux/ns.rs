//! Namespace links: `readlink /proc/<pid>/ns/<name>` gives `name:[inode]`.

use crate::event::Namespaces;

/// The inode number in a `/proc/<pid>/ns/<name>` link's target.
/// `pid_for_children` and `time_for_children` links name their base type.
pub fn parse_ns_link(target: &[u8], name: &str) -> Option<u32> {
    let kind = name.strip_suffix("_for_children").unwrap_or(name);
    std::str::from_utf8(target.strip_prefix(kind.as_bytes())?)
        .ok()?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The inode number of one of procwatch's own namespaces; `None` where
/// there is no such link.
pub fn own_ns(name: &str) -> Option<u32> {
    let link = std::fs::read_link(format!("/proc/self/ns/{name}")).ok()?;
    parse_ns_link(link.as_os_str().as_encoded_bytes(), name)
}

/// procwatch's own namespaces, which a host process's exec has too;
/// `None` where one cannot be read.
pub fn own_namespaces() -> Option<Namespaces> {
    Namespaces::try_from_fn(|name| own_ns(name).ok_or(())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ns_links() {
        assert_eq!(parse_ns_link(b"mnt:[4026531841]", "mnt"), Some(4026531841));
        assert_eq!(
            parse_ns_link(b"pid:[4026531836]", "pid_for_children"),
            Some(4026531836)
        );
        assert_eq!(parse_ns_link(b"net:[4026531841]", "mnt"), None);
        assert_eq!(parse_ns_link(b"mnt:[x]", "mnt"), None);
        assert_eq!(parse_ns_link(b"mnt:4026531841", "mnt"), None);
        assert_eq!(parse_ns_link(b"mnt:[99999999999]", "mnt"), None);
    }
}
