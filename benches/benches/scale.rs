//! Cost at scale (issue 18, item 5): the per-check cost and the memory of our checks as the work
//! grows, in one run: `cargo bench -p benches --bench scale`.
//!
//! - API keys: 1 / 1,000 / 100,000 / 1,000,000 configured keys; the same key checked again and
//!   again, and every configured key in turn (no two checks in a row on the same key, so the
//!   per-thread identity copy never helps and each lookup lands on a bucket of its own).
//! - OIDC issuers: 1 / 10 / 100 issuers sharing one JWKS, an EdDSA token of the last issuer,
//!   cached (the same token) and cold (token cache off: routing by `iss`, claims, signature).
//! - Role rules: 10 / 1,000 / 10,000 rules in the layer, exact paths (`/api/r<i>`) or gRPC
//!   services (`/pkg.S<i>/*`), a request for a path in the middle of the set, through the
//!   layer around a service that answers at once (the request is built in each iteration).
//! - Token cache: 1,000 / 100,000 / 1,000,000 distinct validated tokens held; the same token
//!   again and again (the per-thread front), and every held token in turn (a moka lookup and a
//!   full comparison each).
//! - A flood of 1,000,000 unique tokens of an unknown issuer, then 1,000,000 of the known
//!   issuer with unknown `kid`s, against one authenticator: live heap sampled as it goes.
//!
//! Memory is measured by the global allocator of this binary, which keeps the live bytes
//! requested from the system allocator (and their peak); `SCALE_MEM` lines print it with the
//! process RSS (`/proc/self/statm`) beside it, for `benches/charts.py`. Allocator bookkeeping
//! is not in the live bytes; RSS has it. Times are criterion medians (`scale_*` groups).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use serde_json::json;
use tower::{Layer, Service, ServiceExt};
use tower_auth::AuthLayer;
use tower_auth_core::{
    Admins, ApiKeyAuthenticator, ApiKeySet, Authenticator, Check, Clock, Credential, Outcome,
    sha256_digest,
};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

use support::{AUDIENCE, ISSUER, Key, now};

// ---------------------------------------------------------------- live bytes

/// Keeps the bytes currently allocated, and their peak since the last [`reset_peak`].
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
    PEAK.fetch_max(now.max(0) as usize, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator and only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed) as i64
}

fn reset_peak() {
    PEAK.store(live().max(0) as usize, Ordering::Relaxed);
}

fn peak() -> i64 {
    PEAK.load(Ordering::Relaxed) as i64
}

/// Resident set size of this process, in bytes.
fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// One memory figure: `SCALE_MEM <what> <size> <live bytes added> <per item> <RSS added>`.
fn report(what: &str, size: usize, live_added: i64, rss_added: i64) {
    println!(
        "SCALE_MEM {what} {size} {live_added} {:.1} {rss_added}",
        live_added as f64 / size.max(1) as f64
    );
}

// ---------------------------------------------------------------- fixtures

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A typical access token (about 800 bytes, as in `support`) of `issuer` naming `kid`, its
/// `jti` and `sub` made unique by `n`; signed by `key`, or with 64 junk bytes if `None`.
fn mint(key: Option<&Ed25519KeyPair>, issuer: &str, kid: &str, n: usize) -> String {
    let now = Clock::system().now_unix();
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let claims = json!({
        "iss": issuer, "sub": format!("user-{n}"), "aud": AUDIENCE, "iat": now, "nbf": now,
        "exp": now + 24 * 3600,
        "jti": format!("{n:032x}"), "client_id": "s6BhdRkqt3",
        "scope": "openid profile orders:read orders:write metrics:read",
        "email": "jane.doe@example.com", "name": "Jane Doe", "roles": ["orders.admin", "billing.viewer"],
    });
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let sig = match key {
        Some(key) => key.sign(input.as_bytes()).as_ref().to_vec(),
        None => sha256_digest(input.as_bytes()).repeat(2),
    };
    format!("{input}.{}", b64(sig))
}

/// `count` tokens of [`ISSUER`] signed by `key`, minted on two threads.
fn mint_many(key: &Ed25519KeyPair, count: usize) -> Vec<String> {
    let half = count / 2;
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            (0..half)
                .map(|n| mint(Some(key), ISSUER, "ed", n))
                .collect()
        });
        let second: Vec<String> = (half..count)
            .map(|n| mint(Some(key), ISSUER, "ed", n))
            .collect();
        let mut all: Vec<String> = first.join().unwrap();
        all.extend(second);
        all
    })
}

fn accepted(check: Check) -> bool {
    match check {
        Check::Ready(Outcome::Authenticated(identity)) => black_box(identity).subject().len() > 1,
        other => panic!("the benchmark credential must be accepted at once: {other:?}"),
    }
}

