//! [`HttpError`]: every way a URL, a request or a discovery can fail, as one enum.

use std::fmt;
use std::time::Duration;

/// Why a URL was refused, no response was had, or a response was not usable.
///
/// It carries no text from the server and no foreign error: [`reason`](Self::reason) is a
/// short code for logs, and `Display` is phrased to follow the name of the setting it is
/// about (`AUTH_TOKEN_URL: must use https ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The crate was built with neither `aws_lc_rs` nor `rust_crypto`.
    NoCryptoBackend,
    /// The TLS configuration could not be built.
    Tls,
    /// Not a URL.
    InvalidUrl,
    /// A URL without a scheme or host.
    NotAbsolute,
    /// A URL with a fragment.
    Fragment,
    /// An issuer URL with a query (OpenID Connect Discovery 1.0 section 2, RFC 8414 section 2).
    Query,
    /// A scheme other than `https` and `http`.
    UnsupportedScheme,
    /// Plain `http` to a host that is not loopback, where the [loopback rule](crate::is_loopback)
    /// applies.
    PlainHttp,
    /// Connecting failed or timed out.
    Connect,
    /// The request failed after connecting (connection closed, protocol error).
    Request,
    /// No complete response within the read timeout.
    Timeout,
    /// The body was over [`MAX_BODY`](crate::MAX_BODY).
    TooLarge,
    /// A 3xx: redirects are never followed.
    Redirect,
    /// A 429, with the server's `Retry-After`.
    RateLimited {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// A 5xx, with the server's `Retry-After`.
    ServerError {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// Any other status where a 200 was needed.
    UnexpectedStatus,
    /// A metadata document that is not a JSON object with a string `issuer`.
    NotJson,
    /// A metadata document naming another issuer than the one it was fetched for.
    IssuerMismatch,
    /// A metadata document without the endpoint asked for.
    MissingEndpoint,
}

impl HttpError {
    /// A short code for logs: `connect_failed`, `timeout`, `server_error`, `issuer_mismatch`...
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoCryptoBackend => "no_crypto_backend",
            Self::Tls => "tls_setup_failed",
            Self::InvalidUrl => "invalid_url",
            Self::NotAbsolute => "url_not_absolute",
            Self::Fragment => "url_fragment",
            Self::Query => "url_query",
            Self::UnsupportedScheme => "url_scheme",
            Self::PlainHttp => "plain_http",
            Self::Connect => "connect_failed",
            Self::Request => "request_failed",
            Self::Timeout => "timeout",
            Self::TooLarge => "body_too_large",
            Self::Redirect => "redirect_refused",
            Self::RateLimited { .. } => "rate_limited",
            Self::ServerError { .. } => "server_error",
            Self::UnexpectedStatus => "unexpected_status",
            Self::NotJson => "discovery_not_json",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::MissingEndpoint => "missing_endpoint",
        }
    }

    /// The server's `Retry-After`, on 429 and 5xx only.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::ServerError { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Whether the server could not be reached or asked to be left alone for a while (connect
    /// failure, broken exchange, timeout, 429, 5xx): worth retrying later, unlike a refusal.
    pub fn is_unavailable(self) -> bool {
        matches!(
            self,
            Self::Connect
                | Self::Request
                | Self::Timeout
                | Self::RateLimited { .. }
                | Self::ServerError { .. }
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoCryptoBackend => {
                "no crypto backend for TLS: enable the feature aws_lc_rs or rust_crypto"
            }
            Self::Tls => "TLS set-up failed",
            Self::InvalidUrl => "is not a URL",
            Self::NotAbsolute => "must be an absolute URL with a host",
            Self::Fragment => "must not have a fragment",
            Self::Query => "must not have a query",
            Self::UnsupportedScheme => "must be an https URL",
            Self::PlainHttp => {
                "must use https: credentials are only ever sent over TLS (plain http is allowed on loopback addresses only)"
            }
            Self::Connect => "connecting failed",
            Self::Request => "the request failed",
            Self::Timeout => "no response within the read timeout",
            Self::TooLarge => "the response body is too large",
            Self::Redirect => "redirected (redirects are not followed)",
            Self::RateLimited { .. } => "rate limited (429)",
            Self::ServerError { .. } => "server error (5xx)",
            Self::UnexpectedStatus => "unexpected status",
            Self::NotJson => "the metadata document is not JSON with an issuer",
            Self::IssuerMismatch => "the metadata document names another issuer",
            Self::MissingEndpoint => "the metadata document lacks the endpoint",
        })
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_429_and_5xx_carry_retry_after_and_count_as_unavailable() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(
            HttpError::RateLimited { retry_after: wait }.retry_after(),
            wait
        );
        assert_eq!(
            HttpError::ServerError { retry_after: wait }.retry_after(),
            wait
        );
        for refused in [
            HttpError::Redirect,
            HttpError::UnexpectedStatus,
            HttpError::TooLarge,
            HttpError::IssuerMismatch,
            HttpError::PlainHttp,
        ] {
            assert!(!refused.is_unavailable(), "{refused:?}");
            assert_eq!(refused.retry_after(), None);
        }
        for down in [HttpError::Connect, HttpError::Request, HttpError::Timeout] {
            assert!(down.is_unavailable(), "{down:?}");
        }
    }
}
