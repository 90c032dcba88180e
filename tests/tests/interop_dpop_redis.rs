//! DPoP proofs remembered by replicas through a real Redis (`AUTH_REDIS_URL`, features
//! `redis` and `oidc`): two in-process replicas built from environment variables, each
//! behind its own server on loopback, tokens of the test IdP bound to a client key, and
//! `redis-server` started by the test on a free loopback port (killed to make an outage).
//!
//! Needs `redis-server` (Debian package `redis-server`): `tests/interop/run` installs it;
//! by hand, `cargo test -p auth-tests --features interop --test interop_dpop_redis`.
#![cfg(feature = "interop")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use auth_tests::idp::{SigningKey, TestIdp, b64};
use auth_tests::redis_server::RedisServer;
use auth_tests::{CapturedLogs, KEY_A, Reply, config, get};
use serde_json::json;
use tower_auth_core::{Clock, sha256_digest};
use tower_auth_oidc::jwk_thumbprint;

/// Redis's password: in the URL, and never in a log line.
const REDIS_PASSWORD: &str = "redis-Pa55-dpop-never-logged";
/// What every proof names: both replicas are this service (`AUTH_DPOP_ORIGIN`).
const ORIGIN: &str = "https://api.example.com";

/// The client's key, the IdP and a token bound to the key.
struct Setup {
    idp: TestIdp,
    client: SigningKey,
    token: String,
}

impl Setup {
    async fn new() -> Self {
        let idp_key = SigningKey::rsa("rsa-1", 0);
        let idp = TestIdp::start(&[&idp_key]).await;
        let client = SigningKey::ec("client");
        let jkt = jwk_thumbprint(Self::jwk(&client).as_object().unwrap()).unwrap();
        let now = Clock::system().now_unix();
        let token = idp.token_with(&idp_key, |claims| {
            claims["sub"] = json!("alice");
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
            claims["cnf"] = json!({"jkt": jkt});
        });
        Self { idp, client, token }
    }

    fn jwk(key: &SigningKey) -> serde_json::Value {
        let jwk = key.jwk();
        json!({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]})
    }

    /// A fresh proof for `GET /whoami` with the token.
    fn proof(&self, jti: &str) -> String {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": Self::jwk(&self.client)});
        let claims = json!({"jti": jti, "htm": "GET", "htu": format!("{ORIGIN}/whoami"),
            "iat": Clock::system().now_unix(),
            "ath": b64(sha256_digest(self.token.as_bytes()))});
        self.client.mint(&header, &claims)
    }

    /// A replica sharing `redis`, with these variables too.
    async fn replica(&self, redis: &RedisServer, extra: &[(&str, &str)]) -> SocketAddr {
        let oidc = json!({"issuers": [{"issuer": self.idp.issuer(), "audience": "api",
                                       "algorithms": ["RS256", "ES256"]}]})
        .to_string();
        let url = redis.url();
        let mut vars = vec![
            ("API_KEYS", KEY_A),
            ("OIDC_CONFIG", oidc.as_str()),
            ("AUTH_DPOP_ORIGIN", ORIGIN),
            ("AUTH_REDIS_URL", url.as_str()),
        ];
        vars.extend_from_slice(extra);
        let layer = config(&vars).build().await.unwrap();
        auth_tests::serve_with_peers(auth_examples::router(layer)).await
    }

    async fn whoami(&self, replica: SocketAddr, proof: &str) -> Reply {
        let authorization = format!("DPoP {}", self.token);
        get(
            replica,
            "/whoami",
            &[("authorization", &authorization), ("dpop", proof)],
        )
        .await
    }
}

fn error_of(reply: &Reply) -> String {
    reply
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

/// SECURITY.md P8, P25.
#[tokio::test]
async fn a_proof_accepted_by_one_replica_is_refused_by_another() {
    let (logs, _guard) = CapturedLogs::start();
    let redis = RedisServer::started(REDIS_PASSWORD).await;
    let setup = Setup::new().await;
    let (one, two) = (
        setup.replica(&redis, &[]).await,
        setup.replica(&redis, &[]).await,
    );
    let proof = setup.proof("shared-1");
    let accepted = setup.whoami(one, &proof).await;
    assert_eq!(accepted.status, 200, "{accepted:?}");
    let replayed = setup.whoami(two, &proof).await;
    assert_eq!(replayed.status, 401, "{replayed:?}");
    assert!(
        error_of(&replayed).contains("error=\"invalid_token\""),
        "{replayed:?}"
    );
    assert!(logs.text().contains("reason=\"dpop_proof_replayed\""));
    // The other replica's own fresh proof is fine, and is then refused by the first.
    let other = setup.proof("shared-2");
    assert_eq!(setup.whoami(two, &other).await.status, 200);
    assert_eq!(setup.whoami(one, &other).await.status, 401);

    // Redis holds a namespaced digest per proof, not the jti, until the window ends.
    let keys = redis.cli(&["--scan", "--pattern", "tower-auth:dpop:*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert_eq!(key.len(), "tower-auth:dpop:".len() + 64, "{key}");
        let ttl: u64 = redis.cli(&["PTTL", key]).parse().unwrap();
        assert!((1..=62_000).contains(&ttl), "{ttl}");
    }
    assert!(!logs.text().contains(REDIS_PASSWORD));
}

/// SECURITY.md P26.
#[tokio::test]
async fn redis_down_closed_answers_503_and_open_serves_from_local_memory() {
    let (logs, _guard) = CapturedLogs::start();
    let mut redis = RedisServer::started(REDIS_PASSWORD).await;
    let setup = Setup::new().await;
    let closed = setup.replica(&redis, &[]).await;
    let open = setup
        .replica(&redis, &[("AUTH_REDIS_FAILURE", "open")])
        .await;
    assert_eq!(setup.whoami(closed, &setup.proof("up-1")).await.status, 200);
    assert_eq!(setup.whoami(open, &setup.proof("up-2")).await.status, 200);

    redis.kill();
    let started = Instant::now();
    let refused = setup.whoami(closed, &setup.proof("down-1")).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    // Bounded: a dead Redis costs a proof at most the store's short timeout.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(logs.text().contains("event=\"dpop_replay_redis_down\""));

    let proof = setup.proof("down-2");
    let served = setup.whoami(open, &proof).await;
    assert_eq!(served.status, 200, "{served:?}");
    // The local memory still refuses a replay on the same replica.
    let replayed = setup.whoami(open, &proof).await;
    assert_eq!(replayed.status, 401, "{replayed:?}");
    // Other credentials are not affected by Redis on either replica.
    let key = get(closed, "/whoami", &[("x-api-key", KEY_A)]).await;
    assert_eq!(key.status, 200, "{key:?}");
    assert!(!logs.text().contains(REDIS_PASSWORD));
}
