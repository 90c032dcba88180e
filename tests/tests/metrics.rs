//! What an operator sees (issue 16): the `auth_*` metrics, the request span, `/ready` and the
//! audit trail, through real servers on loopback.
//!
//! Each test runs on its own current-thread runtime inside its own recorder
//! (`metrics::with_local_recorder`), so that the server's tasks record into it and parallel
//! tests never see each other's series. metrics-util's snapshot swaps counters to zero, so
//! each snapshot is what moved since the last one.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use auth_tests::idp::{AUDIENCE, Fault, NOW, SigningKey, TestIdp, warp};
use auth_tests::{CapturedLogs, KEY_A, KEY_B, config, get, send_body};
use axum::Router;
use axum::routing::get as route_get;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_auth::{AuthLayer, Clock};
use tower_auth_core::Admins;
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// Runs `test` on a current-thread runtime with a recorder of its own.
fn observed<F, Fut>(test: F)
where
    F: FnOnce(Snapshotter) -> Fut,
    Fut: Future<Output = ()>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(test(snapshotter)));
}

/// The series that moved since the last snapshot, as `name{label=value,..}`: a counter's
/// increase, a histogram's number of samples. Gauges are left out (see [`gauges`]).
fn moved(snapshotter: &Snapshotter) -> BTreeMap<String, u64> {
    let mut moved = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let count = match value {
            DebugValue::Counter(n) => n,
            DebugValue::Histogram(samples) => samples.len() as u64,
            DebugValue::Gauge(_) => continue,
        };
        if count > 0 {
            moved.insert(series(key.key()), count);
        }
    }
    moved
}

/// The gauges set since the last snapshot, by series.
fn gauges(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(v) => Some((series(key.key()), v.into_inner())),
            _ => None,
        })
        .collect()
}

fn series(key: &metrics::Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// What one request moved, on the request path: the request count, its check time, and
/// the 429 and token-cache counters. (The OIDC issuer's background fetches move
/// `auth_jwks_*` and `auth_issuer_up` on their own schedule.)
fn request_series(moved: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    moved
        .into_iter()
        .filter(|(name, _)| !name.starts_with("auth_jwks_") && !name.starts_with("auth_issuer_up"))
        .collect()
}

fn expect(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn oidc_config(idp: &TestIdp) -> String {
    format!(
        r#"{{"issuers":[{{"issuer":"{}","audience":"{AUDIENCE}"}}]}}"#,
        idp.issuer()
    )
}

/// `/private`, `/admin` (role `admin`) and the exempt `/health` behind `auth`, with peer
/// addresses.
async fn serve(auth: AuthLayer) -> SocketAddr {
    let mut app = Router::new()
        .route("/private", route_get(|| async { "private" }))
        .route("/admin", route_get(|| async { "admin" }))
        .route("/health", route_get(auth.health_handler()));
    if let Some(exchange) = auth.exchange_endpoint() {
        app = app.merge(exchange.clone().router());
    }
    auth_tests::serve_with_peers(app.layer(auth)).await
}

/// An allowed, a refused, an exempt, a 403, a 503 and a rate-limited request each move
/// exactly the series that name them.
#[test]
fn each_request_moves_exactly_the_series_that_name_it() {
    observed(|metrics| async move {
        let key = SigningKey::rsa("a", 0);
        let idp = TestIdp::start(&[&key]).await;
        // The issuer is down from the start: its tokens get 503.
        idp.set_fault(Fault::Close);
        let oidc = oidc_config(&idp);
        let auth = config(&[
            ("API_KEYS", KEY_A),
            ("OIDC_CONFIG", &oidc),
            ("AUTH_METHOD_ROLES", "/admin=admin"),
            ("AUTH_FAILURE_LIMIT", "2/60"),
        ])
        .build()
        .await
        .unwrap();
        let server = serve(auth).await;
        moved(&metrics);
        let good = [("x-api-key", KEY_A)];
        let bad = [("x-api-key", KEY_B)];

        assert_eq!(get(server, "/private", &good).await.status, 200);
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=api_key}", 1),
                (
                    "auth_requests_total{method=api_key,outcome=allowed,reason=none}",
                    1
                ),
            ])
        );

        assert_eq!(get(server, "/private", &[]).await.status, 401);
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=none}", 1),
                (
                    "auth_requests_total{method=none,outcome=unauthenticated,reason=missing_credential}",
                    1
                ),
            ])
        );

        assert_eq!(get(server, "/health", &[]).await.status, 200);
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=none}", 1),
                (
                    "auth_requests_total{method=none,outcome=exempt,reason=none}",
                    1
                ),
            ])
        );

        assert_eq!(get(server, "/admin", &good).await.status, 403);
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=api_key}", 1),
                (
                    "auth_requests_total{method=api_key,outcome=forbidden,reason=missing_role}",
                    1
                ),
            ])
        );

        let token = fresh_token(&idp, &key);
        let bearer = format!("Bearer {token}");
        assert_eq!(
            get(server, "/private", &[("authorization", &bearer)])
                .await
                .status,
            503
        );
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=oidc}", 1),
                (
                    "auth_requests_total{method=oidc,outcome=unavailable,reason=jwks_not_loaded}",
                    1
                ),
                ("auth_token_cache_misses_total{}", 1),
            ])
        );

        for _ in 0..2 {
            assert_eq!(get(server, "/private", &bad).await.status, 401);
        }
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=api_key}", 2),
                (
                    "auth_requests_total{method=api_key,outcome=unauthenticated,reason=unknown_api_key}",
                    2
                ),
            ])
        );
        assert_eq!(get(server, "/private", &good).await.status, 429);
        assert_eq!(
            request_series(moved(&metrics)),
            expect(&[
                ("auth_check_seconds{method=none}", 1),
                ("auth_rate_limited_total{endpoint=api}", 1),
                (
                    "auth_requests_total{method=none,outcome=rate_limited,reason=rate_limited}",
                    1
                ),
            ])
        );
    });
}

