//! A forward proxy for the tests: HTTP `CONNECT` tunnels on 127.0.0.1, counting them and
//! recording what each asked for, with the host name of [`PROXIED_HOST`](crate::idp::PROXIED_HOST)
//! (and any other) mapped to one address the test gives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One CONNECT the proxy received.
#[derive(Clone, Debug)]
pub struct Connect {
    /// The request target: `host:port`.
    pub target: String,
    /// The `Proxy-Authorization` header, if any.
    pub authorization: Option<String>,
}

/// A running proxy; stops when dropped.
pub struct TestProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Connect>>>,
    task: tokio::task::AbortHandle,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    /// Tunnels every CONNECT to `upstream`, whatever host it names; any other request gets 405.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(tunnel(client, upstream, Arc::clone(&log)));
            }
        })
        .abort_handle();
        Self { addr, seen, task }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The CONNECTs received so far.
    pub fn connects(&self) -> Vec<Connect> {
        self.seen.lock().unwrap().clone()
    }
}

async fn tunnel(mut client: TcpStream, upstream: SocketAddr, log: Arc<Mutex<Vec<Connect>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    if parts.next() != Some("CONNECT") {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    }
    let target = parts.next().unwrap_or_default().to_owned();
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    log.lock().unwrap().push(Connect {
        target,
        authorization,
    });
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}
