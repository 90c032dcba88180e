//! [`HttpClient`]: bounded in time (connect and read timeouts) and size ([`MAX_BODY`]), no
//! redirects followed, TLS through rustls with the crate's crypto backend, trusting the
//! platform's roots, the webpki roots and any [`CaBundle`] added.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, DATE, PROXY_AUTHORIZATION, RETRY_AFTER,
    USER_AGENT,
};
use http::{HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::proxy::{Proxies, ProxyConnector};
use crate::retry_after::parse_retry_after;
use crate::roots::root_store;
use crate::{CaBundle, ClientCertificate, HttpError};

/// Larger responses are refused: no token response, key set or discovery document comes near it.
pub const MAX_BODY: usize = 64 * 1024;

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

impl Reply {
    /// The error a 3xx, 429 or 5xx stands for, whatever the body says; `None` for any other
    /// status, whose body the caller may want to read (an OAuth error response).
    pub fn failure(&self) -> Option<HttpError> {
        let status = self.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            Some(HttpError::RateLimited {
                retry_after: self.retry_after,
            })
        } else if status.is_server_error() {
            Some(HttpError::ServerError {
                retry_after: self.retry_after,
            })
        } else if status.is_redirection() {
            Some(HttpError::Redirect)
        } else {
            None
        }
    }

    /// The body of a 200; any other status as an error.
    ///
    /// # Errors
    /// [`Reply::failure`], or [`HttpError::UnexpectedStatus`].
    pub fn into_ok_body(self) -> Result<Bytes, HttpError> {
        if self.status == StatusCode::OK {
            return Ok(self.body);
        }
        Err(self.failure().unwrap_or(HttpError::UnexpectedStatus))
    }
}

