//! The whole request through an axum hello-world, with and without the layer:
//! `cargo bench -p auth-layer --bench layer`. Also prints heap allocations per request.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
use auth_layer::AuthLayer;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::{Service, ServiceExt};

/// Counts allocations so the cost of the layer can be told apart from axum's own.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn app(auth: Option<AuthLayer>) -> Router {
    let router = Router::new().route("/hello", get(|| async { "hello" }));
    match auth {
        Some(auth) => router.layer(auth),
        None => router,
    }
}

fn request() -> http::Request<Body> {
    http::Request::get("/hello")
        .header("host", "bench")
        .header("x-api-key", KEY)
        .body(Body::empty())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let keys = ApiKeySet::parse("API_KEYS", KEY, &Admins::default()).unwrap();
    let variants = [
        ("no_auth", app(None)),
        (
            "api_key",
            app(Some(AuthLayer::new(ApiKeyAuthenticator::new(keys)))),
        ),
    ];
    let mut group = c.benchmark_group("hello_world");
    for (name, router) in variants {
        let mut service = router.into_service::<Body>();
        // Allocations of one request, measured after warm-up.
        let per_request = runtime.block_on(async {
            for _ in 0..10 {
                let _ = service
                    .ready()
                    .await
                    .unwrap()
                    .call(request())
                    .await
                    .unwrap();
            }
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            let response = service
                .ready()
                .await
                .unwrap()
                .call(request())
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            drop(response);
            ALLOCATIONS.load(Ordering::Relaxed) - before
        });
        println!(
            "hello_world/{name}: {per_request} allocations per request (request building included)"
        );
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut service = service.clone();
                async move {
                    black_box(
                        service
                            .ready()
                            .await
                            .unwrap()
                            .call(request())
                            .await
                            .unwrap(),
                    )
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