/// A good token of `idp` by the system clock, which the layer here reads.
fn fresh_token(idp: &TestIdp, key: &SigningKey) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    idp.token_with(key, |c| {
        c["iat"] = now.into();
        c["exp"] = (now + 3600).into();
    })
}

/// SECURITY.md V1: requests with hostile paths, headers, tokens and exchange bodies leave
/// no trace of themselves in any label: every label value of every series is one of the
/// fixed sets.
#[test]
fn no_label_value_comes_from_the_request() {
    observed(|metrics| async move {
        let key = SigningKey::rsa("a", 0);
        let idp = TestIdp::start(&[&key]).await;
        let oidc = oidc_config(&idp);
        let digest = hex::encode(tower_auth_core::sha256_digest(
            b"client-secret-of-the-metrics-test",
        ));
        let clients =
            format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["r"]}}]"#);
        let auth = config(&[
            ("API_KEYS", KEY_A),
            ("OIDC_CONFIG", &oidc),
            (
                "HMAC_SECRET",
                "Vq7Lz2Rk9Tw4Xb8Nc3Hm6Jp1Sd5Gf0Ya-metrics-test",
            ),
            ("AUTH_TOKEN_CLIENTS", &clients),
            ("AUTH_METHOD_ROLES", "/admin=admin"),
        ])
        .build()
        .await
        .unwrap();
        let server = serve(auth).await;
        let evil_jwt = |iss: &str, kid: &str| {
            key.mint(
                &serde_json::json!({"alg": "RS256", "kid": kid}),
                &serde_json::json!({"iss": iss, "sub": "evilsub", "aud": AUDIENCE, "exp": NOW + 3600}),
            )
        };
        let tokens = [
            evil_jwt("https://evil.example", "evilkid"),
            evil_jwt(idp.issuer(), "evilkid"),
            idp.token_with(&key, |c| c["sub"] = "evilsubject".into()),
            "evilopaquetoken".to_owned(),
        ];
        for path in [
            "/evil",
            "/%65vil/../admin",
            "/health/../evil",
            "/admin?evil=1",
            "//evil",
        ] {
            get(server, path, &[]).await;
            get(
                server,
                path,
                &[("x-api-key", "evil-key-evil-key-evil-key-evil-key")],
            )
            .await;
            get(server, path, &[("x-api-key", "a"), ("x-api-key", "b")]).await;
            get(server, path, &[("authorization", "Basic ZXZpbDpldmls")]).await;
            get(server, path, &[("authorization", "Bearer evil evil")]).await;
            get(
                server,
                path,
                &[("x-evil", "evil"), ("x-auth-subject", "evil")],
            )
            .await;
            for token in &tokens {
                get(
                    server,
                    path,
                    &[("authorization", &format!("Bearer {token}"))],
                )
                .await;
            }
        }
        for body in [
            r#"{"client_id":"evilclient","credential":"evil"}"#,
            r#"{"client_id":"agent","credential":"evil"}"#,
            "evil",
        ] {
            send_body(
                server,
                http::Method::POST,
                "/auth/token",
                &[("content-type", "application/json")],
                body,
            )
            .await;
        }
        let issuer = idp.issuer().to_owned();
        let mut seen = BTreeSet::new();
        let mut outside = Vec::new();
        for (key, _, _, _) in metrics.snapshot().into_vec() {
            for label in key.key().labels() {
                let (name, value) = (label.key(), label.value());
                assert!(!value.contains("evil"), "{name}={value}");
                let fixed = match name {
                    "method" => ["api_key", "oidc", "hmac", "none"].contains(&value),
                    "outcome" => tower_auth::metrics::OUTCOMES.contains(&value),
                    "endpoint" => ["api", "token", "revoke"].contains(&value),
                    "result" => {
                        tower_auth::hmac::metrics::EXCHANGE_RESULTS.contains(&value)
                            || tower_auth::oidc::metrics::FETCH_RESULTS.contains(&value)
                    }
                    "issuer" => value == issuer,
                    "reason" => REASONS.contains(&value),
                    _ => false,
                };
                if !fixed {
                    outside.push(format!("{name}={value}"));
                }
                seen.insert(format!("{name}={value}"));
            }
        }
        assert!(
            outside.is_empty(),
            "labels outside their fixed sets: {outside:?}"
        );
        // The hostile requests did reach the counters.
        for label in [
            "reason=unknown_api_key",
            "reason=unclaimed_credential",
            "reason=unknown_kid",
            "reason=duplicate_api_key_header",
            "outcome=bad_request",
            "result=refused",
            "result=bad_request",
        ] {
            assert!(seen.contains(label), "{label} not seen in {seen:?}");
        }
    });
}