/// An OIDC authenticator for `issuers` (all served by `jwks_url`) with a token cache of
/// `cache` entries kept for an hour.
fn oidc(
    rt: &tokio::runtime::Runtime,
    jwks_url: &str,
    issuers: &[String],
    cache: u64,
) -> OidcAuthenticator {
    let mut config = OidcConfig::builder()
        .token_cache_size(cache)
        .token_cache_ttl(Duration::from_secs(3600));
    for issuer in issuers {
        config = config.issuer(IssuerConfig::new(issuer.as_str(), AUDIENCE).jwks_uri(jwks_url));
    }
    rt.block_on(OidcAuthenticator::start(
        config.build().unwrap(),
        Admins::default(),
    ))
    .unwrap()
}

/// Shorter measurements than the other benches: the large sizes take memory and set-up time.
fn short(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
}

// ---------------------------------------------------------------- the benches

fn api_keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale_api_keys");
    short(&mut g);
    for n in [1, 1_000, 100_000, 1_000_000] {
        // A few hex digests fail the strength check (too few distinct characters): skipped.
        let keys: Vec<String> = (0..)
            .map(|i| hex(&sha256_digest(format!("scale-{i}").as_bytes())))
            .filter(|key| tower_auth_core::check_key_strength(key).is_ok())
            .take(n)
            .collect();
        let value = keys.join(",");
        let (live0, rss0) = (live(), rss());
        let set = ApiKeySet::parse("API_KEYS", &value, &Admins::default()).unwrap();
        let auth = ApiKeyAuthenticator::new(set);
        report("api_keys", n, live() - live0, rss() - rss0);
        drop(value);
        let key = keys[n / 2].as_str();
        g.bench_function(BenchmarkId::new("same_key", n), |b| {
            b.iter(|| {
                assert!(accepted(
                    auth.authenticate(Credential::ApiKey(black_box(key)))
                ))
            })
        });
        let mut i = 0;
        g.bench_function(BenchmarkId::new("every_key_in_turn", n), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                assert!(accepted(
                    auth.authenticate(Credential::ApiKey(black_box(&keys[i])))
                ))
            })
        });
    }
    g.finish();
}

fn issuers(c: &mut Criterion, rt: &tokio::runtime::Runtime, jwks_url: &str, key: &Ed25519KeyPair) {
    let mut g = c.benchmark_group("scale_issuers");
    short(&mut g);
    for n in [1, 10, 100] {
        let names: Vec<String> = (0..n)
            .map(|i| format!("https://login-{i}.example.com"))
            .collect();
        let token = mint(Some(key), &names[n - 1], "ed", 0);
        let (live0, rss0) = (live(), rss());
        let cached = oidc(rt, jwks_url, &names, 10_000);
        report("issuers", n, live() - live0, rss() - rss0);
        let cold = oidc(rt, jwks_url, &names, 0);
        g.bench_function(BenchmarkId::new("cached", n), |b| {
            b.iter(|| {
                assert!(accepted(
                    cached.authenticate(Credential::Bearer(black_box(&token)))
                ))
            })
        });
        g.bench_function(BenchmarkId::new("cold", n), |b| {
            b.iter(|| {
                assert!(accepted(
                    cold.authenticate(Credential::Bearer(black_box(&token)))
                ))
            })
        });
    }
    g.finish();
}

fn role_rules(c: &mut Criterion) {
    let key = hex(&sha256_digest(b"scale-rules"));
    let keys = json!([{"name": "svc", "key": key, "roles": ["orders.admin"]}]).to_string();
    let layer_without_rules = || {
        let set = ApiKeySet::parse("API_KEYS", &keys, &Admins::default()).unwrap();
        let live0 = live();
        let layer = AuthLayer::builder(ApiKeyAuthenticator::new(set))
            .build()
            .unwrap();
        (live() - live0, layer)
    };
    // What a layer holds without rules, taken off the figures below (rules only).
    let (empty, layer) = layer_without_rules();
    drop(layer);
    let mut g = c.benchmark_group("scale_role_rules");
    short(&mut g);
    for n in [10, 1_000, 10_000] {
        for shape in ["exact", "service"] {
            let pattern = |i: usize| match shape {
                "exact" => format!("/api/r{i}"),
                _ => format!("/pkg.S{i}/*"),
            };
            let path = match shape {
                "exact" => format!("/api/r{}", n / 2),
                _ => format!("/pkg.S{}/Get", n / 2),
            };
            let set = ApiKeySet::parse("API_KEYS", &keys, &Admins::default()).unwrap();
            let (live0, rss0) = (live(), rss());
            let mut builder = AuthLayer::builder(ApiKeyAuthenticator::new(set));
            for i in 0..n {
                builder = builder.require_any(pattern(i), ["orders.admin"]);
            }
            let layer = builder.build().unwrap();
            report(
                &format!("role_rules_{shape}"),
                n,
                live() - live0 - empty,
                rss() - rss0,
            );
            let mut service = layer.layer(tower::service_fn(|_: Request<Body>| async {
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }));
            let request = || {
                Request::get(path.as_str())
                    .header("x-api-key", key.as_str())
                    .body(Body::empty())
                    .unwrap()
            };
            assert_eq!(
                now(now(service.ready()).unwrap().call(request()))
                    .unwrap()
                    .status(),
                200
            );
            g.bench_function(BenchmarkId::new(shape, n), |b| {
                b.iter(|| {
                    let response = now(now(service.ready()).unwrap().call(request())).unwrap();
                    assert_eq!(response.status(), 200);
                })
            });
        }
    }
    g.finish();
}