/// A small client: `GET` for discovery and key sets, `POST` of a form or of JSON for token
/// requests. Cloning shares the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    read_timeout: Duration,
    proxies: Proxies,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("read_timeout", &self.read_timeout)
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with these timeouts, trusting the platform's certificate store and the webpki
    /// roots.
    ///
    /// # Errors
    /// [`HttpError::NoCryptoBackend`] or [`HttpError::Tls`] when TLS cannot be set up.
    pub fn new(connect_timeout: Duration, read_timeout: Duration) -> Result<Self, HttpError> {
        Self::with_ca(connect_timeout, read_timeout, &[])
    }

    /// [`new`](Self::new), trusting the certificates of `extra` as well (added to the public
    /// roots, not in their place).
    ///
    /// Both honour the proxies of the process environment ([`Proxies::from_env`]); see
    /// [`with_proxies`](Self::with_proxies) for others.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_ca(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra: &[&CaBundle],
    ) -> Result<Self, HttpError> {
        Self::with_tls(connect_timeout, read_timeout, extra, None)
    }

    /// [`with_ca`](Self::with_ca), presenting `certificate` to servers that ask for one
    /// (mutual TLS, RFC 8705).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_tls(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra: &[&CaBundle],
        certificate: Option<&ClientCertificate>,
    ) -> Result<Self, HttpError> {
        let proxies = Proxies::from_env();
        Self::build(connect_timeout, read_timeout, extra, certificate, proxies)
    }

    /// [`with_ca`](Self::with_ca), going through `proxies` rather than the environment's.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_proxies(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra: &[&CaBundle],
        proxies: Proxies,
    ) -> Result<Self, HttpError> {
        Self::build(connect_timeout, read_timeout, extra, None, proxies)
    }

    fn build(
        connect_timeout: Duration,
        read_timeout: Duration,
        extra: &[&CaBundle],
        certificate: Option<&ClientCertificate>,
        proxies: Proxies,
    ) -> Result<Self, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let tls = tls_config(extra, certificate)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector {
                http,
                proxies: proxies.clone(),
            });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(https);
        Ok(Self {
            client,
            read_timeout,
            proxies,
        })
    }

    /// `GET uri` accepting JSON: the response, whatever its status.
    ///
    /// # Errors
    /// When no whole response was had: connect, request, timeout, size.
    pub async fn get(&self, uri: &Uri) -> Result<Reply, HttpError> {
        self.send(Method::GET, uri, None, None, Bytes::new()).await
    }

    /// `GET uri`: the body of a 200.
    ///
    /// # Errors
    /// As [`get`](Self::get), and [`Reply::into_ok_body`] for any other status.
    pub async fn get_ok(&self, uri: &Uri) -> Result<Bytes, HttpError> {
        self.get(uri).await?.into_ok_body()
    }

    /// `POST uri` with an `application/x-www-form-urlencoded` body and, optionally, an
    /// `Authorization` header (marked sensitive).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn post_form(
        &self,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        form: String,
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

    /// [`post_form`](Self::post_form) with a DPoP proof in the `DPoP` header (RFC 9449
    /// section 5), answering also the `DPoP-Nonce` the server sent, if any (section 8).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn post_form_with_dpop(
        &self,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        proof: HeaderValue,
        form: String,
    ) -> Result<(Reply, Option<HeaderValue>), HttpError> {
        let content_type = HeaderValue::from_static("application/x-www-form-urlencoded");
        self.send_with(
            Method::POST,
            uri,
            authorization,
            Some(content_type),
            Some(proof),
            form.into(),
        )
        .await
    }

    /// `POST uri` with an `application/json` body.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn post_json(&self, uri: &Uri, json: Vec<u8>) -> Result<Reply, HttpError> {
        let content_type = HeaderValue::from_static("application/json");
        self.send(Method::POST, uri, None, Some(content_type), json.into())
            .await
    }

    /// Sends one request and reads the whole response within the read timeout.
    ///
    /// Redirects are not followed: credentials go only to the configured or discovered
    /// endpoint, and keys come only from there, never from wherever a confused or compromised
    /// server points. A 3xx comes back as a [`Reply`] for the caller to refuse.
    async fn send(
        &self,
        method: Method,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        content_type: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<Reply, HttpError> {
        self.send_with(method, uri, authorization, content_type, None, body)
            .await
            .map(|(reply, _)| reply)
    }

    /// [`send`](Self::send) with an optional DPoP proof; also answers the `DPoP-Nonce`.
    async fn send_with(
        &self,
        method: Method,
        uri: &Uri,
        authorization: Option<HeaderValue>,
        content_type: Option<HeaderValue>,
        dpop: Option<HeaderValue>,
        body: Bytes,
    ) -> Result<(Reply, Option<HeaderValue>), HttpError> {
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
        if let Some(proof) = dpop {
            headers.insert("dpop", proof);
        }
        // Sensitive already: hyper-util marks it so when it parses the proxy URL.
        if let Some(proxy_authorization) = self.proxies.absolute_form_authorization(uri) {
            headers.insert(PROXY_AUTHORIZATION, proxy_authorization);
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
            let nonce = response.headers().get("dpop-nonce").cloned();
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
            Ok((
                Reply {
                    status,
                    retry_after,
                    body,
                },
                nonce,
            ))
        };
        tokio::time::timeout(self.read_timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

/// The TLS configuration of the client: the platform's store, the webpki roots and `extra`,
/// and `certificate` when the server asks for one.
pub(crate) fn tls_config(
    extra: &[&CaBundle],
    certificate: Option<&ClientCertificate>,
) -> Result<rustls::ClientConfig, HttpError> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(tls_provider()?))
        .with_safe_default_protocol_versions()
        .map_err(|_| HttpError::Tls)?
        .with_root_certificates(root_store(extra));
    match certificate {
        None => Ok(builder.with_no_client_auth()),
        Some(certificate) => {
            let (chain, key) = certificate.parts();
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|_| HttpError::Tls)
        }
    }
}

