//! SHA-256 digests of credentials, and hashing them as map keys.

use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

/// The SHA-256 digest of `bytes`.
///
/// Shared with the sibling crates (and the tools that print `sha256:<hex>` for configuration);
/// not part of the API an application names, hence hidden.
#[doc(hidden)]
pub fn sha256_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A `Hasher` for keys that are already SHA-256 digests (API keys, tokens in a cache).
///
/// The digest is uniformly distributed and an attacker cannot choose it to collide (no
/// HashDoS), so hashing it again, as SipHash would, only costs time.
#[doc(hidden)]
#[derive(Default)]
pub struct DigestHasher(u64);

/// Builds [`DigestHasher`]s, for `HashMap::with_hasher` and caches.
#[doc(hidden)]
pub type DigestBuildHasher = BuildHasherDefault<DigestHasher>;

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn digests_as_keys() {
        let mut map: HashMap<[u8; 32], u32, DigestBuildHasher> = HashMap::default();
        for i in 0..1000u32 {
            map.insert(sha256_digest(&i.to_le_bytes()), i);
        }
        assert_eq!(map.get(&sha256_digest(&7u32.to_le_bytes())), Some(&7));
        assert_eq!(map.len(), 1000);
    }
}
