//! The one HTTP client of the workspace, for discovery documents, key sets and token
//! requests: bounded in time (connect and read timeouts) and size ([`MAX_BODY`]), no
//! redirects followed, TLS through rustls with the crate's crypto backend and webpki roots.
//! `tower-auth-client` uses it for token endpoints.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, DATE, RETRY_AFTER, USER_AGENT,
};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Larger responses are refused: no token response or discovery document comes near it.
pub const MAX_BODY: usize = 64 * 1024;

/// A `Retry-After` longer than this is cut down.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The default connect and read timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const USER_AGENT_VALUE: &str = concat!("tower-auth/", env!("CARGO_PKG_VERSION"));

/// A response of any status, its body read whole (at most [`MAX_BODY`] bytes).
#[derive(Debug)]
pub struct Reply {
    /// The status, whatever it is: the caller decides what is acceptable.
    pub status: StatusCode,
    /// How long `Retry-After` asks to wait (delay-seconds or an HTTP-date), on 429 and 5xx only.
    pub retry_after: Option<Duration>,
    /// The whole body.
    pub body: Bytes,
}

/// Why no response was had: a short code for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Connecting failed or timed out.
    Connect,
    /// The request failed after connecting (connection closed, protocol error).
    Request,
    /// No complete response within the read timeout.
    Timeout,
    /// The body was over [`MAX_BODY`].
    TooLarge,
}

impl HttpError {
    /// A short code for logs: `connect_failed`, `request_failed`, `timeout`, `body_too_large`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Connect => "connect_failed",
            Self::Request => "request_failed",
            Self::Timeout => "timeout",
            Self::TooLarge => "body_too_large",
        }
    }
}

/// A small client: `GET` for discovery, `POST` of a form or of JSON for token requests.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    read_timeout: Duration,
}

impl HttpClient {
    /// A client with these timeouts; the error says why TLS could not be set up.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> Result<Self, String> {
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

    /// `GET uri` accepting JSON.
    pub async fn get(&self, uri: &Uri) -> Result<Reply, HttpError> {
        self.send(Method::GET, uri, None, None, Bytes::new()).await
    }

    /// `POST uri` with an `application/x-www-form-urlencoded` body and, optionally, an
    /// `Authorization` header (marked sensitive).
    pub async fn post_form(
        &self,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        form: Vec<u8>,
    ) -> Result<Reply, HttpError> {
        let content_type = HeaderValue::from_static("application/x-www-form-urlencoded");
        self.send(
            Method::POST,
            uri,
            authorization,
            Some(content_type),
            form.into(),
        )
        .await
    }

    /// `POST uri` with an `application/json` body.
    pub async fn post_json(&self, uri: &Uri, json: Vec<u8>) -> Result<Reply, HttpError> {
        let content_type = HeaderValue::from_static("application/json");
        self.send(Method::POST, uri, None, Some(content_type), json.into())
            .await
    }

    /// Sends one request and reads the whole response within the read timeout.
    ///
    /// Redirects are not followed: credentials go only to the configured or discovered
    /// endpoint, never to wherever a confused or compromised server points. A 3xx comes
    /// back as a [`Reply`] for the caller to refuse.
    async fn send(
        &self,
        method: Method,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Reply, HttpError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, content_type);
        }
        if let Some(mut authorization) = authorization {
            authorization.set_sensitive(true);
            headers.insert(AUTHORIZATION, authorization);
        }
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    HttpError::Connect
                } else {
                    HttpError::Request
                }
            })?;
            let status = response.status();
            let retry_after = if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            {
                let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok());
                header(RETRY_AFTER).and_then(|v| parse_retry_after(v, header(DATE)))
            } else {
                None
            };
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > MAX_BODY as u64) {
                return Err(HttpError::TooLarge);
            }
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge
                    } else {
                        HttpError::Request
                    }
                })?
                .to_bytes();
            Ok(Reply {
                status,
                retry_after,
                body,
            })
        };
        tokio::time::timeout(self.read_timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

/// `Retry-After` (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date in any of the three
/// formats a recipient must accept (section 5.6.7). A date is measured from the response's own
/// `Date` when it has one, so that both ends of the wait come from the server's clock and our
/// clock's skew does not count; from our clock otherwise. A date already past means no wait.
fn parse_retry_after(value: &str, date: Option<&str>) -> Option<Duration> {
    let value = value.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More seconds than a u64 holds is still a (very) long wait: capped below.
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let until = httpdate::parse_http_date(value).ok()?;
        let now = date
            .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
            .unwrap_or_else(SystemTime::now);
        until.duration_since(now).unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
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
        "tower-auth-oidc was built without a crypto backend: enable its feature aws_lc_rs or rust_crypto"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_delta_seconds_capped() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse_retry_after("120", None), secs(120));
        assert_eq!(parse_retry_after(" 7 ", None), secs(7));
        assert_eq!(parse_retry_after("999999", None), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", None),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            "-1",
            "+5",
            "1.5",
            "",
            "soon",
            "Wed, 32 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_dates_count_from_the_servers_date() {
        let date = Some("Wed, 21 Oct 2015 07:28:00 GMT");
        let secs = |s| Some(Duration::from_secs(s));
        // IMF-fixdate, and the obsolete RFC 850 and asctime forms.
        for later in [
            "Wed, 21 Oct 2015 07:30:00 GMT",
            "Wednesday, 21-Oct-15 07:30:00 GMT",
            "Wed Oct 21 07:30:00 2015",
        ] {
            assert_eq!(parse_retry_after(later, date), secs(120), "{later}");
        }
        // Already past by the server's clock: no wait. Far ahead: capped.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", date),
            secs(0)
        );
        assert_eq!(
            parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", date),
            Some(MAX_RETRY_AFTER)
        );
        // No usable Date: our clock, by which 2015 is past and 9999 beyond the cap.
        for no_date in [None, Some("yesterday")] {
            assert_eq!(
                parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", no_date),
                secs(0)
            );
            assert_eq!(
                parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", no_date),
                Some(MAX_RETRY_AFTER)
            );
        }
    }
}
