//! The demo application, shared by the `demo` binary and the end-to-end tests.
#![allow(missing_docs)]

pub mod grpc;

use axum::routing::get;
use axum::{Json, Router};
use rand::RngCore;
use serde_json::{Value, json};
use tower_auth::{AuthLayer, RequireRolesLayer};
use tower_auth_core::Identity;

/// Roles `/metrics` needs, both of them.
pub const METRICS_ROLES: [&str; 2] = ["runtime.health:read", "runtime.metrics:read"];

/// The variables that turn on configuration from the environment.
pub const AUTH_VARIABLES: [&str; 5] = [
    "AUTH_MODE",
    "API_KEYS",
    "API_KEYS_FILE",
    "OIDC_CONFIG",
    "HMAC_SECRET",
];

/// The demo routes behind `auth`:
/// `GET /health` (public), `GET /whoami` (any identity), `GET /admin` (role `admin`),
/// `GET /metrics` (both [`METRICS_ROLES`]), and `POST /auth/token` when the layer has a
/// token exchange.
pub fn router(auth: AuthLayer) -> Router {
    let mut router = Router::new();
    // `POST /auth/token` when AUTH_TOKEN_CLIENTS is configured; the layer exempts it.
    if let Some(exchange) = auth.exchange_endpoint() {
        router = router.merge(exchange.clone().router());
    }
    router
        .route("/whoami", get(whoami))
        .route(
            "/admin",
            get(|| async { Json(json!({ "admin": true })) }).route_layer(
                RequireRolesLayer::any(["admin"])
                    .expect("a valid role")
                    .realm_of(&auth),
            ),
        )
        .route(
            "/metrics",
            get(metrics).route_layer(
                RequireRolesLayer::all(METRICS_ROLES)
                    .expect("valid roles")
                    .realm_of(&auth),
            ),
        )
        .route("/health", get(auth.health_handler()))
        .layer(auth)
}

async fn whoami(identity: Identity) -> Json<Value> {
    Json(json!({
        "subject": identity.subject(),
        "name": identity.name(),
        "method": identity.method().kind(),
        "authenticated_by": identity.method().to_string(),
        "roles": identity.roles(),
    }))
}

async fn metrics() -> &'static str {
    "# TYPE demo_requests_total counter\ndemo_requests_total 1\n"
}

/// A new random key: 32 bytes from the OS generator, hex-encoded (64 characters).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
