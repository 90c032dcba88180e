//! Cost of one credential check, ours beside the peers and jsonwebtoken's bare `decode`, in
//! one run: `cargo bench -p benches --bench checks`. Also prints allocations per check
//! (`ALLOCS` lines).
//!
//! Ours is called as the layer calls it (`Authenticator::authenticate` with the credential
//! already taken from the headers). The peers are called through their own check where it is
//! public (jwt-authorizer `Authorizer::check_auth`, axum-jwt-auth `JwtDecoder::decode`); for
//! tower-oauth2-resource-server, whose check is private, through its layer around a service
//! that answers at once, and `request_overhead/noop_service` is what that wrapping costs
//! without the check.

use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tower::{Layer, Service, ServiceExt};
use tower_auth_core::{Authenticator, Chain, ChainStep, Check, Credential, Outcome};

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

use support::{AUDIENCE, Counting, ISSUER, allocations_per_call, now, report_allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn authenticated(check: Check) -> bool {
    match check {
        Check::Ready(Outcome::Authenticated(identity)) => black_box(identity).subject().len() > 1,
        other => panic!("the benchmark credential must be accepted at once: {other:?}"),
    }
}

/// A benchmark group that knows its name, for the allocation report.
struct Group<'c> {
    name: String,
    group: BenchmarkGroup<'c, WallTime>,
}

fn group<'c>(c: &'c mut Criterion, name: &str) -> Group<'c> {
    Group {
        name: name.to_owned(),
        group: c.benchmark_group(name),
    }
}

impl Group<'_> {
    /// Benchmarks `f` as `name` and reports its allocations per call.
    /// `BENCH_NO_ALLOCS=1` skips the allocation count (for a profile of one benchmark).
    fn bench(&mut self, name: &str, mut f: impl FnMut()) {
        if std::env::var_os("BENCH_NO_ALLOCS").is_none() {
            report_allocations(
                &format!("{}/{name}", self.name),
                allocations_per_call(&mut f),
            );
        }
        self.group.bench_function(name, |b| b.iter(&mut f));
    }

    fn finish(self) {
        self.group.finish();
    }
}

