//! A real `redis-server` for the interop tests (Debian package `redis-server`, which
//! `tests/interop/run` installs): on a free loopback port, without persistence, with a
//! password, killed when dropped (and by a test to make an outage).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on 127.0.0.1, without persistence, killed when dropped.
pub struct RedisServer {
    port: u16,
    password: &'static str,
    /// Certificate, key and CA files: the server speaks only TLS (`--port 0`).
    tls: Option<[String; 3]>,
    child: Option<Child>,
}

impl RedisServer {
    /// A port nothing listens on now: bound to 127.0.0.1:0, then let go.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Not started yet: [`url`](Self::url) refuses connections until [`start`](Self::start).
    pub fn stopped(password: &'static str) -> Self {
        Self {
            port: Self::free_port(),
            password,
            tls: None,
            child: None,
        }
    }

    /// Started, speaking only TLS with the certificate and key files given (signed by the
    /// CA file given); clients need no certificate. [`url`](Self::url) is then `rediss://`.
    pub async fn started_tls(password: &'static str, cert: &str, key: &str, ca: &str) -> Self {
        let mut server = Self::stopped(password);
        server.tls = Some([cert.to_owned(), key.to_owned(), ca.to_owned()]);
        server.start().await;
        server
    }

    /// Started, and accepting connections.
    pub async fn started(password: &'static str) -> Self {
        let mut server = Self::stopped(password);
        server.start().await;
        server
    }

    /// `redis://:<password>@127.0.0.1:<port>` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://:{}@127.0.0.1:{}", self.password, self.port)
    }

    /// Starts `redis-server` on the port and waits (5 s at most) until it accepts
    /// connections: a real process starting, not a time slept on.
    pub async fn start(&mut self) {
        assert!(self.child.is_none());
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &port]),
            Some([cert, key, ca]) => command
                .args(["--port", "0", "--tls-port", &port])
                .args(["--tls-cert-file", cert, "--tls-key-file", key])
                .args(["--tls-ca-cert-file", ca, "--tls-auth-clients", "no"]),
        };
        let child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", self.password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `redis-cli` against the server (the password through the environment) and
    /// returns what it printed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .env("REDISCLI_AUTH", self.password)
            .output()
            .expect("redis-cli comes with redis-server");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Kills the server (its data is gone: it keeps none on disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
