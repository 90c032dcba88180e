//! Properties of the decisions, over generated inputs (proptest), through the real layer in
//! front of an axum router, in process: a rejected credential reaches neither a later
//! authenticator nor the inner service; an exemption matches its own bytes only; the token
//! cache never changes a verdict, at any time in a token's life; and the order of the chain
//! never changes a verdict.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_tests::idp::{AUDIENCE, NOW, SigningKey, TestIdp};
use auth_tests::{KEY_A, config};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use proptest::prelude::*;
use serde_json::json;
use tower::ServiceExt;
use tower_auth::{AuthLayer, Clock};
use tower_auth_core::{Admins, AuthMethod, Authenticator, Check, Credential, Identity, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

const SECRET: &str = "Pq4Wz8Lm2Xv6Nb0Rt3Ys7Kd1Hf5Gj9Ca-properties";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The status of `GET path` with `header` through `router`, in process.
async fn status(router: &Router, path: &str, header: Option<(&str, &str)>) -> u16 {
    let mut request = Request::get(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let request = request.body(Body::empty()).unwrap();
    router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `token` with the character at `at` (of the segment `segment`, never its last, whose low
/// bits a decoder may ignore) replaced by another of the base64url alphabet.
fn mutate(token: &str, segment: usize, at: usize, with: u8) -> String {
    let mut segments: Vec<Vec<u8>> = token.split('.').map(|s| s.as_bytes().to_vec()).collect();
    let bytes = &mut segments[segment];
    let at = at % (bytes.len() - 1);
    let mut replacement = B64URL[usize::from(with) % B64URL.len()];
    if replacement == bytes[at] {
        replacement = B64URL[(usize::from(with) + 1) % B64URL.len()];
    }
    bytes[at] = replacement;
    segments
        .into_iter()
        .map(|s| String::from_utf8(s).unwrap())
        .collect::<Vec<_>>()
        .join(".")
}

/// Records every credential the chain hands it and claims none.
struct Spy(Arc<AtomicUsize>);

impl Authenticator for Spy {
    fn method(&self) -> &'static str {
        "spy"
    }

    fn authenticate(&self, _: Credential<'_>) -> Check {
        self.0.fetch_add(1, Ordering::SeqCst);
        Outcome::Authenticated(
            Identity::builder(
                "spy",
                AuthMethod::Hmac {
                    issuer: "spy".into(),
                },
            )
            .build(),
        )
        .into()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// SECURITY.md K2: a role token of ours, altered anywhere in its header or signature, or
    /// expired, is refused by its owner; no later authenticator sees it (a spy that would
    /// accept anything sits after it) and the inner service is not called.
    #[test]
    fn a_rejected_credential_reaches_nothing_after_it(
        segment in prop_oneof![Just(0usize), Just(2usize)],
        at in 0usize..512,
        with in any::<u8>(),
        expired in any::<bool>(),
    ) {
        let rt = runtime();
        let hmac = HmacConfig::builder(SECRET).build().unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let called = Arc::new(AtomicUsize::new(0));
        let inner = Arc::clone(&called);
        let layer = AuthLayer::builder(HmacAuthenticator::new(hmac.clone(), Admins::default()))
            .or(Spy(Arc::clone(&seen)))
            .build()
            .unwrap();
        let router = Router::new()
            .route("/private", get(move || {
                inner.fetch_add(1, Ordering::SeqCst);
                async { "private" }
            }))
            .layer(layer);
        let good = hmac.mint("ops", ["x"], Duration::from_secs(600), None).unwrap();
        let token = if expired {
            let config = HmacConfig::builder(SECRET)
                .clock(Clock::manual(Clock::system().now_unix() - 7_200))
                .build()
                .unwrap();
            config.mint("ops", ["x"], Duration::from_secs(600), None).unwrap()
        } else {
            mutate(&good, segment, at, with)
        };
        let got = rt.block_on(status(&router, "/private", Some(("authorization", &format!("Bearer {token}")))));
        prop_assert!(got == 401 || got == 400, "{got}");
        prop_assert_eq!(seen.load(Ordering::SeqCst), 0);
        prop_assert_eq!(called.load(Ordering::SeqCst), 0);
        // The good one goes through, and the spy still sees nothing of ours.
        let got = rt.block_on(status(&router, "/private", Some(("authorization", &format!("Bearer {good}")))));
        prop_assert_eq!(got, 200);
        prop_assert_eq!(seen.load(Ordering::SeqCst), 0);
    }

    /// SECURITY.md K3: an exemption matches a path byte for byte, nothing near it.
    #[test]
    fn an_exemption_matches_its_own_bytes_only(
        prefix in "(/|//|/\\.|/%2F|/\\./)?",
        word in prop_oneof![Just("health".to_owned()), Just("Health".to_owned()), Just("HEALTH".to_owned()), Just("%68ealth".to_owned()), Just("healt%68".to_owned()), "[a-zA-Z%0-9]{0,8}"],
        suffix in "(/|/\\.\\.|;x|%00|%2F|\\.|/x|/\\.\\./health)?",
    ) {
        let rt = runtime();
        let layer = rt.block_on(config(&[("API_KEYS", KEY_A)]).build()).unwrap();
        let router = Router::new().fallback(|| async { "anything" }).layer(layer);
        let path = format!("{}{word}{suffix}", if prefix.is_empty() { "/" } else { &prefix });
        prop_assume!(path.parse::<http::Uri>().is_ok());
        let got = rt.block_on(status(&router, &path, None));
        if path == "/health" {
            prop_assert_eq!(got, 200);
        } else {
            prop_assert_eq!(got, 401, "{} is not /health", path);
        }
    }
}

/// Two OIDC layers on one manual clock, with the validated-token cache and without.
async fn oidc_pair(idp: &TestIdp, clock: &Clock) -> (Router, Router) {
    let mut routers = Vec::new();
    for cache in [10_000, 0] {
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
            .token_cache_size(cache)
            .build()
            .unwrap();
        let auth = OidcAuthenticator::start(config.with_clock(clock.clone()), Admins::default())
            .await
            .unwrap();
        routers.push(
            Router::new()
                .route("/private", get(|| async { "private" }))
                .layer(AuthLayer::new(auth)),
        );
    }
    let without = routers.pop().unwrap();
    (routers.pop().unwrap(), without)
}

/// SECURITY.md F14: the validated-token cache never changes a verdict. A token living
/// `life` seconds (with `nbf`, sometimes in the future) is judged at growing times from
/// before its `nbf` to past its `exp` and the leeway, by a layer with the cache and one
/// without: the same answer every time.
#[test]
fn the_token_cache_never_changes_a_verdict() {
    let rt = runtime();
    let key = SigningKey::ec("ec-1");
    let clock = Clock::manual(NOW);
    let (idp, (with, without)) = rt.block_on(async {
        let idp = TestIdp::start(&[&key]).await;
        let pair = oidc_pair(&idp, &clock).await;
        (idp, pair)
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        60u64..3_600,
        0u64..300,
        proptest::collection::vec(0u64..4_000, 1..8),
    );
    let (accepted, refused) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner
        .run(&strategy, |(life, not_before, mut offsets)| {
            offsets.sort_unstable();
            let start = clock.now_unix();
            let token = idp.token_with(&key, |claims| {
                claims["iat"] = json!(start);
                claims["nbf"] = json!(start + not_before);
                claims["exp"] = json!(start + life);
            });
            let header = format!("Bearer {token}");
            let mut at = start;
            for offset in offsets {
                clock.advance(Duration::from_secs(start + offset - at));
                at = start + offset;
                let (a, b) = rt.block_on(async {
                    (
                        status(&with, "/private", Some(("authorization", &header))).await,
                        status(&without, "/private", Some(("authorization", &header))).await,
                    )
                });
                prop_assert_eq!(a, b, "at +{}s of a {}s token", offset, life);
                let verdict = if a == 200 { &accepted } else { &refused };
                verdict.set(verdict.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // Both verdicts were reached: the property was not met by refusing everything.
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
}

/// SECURITY.md K4: a credential only one method can own gets the same answer from every order
/// of the chain: valid or altered OIDC tokens, role tokens and API keys.
#[test]
fn the_order_of_the_chain_never_changes_a_verdict() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (routers, credentials) = rt.block_on(async {
        let key = SigningKey::rsa("rsa-1", 0);
        let idp = TestIdp::start(&[&key]).await;
        let now = Clock::system().now_unix();
        let oidc_token = idp.token_with(&key, |claims| {
            claims["iat"] = json!(now);
            claims["exp"] = json!(now + 600);
        });
        let role_token = HmacConfig::builder(SECRET)
            .build()
            .unwrap()
            .mint("ops", ["x"], Duration::from_secs(600), None)
            .unwrap();
        let oidc = json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string();
        let mut routers = Vec::new();
        for mode in [
            "api_key,oidc,hmac",
            "api_key,hmac,oidc",
            "oidc,api_key,hmac",
            "oidc,hmac,api_key",
            "hmac,api_key,oidc",
            "hmac,oidc,api_key",
        ] {
            let layer = config(&[
                ("AUTH_MODE", mode),
                ("API_KEYS", KEY_A),
                ("OIDC_CONFIG", &oidc),
                ("HMAC_SECRET", SECRET),
            ])
            .build()
            .await
            .unwrap();
            routers.push(
                Router::new()
                    .route("/private", get(|| async { "private" }))
                    .layer(layer),
            );
        }
        // The IdP must outlive the layers' key fetches: keep it.
        std::mem::forget(idp);
        (routers, (oidc_token, role_token))
    });
    let (oidc_token, role_token) = credentials;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        0usize..3,
        any::<bool>(),
        0usize..3,
        0usize..512,
        any::<u8>(),
    );
    runner
        .run(&strategy, |(kind, altered, segment, at, with)| {
            let header = match kind {
                0 => {
                    let mut key = KEY_A.as_bytes().to_vec();
                    if altered {
                        let at = at % key.len();
                        let hex = b"0123456789abcdef";
                        let mut replacement = hex[usize::from(with) % 16];
                        if replacement == key[at] {
                            replacement = hex[(usize::from(with) + 1) % 16];
                        }
                        key[at] = replacement;
                    }
                    ("x-api-key", String::from_utf8(key).unwrap())
                }
                1 | 2 => {
                    let token = if kind == 1 { &oidc_token } else { &role_token };
                    let token = if altered {
                        // Header or signature: the owner stays the same.
                        mutate(token, [0, 2, 2][segment], at, with)
                    } else {
                        token.clone()
                    };
                    ("authorization", format!("Bearer {token}"))
                }
                _ => unreachable!(),
            };
            let answers: Vec<u16> = routers
                .iter()
                .map(|router| rt.block_on(status(router, "/private", Some((header.0, &header.1)))))
                .collect();
            prop_assert!(
                answers.windows(2).all(|w| w[0] == w[1]),
                "{:?} for {:?}",
                answers,
                header.0
            );
            prop_assert_eq!(answers[0] == 200, !altered, "{:?}", answers);
            Ok(())
        })
        .unwrap();
}