fn checks(c: &mut Criterion) {
    let rt = support::runtime();
    let _entered = rt.enter();
    let keys = support::keys();
    let jwks_url = rt.block_on(support::serve_jwks(&keys));

    // API keys.
    let mut g = group(c, "check_api_key");
    for n in [1, 1000] {
        let (keys, auth) = support::api_keys(n);
        let key = keys[n / 2].clone();
        g.bench(&format!("ours_{n}_keys"), || {
            assert!(authenticated(
                auth.authenticate(black_box(Credential::ApiKey(&key)))
            ))
        });
    }
    g.finish();

    // HMAC role tokens, with jsonwebtoken's HS256 decode of the same token beside.
    let (hmac, hmac_token) = support::hmac();
    let mut g = group(c, "check_hmac");
    g.bench("ours", || {
        assert!(authenticated(
            hmac.authenticate(Credential::Bearer(black_box(&hmac_token)))
        ))
    });
    let key = DecodingKey::from_secret(support::HMAC_SECRET.as_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["metrics"]);
    validation.set_issuer(&[hmac.issuer()]);
    g.bench("jsonwebtoken_decode", || {
        black_box(
            jsonwebtoken::decode::<Value>(black_box(&hmac_token), &key, &validation).unwrap(),
        );
    });
    g.finish();

    // OIDC, per algorithm: the floor, ours cold and cached, the peers on the same token.
    let cold = rt.block_on(support::oidc(&jwks_url, 0));
    let cached = rt.block_on(support::oidc(&jwks_url, 10_000));
    let jwt_authorizer = rt.block_on(support::jwt_authorizer(&jwks_url));
    let tower_oauth2 = {
        let server = rt.block_on(support::tower_oauth2(&jwks_url));
        server
            .into_layer::<Body>()
            .layer(tower::service_fn(|_: http::Request<Body>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
            }))
    };
    let noop = tower::service_fn(|_: http::Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
    });
    let request = |token: &str| {
        http::Request::get("/hello")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    for key in &keys {
        let token = key.token.as_str();
        let alg: Algorithm = key.alg.parse().unwrap();
        let decoding =
            DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(key.jwk.clone()).unwrap())
                .unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 60;
        let axum_jwt_auth = rt.block_on(support::axum_jwt_auth(&jwks_url, key.alg));
        // The peers load keys lazily or in the background: one awaited call each first.
        rt.block_on(jwt_authorizer.check_auth(token)).unwrap();
        rt.block_on(axum_jwt_auth.decode(token)).unwrap();
        let mut tower_oauth2 = tower_oauth2.clone();
        for _ in 0..100 {
            let response = rt
                .block_on(tower_oauth2.clone().oneshot(request(token)))
                .unwrap();
            if response.status() == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        let mut g = group(c, &format!("check_oidc_{}", key.alg.to_lowercase()));
        g.bench("jsonwebtoken_decode", || {
            black_box(
                jsonwebtoken::decode::<Value>(black_box(token), &decoding, &validation).unwrap(),
            );
        });
        g.bench("ours_cold", || {
            assert!(authenticated(
                cold.authenticate(Credential::Bearer(black_box(token)))
            ))
        });
        g.bench("ours_cached", || {
            assert!(authenticated(
                cached.authenticate(Credential::Bearer(black_box(token)))
            ))
        });
        if key.alg == "RS256" {
            // Reference: the SHA-256 of the token, which a cache hit used to start with.
            g.bench("ref_sha256_of_token", || {
                black_box(tower_auth_core::sha256_digest(black_box(token).as_bytes()));
            });
            // What a keyed SipHash-1-3 (std's `RandomState`) of the whole token costs.
            let state = std::hash::RandomState::new();
            g.bench("ref_siphash_of_token", || {
                black_box(state.hash_one(black_box(token)));
            });
            // ... or of its last 32 characters, the token cache's key: the signature already
            // tells verified tokens apart, and a hit is confirmed by the whole token.
            g.bench("ref_siphash_of_last_32", || {
                let token = black_box(token).as_bytes();
                black_box(state.hash_one(&token[token.len() - 32..]));
            });
        }
        g.bench("jwt_authorizer", || {
            black_box(now(jwt_authorizer.check_auth(black_box(token))).unwrap());
        });
        g.bench("axum_jwt_auth", || {
            black_box(now(axum_jwt_auth.decode(black_box(token))).unwrap());
        });
        g.bench("tower_oauth2_resource_server", || {
            let response = now(tower_oauth2.call(request(black_box(token)))).unwrap();
            assert_eq!(response.status(), 200);
        });
        g.finish();
    }

    // A cached opaque token validated by introspection, beside the cached RS256 JWT.
    let introspection_url = rt.block_on(support::serve_introspection());
    let introspecting = rt.block_on(support::oidc_introspecting(&jwks_url, &introspection_url));
    let opaque = "2YotnFZFEjr1zCsicMWpAA-bench-opaque-access-token";
    match introspecting.authenticate(Credential::Bearer(opaque)) {
        Check::Pending(first) => assert!(matches!(rt.block_on(first), Outcome::Authenticated(_))),
        other => panic!("the first check of an opaque token asks the endpoint: {other:?}"),
    }
    let jwt = keys[0].token.as_str();
    let first = match introspecting.authenticate(Credential::Bearer(jwt)) {
        Check::Ready(outcome) => outcome,
        Check::Pending(fetching) => rt.block_on(fetching),
    };
    assert!(matches!(first, Outcome::Authenticated(_)));
    let mut g = group(c, "check_introspected");
    g.bench("ours_cached_introspected", || {
        assert!(authenticated(
            introspecting.authenticate(Credential::Bearer(black_box(opaque)))
        ))
    });
    g.bench("ours_cached_jwt_rs256", || {
        assert!(authenticated(
            introspecting.authenticate(Credential::Bearer(black_box(jwt)))
        ))
    });
    g.finish();
    drop(introspecting);

    // What wrapping a check in a request costs (part of the tower-oauth2-resource-server figure).
    let mut g = group(c, "check_request_overhead");
    let mut noop = noop;
    let rs256 = keys[0].token.as_str();
    g.bench("noop_service", || {
        black_box(now(noop.call(request(black_box(rs256)))).unwrap());
    });
    g.finish();

    // Two threads checking at once, as a server's two workers do under load: wall time per
    // check with both busy (so 2x faster than one thread would be perfect scaling).
    let (api_keys, api) = support::api_keys(1);
    let api_key = api_keys[0].as_str();
    let mut g = group(c, "check_two_threads");
    let both = |iters: u64, f: &(dyn Fn() + Sync)| {
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..iters.div_ceil(2) {
                        f();
                    }
                });
            }
        });
        start.elapsed()
    };
    g.group.bench_function("ours_api_key", |b| {
        b.iter_custom(|iters| {
            both(iters, &|| {
                assert!(authenticated(
                    api.authenticate(Credential::ApiKey(black_box(api_key)))
                ))
            })
        })
    });
    g.group.bench_function("ours_oidc_rs256_cached", |b| {
        b.iter_custom(|iters| {
            both(iters, &|| {
                assert!(authenticated(
                    cached.authenticate(Credential::Bearer(black_box(rs256)))
                ))
            })
        })
    });
    g.group.bench_function("ref_sha256_of_token", |b| {
        b.iter_custom(|iters| {
            both(iters, &|| {
                black_box(tower_auth_core::sha256_digest(black_box(rs256).as_bytes()));
            })
        })
    });
    g.finish();

    // Taking the bearer token from the headers (the layer's step before any check), and the
    // validation of its characters there against a branch-free form of the same rule.
    let mut g = group(c, "check_extract");
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, "api.example.com".parse().unwrap());
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {rs256}").parse().unwrap(),
    );
    let extractor = tower_auth_core::CredentialExtractor::default();
    g.bench("bearer_800_bytes", || {
        black_box(extractor.extract(black_box(&headers)).unwrap().unwrap());
    });
    g.bench("is_b64token_800_bytes", || {
        assert!(tower_auth_core::is_b64token(black_box(rs256.as_bytes())));
    });
    g.finish();

    // Route once: each token through its owner alone (a chain of one, as a layer with one
    // method runs it) and through the three-method chain in two orders. The chain reads a
    // JWT once and hands it to its owner, so the orders should cost the same, and at most
    // 50 ns more than the owner alone (issue 11).
    let (_, api) = support::api_keys(1000);
    let api: Arc<dyn Authenticator> = Arc::new(api);
    let hmac: Arc<dyn Authenticator> = Arc::new(hmac);
    let chain_of = |members: &[&Arc<dyn Authenticator>]| {
        let mut chain = Chain::new();
        for member in members {
            chain.push(Arc::clone(member));
        }
        chain
    };
    let mut g = group(c, "check_route");
    // The two steps of a cached check through a chain: the JWT shape test, and the cache.
    g.bench("part_looks_like_jws", || {
        assert!(tower_auth_core::jose::looks_like_jws(black_box(rs256)))
    });
    g.bench("part_oidc_recall_miss", || {
        assert!(cached.recall(black_box(&hmac_token)).is_none())
    });
    g.bench("part_oidc_recall", || {
        assert!(matches!(
            cached.recall(black_box(rs256)),
            Some(Outcome::Authenticated(_))
        ))
    });
    for (kind, token, owner, oidc) in [
        ("oidc_cached", rs256, None, &cached),
        ("oidc_cold", rs256, None, &cold),
        ("hmac", hmac_token.as_str(), Some(&hmac), &cached),
    ] {
        let oidc: Arc<dyn Authenticator> = Arc::new(oidc.clone());
        let owner = owner.unwrap_or(&oidc);
        for (order, chain) in [
            ("alone", chain_of(&[owner])),
            ("api_key_hmac_oidc", chain_of(&[&api, &hmac, &oidc])),
            ("api_key_oidc_hmac", chain_of(&[&api, &oidc, &hmac])),
        ] {
            g.bench(&format!("{kind}_{order}"), || {
                match chain.run(Credential::Bearer(black_box(token)), 0) {
                    ChainStep::Done(Ok(identity)) => {
                        assert!(black_box(identity).subject().len() > 1)
                    }
                    other => panic!("the benchmark credential must be accepted at once: {other:?}"),
                }
            });
        }
    }
    g.finish();
    drop((cold, cached));
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = checks
}
criterion_main!(benches);
