//! The added cost per request of the revocation check when the list is shared through Redis
//! (issue 13: at most 50 ns over the same list kept locally), in one criterion run: a role
//! token authenticated against a list of 1,000 revocations kept locally, and against the same
//! list shared through a live `redis-server` the bench starts on a free loopback port. The
//! request path makes no round trip to Redis either way; what sharing adds is the staleness
//! check.
//!
//! Needs `redis-server` (Debian package `redis-server`):
//! `cargo bench -p tower-auth-hmac --features redis --bench shared_revocations`

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use support::start_redis;
use tower_auth_core::{Admins, Authenticator, Check, Credential, Outcome};
use tower_auth_hmac::{HmacAuthenticator, HmacConfig, RedisSettings, RevocationList};

const SECRET: &str = "k7Qm2VxP9rTz4LwN8bYc3HdF6sJg5KeA-bench";

/// A list holding 1,000 revocations of other tokens.
fn filled_list() -> RevocationList {
    let list = RevocationList::new(tower_auth_core::Clock::system());
    for i in 0..1_000 {
        list.revoke(&format!("revoked-{i}"), "someone", u64::MAX / 2)
            .unwrap();
    }
    list
}

fn shared_revocations(c: &mut Criterion) {
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
    let local =
        HmacAuthenticator::new(config.clone(), Admins::default()).revocation_list(filled_list());

    let (_redis, port) = start_redis();
    let shared_list = filled_list();
    // The background tasks keep running on their own thread while the bench measures.
    let (sent, received) = std::sync::mpsc::channel();
    let list = shared_list.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}")).unwrap();
            let sync = list.share_through_redis(settings, "bench").await.unwrap();
            assert!(sync.is_connected(), "the bench needs a connected list");
            sent.send(()).unwrap();
            std::future::pending::<()>().await;
            drop(sync);
        });
    });
    received.recv().unwrap();
    let shared =
        HmacAuthenticator::new(config.clone(), Admins::default()).revocation_list(shared_list);

    let mut group = c.benchmark_group("revocation_check");
    for (name, auth) in [("local_list", &local), ("shared_through_redis", &shared)] {
        group.bench_function(format!("{name}/authenticate"), |b| {
            b.iter(
                || match auth.authenticate(Credential::Bearer(black_box(&token))) {
                    Check::Ready(Outcome::Authenticated(identity)) => identity,
                    _ => panic!("the token is valid"),
                },
            );
        });
    }
    for (name, auth) in [("local_list", &local), ("shared_through_redis", &shared)] {
        group.bench_function(format!("{name}/is_revoked"), |b| {
            b.iter(|| assert!(!auth.revocations().is_revoked(black_box("a-live-jti"))));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = shared_revocations
}
criterion_main!(benches);