/// Makes this crate's crypto backend the process-wide default of rustls, unless one is
/// installed already (then that one stays): for clients that build their TLS configuration
/// with `rustls::ClientConfig::builder()`, such as the Redis client, which would otherwise
/// panic in a build with both of rustls's backends and no default.
///
/// # Errors
/// [`HttpError::NoCryptoBackend`] in a build with neither `aws_lc_rs` nor `rust_crypto`.
pub fn install_default_tls_provider() -> Result<(), HttpError> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; its provider is as good.
        let _ = rustls::crypto::CryptoProvider::install_default(tls_provider()?);
    }
    Ok(())
}

#[cfg(feature = "aws_lc_rs")]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, HttpError> {
    Ok(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(all(feature = "rust_crypto", not(feature = "aws_lc_rs")))]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, HttpError> {
    Ok(rustls::crypto::ring::default_provider())
}

#[cfg(not(any(feature = "aws_lc_rs", feature = "rust_crypto")))]
fn tls_provider() -> Result<rustls::crypto::CryptoProvider, HttpError> {
    Err(HttpError::NoCryptoBackend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{TestServer, chunked};

    fn client() -> HttpClient {
        HttpClient::new(Duration::from_millis(500), Duration::from_millis(300)).unwrap()
    }

    async fn get_ok(answer: Option<Vec<u8>>) -> Result<Bytes, HttpError> {
        let server = TestServer::start(|_| vec![("/jwks", answer)]).await;
        let uri: Uri = format!("{}/jwks", server.base).parse().unwrap();
        client().get_ok(&uri).await
    }

    #[tokio::test]
    async fn body_cap_applies_to_streamed_bodies_too() {
        let at_cap = vec![b' '; MAX_BODY];
        let body = get_ok(Some(chunked(&at_cap, 8192))).await.unwrap();
        assert_eq!(body.len(), MAX_BODY);
        let over = vec![b' '; MAX_BODY + 1];
        let error = get_ok(Some(chunked(&over, 8192))).await.unwrap_err();
        assert_eq!(error, HttpError::TooLarge);
        let declared = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let error = get_ok(Some(declared.into_bytes())).await.unwrap_err();
        assert_eq!(error, HttpError::TooLarge);
    }

    #[tokio::test]
    async fn statuses_redirects_and_retry_after() {
        let after = |s| Some(Duration::from_secs(s));
        for (response, expected) in [
            (
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/keys\r\ncontent-length: 0\r\n\r\n",
                HttpError::Redirect,
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 17\r\ncontent-length: 0\r\n\r\n",
                HttpError::ServerError {
                    retry_after: after(17),
                },
            ),
            (
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 5\r\ncontent-length: 0\r\n\r\n",
                HttpError::RateLimited {
                    retry_after: after(5),
                },
            ),
            (
                // An HTTP-date, counted from the response's own Date.
                "HTTP/1.1 503 Service Unavailable\r\ndate: Wed, 21 Oct 2015 07:28:00 GMT\r\n\
                 retry-after: Wed, 21 Oct 2015 07:29:30 GMT\r\ncontent-length: 0\r\n\r\n",
                HttpError::ServerError {
                    retry_after: after(90),
                },
            ),
            (
                // Retry-After means nothing on a 404.
                "HTTP/1.1 404 Not Found\r\nretry-after: 5\r\ncontent-length: 0\r\n\r\n",
                HttpError::UnexpectedStatus,
            ),
            ("garbage that is not HTTP\r\n\r\n", HttpError::Request),
        ] {
            let error = get_ok(Some(response.as_bytes().to_vec()))
                .await
                .unwrap_err();
            assert_eq!(error, expected, "{response}");
        }
    }

    #[tokio::test]
    async fn hanging_and_refusing_servers_are_bounded() {
        assert_eq!(get_ok(None).await.unwrap_err(), HttpError::Timeout);
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/jwks", closed.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(closed);
        assert_eq!(client().get_ok(&uri).await.unwrap_err(), HttpError::Connect);
    }
}
