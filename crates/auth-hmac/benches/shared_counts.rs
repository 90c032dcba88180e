//! The cost per request of the check against failure counts shared through Redis
//! (`SharedCounts::count`, which `AUTH_FAILURE_LIMIT` makes on every request and the token
//! exchange on every attempt), against a live `redis-server` the bench starts on a free
//! loopback port: for a source with no count (the common request) and for a source with a
//! count, while the counts of 100 other sources are held (read back from Redis), and for a
//! source with no count while nothing is held. The check never waits for Redis.
//!
//! Needs `redis-server` (Debian package `redis-server`):
//! `cargo bench -p tower-auth-hmac --features redis --bench shared_counts`

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use support::start_redis;
use tower_auth_core::Clock;
use tower_auth_hmac::{RedisSettings, SharedCounts};

/// Counts shared through the Redis on `port`, in one-hour windows, their background task on
/// a thread of its own; with one failure of each of `counted` sources written to Redis.
fn counts(port: u16, scope: &'static str, counted: u32) -> SharedCounts {
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let settings = RedisSettings::new(&format!("redis://127.0.0.1:{port}")).unwrap();
            let clock = Clock::system();
            let counts = SharedCounts::start(
                &settings,
                "bench",
                scope,
                Duration::from_secs(3_600),
                clock.clone(),
            )
            .unwrap();
            for i in 0..counted {
                counts.add(&source(i), clock.now_unix(), 1);
            }
            sent.send(counts).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let counts = received.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts.pending() > 0 || !counts.is_connected() {
        assert!(Instant::now() < deadline, "the bench needs Redis");
        std::thread::sleep(Duration::from_millis(20));
    }
    counts
}

/// The key of the `i`th source: an IPv4-mapped address, as the layer keys them.
fn source(i: u32) -> [u8; 16] {
    std::net::Ipv4Addr::from(0x0a00_0000 + i)
        .to_ipv6_mapped()
        .octets()
}

fn shared_counts(c: &mut Criterion) {
    let (_redis, port) = start_redis();
    let held = counts(port, "held", 100);
    let none = counts(port, "none", 0);
    let clock = Clock::system();
    let unknown = source(1_000_000);
    assert!(held.count(&source(7), clock.now_unix()).is_some());

    let mut group = c.benchmark_group("shared_counts_check");
    group.bench_function("100_held/source_without_count", |b| {
        b.iter(|| assert!(held.count(black_box(&unknown), clock.now_unix()).is_none()));
    });
    group.bench_function("100_held/source_with_count", |b| {
        b.iter(|| {
            assert!(
                held.count(black_box(&source(7)), clock.now_unix())
                    .is_some()
            )
        });
    });
    group.bench_function("none_held/source_without_count", |b| {
        b.iter(|| assert!(none.count(black_box(&unknown), clock.now_unix()).is_none()));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = shared_counts
}
criterion_main!(benches);