/// The reason codes the hostile requests above can produce: codes written in the code.
const REASONS: &[&str] = &[
    "none",
    "missing_credential",
    "unknown_api_key",
    "unclaimed_credential",
    "unknown_kid",
    "malformed_bearer",
    "multiple_credentials",
    "duplicate_api_key_header",
    "missing_role",
    "bad_signature",
    "issued_in_future",
];

/// SECURITY.md V2: `/ready` answers 503 while the issuer's keys load and once they are past the max-stale
/// age, and 200 while they can validate (fresh, or stale within the limit); `/health`
/// answers 200 throughout, with each state; `auth_issuer_up` follows.
#[test]
fn ready_follows_the_issuer_and_health_stays_200() {
    observed(|metrics| async move {
        let key = SigningKey::rsa("a", 0);
        let idp = TestIdp::start(&[&key]).await;
        let clock = Clock::manual(NOW);
        // The first fetch is held past the start-up wait: the keys are still loading.
        idp.hold();
        let refresh = Duration::from_secs(60);
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
            .jwks_refresh_interval(refresh)
            .connect_timeout(Duration::from_millis(500))
            .read_timeout(Duration::from_millis(500))
            .startup_timeout(Duration::from_millis(100))
            .build()
            .unwrap()
            .with_clock(clock.clone());
        let oidc = OidcAuthenticator::start(config, Admins::default())
            .await
            .unwrap();
        let auth = AuthLayer::builder(oidc.clone())
            .exempt("/health")
            .exempt("/ready")
            .build()
            .unwrap();
        let app = Router::new()
            .route("/health", route_get(auth.health_handler()))
            .route("/ready", route_get(auth.ready_handler()))
            .layer(auth.clone());
        let server = auth_tests::serve(app).await;
        let state = |body: &str| {
            let json: serde_json::Value = serde_json::from_str(body).unwrap();
            (
                json["methods"]["oidc"].as_str().unwrap().to_owned(),
                json["issuers"][0]["state"].as_str().unwrap().to_owned(),
            )
        };
        let check = |ready_status: u16, expected: &'static str| async move {
            let ready = get(server, "/ready", &[]).await;
            assert_eq!(ready.status, ready_status, "{}", ready.body);
            assert_eq!(
                state(&ready.body),
                (expected.to_owned(), expected.to_owned())
            );
            let health = get(server, "/health", &[]).await;
            assert_eq!(health.status, 200);
            assert_eq!(state(&health.body).1, expected);
            health.body
        };
        check(503, "loading").await;

        idp.release();
        oidc.wait_for_fetches(idp.issuer(), 1).await;
        let body = check(200, "ready").await;
        assert!(body.contains(r#""key_age_secs":0"#), "{body}");
        auth.record_gauges();
        let up = format!("auth_issuer_up{{issuer={}}}", idp.issuer());
        assert_eq!(gauges(&metrics).get(&up), Some(&1.0));

        // A failed refresh: the keys stay in use.
        idp.set_fault(Fault::Close);
        warp(&clock, refresh).await;
        oidc.wait_for_fetches(idp.issuer(), 2).await;
        check(200, "stale").await;
        let error = format!(
            "auth_jwks_fetches_total{{issuer={},result=error}}",
            idp.issuer()
        );
        assert_eq!(moved(&metrics).get(&error), Some(&1));

        // Past the max-stale age (ten refresh intervals) the issuer is down.
        warp(&clock, refresh * 10).await;
        check(503, "down").await;
        auth.record_gauges();
        assert_eq!(gauges(&metrics).get(&up), Some(&0.0));
    });
}

/// SECURITY.md V3: the audit trail (target `auth::audit`) writes a source's block once for a flood of its
/// 429s, and the exchange's refusals of a flood within the per-source log limit; no secret.
#[test]
fn audit_events_are_written_once_for_a_flood() {
    let (logs, _guard) = CapturedLogs::start();
    observed(|_| async move {
        let digest = hex::encode(tower_auth_core::sha256_digest(
            b"client-secret-of-the-audit-test",
        ));
        let clients =
            format!(r#"[{{"client_id":"agent","secret_sha256":"{digest}","roles":["r"]}}]"#);
        let auth = config(&[
            ("API_KEYS", KEY_A),
            ("HMAC_SECRET", "Vq7Lz2Rk9Tw4Xb8Nc3Hm6Jp1Sd5Gf0Ya-audit-test"),
            ("AUTH_TOKEN_CLIENTS", &clients),
            ("AUTH_FAILURE_LIMIT", "2/60"),
        ])
        .build()
        .await
        .unwrap();
        let server = serve(auth).await;
        for _ in 0..2 {
            assert_eq!(
                get(server, "/private", &[("x-api-key", KEY_B)])
                    .await
                    .status,
                401
            );
        }
        for _ in 0..50 {
            assert_eq!(
                get(server, "/private", &[("x-api-key", KEY_A)])
                    .await
                    .status,
                429
            );
        }
        let exchange = |credential: &'static str| async move {
            send_body(
                server,
                http::Method::POST,
                "/auth/token",
                &[("content-type", "application/json")],
                &format!(r#"{{"client_id":"agent","credential":"{credential}"}}"#),
            )
            .await
            .status
        };
        assert_eq!(exchange("client-secret-of-the-audit-test").await, 200);
        for _ in 0..50 {
            exchange("wrong-secret-wrong-secret").await;
        }
    });
    let text = logs.text();
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" auth::audit: "))
        .collect();
    let count = |event: &str| {
        audit
            .iter()
            .filter(|l| l.contains(&format!("event=\"{event}\"")))
            .count()
    };
    assert_eq!(count("source_blocked"), 1, "{text}");
    assert_eq!(count("token_issued"), 1, "{text}");
    let issued = audit.iter().find(|l| l.contains("token_issued")).unwrap();
    assert!(
        issued.contains("jti=") && issued.contains("client_id="),
        "{issued}"
    );
    // 50 refusals, of which the per-source log limit writes at most its budget.
    let refused = count("token_exchange_failed") + count("token_exchange_limited");
    assert!(
        (1..=tower_auth::LOGGED_REJECTIONS_PER_SOURCE as usize).contains(&refused),
        "{refused}: {text}"
    );
    assert!(!text.contains("client-secret-of-the-audit-test") && !text.contains(KEY_A));
}

