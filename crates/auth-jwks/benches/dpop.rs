//! Cost of one DPoP proof check (RFC 9449): `cargo bench -p tower-auth-oidc --bench dpop`.
//!
//! Ours is `DpopVerifier::verify` on a request carrying a fresh ES256 proof (its `jwk` read,
//! checked and thumbprinted, `htm`, `htu`, `iat`, `ath`, the signature, the replay memory);
//! the floor is what a verifier built on jsonwebtoken must at least do with the same proof:
//! `decode_header`, `DecodingKey::from_jwk` of the header's key, and `decode` with ES256.
//! Each iteration gets a proof with a new `jti`, signed outside the measured time.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use tower_auth_core::{Clock, sha256_digest};
use tower_auth_oidc::{DpopVerifier, OidcConfig, jwk_thumbprint};

const NOW: u64 = 1_700_000_000;
const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwczovL2xvZ2luLmV4YW1wbGUuY29tIiwic3ViIjoiYWxpY2UifQ.c2lnbmF0dXJl";

struct Client {
    key: EcdsaKeyPair,
    jwk: Value,
    rng: SystemRandom,
    next: u64,
}

impl Client {
    fn new() -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = key.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                         "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        Self {
            key,
            jwk,
            rng: SystemRandom::new(),
            next: 0,
        }
    }

    fn proof(&mut self) -> String {
        self.next += 1;
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let claims = json!({"jti": format!("bench-{}", self.next), "htm": "GET",
            "htu": "https://api.example.com/orders", "iat": NOW,
            "ath": URL_SAFE_NO_PAD.encode(sha256_digest(TOKEN.as_bytes()))});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn bench(c: &mut Criterion) {
    let config = OidcConfig::from_json(
        "OIDC_CONFIG",
        r#"{"issuers":[{"issuer":"https://login.example.com","audience":"api","algorithms":["ES256"]}]}"#,
    )
    .unwrap();
    let verifier = DpopVerifier::builder(&config)
        .clock(Clock::manual(NOW))
        .replay_capacity(1 << 22)
        .build()
        .unwrap();
    let mut client = Client::new();
    let jkt = jwk_thumbprint(client.jwk.as_object().unwrap()).unwrap();
    let mut group = c.benchmark_group("dpop");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    group.bench_function("ours/verify_es256_proof_and_replay_check", |b| {
        b.iter_batched(
            || {
                http::Request::get("https://api.example.com/orders?page=2")
                    .header("dpop", client.proof())
                    .body(())
                    .unwrap()
            },
            |request| {
                verifier
                    .verify(
                        black_box(&request),
                        "https://login.example.com",
                        TOKEN,
                        &jkt,
                    )
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    group.bench_function(
        "floor/jsonwebtoken_decode_es256_with_key_from_header",
        |b| {
            b.iter_batched(
                || client.proof(),
                |proof| {
                    let header = jsonwebtoken::decode_header(black_box(&proof)).unwrap();
                    let key =
                        jsonwebtoken::DecodingKey::from_jwk(header.jwk.as_ref().unwrap()).unwrap();
                    jsonwebtoken::decode::<Value>(&proof, &key, &validation).unwrap()
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
