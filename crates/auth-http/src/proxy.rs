//! [`Proxies`]: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (and their lower-case
//! forms), parsed by hyper-util's matcher, and the connector that honours them: an HTTP
//! `CONNECT` tunnel (hyper-util's `Tunnel`) for `https` destinations, the absolute form through
//! the proxy for plain `http` ones.
//!
//! Loopback destinations never go through a proxy: plain http is allowed to them only because
//! it stays on this machine, and a proxy's `127.0.0.1` is another machine's.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::is_loopback;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which requests go through which proxy. Cloning is one reference count.
///
/// ```
/// use tower_auth_http::Proxies;
///
/// let proxies = Proxies::from_lookup(|name| match name {
///     "HTTPS_PROXY" => Some("http://user:pa%24s@proxy.internal:3128".into()),
///     "NO_PROXY" => Some(".internal, 10.0.0.0/8".into()),
///     _ => None,
/// });
/// assert_eq!(proxies.proxy_for(&"https://idp.example/jwks".parse().unwrap()).as_deref(),
///     Some("http://proxy.internal:3128/"));
/// assert_eq!(proxies.proxy_for(&"https://idp.internal/jwks".parse().unwrap()), None);
/// assert_eq!(proxies.proxy_for(&"https://10.1.2.3/jwks".parse().unwrap()), None);
/// // Loopback never goes through a proxy.
/// assert_eq!(proxies.proxy_for(&"https://127.0.0.1:8443/jwks".parse().unwrap()), None);
/// // Credentials are never printed.
/// assert!(!format!("{proxies:?}").contains("pa"));
/// ```
#[derive(Clone, Default)]
pub struct Proxies {
    matcher: Option<Arc<Matcher>>,
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The matcher's own Debug would show the proxy URLs; they may carry credentials.
        f.debug_struct("Proxies")
            .field("configured", &self.matcher.is_some())
            .finish()
    }
}

/// Where one request goes: the proxy's URI (scheme, host and port only) and its
/// `Proxy-Authorization`, if the proxy URL had credentials.
struct Route {
    proxy: Uri,
    authorization: Option<HeaderValue>,
}

impl Proxies {
    /// No proxy, whatever the environment says.
    pub fn none() -> Self {
        Self::default()
    }

    /// The process environment: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, each
    /// also in lower case (the upper-case form first), as curl reads them.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading the variables through `get`.
    ///
    /// `NO_PROXY` lists host names (each matching itself and its subdomains, a leading dot
    /// optional), IP addresses or CIDR blocks, or `*` for every host. A proxy URL is
    /// `http://[user:password@]host:port`; its credentials (percent-decoded) are sent as
    /// `Proxy-Authorization: Basic`. A proxy URL that is not `http` (an `https` or SOCKS
    /// proxy) makes every connection that would use it fail.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&str; 2]| names.iter().find_map(|n| get(n)).unwrap_or_default();
        let all = first(["ALL_PROXY", "all_proxy"]);
        let http = first(["HTTP_PROXY", "http_proxy"]);
        let https = first(["HTTPS_PROXY", "https_proxy"]);
        if [&all, &http, &https].iter().all(|v| v.trim().is_empty()) {
            return Self::none();
        }
        let matcher = Matcher::builder()
            .all(all)
            .http(http)
            .https(https)
            .no(first(["NO_PROXY", "no_proxy"]))
            .build();
        Self {
            matcher: Some(Arc::new(matcher)),
        }
    }

    /// The proxy a request to `uri` goes through (scheme, host and port; never the
    /// credentials), or `None` for a direct connection.
    pub fn proxy_for(&self, uri: &Uri) -> Option<String> {
        self.route(uri).map(|r| r.proxy.to_string())
    }

    fn route(&self, uri: &Uri) -> Option<Route> {
        let matcher = self.matcher.as_ref()?;
        if uri.host().is_none_or(is_loopback) {
            return None;
        }
        let intercept = matcher.intercept(uri)?;
        Some(Route {
            proxy: intercept.uri().clone(),
            authorization: intercept.basic_auth().cloned(),
        })
    }

    /// The `Proxy-Authorization` of a plain-http request sent to a proxy in absolute form
    /// (a tunnel carries its own on the `CONNECT`).
    pub(crate) fn absolute_form_authorization(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        self.route(uri)?.authorization
    }
}

/// A connector: direct, a `CONNECT` tunnel, or a connection to the proxy for absolute-form
/// requests, as [`Proxies`] says for each destination.
#[derive(Clone)]
pub(crate) struct ProxyConnector {
    pub(crate) http: HttpConnector,
    pub(crate) proxies: Proxies,
}

