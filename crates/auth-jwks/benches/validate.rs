//! Cold validation (token cache off) against jsonwebtoken's own `decode` of the same token,
//! and a cached token. `cargo bench -p auth-jwks --bench validate`.

use std::convert::Infallible;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use auth_core::{Admins, Authenticator, Check, Clock, Credential, Outcome};
use auth_jwks::{IssuerConfig, OidcAuthenticator, OidcConfig};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
    RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const AUDIENCE: &str = "api://orders";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

struct Signer {
    alg: &'static str,
    jwk: Value,
    sign: SignFn,
}

fn signers() -> Vec<Signer> {
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let rsa_jwk = json!({"kty": "RSA", "kid": "rs", "alg": "RS256", "use": "sig", "n": b64(&public.n), "e": b64(&public.e)});
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = ec.public_key().as_ref().to_vec();
    let ec_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
    let ed = Ed25519KeyPair::generate().unwrap();
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "x": b64(ed.public_key().as_ref())});
    vec![
        Signer {
            alg: "RS256",
            jwk: rsa_jwk,
            sign: Box::new(move |m| {
                let mut sig = vec![0; rsa.public_modulus_len()];
                rsa.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    m,
                    &mut sig,
                )
                .unwrap();
                sig
            }),
        },
        Signer {
            alg: "ES256",
            jwk: ec_jwk,
            sign: Box::new(move |m| ec.sign(&SystemRandom::new(), m).unwrap().as_ref().to_vec()),
        },
        Signer {
            alg: "EdDSA",
            jwk: ed_jwk,
            sign: Box::new(move |m| ed.sign(m).as_ref().to_vec()),
        },
    ]
}

/// A typical access token: about 800 bytes.
fn mint(signer: &Signer, issuer: &str) -> String {
    let now = Clock::system().now_unix();
    let header = json!({"alg": signer.alg, "typ": "at+jwt", "kid": signer.jwk["kid"]});
    let claims = json!({
        "iss": issuer, "sub": "248289761001", "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 3600,
        "jti": "d3b07384d113edec49eaa6238ad5ff00", "client_id": "s6BhdRkqt3",
        "scope": "openid profile orders:read orders:write metrics:read",
        "email": "jane.doe@example.com", "name": "Jane Doe", "roles": ["orders.admin", "billing.viewer"],
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = (signer.sign)(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

fn serve(rt: &Runtime, body: String) -> SocketAddr {
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_| {
                        let body = body.clone();
                        async move {
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    })
}

fn authenticate(auth: &OidcAuthenticator, token: &str) -> bool {
    match auth.authenticate(Credential::Bearer(token)) {
        Check::Ready(Outcome::Authenticated(id)) => black_box(id).subject().len() > 1,
        _ => panic!("the benchmark token must validate without waiting"),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let signers = signers();
    let jwks =
        json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()}).to_string();
    let addr = serve(&rt, jwks);
    let issuer = "https://login.example.com";
    let start = |cache_size: u64| {
        let config = OidcConfig::builder()
            .issuer(IssuerConfig::new(issuer, AUDIENCE).jwks_uri(format!("http://{addr}/jwks")))
            .token_cache_size(cache_size)
            .build()
            .unwrap();
        rt.block_on(OidcAuthenticator::start(
            config,
            Admins::default(),
            Clock::system(),
        ))
        .unwrap()
    };
    let cold = start(0);
    let cached = start(10_000);

    for signer in &signers {
        let token = mint(signer, issuer);
        let alg: Algorithm = signer.alg.parse().unwrap();
        let key =
            DecodingKey::from_jwk(&serde_json::from_value::<Jwk>(signer.jwk.clone()).unwrap())
                .unwrap();
        let mut validation = Validation::new(alg);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.leeway = 60;

        let mut group = c.benchmark_group(format!("cold/{}", signer.alg));
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| jsonwebtoken::decode::<Value>(black_box(&token), &key, &validation).unwrap())
        });
        group.bench_function("auth_jwks", |b| {
            b.iter(|| authenticate(&cold, black_box(&token)))
        });
        group.finish();

        assert!(authenticate(&cached, &token));
        c.bench_function(&format!("cached/{}", signer.alg), |b| {
            b.iter(|| authenticate(&cached, black_box(&token)))
        });
    }
    // What a token of another issuer (an HMAC role token further down the chain) costs here.
    let foreign = mint(&signers[0], "auth-hmac");
    c.bench_function("not_mine/foreign_issuer", |b| {
        b.iter(|| {
            assert!(matches!(
                cached.authenticate(Credential::Bearer(black_box(&foreign))),
                Check::Ready(Outcome::NotMine)
            ))
        })
    });
    drop((cold, cached));
    drop(rt);
}

criterion_group! {
    name = validate;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = benches
}
criterion_main!(validate);
