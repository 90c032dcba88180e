//! A throwaway OpenID issuer for demos (feature `dev-issuer`): discovery and a JWKS over
//! HTTP on 127.0.0.1, and a fresh ES256 key that signs whatever it is asked to.
//!
//! Never enable this feature in a production build: anyone who can call [`DevIssuer::mint`]
//! can become anyone.
//!
//! ```
//! use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
//! use tower_auth_oidc::{OidcAuthenticator, dev_issuer::DevIssuer};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let issuer = DevIssuer::start().await.unwrap();
//! let config = issuer.config("demo-api").build().unwrap();
//! let oidc = OidcAuthenticator::start(config, Admins::default()).await.unwrap();
//! let token = issuer.mint("alice", "demo-api", &["orders:read"], Duration::from_secs(3600));
//! match oidc.authenticate(Credential::Bearer(&token)) {
//!     Check::Ready(Outcome::Authenticated(id)) => assert!(id.has_role("orders:read")),
//!     other => panic!("{other:?}"),
//! }
//! # }
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tower_auth_core::Clock;

use crate::{IssuerConfig, OidcConfig, OidcConfigBuilder};

const KID: &str = "dev-es256";

/// A running demo issuer; it stops serving when dropped.
pub struct DevIssuer {
    issuer: Arc<str>,
    key: EcdsaKeyPair,
    clock: Clock,
    task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DevIssuer {
    /// Generates a key and serves `/.well-known/openid-configuration` and `/jwks` on
    /// 127.0.0.1 with an OS-chosen port, on the current Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| std::io::Error::other("key generation failed"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let issuer: Arc<str> = format!("http://{}", listener.local_addr()?).into();
        let point = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": KID, "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
        let discovery = json!({"issuer": &*issuer, "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["ES256"]});
        let documents = Arc::new((
            Bytes::from(discovery.to_string()),
            Bytes::from(jwks.to_string()),
        ));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let documents = Arc::clone(&documents);
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let documents = Arc::clone(&documents);
                        async move { Ok::<_, Infallible>(serve(&request, &documents)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .abort_handle();
        Ok(Self {
            issuer,
            key,
            clock: Clock::system(),
            task,
        })
    }

    /// The issuer URL (`http://127.0.0.1:<port>`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A configuration trusting this issuer for `audience`, with `scope` as the roles claim.
    pub fn config(&self, audience: &str) -> OidcConfigBuilder {
        OidcConfig::builder()
            .issuer(IssuerConfig::new(&*self.issuer, audience).roles_claim("scope"))
    }

    /// An ES256 access token (`typ` `at+jwt`) for `subject` with these roles as its `scope`,
    /// valid for `ttl` from now.
    pub fn mint(&self, subject: &str, audience: &str, roles: &[&str], ttl: Duration) -> String {
        let now = self.clock.now_unix();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": KID});
        let claims = json!({"iss": &*self.issuer, "sub": subject, "aud": audience, "iat": now,
            "exp": now + ttl.as_secs(), "scope": roles.join(" ")});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
            .unwrap_or_default();
        format!("{input}.{signature}")
    }
}

fn serve(request: &Request<Incoming>, documents: &(Bytes, Bytes)) -> Response<Full<Bytes>> {
    let body = match request.uri().path() {
        "/.well-known/openid-configuration" => documents.0.clone(),
        "/jwks" => documents.1.clone(),
        _ => {
            let mut response =
                Response::new(Full::new(Bytes::from_static(b"{\"error\":\"not_found\"}")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
    };
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
