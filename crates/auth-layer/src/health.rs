//! axum conveniences (feature `axum`): the `/health` and `/ready` handlers.
//!
//! `Identity` and `Option<Identity>` are extractors as they are (see `tower_auth_core`).

use axum::Json;
use http::StatusCode;
use serde_json::Value;

use crate::AuthLayer;

impl AuthLayer {
    /// A handler for `/health` (liveness: always 200) answering
    /// `{"status":"ok","auth_mode":"api_key,oidc","methods":{..},"issuers":[..]}`, so a client
    /// can tell whether it needs a credential and an operator where each method and OIDC
    /// issuer stands: `ready`, `stale`, `loading` or `down`, with the age of its keys.
    ///
    /// ```
    /// use tower_auth::AuthLayer;
    /// use axum::{Router, routing::get};
    ///
    /// let auth = AuthLayer::disabled();
    /// let app: Router = Router::new().route("/health", get(auth.health_handler())).layer(auth);
    /// ```
    pub fn health_handler(
        &self,
    ) -> impl Fn() -> std::future::Ready<Json<Value>> + Clone + Send + Sync + 'static {
        let layer = self.clone();
        move || std::future::ready(Json(layer.health_json()))
    }

    /// A handler for a readiness probe (`/ready`, exempt it like `/health`): the body of
    /// [`health_handler`](Self::health_handler), with 503 until every OIDC issuer can
    /// validate its tokens ([`is_ready`](Self::is_ready)) and 200 from then on; a
    /// Kubernetes readiness probe then keeps traffic away from a replica whose issuers are
    /// down, while `/health` keeps it alive.
    ///
    /// ```
    /// use tower_auth::AuthLayer;
    /// use axum::{Router, routing::get};
    ///
    /// let auth = AuthLayer::disabled();
    /// let app: Router = Router::new().route("/ready", get(auth.ready_handler())).layer(auth);
    /// ```
    pub fn ready_handler(
        &self,
    ) -> impl Fn() -> std::future::Ready<(StatusCode, Json<Value>)> + Clone + Send + Sync + 'static
    {
        let layer = self.clone();
        move || {
            let status = if layer.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            std::future::ready((status, Json(layer.health_json())))
        }
    }
}
