//! Why no token could be had.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error, the error type of the [`Bearer`](crate::Bearer) services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure a [`TokenError`] is: whether the credentials are wrong (fix the
/// configuration) or the endpoint could not be reached (retrying may help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenErrorKind {
    /// The endpoint rejected the client's credentials: OAuth `invalid_client`, or 401
    /// (RFC 6749 section 5.2). Retrying with the same credentials will not help.
    InvalidClient,
    /// The endpoint refused the request with another OAuth error (`invalid_scope`,
    /// `invalid_target`, `unauthorized_client`, `invalid_grant`, ...); see
    /// [`TokenError::oauth_error`].
    Rejected,
    /// The endpoint could not be reached or is failing: connection refused or closed, a
    /// timeout, 5xx, 429. Retrying later may help; see [`TokenError::retry_after`].
    Unavailable,
    /// The endpoint answered, but not with a usable token: not JSON, over 64 KiB, a
    /// redirect, a `token_type` other than `Bearer`, a token that cannot be sent in a header,
    /// a discovery document for another issuer.
    InvalidResponse,
    /// Anything else, such as an error returned by a [`FnSource`](crate::FnSource) closure
    /// or a credential callable.
    Other,
}

impl fmt::Display for TokenErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidClient => "the client's credentials were rejected",
            Self::Rejected => "the token request was refused",
            Self::Unavailable => "the token endpoint is unavailable",
            Self::InvalidResponse => "the token endpoint sent an unusable response",
            Self::Other => "no token could be obtained",
        })
    }
}

/// Why no token could be had: a [`TokenErrorKind`], a short reason code, the OAuth error
/// code and description when the endpoint sent one, and the server's `Retry-After`.
///
/// It never holds a token or a secret. It is cheap to clone: every caller waiting on one
/// fetch gets the same error.
#[derive(Clone)]
pub struct TokenError {
    kind: TokenErrorKind,
    reason: &'static str,
    oauth_error: Option<Arc<str>>,
    description: Option<Arc<str>>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Error descriptions from a server are cut to this many bytes before they reach logs.
const MAX_DESCRIPTION: usize = 256;

impl TokenError {
    /// An error of `kind` with a short machine-readable `reason` (such as `connect_failed`).
    pub fn new(kind: TokenErrorKind, reason: &'static str) -> Self {
        Self {
            kind,
            reason,
            oauth_error: None,
            description: None,
            retry_after: None,
            source: None,
        }
    }

    /// An [`Other`](TokenErrorKind::Other) error caused by `source` (for closures that
    /// produce tokens or credentials).
    pub fn other(source: impl Into<BoxError>) -> Self {
        Self::new(TokenErrorKind::Other, "source_failed").with_source(source)
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Records the wait the server asked for.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// An OAuth error response (RFC 6749 section 5.2): `invalid_client` is
    /// [`InvalidClient`](TokenErrorKind::InvalidClient), any other code
    /// [`Rejected`](TokenErrorKind::Rejected).
    pub(crate) fn oauth(code: &str, description: Option<&str>) -> Self {
        let kind = if code == "invalid_client" {
            TokenErrorKind::InvalidClient
        } else {
            TokenErrorKind::Rejected
        };
        let mut error = Self::new(kind, "oauth_error");
        error.oauth_error = Some(printable(code).into());
        error.description = description.map(|d| printable(d).into());
        error
    }

    /// The kind of failure.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// A short reason code for logs and tests, such as `connect_failed`, `timeout`,
    /// `server_error`, `oauth_error`, `not_bearer`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The OAuth `error` code the endpoint sent, such as `invalid_client` or `invalid_scope`.
    pub fn oauth_error(&self) -> Option<&str> {
        self.oauth_error.as_deref()
    }

    /// The endpoint's `error_description`, if any (cut to 256 bytes, control characters removed).
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The wait the endpoint asked for with `Retry-After` (delay-seconds or an HTTP-date,
    /// capped at an hour).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the credentials were rejected (`invalid_client`).
    pub fn is_invalid_client(&self) -> bool {
        self.kind == TokenErrorKind::InvalidClient
    }
}

/// Server text, stripped of control characters and cut to [`MAX_DESCRIPTION`] bytes.
fn printable(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_DESCRIPTION {
            break;
        }
        out.push(c);
    }
    out
}

impl fmt::Debug for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TokenError");
        d.field("kind", &self.kind).field("reason", &self.reason);
        if let Some(code) = &self.oauth_error {
            d.field("oauth_error", code);
        }
        if let Some(description) = &self.description {
            d.field("description", description);
        }
        if let Some(wait) = &self.retry_after {
            d.field("retry_after", wait);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.kind, self.reason)?;
        if let Some(code) = &self.oauth_error {
            write!(f, ": {code}")?;
            if let Some(description) = &self.description {
                write!(f, ": {description}")?;
            }
        }
        f.write_str(")")?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TokenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_codes_map_to_kinds() {
        let e = TokenError::oauth("invalid_client", Some("bad secret"));
        assert!(e.is_invalid_client());
        assert_eq!(e.oauth_error(), Some("invalid_client"));
        assert_eq!(
            e.to_string(),
            "the client's credentials were rejected (oauth_error: invalid_client: bad secret)"
        );
        let e = TokenError::oauth("invalid_scope", None);
        assert_eq!(e.kind(), TokenErrorKind::Rejected);
        assert!(!e.is_invalid_client());
    }

    #[test]
    fn server_text_is_bounded_and_printable() {
        let long = format!("a\r\nb{}", "é".repeat(500));
        let e = TokenError::oauth("x\u{7}", Some(&long));
        assert_eq!(e.oauth_error(), Some("x"));
        let d = e.description().unwrap();
        assert!(d.len() <= MAX_DESCRIPTION && d.starts_with("abé"), "{d}");
    }

    #[test]
    fn sources_chain() {
        let e = TokenError::other("disk on fire");
        assert_eq!(e.kind(), TokenErrorKind::Other);
        assert_eq!(
            std::error::Error::source(&e).unwrap().to_string(),
            "disk on fire"
        );
        assert!(e.to_string().ends_with(": disk on fire"));
    }
}