type Connecting = Pin<Box<dyn Future<Output = Result<ProxiedStream, BoxError>> + Send>>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxiedStream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut http = self.http.clone();
        match self.proxies.route(&dst) {
            None => Box::pin(async move {
                let io = http.call(dst).await?;
                Ok(ProxiedStream {
                    io,
                    absolute_form: false,
                })
            }),
            Some(route) if route.proxy.scheme_str() != Some("http") => {
                Box::pin(async { Err("only http:// proxies are supported".into()) })
            }
            Some(route) if dst.scheme_str() == Some("https") => {
                let mut tunnel = Tunnel::new(route.proxy, http);
                if let Some(authorization) = route.authorization {
                    tunnel = tunnel.with_auth(authorization);
                }
                Box::pin(async move {
                    let io = tunnel.call(dst).await?;
                    Ok(ProxiedStream {
                        io,
                        absolute_form: false,
                    })
                })
            }
            Some(route) => Box::pin(async move {
                let io = http.call(route.proxy).await?;
                Ok(ProxiedStream {
                    io,
                    absolute_form: true,
                })
            }),
        }
    }
}

/// A TCP connection, direct or through a proxy; marked proxied (so that the client sends
/// requests in absolute form) when it goes to an HTTP proxy without a tunnel.
pub(crate) struct ProxiedStream {
    io: TokioIo<TcpStream>,
    absolute_form: bool,
}

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.absolute_form)
    }
}

impl Read for ProxiedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxiedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::{HttpClient, HttpError};

    /// A proxy that records each request head and answers `answer`, then closes.
    async fn proxy(answer: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heads);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        (url, heads)
    }

    fn client(proxies: Proxies) -> HttpClient {
        let timeout = Duration::from_millis(500);
        HttpClient::with_proxies(timeout, timeout, &[], proxies).unwrap()
    }

    fn lookup(vars: &[(&'static str, String)]) -> Proxies {
        let vars = vars.to_vec();
        Proxies::from_lookup(move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[tokio::test]
    async fn plain_http_goes_in_absolute_form_with_proxy_authorization() {
        let (url, heads) = proxy("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
        let with_credentials = url.replace("http://", "http://svc:p%40ss@");
        let proxies = lookup(&[("http_proxy", with_credentials)]);
        let uri: Uri = "http://idp.example/jwks".parse().unwrap();
        let body = client(proxies).get_ok(&uri).await.unwrap();
        assert_eq!(&body[..], b"{}");
        let head = heads.lock().unwrap()[0].clone();
        assert!(
            head.starts_with("GET http://idp.example/jwks HTTP/1.1\r\n"),
            "{head}"
        );
        // base64("svc:p@ss"): the password percent-decoded.
        assert!(
            head.to_ascii_lowercase()
                .contains("proxy-authorization: basic c3zjonbac3m=")
        );
    }

    #[tokio::test]
    async fn https_goes_through_a_connect_tunnel_and_a_refusal_is_a_connect_failure() {
        let (url, heads) = proxy("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        let proxies = lookup(&[("HTTPS_PROXY", url.replace("http://", "http://svc:pw@"))]);
        let uri: Uri = "https://idp.example/jwks".parse().unwrap();
        let error = client(proxies).get_ok(&uri).await.unwrap_err();
        assert_eq!(error, HttpError::Connect);
        let head = heads.lock().unwrap()[0].clone();
        assert!(
            head.starts_with("CONNECT idp.example:443 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("proxy-authorization: basic c3zjonb3"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn no_proxy_and_loopback_connect_directly() {
        let (url, heads) = proxy("HTTP/1.1 500 No\r\n\r\n").await;
        let (direct, _) = proxy("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        let proxies = lookup(&[
            ("HTTPS_PROXY", url.clone()),
            ("HTTP_PROXY", url.clone()),
            ("NO_PROXY", "example.org, 192.0.2.0/24".into()),
        ]);
        // Loopback: straight to the server, whatever the proxy settings.
        let uri: Uri = format!("{direct}/jwks").parse().unwrap();
        client(proxies.clone()).get_ok(&uri).await.unwrap();
        for host in ["idp.example.org", "example.org", "192.0.2.7"] {
            assert_eq!(
                proxies.proxy_for(&format!("https://{host}/").parse().unwrap()),
                None
            );
        }
        assert!(
            proxies
                .proxy_for(&"https://notexample.org/".parse().unwrap())
                .is_some()
        );
        let star = lookup(&[("HTTPS_PROXY", url.clone()), ("no_proxy", "*".into())]);
        assert_eq!(
            star.proxy_for(&"https://idp.example/".parse().unwrap()),
            None
        );
        assert!(heads.lock().unwrap().is_empty());
        // Nothing set, or only NO_PROXY: no proxy at all.
        assert_eq!(
            lookup(&[("NO_PROXY", "x".into())]).proxy_for(&"https://a.example/".parse().unwrap()),
            None
        );
        assert_eq!(
            format!("{:?}", Proxies::none()),
            "Proxies { configured: false }"
        );
    }

    #[tokio::test]
    async fn a_proxy_that_is_not_http_fails_every_connection_it_would_carry() {
        for url in ["socks5://127.0.0.1:9", "https://127.0.0.1:9"] {
            let proxies = lookup(&[("HTTPS_PROXY", url.into())]);
            let uri: Uri = "https://idp.example/jwks".parse().unwrap();
            assert_eq!(
                client(proxies).get_ok(&uri).await.unwrap_err(),
                HttpError::Connect,
                "{url}"
            );
        }
    }
}
