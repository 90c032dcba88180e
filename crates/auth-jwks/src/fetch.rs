//! Fetching discovery documents and key sets: a 200 with a bounded body, or why not.

use std::time::Duration;

use bytes::Bytes;
use http::{StatusCode, Uri};

use crate::http::HttpClient;
#[cfg(test)]
use crate::http::MAX_BODY;

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

/// A GET-only view of the shared [`HttpClient`], for all issuers.
#[derive(Clone)]
pub(crate) struct Fetcher {
    client: HttpClient,
}

impl Fetcher {
    pub(crate) fn new(connect_timeout: Duration, read_timeout: Duration) -> Result<Self, String> {
        HttpClient::new(connect_timeout, read_timeout).map(|client| Self { client })
    }

    /// GETs `uri`: a 200 with a body of at most [`MAX_BODY`](crate::http::MAX_BODY) bytes,
    /// within the read timeout.
    ///
    /// Redirects are not followed at all: a key set must come from the configured or
    /// discovered URI, never from wherever a compromised or confused server points.
    pub(crate) async fn get(&self, uri: &Uri) -> Result<Bytes, FetchError> {
        let reply = self
            .client
            .get(uri)
            .await
            .map_err(|e| FetchError::new(e.reason()))?;
        if reply.status == StatusCode::OK {
            return Ok(reply.body);
        }
        let reason = match reply.status.as_u16() {
            300..=399 => "redirect_refused",
            429 => "rate_limited",
            500..=599 => "server_error",
            _ => "unexpected_status",
        };
        Err(FetchError {
            reason,
            retry_after: reply.retry_after,
        })
    }
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
                // An HTTP-date, counted from the response's own Date.
                "HTTP/1.1 503 Service Unavailable\r\ndate: Wed, 21 Oct 2015 07:28:00 GMT\r\n\
                 retry-after: Wed, 21 Oct 2015 07:29:30 GMT\r\ncontent-length: 0\r\n\r\n",
                "server_error",
                Some(90),
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
}
