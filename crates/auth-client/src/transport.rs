//! The shared client (`tower-auth-http`) as this crate's sources use it: configuration
//! errors name the setting, request failures become [`TokenError`]s.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::Uri;
use tower_auth_core::ConfigError;
use tower_auth_http::{
    CaBundle, ClientCertificate, DEFAULT_TIMEOUT, HttpClient, HttpError, parse_endpoint,
};

use crate::{TokenError, TokenErrorKind};

/// The HTTP client of a source. TLS is set up when the source is made, so that a build
/// without a usable crypto backend fails there with a [`ConfigError`]; after
/// [`Transport::timeouts`] the client is made again at the next fetch, so that the setter
/// takes values and cannot fail.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    connect: Duration,
    read: Duration,
    /// Mutual TLS (RFC 8705): the certificate presented, and CAs trusted beside the public ones.
    tls: TlsSettings,
    client: Arc<OnceLock<Result<HttpClient, HttpError>>>,
}

#[derive(Clone, Debug, Default)]
struct TlsSettings {
    certificate: Option<ClientCertificate>,
    ca: Vec<CaBundle>,
}

impl Transport {
    /// A client with the default timeouts (5 s each).
    pub(crate) fn new() -> Result<Self, ConfigError> {
        let client = HttpClient::new(DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
            .map_err(|e| ConfigError::new("tls", e.to_string()))?;
        Ok(Self {
            connect: DEFAULT_TIMEOUT,
            read: DEFAULT_TIMEOUT,
            tls: TlsSettings::default(),
            client: Arc::new(OnceLock::from(Ok(client))),
        })
    }

    /// The same, with other connect and read timeouts.
    pub(crate) fn timeouts(self, connect: Duration, read: Duration) -> Self {
        Self {
            connect,
            read,
            client: Arc::new(OnceLock::new()),
            ..self
        }
    }

    /// The same, presenting `certificate` to servers that ask for one (mutual TLS). The
    /// certificate was checked when it was made, so the client built with it cannot fail.
    pub(crate) fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.tls.certificate = Some(certificate);
        self.client = Arc::new(OnceLock::new());
        self
    }

    /// The same, trusting the CAs of `ca` too.
    pub(crate) fn ca(mut self, ca: CaBundle) -> Self {
        self.tls.ca.push(ca);
        self.client = Arc::new(OnceLock::new());
        self
    }

    /// The client; an error only if TLS, set up once when the source was made, now fails.
    pub(crate) fn client(&self) -> Result<&HttpClient, TokenError> {
        self.client
            .get_or_init(|| {
                let ca: Vec<&CaBundle> = self.tls.ca.iter().collect();
                HttpClient::with_tls(self.connect, self.read, &ca, self.tls.certificate.as_ref())
            })
            .as_ref()
            .map_err(|_| TokenError::new(TokenErrorKind::Other, "tls_setup_failed"))
    }
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

    #[tokio::test]
    async fn timeouts_take_values_and_the_client_follows_them() {
        let transport = Transport::new().unwrap();
        assert_eq!(
            (transport.connect, transport.read),
            (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
        );
        transport.client().unwrap();
        let (connect, read) = (Duration::from_millis(250), Duration::from_secs(2));
        let changed = transport.clone().timeouts(connect, read);
        assert_eq!((changed.connect, changed.read), (connect, read));
        assert!(
            changed.client.get().is_none(),
            "made again at the next fetch"
        );
        let debug = format!("{:?}", changed.client().unwrap());
        assert!(debug.contains("2s"), "{debug}");
        // The original keeps its own.
        assert_eq!(
            (transport.connect, transport.read),
            (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
        );
    }
}