fn token_cache(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    jwks_url: &str,
    key: &Ed25519KeyPair,
) {
    let mut g = c.benchmark_group("scale_token_cache");
    short(&mut g);
    let issuers = [ISSUER.to_owned()];
    for n in [1_000, 100_000, 1_000_000] {
        let started = Instant::now();
        let tokens = mint_many(key, n);
        let auth = oidc(rt, jwks_url, &issuers, n as u64);
        let (live0, rss0) = (live(), rss());
        // Two threads validate and insert every token (each a cold check).
        std::thread::scope(|s| {
            for part in tokens.chunks(n.div_ceil(2)) {
                let auth = &auth;
                s.spawn(move || {
                    for token in part {
                        assert!(accepted(auth.authenticate(Credential::Bearer(token))));
                    }
                });
            }
        });
        report("token_cache", n, live() - live0, rss() - rss0);
        println!(
            "SCALE_NOTE token_cache {n}: {} entries held after inserting {n}; minted and filled in {:.1} s",
            auth.cached_tokens(),
            started.elapsed().as_secs_f64()
        );
        let same = tokens[n / 2].as_str();
        g.bench_function(BenchmarkId::new("same_token", n), |b| {
            b.iter(|| {
                assert!(accepted(
                    auth.authenticate(Credential::Bearer(black_box(same)))
                ))
            })
        });
        let mut i = 0;
        g.bench_function(BenchmarkId::new("every_token_in_turn", n), |b| {
            b.iter(|| {
                i = (i + 1) % n;
                assert!(accepted(
                    auth.authenticate(Credential::Bearer(black_box(&tokens[i])))
                ))
            })
        });
        drop(auth);
        drop(tokens);
    }
    g.finish();
}

/// 1,000,000 unique unknown-issuer tokens, then 1,000,000 with an unknown `kid`, through one
/// authenticator (token cache 10,000): live bytes after each decade. Not a criterion
/// benchmark; the time per token (minting included) is printed.
fn flood(rt: &tokio::runtime::Runtime, jwks_url: &str) {
    let auth = oidc(rt, jwks_url, &[ISSUER.to_owned()], 10_000);
    for kind in ["unknown_issuer", "unknown_kid"] {
        let (live0, rss0) = (live(), rss());
        reset_peak();
        let started = Instant::now();
        let mut refused = 0usize;
        for n in 0..1_000_000 {
            let token = match kind {
                "unknown_issuer" => mint(None, &format!("https://idp-{n}.example.net"), "ed", n),
                _ => mint(None, ISSUER, &format!("kid-{n}"), n),
            };
            let outcome = match auth.authenticate(Credential::Bearer(&token)) {
                Check::Ready(outcome) => outcome,
                // The first unknown kid asks the issuer (once per cooldown).
                Check::Pending(fetching) => rt.block_on(fetching),
            };
            match (kind, outcome) {
                ("unknown_issuer", Outcome::NotMine) | ("unknown_kid", Outcome::Rejected(_)) => {
                    refused += 1
                }
                (_, other) => panic!("{kind} token {n}: {other:?}"),
            }
            let done = n + 1;
            if [1_000, 10_000, 100_000, 1_000_000].contains(&done) {
                report(&format!("flood_{kind}"), done, live() - live0, rss() - rss0);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "SCALE_NOTE flood {kind}: {refused} of 1000000 refused in {seconds:.1} s ({:.2} us per token, minting included); peak live bytes above the start {}",
            seconds * 1e6 / 1e6,
            peak() - live0
        );
    }
}

fn scale(c: &mut Criterion) {
    let rt = support::runtime();
    let _entered = rt.enter();
    let ed = Ed25519KeyPair::generate().unwrap();
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA", "use": "sig",
                     "x": b64(ed.public_key().as_ref())});
    let jwks_url = rt.block_on(support::serve_jwks(&[Key {
        alg: "EdDSA",
        jwk,
        token: String::new(),
    }]));
    let only = |part: &str| {
        std::env::var("SCALE_ONLY").map_or(true, |only| only.split(',').any(|o| o == part))
    };
    if only("api_keys") {
        api_keys(c);
    }
    if only("issuers") {
        issuers(c, &rt, &jwks_url, &ed);
    }
    if only("role_rules") {
        role_rules(c);
    }
    if only("token_cache") {
        token_cache(c, &rt, &jwks_url, &ed);
    }
    if only("flood") {
        flood(&rt, &jwks_url);
    }
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = scale
}
criterion_main!(benches);
