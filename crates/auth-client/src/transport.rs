//! The shared client (`tower-auth-http`) as this crate's sources use it: configuration
//! errors name the setting, request failures become [`TokenError`]s.

use std::time::Duration;

use http::Uri;
use tower_auth_core::ConfigError;
use tower_auth_http::{HttpClient, HttpError, parse_endpoint};

use crate::{TokenError, TokenErrorKind};

pub(crate) fn http_client(connect: Duration, read: Duration) -> Result<HttpClient, ConfigError> {
    HttpClient::new(connect, read).map_err(|e| ConfigError::new("tls", e.to_string()))
}

/// Parses the URL of an endpoint that is sent credentials: absolute, `https` or loopback
/// `http`, with a host and no fragment.
pub(crate) fn endpoint_uri(setting: &str, url: &str) -> Result<Uri, ConfigError> {
    parse_endpoint(url).map_err(|e| config_error(setting, e))
}

pub(crate) fn config_error(setting: &str, error: HttpError) -> ConfigError {
    ConfigError::new(setting, error.to_string())
}

/// A failed exchange with a token or metadata endpoint: unreachable or busy (connect,
/// timeout, 429, 5xx, with the server's `Retry-After`) is worth a retry later; anything else
/// (a redirect, an oversized body, an unexpected document) is an invalid response.
pub(crate) fn token_error(error: HttpError) -> TokenError {
    let kind = if error.is_unavailable() {
        TokenErrorKind::Unavailable
    } else {
        TokenErrorKind::InvalidResponse
    };
    TokenError::new(kind, error.reason()).with_retry_after(error.retry_after())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_need_tls_off_loopback() {
        for ok in [
            "https://idp.example/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:1/t",
            "http://localhost/t",
        ] {
            assert!(endpoint_uri("AUTH_TOKEN_URL", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example/token",
            "ftp://idp.example/token",
            "/token",
            "https://idp.example/token#x",
            "not a url",
            "http://127.0.0.1.example/t",
        ] {
            let err = endpoint_uri("AUTH_TOKEN_URL", bad).unwrap_err();
            assert_eq!(err.variable(), "AUTH_TOKEN_URL", "{bad}");
        }
    }

    #[test]
    fn busy_or_unreachable_is_unavailable_and_the_rest_invalid() {
        let wait = Some(Duration::from_secs(7));
        for (error, kind) in [
            (HttpError::Connect, TokenErrorKind::Unavailable),
            (HttpError::Timeout, TokenErrorKind::Unavailable),
            (
                HttpError::ServerError { retry_after: wait },
                TokenErrorKind::Unavailable,
            ),
            (
                HttpError::RateLimited { retry_after: wait },
                TokenErrorKind::Unavailable,
            ),
            (HttpError::TooLarge, TokenErrorKind::InvalidResponse),
            (HttpError::Redirect, TokenErrorKind::InvalidResponse),
        ] {
            let token = token_error(error);
            assert_eq!(
                (token.kind(), token.reason(), token.retry_after()),
                (kind, error.reason(), error.retry_after())
            );
        }
    }
}
