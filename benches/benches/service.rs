//! The whole request through an axum hello-world, in-process with `tower::ServiceExt::oneshot`:
//! no auth, our layer (API key, cached and cold OIDC, a three-method chain) and each peer's
//! middleware, in one run: `cargo bench -p benches --bench service`. Also prints allocations
//! per request (`ALLOCS` lines; building the request is included, the same for every variant).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

use support::{Counting, Variant, allocations_per_call, report_allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn service(c: &mut Criterion) {
    // The key server and the key refreshes run on the worker; requests are driven on the
    // bench thread (`block_on`), like the per-check bench.
    let rt = support::runtime();
    let keys = support::keys();
    let jwks_url = rt.block_on(support::serve_jwks(&keys));
    let mut group = c.benchmark_group("service_hello_world");
    for variant in Variant::ALL {
        let app = rt.block_on(support::app(variant, &jwks_url, &keys));
        // What `axum::serve` does once per connection: the handlers become routes (and the
        // layers wrap them) here, not on every request.
        let ready = app.router.clone().with_state(());
        let call = || {
            let router = ready.clone();
            let request = app.request();
            async move { router.oneshot(request).await.unwrap() }
        };
        // Keys load lazily or in the background for some peers: wait for the first 200.
        let mut status = 0;
        for _ in 0..100 {
            status = rt.block_on(call()).status().as_u16();
            if status == 200 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(status, 200, "{} must accept its credential", variant.name());
        // Building the request alone, so that the middleware's share can be told apart.
        report_allocations(
            &format!("service_request_build/{}", variant.name()),
            allocations_per_call(|| {
                black_box(app.request());
            }),
        );
        report_allocations(
            &format!("service_hello_world/{}", variant.name()),
            allocations_per_call(|| {
                black_box(rt.block_on(call()));
            }),
        );
        group.bench_function(variant.name(), |b| {
            b.to_async(&rt).iter(|| async { black_box(call().await) })
        });
    }
    // The same checks with the Prometheus recorder installed (process-wide, so after every
    // variant above has run without one): what recording the `auth_*` metrics costs.
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    for variant in [
        Variant::ApiKey,
        Variant::OidcCached,
        Variant::ChainOidcCached,
    ] {
        let app = rt.block_on(support::app(variant, &jwks_url, &keys));
        let ready = app.router.clone().with_state(());
        let call = || {
            let router = ready.clone();
            let request = app.request();
            async move { router.oneshot(request).await.unwrap() }
        };
        assert_eq!(rt.block_on(call()).status(), 200);
        let name = format!("{}_prometheus", variant.name());
        report_allocations(
            &format!("service_hello_world/{name}"),
            allocations_per_call(|| {
                black_box(rt.block_on(call()));
            }),
        );
        group.bench_function(&name, |b| {
            b.to_async(&rt).iter(|| async { black_box(call().await) })
        });
    }
    assert!(handle.render().contains("auth_requests_total"));
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = service
}
criterion_main!(benches);
