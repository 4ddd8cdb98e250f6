//! Byte scanning helpers for the hot path: substring search for short needles that start with
//! a space, built on `memchr` (SIMD) without building a searcher per call.

/// Last occurrence of `needle` (which starts with a space) in `hay`.
pub(crate) fn rfind_sp(hay: &[u8], needle: &[u8]) -> Option<usize> {
    debug_assert_eq!(needle.first(), Some(&b' '));
    memchr::memrchr_iter(b' ', hay).find(|&idx| hay[idx..].starts_with(needle))
}

/// First occurrence of `needle` (which starts with a space) in `hay`.
pub(crate) fn find_sp(hay: &[u8], needle: &[u8]) -> Option<usize> {
    debug_assert_eq!(needle.first(), Some(&b' '));
    memchr::memchr_iter(b' ', hay).find(|&idx| hay[idx..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds() {
        assert_eq!(rfind_sp(b"a port 1 port 2", b" port "), Some(8));
        assert_eq!(find_sp(b"a port 1 port 2", b" port "), Some(1));
        assert_eq!(rfind_sp(b"a port", b" port "), None);
        assert_eq!(find_sp(b"", b" x"), None);
    }
}
