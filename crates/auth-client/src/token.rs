//! An access token and when it expires.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;
use tower_auth_core::Secret;

/// Lifetimes beyond this are cut down, so that no arithmetic on instants can overflow.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// An access token: the secret value and, when known, its expiry on Tokio's clock.
///
/// Cloning is one reference count. `Debug` never shows the value:
///
/// ```
/// use std::time::Duration;
/// use tower_auth_client::Token;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let token = Token::new("eyJhbGciOi.payload.signature", Some(Duration::from_secs(3600)));
/// assert_eq!(token.secret().expose_secret(), b"eyJhbGciOi.payload.signature");
/// assert!(!format!("{token:?}").contains("eyJ"));
/// # }
/// ```
#[derive(Clone)]
pub struct Token(Arc<Inner>);

struct Inner {
    secret: Secret,
    received_at: Instant,
    expires_at: Option<Instant>,
    header: OnceLock<Option<HeaderValue>>,
}

impl Token {
    /// A token that expires `expires_in` from now (`None`: no known expiry; it is used until
    /// a server rejects it).
    pub fn new(access_token: impl Into<Secret>, expires_in: Option<Duration>) -> Self {
        Self::received(access_token.into(), Instant::now(), expires_in)
    }

    /// A token received at `received_at` that lives `lifetime` from then.
    pub(crate) fn received(
        secret: Secret,
        received_at: Instant,
        lifetime: Option<Duration>,
    ) -> Self {
        Self(Arc::new(Inner {
            secret,
            received_at,
            expires_at: lifetime.map(|d| received_at + d.min(MAX_LIFETIME)),
            header: OnceLock::new(),
        }))
    }

    /// The token value. Every call site is a place the secret leaves its box.
    pub fn secret(&self) -> &Secret {
        &self.0.secret
    }

    /// When the token was received (or made), on Tokio's clock.
    pub fn received_at(&self) -> Instant {
        self.0.received_at
    }

    /// When the token expires, on Tokio's clock, if known.
    pub fn expires_at(&self) -> Option<Instant> {
        self.0.expires_at
    }

    /// The time left before expiry (zero once expired), if the expiry is known.
    pub fn expires_in(&self) -> Option<Duration> {
        self.0
            .expires_at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The lifetime the token was issued with, if known.
    pub fn lifetime(&self) -> Option<Duration> {
        self.0.expires_at.map(|at| at - self.0.received_at)
    }

    /// Whether the token has expired at `now`.
    pub(crate) fn is_expired_at(&self, now: Instant) -> bool {
        self.0.expires_at.is_some_and(|at| now >= at)
    }

    /// The `Authorization: Bearer ...` value, marked sensitive so that HTTP/2 never indexes
    /// it (RFC 7541 section 7.1.3); `None` when the value is not an RFC 6750 b64token.
    pub(crate) fn authorization(&self) -> Option<&HeaderValue> {
        self.0
            .header
            .get_or_init(|| {
                let secret = self.0.secret.expose_secret();
                if !tower_auth_core::is_b64token(secret) {
                    return None;
                }
                let mut value = Vec::with_capacity(7 + secret.len());
                value.extend_from_slice(b"Bearer ");
                value.extend_from_slice(secret);
                let mut header = HeaderValue::from_bytes(&value).ok()?;
                header.set_sensitive(true);
                Some(header)
            })
            .as_ref()
    }

    /// Whether both are the same token (the same fetch, not merely equal values).
    pub(crate) fn same_as(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether both carry the same value (compared in constant time).
    pub(crate) fn same_value(&self, other: &Token) -> bool {
        self.0.secret.ct_eq(other.0.secret.expose_secret())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expiry_follows_tokio_time() {
        let token = Token::new("abc", Some(Duration::from_secs(60)));
        assert_eq!(token.lifetime(), Some(Duration::from_secs(60)));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!token.is_expired_at(Instant::now()));
        assert_eq!(token.expires_in(), Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(token.is_expired_at(Instant::now()));
        assert_eq!(token.expires_in(), Some(Duration::ZERO));
        let forever = Token::new("abc", None);
        assert!(!forever.is_expired_at(Instant::now() + MAX_LIFETIME));
        let huge = Token::new("abc", Some(Duration::MAX));
        assert_eq!(huge.lifetime(), Some(MAX_LIFETIME));
    }

    #[test]
    fn header_only_for_b64tokens_and_sensitive() {
        let token = Token::new("a.b-c_d~e+f/g==", None);
        let header = token.authorization().unwrap();
        assert_eq!(header, "Bearer a.b-c_d~e+f/g==");
        assert!(header.is_sensitive());
        for bad in ["", "a b", "a\r\nx: y", "é", "=abc"] {
            assert!(Token::new(bad, None).authorization().is_none(), "{bad:?}");
        }
    }

    #[test]
    fn debug_is_redacted_and_identity_is_by_fetch() {
        let a = Token::new("s3cr3t-token-value", None);
        let b = Token::new("s3cr3t-token-value", None);
        let debug = format!("{a:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(a.same_as(&a.clone()) && !a.same_as(&b));
        assert!(a.same_value(&b));
    }
}
