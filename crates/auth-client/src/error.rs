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

/// The reason of a [`TokenError`] for a session that needs a new login.
pub(crate) const LOGIN_REQUIRED: &str = "login_required";

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
    /// The gRPC status this error stands for, made on first use by [`source`]
    /// (`std::error::Error::source`).
    #[cfg(feature = "tonic")]
    status: Arc<std::sync::OnceLock<tonic::Status>>,
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
            #[cfg(feature = "tonic")]
            status: Arc::default(),
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
        #[cfg(feature = "tonic")]
        {
            self.status = Arc::default();
        }
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

    /// The session cannot go on without the person logging in again: its refresh token was
    /// refused (OAuth `invalid_grant`: expired, revoked or spent), or there is no session.
    pub fn is_login_required(&self) -> bool {
        self.reason == LOGIN_REQUIRED
            || (self.kind == TokenErrorKind::Rejected
                && self.oauth_error.as_deref() == Some("invalid_grant"))
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
    /// The underlying error; with the `tonic` feature, the `tonic::Status` this error stands
    /// for (see `TokenError::grpc_code`), whose own source is the underlying error. tonic
    /// looks for a `Status` along the source chain of a service's error, so a tonic client
    /// behind [`BearerLayer`](crate::BearerLayer) then fails with that code, not `Unknown`.
    ///
    /// Features are shared by the whole build, so code that inspects the chain should look
    /// past a `Status` rather than expect the underlying error first; a printed chain repeats
    /// the text, as the status carries this error's message.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        #[cfg(feature = "tonic")]
        {
            Some(self.status.get_or_init(|| {
                let mut status = self.status();
                if let Some(source) = &self.source {
                    status.set_source(Arc::clone(source));
                }
                status
            }))
        }
        #[cfg(not(feature = "tonic"))]
        {
            self.source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static))
        }
    }
}

#[cfg(feature = "tonic")]
impl TokenError {
    /// The gRPC code for a call that could not be made for want of a token: `Unavailable`
    /// when the endpoint could not be reached or is failing (a retry may help, and gRPC retry
    /// policies retry it); `Internal` for everything else: refused credentials or request, an
    /// unusable answer, an error of a [`FnSource`](crate::FnSource) closure. Those are this
    /// client's own configuration to fix, so never `Unauthenticated`, which would say the
    /// caller of the call was refused.
    pub fn grpc_code(&self) -> tonic::Code {
        match self.kind {
            TokenErrorKind::Unavailable => tonic::Code::Unavailable,
            TokenErrorKind::InvalidClient
            | TokenErrorKind::Rejected
            | TokenErrorKind::InvalidResponse
            | TokenErrorKind::Other => tonic::Code::Internal,
        }
    }

    /// The status a tonic caller sees: [`grpc_code`](Self::grpc_code) and the kind's fixed
    /// text, never the token endpoint's own words (its `error_description` is for this
    /// service's logs, not for whoever made the call); this error is its source.
    fn status(&self) -> tonic::Status {
        // The kind's text and the fixed reason code (`login_required`, `fetch_timeout`, ...):
        // what the caller can act on, written by this crate, never by the endpoint.
        tonic::Status::new(self.grpc_code(), format!("{} ({})", self.kind, self.reason))
    }
}

#[cfg(feature = "tonic")]
impl From<TokenError> for tonic::Status {
    /// A status with [`TokenError::grpc_code`], the kind's fixed text, and the error as its
    /// source.
    fn from(error: TokenError) -> Self {
        let mut status = error.status();
        status.set_source(Arc::new(error));
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "tonic")]
    /// SECURITY.md O4.
    #[test]
    fn grpc_codes_and_the_status_in_the_source_chain() {
        use std::error::Error as _;
        for (kind, code) in [
            (TokenErrorKind::InvalidClient, tonic::Code::Internal),
            (TokenErrorKind::Rejected, tonic::Code::Internal),
            (TokenErrorKind::Unavailable, tonic::Code::Unavailable),
            (TokenErrorKind::InvalidResponse, tonic::Code::Internal),
            (TokenErrorKind::Other, tonic::Code::Internal),
        ] {
            assert_eq!(TokenError::new(kind, "r").grpc_code(), code, "{kind:?}");
        }
        // The chain: TokenError -> Status (its code and text) -> the underlying error.
        let cause = std::io::Error::other("connection reset");
        let error =
            TokenError::new(TokenErrorKind::Unavailable, "connect_failed").with_source(cause);
        let status = error
            .source()
            .unwrap()
            .downcast_ref::<tonic::Status>()
            .unwrap();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // The kind's fixed text and the reason code: never the endpoint's own words.
        assert_eq!(
            status.message(),
            format!("{} (connect_failed)", TokenErrorKind::Unavailable)
        );
        assert_eq!(status.source().unwrap().to_string(), "connection reset");
        let said = TokenError::oauth(
            "invalid_client",
            Some("client 'reporting' unknown at tenant acme-prod"),
        );
        let told = tonic::Status::from(said);
        assert_eq!(told.code(), tonic::Code::Internal);
        assert!(!told.message().contains("acme-prod"), "{}", told.message());
        // A later source replaces the status made for the earlier one.
        let error = error.clone().with_source(std::io::Error::other("refused"));
        let status = error
            .source()
            .unwrap()
            .downcast_ref::<tonic::Status>()
            .unwrap();
        assert_eq!(status.source().unwrap().to_string(), "refused");
    }

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
        let source = std::error::Error::source(&e).unwrap();
        // With `tonic`, the status this error stands for comes first in the chain.
        #[cfg(feature = "tonic")]
        let source = source.source().unwrap();
        assert_eq!(source.to_string(), "disk on fire");
        assert!(e.to_string().ends_with(": disk on fire"));
    }
}