/// SECURITY.md V3: the request span (target `auth`) carries the method, outcome, reason and the
/// credential's fingerprint, never the credential.
#[test]
fn the_request_span_names_method_outcome_reason_and_fingerprint() {
    let (logs, _guard) = CapturedLogs::start();
    observed(|_| async move {
        let auth = config(&[("API_KEYS", KEY_A)]).build().await.unwrap();
        let server = serve(auth).await;
        assert_eq!(
            get(server, "/private", &[("x-api-key", KEY_A)])
                .await
                .status,
            200
        );
        assert_eq!(
            get(server, "/private", &[("x-api-key", KEY_B)])
                .await
                .status,
            401
        );
    });
    let text = logs.text();
    let fingerprint = |key: &str| {
        tower_auth_core::Credential::ApiKey(key)
            .fingerprint()
            .to_string()
    };
    let allowed = format!(
        "auth{{method=\"api_key\" outcome=\"allowed\" reason=\"none\" fingerprint=\"{}\"}}",
        fingerprint(KEY_A)
    );
    let refused = format!(
        "auth{{method=\"api_key\" outcome=\"unauthenticated\" reason=\"unknown_api_key\" fingerprint=\"{}\"}}",
        fingerprint(KEY_B)
    );
    assert!(text.contains(&allowed), "{allowed} not in {text}");
    assert!(text.contains(&refused), "{refused} not in {text}");
    assert!(!text.contains(KEY_A) && !text.contains(KEY_B));
}
