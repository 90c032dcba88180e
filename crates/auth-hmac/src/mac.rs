//! HMAC-SHA256 through the crypto backend the application selected: `aws_lc_rs` (the
//! default) or `rust_crypto` (RustCrypto's `hmac` over `sha2`), so that a `rust_crypto`
//! build compiles no aws-lc. With both features on (as `--all-features` does), aws-lc-rs
//! is used, as jsonwebtoken's own selection in tower-auth-oidc does.

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
compile_error!(
    "tower-auth-hmac needs a crypto backend: enable its `aws_lc_rs` or `rust_crypto` feature \
     (tower-auth forwards its own features of the same names)"
);

/// An HMAC-SHA256 tag is 32 bytes.
pub(crate) const TAG_LEN: usize = 32;

/// A secret made ready to compute and check HMAC-SHA256 tags.
#[derive(Clone)]
pub(crate) struct MacKey {
    #[cfg(feature = "aws_lc_rs")]
    key: aws_lc_rs::hmac::Key,
    // The keyed state (inner and outer pads already hashed); each use starts from a copy.
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    key: hmac::Hmac<sha2::Sha256>,
}

#[cfg(feature = "aws_lc_rs")]
impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        }
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(aws_lc_rs::hmac::sign(&self.key, data).as_ref());
        tag
    }

    /// Whether `tag` is the tag of `data`, compared in constant time.
    pub(crate) fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        aws_lc_rs::hmac::verify(&self.key, data, tag).is_ok()
    }
}

#[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
impl MacKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        use hmac::Mac as _;
        Self {
            // HMAC takes a key of any length (RFC 2104 section 2), so this cannot fail.
            key: hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
                .expect("HMAC accepts keys of any length"),
        }
    }

    pub(crate) fn sign(&self, data: &[u8]) -> [u8; TAG_LEN] {
        use hmac::Mac as _;
        let mut mac = self.key.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `data`, compared in constant time (`verify_slice` uses
    /// `subtle`).
    pub(crate) fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        use hmac::Mac as _;
        let mut mac = self.key.clone();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}

/// Fills `bytes` from a cryptographically secure generator: aws-lc-rs's, or `rand`'s
/// thread-local generator (ChaCha12, seeded and reseeded from the operating system).
pub(crate) fn fill_random(bytes: &mut [u8]) {
    #[cfg(feature = "aws_lc_rs")]
    // The system random generator failing is not something a token issuer can recover from.
    aws_lc_rs::rand::fill(bytes).expect("the system random generator failed");
    #[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
    rand::RngCore::fill_bytes(&mut rand::rng(), bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 (a short key) and 6 (a key longer than the block size).
    #[test]
    fn rfc_4231_vectors() {
        let cases: [(&[u8], &[u8], &str); 2] = [
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            let key = MacKey::new(key);
            let tag = key.sign(data);
            assert_eq!(hex::encode(tag), expected);
            assert!(key.verify(data, &tag));
            let mut wrong = tag;
            wrong[TAG_LEN - 1] ^= 1;
            assert!(!key.verify(data, &wrong));
            assert!(!key.verify(data, &tag[..TAG_LEN - 1]));
            assert!(!key.verify(b"other data", &tag));
        }
    }
}
