//! Cost of one API-key check: `cargo bench -p tower-auth-core --bench api_key`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use tower_auth_core::{
    Admins, ApiKeyAuthenticator, ApiKeySet, Authenticator, Check, Credential, CredentialExtractor,
    Outcome, sha256_digest,
};

/// `n` random-looking hex keys (SHA-256 of a counter), and the authenticator holding them.
fn setup(n: usize) -> (Vec<String>, ApiKeyAuthenticator) {
    let keys: Vec<String> = (0..n)
        .map(|i| hex::encode(sha256_digest(format!("bench-{i}").as_bytes())))
        .collect();
    let set = ApiKeySet::parse("API_KEYS", &keys.join(","), &Admins::default()).unwrap();
    (keys, ApiKeyAuthenticator::new(set))
}

fn accepted(check: Check) -> bool {
    matches!(check, Check::Ready(Outcome::Authenticated(_)))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("api_key");
    for n in [1, 1000] {
        let (keys, auth) = setup(n);
        let key = keys[n / 2].as_str();
        group.bench_function(format!("valid/{n}_keys"), |b| {
            b.iter(|| {
                assert!(accepted(
                    auth.authenticate(black_box(Credential::ApiKey(key)))
                ))
            })
        });
        group.bench_function(format!("unknown/{n}_keys"), |b| {
            let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
            b.iter(|| {
                assert!(!accepted(
                    auth.authenticate(black_box(Credential::ApiKey(wrong)))
                ))
            })
        });
    }
    // Extraction from a realistic header map plus the check.
    let (keys, auth) = setup(1000);
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    headers.insert("x-api-key", keys[7].parse().unwrap());
    let extractor = CredentialExtractor::default();
    group.bench_function("extract_and_check/1000_keys", |b| {
        b.iter(|| {
            let credential = extractor.extract(black_box(&headers)).unwrap().unwrap();
            assert!(accepted(auth.authenticate(credential)))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
