//! Our HTTP client for discovery documents and key sets: bounded in time and size, no redirects.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Larger documents are refused: no real key set comes near it, and a hostile one must not fill memory.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// A `Retry-After` longer than this is cut down: the source is retried within the hour anyway.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

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

/// A GET-only client shared by all issuers.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    read_timeout: Duration,
}

impl Fetcher {
    pub(crate) fn new(connect_timeout: Duration, read_timeout: Duration) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(tls_provider()?)
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(https);
        Ok(Self {
            client,
            read_timeout,
        })
    }

    /// GETs `uri`: a 200 with a body of at most [`MAX_BODY`] bytes, within the read timeout.
    ///
    /// Redirects are not followed at all: a key set must come from the configured or
    /// discovered URI, never from wherever a compromised or confused server points.
    pub(crate) async fn get(&self, uri: &Uri) -> Result<Bytes, FetchError> {
        let request = Request::get(uri.clone())
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("auth-jwks/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|_| FetchError::new("bad_request_uri"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    FetchError::new("connect_failed")
                } else {
                    FetchError::new("request_failed")
                }
            })?;
            let status = response.status();
            if status != StatusCode::OK {
                let retry_after =
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        response
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(parse_retry_after)
                    } else {
                        None
                    };
                let reason = match status.as_u16() {
                    300..=399 => "redirect_refused",
                    429 => "rate_limited",
                    500..=599 => "server_error",
                    _ => "unexpected_status",
                };
                return Err(FetchError {
                    reason,
                    retry_after,
                });
            }
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > MAX_BODY as u64) {
                return Err(FetchError::new("body_too_large"));
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::new("body_too_large")
                    } else {
                        FetchError::new("body_read_failed")
                    }
                })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(self.read_timeout, exchange)
            .await
            .map_err(|_| FetchError::new("timeout"))?
    }
}

/// `Retry-After` as delta-seconds (RFC 9110 section 10.2.3); an HTTP-date is left to our backoff.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(feature = "aws_lc_rs")]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, String> {
    Ok(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, String> {
    Ok(rustls::crypto::ring::default_provider())
}

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, String> {
    Err(
        "auth-jwks was built without a crypto backend: enable its feature aws_lc_rs or rust_crypto"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves one raw HTTP/1.1 response per connection (or none, for `None`: it hangs).
    async fn raw_server(response: Option<Vec<u8>>) -> Uri {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    match response {
                        Some(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        format!("http://{addr}/jwks").parse().unwrap()
    }

    fn fetcher() -> Fetcher {
        Fetcher::new(Duration::from_millis(500), Duration::from_millis(300)).unwrap()
    }

    fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
        let mut out =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        for part in body.chunks(chunk) {
            out.extend(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend(part);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
        out
    }

    #[tokio::test]
    async fn body_cap_applies_to_streamed_bodies_too() {
        let at_cap = vec![b' '; MAX_BODY];
        let uri = raw_server(Some(chunked(&at_cap, 8192))).await;
        assert_eq!(fetcher().get(&uri).await.unwrap().len(), MAX_BODY);
        let over = vec![b' '; MAX_BODY + 1];
        let uri = raw_server(Some(chunked(&over, 8192))).await;
        assert_eq!(
            fetcher().get(&uri).await.unwrap_err().reason,
            "body_too_large"
        );
        let declared = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let uri = raw_server(Some(declared.into_bytes())).await;
        assert_eq!(
            fetcher().get(&uri).await.unwrap_err().reason,
            "body_too_large"
        );
    }

    #[tokio::test]
    async fn statuses_redirects_and_retry_after() {
        for (response, reason, retry) in [
            (
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/keys\r\ncontent-length: 0\r\n\r\n",
                "redirect_refused",
                None,
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 17\r\ncontent-length: 0\r\n\r\n",
                "server_error",
                Some(17),
            ),
            (
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 5\r\ncontent-length: 0\r\n\r\n",
                "rate_limited",
                Some(5),
            ),
            (
                "HTTP/1.1 404 Not Found\r\nretry-after: 5\r\ncontent-length: 0\r\n\r\n",
                "unexpected_status",
                None,
            ),
            ("garbage that is not HTTP\r\n\r\n", "request_failed", None),
        ] {
            let uri = raw_server(Some(response.as_bytes().to_vec())).await;
            let error = fetcher().get(&uri).await.unwrap_err();
            assert_eq!(error.reason, reason, "{response}");
            assert_eq!(
                error.retry_after,
                retry.map(Duration::from_secs),
                "{response}"
            );
        }
    }

    #[tokio::test]
    async fn hanging_and_refusing_servers_are_bounded() {
        let uri = raw_server(None).await;
        assert_eq!(fetcher().get(&uri).await.unwrap_err().reason, "timeout");
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/jwks", closed.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(closed);
        assert_eq!(
            fetcher().get(&uri).await.unwrap_err().reason,
            "connect_failed"
        );
    }

    #[test]
    fn retry_after_is_delta_seconds_capped() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
