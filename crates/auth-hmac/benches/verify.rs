//! Verifying a typical role token: our direct path against jsonwebtoken's `decode`.
//!
//! `cargo bench -p tower-auth-hmac --bench verify`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig};

const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-bench";

#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    roles: Vec<String>,
    exp: u64,
    iat: u64,
    jti: String,
    iss: String,
    aud: String,
}

fn verify(c: &mut Criterion) {
    let config = HmacConfig::builder(SECRET)
        .audience("metrics")
        .build()
        .unwrap();
    let token = config
        .mint(
            "ops",
            ["runtime.health:read", "runtime.metrics:read"],
            Duration::from_secs(3600),
            Some("metrics"),
        )
        .unwrap();
    let auth = HmacAuthenticator::new(config.clone(), Admins::default());

    let mut group = c.benchmark_group("hs256_role_token");
    group.bench_function("auth_hmac_authenticate", |b| {
        b.iter(
            || match auth.authenticate(Credential::Bearer(black_box(&token))) {
                Check::Ready(Outcome::Authenticated(identity)) => identity,
                _ => panic!("the token is valid"),
            },
        );
    });
    group.bench_function("auth_hmac_decode_claims", |b| {
        b.iter(|| config.decode(black_box(&token)).unwrap());
    });

    let key = DecodingKey::from_secret(SECRET.as_bytes());
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["metrics"]);
    validation.set_issuer(&["auth-hmac"]);
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).unwrap());
    });

    let foreign = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6InUxIiwiYXVkIjoiYXBpIiwiZXhwIjo0MDAwMDAwMDAwfQ.c2lnbmF0dXJl";
    group.bench_function("auth_hmac_not_mine_oidc_token", |b| {
        b.iter(|| {
            assert!(matches!(
                auth.authenticate(Credential::Bearer(black_box(foreign))),
                Check::Ready(Outcome::NotMine)
            ));
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = verify
}
criterion_main!(benches);
