//! Shared pieces of the end-to-end tests: servers on 127.0.0.1:0, a raw HTTP client,
//! log capture, and the in-process test identity provider.
#![allow(missing_docs, unreachable_pub)]

pub mod idp;
#[cfg(feature = "interop")]
pub mod oidc_provider;
pub mod pki;
pub mod proxy;
#[cfg(feature = "interop")]
pub mod redis_server;
pub mod token_endpoint;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tower_auth::AuthConfig;

/// Serves `respond` on `listener` with HTTP/1.1 (over TLS with `tls`: a handshake the
/// client gives up on serves nothing), one request per connection, so that a fault
/// switched on now applies to the very next request. `admit` runs for every accepted
/// connection (to count it) and says whether to serve it; `false` closes it at once, like a
/// server that is down. Stops when the returned handle is aborted.
pub fn serve_each_connection<F, Fut>(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    admit: impl Fn() -> bool + Send + 'static,
    respond: F,
) -> tokio::task::AbortHandle
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<http::Response<http_body_util::Full<Bytes>>, std::convert::Infallible>,
        > + Send
        + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if !admit() {
                drop(stream);
                continue;
            }
            let respond = respond.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.keep_alive(false);
                let service = hyper::service::service_fn(respond);
                let _ = match tls {
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                    // A client that does not trust the certificate ends here: no request.
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => http.serve_connection(TokioIo::new(stream), service).await,
                        Err(_) => return,
                    },
                };
            });
        }
    })
    .abort_handle()
}

/// Moves Tokio's clock forward by `by` at once (timers due in between fire), then lets time
/// run on so that real I/O keeps its real timeouts. Needs no fetch in flight.
pub async fn jump(by: std::time::Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// The access token itself, for comparing tokens in tests.
pub fn token_text(token: &tower_auth_client::Token) -> String {
    String::from_utf8(token.secret().expose_secret().to_vec()).unwrap()
}

/// Two strong keys for tests (random hex, as `openssl rand -hex 32` prints).
pub const KEY_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const KEY_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

/// Serves `router` on 127.0.0.1 with an OS-chosen port, until the test's runtime ends.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// As [`serve`], with each request's peer address as axum's `ConnectInfo<SocketAddr>`
/// (`into_make_service_with_connect_info`), for what counts per source.
pub async fn serve_with_peers(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends `GET path` over a fresh HTTP/1.1 connection with exactly these headers (repeats
/// allowed, values as raw bytes) and the request target exactly as given.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(addr, http::Method::GET, path, headers).await
}

/// As [`get`], with any method (and an empty body).
pub async fn send(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    send_body(addr, method, path, headers, "").await
}

/// As [`send`], with `body`.
pub async fn send_body(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let response = sender
        .send_request(
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// An HTTP/1.1 connection to `server` from the loopback address `from` (127.0.0.2, 127.0.0.3,
/// ...): two clients at two source addresses on one machine.
pub async fn http1_from(
    server: SocketAddr,
    from: [u8; 4],
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = connect_from(server, from).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A TCP connection to `server` from the loopback address `from`.
pub async fn connect_from(
    server: SocketAddr,
    from: [u8; 4],
) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(server).await
}

/// Configuration from these variables only (the process environment is not touched).
pub fn config(vars: &[(&str, &str)]) -> AuthConfig {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AuthConfig::from_lookup("", |name| vars.get(name).cloned()).unwrap()
}

/// Everything logged at any level on this thread while the guard lives.
///
/// One global subscriber per test binary, at TRACE, writes each event into the buffer the
/// current thread registered, if any. A thread-local subscriber per test (`set_default`)
/// would race with parallel tests over tracing's global cache of callsite interest and
/// could miss events; a single global one leaves nothing to race.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CapturedLogs>> = const { std::cell::RefCell::new(None) };
}

/// Stops the capture on this thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

/// Writes to the current thread's capture buffer, or nowhere.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(logs) = c.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Starts capturing on the current thread (use a current-thread runtime so the server's
    /// tasks log here too).
    pub fn start() -> (Self, CaptureGuard) {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in tests");
        });
        let logs = Self::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(logs.clone()));
        (logs, CaptureGuard(()))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}
