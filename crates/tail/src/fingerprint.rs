//! File identity: device, inode and a fingerprint of the first bytes.
//!
//! Device and inode say which file a path points to now; they are reused after a file is
//! deleted, and a copy-and-truncate keeps them while replacing the content. The fingerprint — a
//! 64-bit FNV-1a hash of the first [`FINGERPRINT_MAX`] bytes, or of fewer while the file is
//! shorter — tells those cases apart. It is remembered with the number of bytes it covers, so a
//! file can be checked against it at any later size. FNV-1a is written out here because the hash
//! is stored on disk and must never change with a library or compiler version.

use std::{fs::File, io::Read, os::unix::fs::FileExt};

/// Most leading bytes a fingerprint covers.
pub(crate) const FINGERPRINT_MAX: u64 = 256;

/// A hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// How many leading bytes the hash covers.
    pub(crate) len: u32,
    /// FNV-1a 64 of those bytes.
    pub(crate) hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Fingerprint {
        let mut hash = FNV_OFFSET;
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        Fingerprint { len: bytes.len() as u32, hash }
    }

    /// The fingerprint of the first `min(size, FINGERPRINT_MAX)` bytes of a plain file.
    pub(crate) fn read_at(file: &File, size: u64) -> std::io::Result<Fingerprint> {
        Fingerprint::read_len(file, size.min(FINGERPRINT_MAX))
    }

    /// The fingerprint of exactly the first `len` bytes of a plain file, or of fewer when the
    /// file is shorter.
    pub(crate) fn read_len(file: &File, len: u64) -> std::io::Result<Fingerprint> {
        let mut buf = [0u8; FINGERPRINT_MAX as usize];
        let want = len.min(FINGERPRINT_MAX) as usize;
        let mut got = 0;
        while got < want {
            match file.read_at(&mut buf[got..want], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Fingerprint::of(&buf[..got]))
    }

    /// The fingerprint of the first `len` bytes of a stream (a decompressed file).
    pub(crate) fn read_stream(reader: &mut impl Read, len: u64) -> std::io::Result<Fingerprint> {
        let mut buf = Vec::with_capacity(len.min(FINGERPRINT_MAX) as usize);
        reader.take(len.min(FINGERPRINT_MAX)).read_to_end(&mut buf)?;
        Ok(Fingerprint::of(&buf))
    }

    /// Whether `file`'s first `self.len` bytes hash to this fingerprint.
    pub(crate) fn matches(&self, file: &File) -> std::io::Result<bool> {
        let now = Fingerprint::read_len(file, u64::from(self.len))?;
        Ok(now == *self)
    }

    /// The hash as 16 hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.hash)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The stream name of a file instance: `file:<dev>:<inode>:<fingerprint hex>`.
pub(crate) fn stream_name(dev: u64, ino: u64, fingerprint: &Fingerprint) -> String {
    format!("file:{dev}:{ino}:{}", fingerprint.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values_and_prefixes_are_checkable() {
        assert_eq!(Fingerprint::of(b"").hash, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fingerprint::of(b"a").hash, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fingerprint::of(b"foobar").hash, 0x8594_4171_f739_67e8);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world\n").unwrap();
        let file = File::open(&path).unwrap();
        let early = Fingerprint::read_len(&file, 5).unwrap();
        assert_eq!(early, Fingerprint::of(b"hello"));
        std::fs::write(&path, b"hello again\n").unwrap();
        assert!(early.matches(&file).unwrap(), "only the covered bytes count");
        std::fs::write(&path, b"jello\n").unwrap();
        assert!(!early.matches(&file).unwrap());
        assert_eq!(Fingerprint::read_at(&file, 1000).unwrap().len, 6);
    }
}
