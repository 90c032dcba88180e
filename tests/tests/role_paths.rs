//! Role rules against what axum's router serves: a rule for `/admin` holds for every spelling
//! of the path that reaches the same handler or nested service; exemptions stay exact.

use std::convert::Infallible;
use std::net::SocketAddr;

use auth_tests::{KEY_A, KEY_B, config, get, serve};
use axum::Router;
use axum::routing::get as route_get;
use tower::service_fn;
use tower_auth::AuthLayer;

/// `KEY_A` is `ci` (no roles), `KEY_B` is `ops` (admin).
async fn layer() -> tower_auth::AuthLayerBuilder {
    let keys = format!(
        r#"[{{"name":"ci","key":"{KEY_A}"}},{{"name":"ops","key":"{KEY_B}","roles":["admin"]}}]"#
    );
    config(&[("API_KEYS", &keys)])
        .build()
        .await
        .unwrap()
        .into_builder()
}

/// A plain service, as `nest_service` takes: it answers every path under its prefix.
fn nested() -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ Sync
+ 'static {
    service_fn(|_: axum::extract::Request| async {
        Ok::<_, Infallible>(axum::response::Response::new(axum::body::Body::from("ops")))
    })
}

async fn status(addr: SocketAddr, path: &str, key: &str) -> u16 {
    get(addr, path, &[("x-api-key", key)]).await.status
}

/// SECURITY.md K6.
#[tokio::test]
async fn a_rule_covers_every_spelling_the_router_serves() {
    let auth: AuthLayer = layer()
        .await
        .require_any("/admin", ["admin"])
        .require_any("/ops/*", ["admin"])
        .require_any("/users/root@corp.example/delete", ["admin"])
        .exempt("/open")
        .build()
        .unwrap();
    let router = Router::new()
        .route("/admin", route_get(|| async { "admin" }))
        .route("/open", route_get(|| async { "open" }))
        .route("/users/{id}/delete", route_get(|| async { "deleted" }))
        .nest_service("/ops", nested())
        .layer(auth);
    let addr = serve(router).await;
    for path in [
        "/admin",
        "/admin/",
        "//admin",
        "/%61dmin",
        "/ops",
        "/ops/",
        "/ops/anything",
        "//ops//anything",
        "/%6Fps/anything",
        // axum decodes route parameters: this is the handler's `root@corp.example`.
        "/users/root%40corp.example/delete",
    ] {
        assert_eq!(
            status(addr, path, KEY_A).await,
            403,
            "{path} without the role"
        );
    }
    // The admin is let through wherever the router serves the path.
    assert_eq!(status(addr, "/admin", KEY_B).await, 200);
    assert_eq!(status(addr, "/ops/anything", KEY_B).await, 200);
    assert_eq!(status(addr, "/ops", KEY_B).await, 200);
    // An exemption is exact: its other spellings need a credential.
    assert_eq!(get(addr, "/open", &[]).await.status, 200);
    for path in ["/open/", "//open", "/%6Fpen"] {
        assert_eq!(get(addr, path, &[]).await.status, 401, "{path}");
    }
}

/// Inside `Router::nest("/api", inner)`, a layer on `inner` sees the path without `/api`
/// (axum strips the prefix; `OriginalUri` keeps the whole): its rules name `/admin`, not
/// `/api/admin`. A layer on the outer router sees the whole path.
#[tokio::test]
async fn a_layer_inside_nest_sees_the_path_without_the_prefix() {
    let inner = Router::new()
        .route("/admin", route_get(|| async { "admin" }))
        .layer(
            layer()
                .await
                .require_any("/admin", ["admin"])
                .build()
                .unwrap(),
        );
    let addr = serve(Router::new().nest("/api", inner)).await;
    assert_eq!(status(addr, "/api/admin", KEY_A).await, 403);
    assert_eq!(status(addr, "/api/admin", KEY_B).await, 200);

    let outer = Router::new()
        .nest(
            "/api",
            Router::new().route("/admin", route_get(|| async { "admin" })),
        )
        .layer(
            layer()
                .await
                .require_any("/api/admin", ["admin"])
                .build()
                .unwrap(),
        );
    let addr = serve(outer).await;
    assert_eq!(status(addr, "/api/admin", KEY_A).await, 403);
    assert_eq!(status(addr, "/api/admin", KEY_B).await, 200);
}
