//! Path bytes as the kernel hands them over: not UTF-8, not normalized.

/// The last path component (everything after the last `/`); the whole of
/// `p` when it has no `/`, empty when it ends in one.
pub fn basename(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

#[cfg(test)]
mod tests {
    use super::basename;

    #[test]
    fn basename_cases() {
        assert_eq!(basename(b"/usr/bin/ls"), b"ls");
        assert_eq!(basename(b"ls"), b"ls");
        assert_eq!(basename(b"/"), b"");
        assert_eq!(basename(b""), b"");
        assert_eq!(basename(b"a//b"), b"b");
        assert_eq!(basename(b"dir/"), b"");
    }
}
