//! A raw HTTP/1.1 server on 127.0.0.1 for the tests: a fixed response per path, written as
//! bytes so that malformed, oversized and hanging answers can be served too.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to answer on a path: these bytes, or nothing ever (the connection hangs).
pub(crate) type Answer = Option<Vec<u8>>;

/// A running server: its base URL (`http://127.0.0.1:port`) and the paths asked so far.
pub(crate) struct TestServer {
    pub(crate) base: String,
    asked: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    /// Serves the routes `routes(base)` gives; any other path gets an empty 404.
    pub(crate) async fn start(routes: impl FnOnce(&str) -> Vec<(&'static str, Answer)>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes = routes(&base);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let routes = Arc::new(routes);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let routes = Arc::clone(&routes);
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let read = stream.read(&mut request).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&request[..read]);
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    log.lock().unwrap().push(path.clone());
                    let answer = routes
                        .iter()
                        .find(|(p, _)| *p == path)
                        .map(|(_, answer)| answer.clone())
                        .unwrap_or_else(|| Some(status(404, "").into_bytes()));
                    match answer {
                        Some(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                            let _ = stream.shutdown().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        Self { base, asked }
    }

    /// The paths requested so far, in order.
    pub(crate) fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

/// A response with `status` and `body` and a correct `content-length`.
pub(crate) fn status(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A 200 whose body is sent in chunks of `chunk` bytes, so no length is declared.
pub(crate) fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
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
