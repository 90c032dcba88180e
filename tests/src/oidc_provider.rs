//! The real OpenID provider of the interop suites: panva/oidc-provider v9 (`tests/interop`),
//! run by Node on loopback with a client_credentials client that gets JWT access tokens.
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The provider process; killed when dropped.
pub struct OidcProvider {
    child: Child,
    info: Value,
    pub issuer: String,
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    pub resource: String,
}

impl OidcProvider {
    /// Starts the provider, signing access tokens with `alg` (its default when `None`), and
    /// waits for the line in which it announces its issuer, port and client.
    pub fn start(alg: Option<&str>) -> Self {
        Self::start_with(alg, &[])
    }

    /// [`start`](Self::start) with the opt-in RFC 8705 client (`mtls_client_id`, subject
    /// `CN=interop-mtls`): its tokens are bound to the certificate a TLS-terminating proxy
    /// forwards as a url-encoded PEM in `x-ssl-client-cert`.
    pub fn start_mtls() -> Self {
        Self::start_with(None, &[("INTEROP_MTLS", "1")])
    }

    /// [`start`](Self::start) issuing opaque access tokens for the resource, with the
    /// introspection endpoint enabled for the client (`INTEROP_OPAQUE=1`).
    pub fn start_opaque() -> Self {
        Self::start_with(None, &[("INTEROP_OPAQUE", "1")])
    }

    /// As [`start`](Self::start), with more environment variables for the provider (the
    /// opt-in features of `oidc-provider.mjs`, such as `INTEROP_DPOP=1`).
    pub fn start_with(alg: Option<&str>, env: &[(&str, &str)]) -> Self {
        let dir = std::env::var_os("INTEROP_NODE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop"));
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run `npm ci --prefix {}`",
            dir.display()
        );
        let mut command = Command::new("node");
        command.arg(dir.join("oidc-provider.mjs"));
        if let Some(alg) = alg {
            command.env("INTEROP_ALG", alg);
        }
        command.envs(env.iter().copied());
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node is installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("provider did not start: {e}: {line:?}"));
        let text = |name: &str| info[name].as_str().unwrap().to_owned();
        Self {
            issuer: text("issuer"),
            port: u16::try_from(info["port"].as_u64().unwrap()).unwrap(),
            client_id: text("client_id"),
            client_secret: text("client_secret"),
            resource: text("resource"),
            child,
            info,
        }
    }

    /// A string the provider announced at start (`issuer`, `client_id`, ...).
    pub fn field(&self, name: &str) -> &str {
        self.info[name].as_str().unwrap()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
