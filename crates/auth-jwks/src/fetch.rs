//! Fetching discovery documents and key sets through the shared client: a 200's body, or a
//! reason code for logs and [`IssuerStatus`](crate::IssuerStatus) plus the server's `Retry-After`.

use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use tower_auth_http::{CaBundle, Discovery, HttpClient, HttpError, Metadata, Proxies};

/// Why a fetch failed; a short code for logs plus the server's `Retry-After`, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FetchError {
    pub(crate) reason: &'static str,
    pub(crate) retry_after: Option<Duration>,
}

impl FetchError {
    pub(crate) fn new(reason: &'static str) -> Self {
        Self {
            reason,
            retry_after: None,
        }
    }
}

impl From<HttpError> for FetchError {
    fn from(error: HttpError) -> Self {
        Self {
            reason: error.reason(),
            retry_after: error.retry_after(),
        }
    }
}

/// A GET-only view of an [`HttpClient`], shared by the issuers that trust the same roots.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: HttpClient,
}

impl Fetcher {
    /// A client trusting the platform's and the public roots, and `extra`, through `proxies`.
    pub(crate) fn new(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra: &[&CaBundle],
        proxies: &Proxies,
    ) -> Result<Self, String> {
        HttpClient::with_proxies(connect_timeout, read_timeout, extra, proxies.clone())
            .map(|client| Self { client })
            .map_err(|e| e.to_string())
    }

    /// GETs `uri`: a 200 with a body of at most [`MAX_BODY`](tower_auth_http::MAX_BODY)
    /// bytes, within the read timeout. Redirects are not followed: a key set must come from
    /// the configured or discovered URI.
    pub(crate) async fn get(&self, uri: &Uri) -> Result<Bytes, FetchError> {
        Ok(self.client.get_ok(uri).await?)
    }

    /// The issuer's OpenID Connect metadata, checked to name exactly that issuer.
    pub(crate) async fn discover(&self, discovery: &Discovery) -> Result<Metadata, HttpError> {
        discovery.fetch(&self.client).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_errors_keep_the_clients_reason_codes_and_retry_after() {
        let wait = Some(Duration::from_secs(17));
        for (error, reason, retry_after) in [
            (HttpError::Connect, "connect_failed", None),
            (HttpError::Timeout, "timeout", None),
            (HttpError::TooLarge, "body_too_large", None),
            (HttpError::Redirect, "redirect_refused", None),
            (HttpError::UnexpectedStatus, "unexpected_status", None),
            (
                HttpError::ServerError { retry_after: wait },
                "server_error",
                wait,
            ),
            (
                HttpError::RateLimited { retry_after: wait },
                "rate_limited",
                wait,
            ),
        ] {
            let fetch = FetchError::from(error);
            assert_eq!((fetch.reason, fetch.retry_after), (reason, retry_after));
        }
    }
}
