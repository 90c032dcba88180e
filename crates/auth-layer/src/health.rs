//! axum conveniences (feature `axum`): the `/health` handler.
//!
//! `Identity` and `Option<Identity>` are extractors as they are (see `tower_auth_core`).

use axum::Json;
use serde_json::{Value, json};

use crate::AuthLayer;

impl AuthLayer {
    /// A handler for `/health` answering `{"status":"ok","auth_mode":"api_key,oidc"}`, so a
    /// client can tell whether it needs a credential.
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
        let body = json!({ "status": "ok", "auth_mode": self.mode() });
        move || std::future::ready(Json(body.clone()))
    }
}
