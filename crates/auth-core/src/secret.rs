//! Secret bytes that never print and are wiped when dropped.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Secret material: an HMAC key, an API key in transit through configuration.
///
/// `Debug` prints `Secret([redacted])`; the bytes are zeroized on drop; comparison is
/// constant-time ([`Secret::ct_eq`]). There is deliberately no `PartialEq` and no `Display`.
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into().into_boxed_slice())
    }

    /// The secret bytes. The name is loud on purpose: every call site is a place a secret leaves its box.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares with `other` in time that depends only on the lengths.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        self.0.ct_eq(other).into()
    }
}

impl From<String> for Secret {
    fn from(mut value: String) -> Self {
        let secret = Self::new(value.as_bytes());
        value.zeroize();
        secret
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes())
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Self::new(&*self.0)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("hunter2-hunter2-hunter2-hunter2-x");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{:?}", Some(s)), "Some(Secret([redacted]))");
    }

    #[test]
    fn constant_time_comparison() {
        let s = Secret::from("abc");
        assert!(s.ct_eq(b"abc"));
        assert!(!s.ct_eq(b"abd"));
        assert!(!s.ct_eq(b"ab"));
    }
}
