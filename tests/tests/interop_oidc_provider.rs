//! Interop with a real OpenID provider: panva/oidc-provider v9 (tests/interop), started on
//! loopback. Access tokens come from its token endpoint (client_credentials, a resource
//! indicator, JWT format); ours must accept them and refuse their tampered forms.
//!
//! Needs `npm ci --prefix tests/interop` first (`tests/interop/run` does it).
#![cfg(feature = "interop")]

use auth_tests::idp::{accepted, assert_refused, b64, run, unb64};
use auth_tests::oidc_provider::OidcProvider;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tower_auth_core::{Admins, Clock, Outcome};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// The provider, signing with one algorithm, and what this suite does with it.
struct Provider(OidcProvider);

impl std::ops::Deref for Provider {
    type Target = OidcProvider;

    fn deref(&self) -> &OidcProvider {
        &self.0
    }
}

impl Provider {
    fn start(alg: &str) -> Self {
        Self(OidcProvider::start(Some(alg)))
    }

    /// An access token from the token endpoint, over a plain HTTP/1.1 connection.
    async fn token(&self, scope: &str) -> String {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.client_id, self.client_secret));
        let form = format!(
            "grant_type=client_credentials&scope={}&resource={}",
            scope.replace(' ', "%20").replace(':', "%3A"),
            self.resource.replace(':', "%3A")
        );
        let request = Request::post("/token")
            .header("host", format!("127.0.0.1:{}", self.port))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let reply: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(reply["token_type"], "Bearer");
        reply["access_token"].as_str().unwrap().to_owned()
    }

    async fn authenticator(&self, audience: &str, clock: Clock) -> OidcAuthenticator {
        let config = OidcConfig::builder()
            .issuer(
                IssuerConfig::new(&self.issuer, audience)
                    .roles_claim("scope")
                    .required_typ("at+jwt"),
            )
            .build()
            .unwrap();
        OidcAuthenticator::start(config.with_clock(clock), Admins::default())
            .await
            .unwrap()
    }
}

fn parts(token: &str) -> (Value, Value, String) {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3);
    (
        serde_json::from_slice(&unb64(segments[0])).unwrap(),
        serde_json::from_slice(&unb64(segments[1])).unwrap(),
        segments[2].to_owned(),
    )
}

fn tampered_forms(token: &str) -> Vec<(&'static str, String)> {
    let (header, claims, sig) = parts(token);
    let h = b64(header.to_string());
    let raw: Vec<&str> = token.split('.').collect();
    let with_claims = |change: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        change(&mut c);
        format!("{}.{}.{}", raw[0], b64(c.to_string()), sig)
    };
    let with_header = |change: &dyn Fn(&mut Value)| {
        let mut hd = header.clone();
        change(&mut hd);
        format!("{}.{}.{}", b64(hd.to_string()), raw[1], sig)
    };
    let mut flipped = unb64(&sig);
    flipped[10] ^= 1;
    vec![
        ("sub changed", with_claims(&|c| c["sub"] = json!("admin"))),
        (
            "scope widened",
            with_claims(&|c| c["scope"] = json!("orders:read orders:write admin")),
        ),
        (
            "exp extended",
            with_claims(&|c| c["exp"] = json!(c["exp"].as_u64().unwrap() + 86_400)),
        ),
        (
            "signature bit flipped",
            format!("{}.{}.{}", raw[0], raw[1], b64(&flipped)),
        ),
        (
            "signature truncated",
            format!("{}.{}.{}", raw[0], raw[1], &sig[..sig.len() - 4]),
        ),
        ("signature removed", format!("{}.{}.", raw[0], raw[1])),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "at+jwt"}).to_string()),
                raw[1]
            ),
        ),
        ("alg HS256", with_header(&|h| h["alg"] = json!("HS256"))),
        ("typ JWT", with_header(&|h| h["typ"] = json!("JWT"))),
        (
            "kid changed",
            with_header(&|h| h["kid"] = json!("other-kid")),
        ),
        ("header re-encoded", format!("{h}.{}.{}", raw[1], sig)),
    ]
}

async fn accepts_and_refuses(alg: &str) {
    let provider = Provider::start(alg);
    let auth = provider
        .authenticator(&provider.resource, Clock::system())
        .await;
    let token = provider.token("orders:read").await;
    let (header, _, _) = parts(&token);
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some(alg), Some("at+jwt"))
    );

    let id = accepted(run(&auth, &token).await);
    assert_eq!(id.subject(), provider.client_id);
    assert!(
        id.has_role("orders:read") && !id.has_role("orders:write"),
        "{id:?}"
    );
    assert_eq!(id.method().to_string(), format!("oidc:{}", provider.issuer));
    // Again, from the cache.
    accepted(run(&auth, &token).await);
    let both = provider.token("orders:read orders:write").await;
    assert!(accepted(run(&auth, &both).await).has_role("orders:write"));

    for (why, forged) in tampered_forms(&token) {
        let outcome = run(&auth, &forged).await;
        assert!(
            matches!(outcome, Outcome::Rejected(_)),
            "{why}: {outcome:?}"
        );
        assert_refused(&outcome);
    }
    // The original still passes after all that.
    accepted(run(&auth, &token).await);

    // Another audience, and a clock past `exp` (600 s + 60 s leeway).
    let elsewhere = provider
        .authenticator("urn:another:api", Clock::system())
        .await;
    assert_eq!(
        assert_refused(&run(&elsewhere, &token).await),
        "aud_mismatch"
    );
    let now = Clock::system().now_unix();
    let later = provider
        .authenticator(&provider.resource, Clock::manual(now + 700))
        .await;
    assert_eq!(assert_refused(&run(&later, &token).await), "expired");
}

#[tokio::test]
async fn oidc_provider_es256_access_tokens() {
    accepts_and_refuses("ES256").await;
}

#[tokio::test]
async fn oidc_provider_rs256_access_tokens() {
    accepts_and_refuses("RS256").await;
}
