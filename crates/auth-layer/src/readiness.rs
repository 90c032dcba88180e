//! Where each method and OIDC issuer of a layer stands: the body of `/health` and `/ready`
//! ([`AuthLayer::health_handler`], [`AuthLayer::ready_handler`], feature `axum`), and the
//! gauges a metrics page renders.
//!
//! A state is one of `ready`, `stale` (keys in use, the last refresh failed), `loading` (no
//! fetch completed yet) and `down` (its tokens get 503). Both answers are public: they tell
//! a state and a key age per configured issuer, never a key, key id, subject, or count of
//! refusals (SECURITY.md V2).

#[cfg(feature = "axum")]
use serde_json::{Map, Value, json};
use tower_auth_core::Authenticator;

use crate::AuthLayer;
use crate::service::Settings;

impl Settings {
    /// Keeps a handle on `authenticator` if it is an OIDC validator, whose issuers the
    /// readiness answers report.
    pub(crate) fn watch_readiness<A: Authenticator>(&mut self, authenticator: &A) {
        #[cfg(feature = "oidc")]
        if let Some(oidc) = (authenticator as &dyn std::any::Any)
            .downcast_ref::<tower_auth_oidc::OidcAuthenticator>()
        {
            self.issuers.push(oidc.clone());
        }
        #[cfg(not(feature = "oidc"))]
        let _ = authenticator;
    }
}

impl AuthLayer {
    /// Whether every OIDC issuer of the layer can validate its tokens now (its keys loaded
    /// and not past the max-stale age). A layer without OIDC is always ready.
    pub fn is_ready(&self) -> bool {
        #[cfg(feature = "oidc")]
        for oidc in &self.settings.issuers {
            for issuer in oidc.issuers() {
                if !oidc
                    .issuer_status(issuer)
                    .is_some_and(|status| status.state.can_validate())
                {
                    return false;
                }
            }
        }
        true
    }

    /// Sets the gauges that change without an event (`auth_jwks_age_seconds`,
    /// `auth_issuer_up`, `auth_jwks_keys`) to where each issuer stands now: call it before
    /// rendering metrics. Without a recorder it records nothing.
    pub fn record_gauges(&self) {
        #[cfg(feature = "oidc")]
        for oidc in &self.settings.issuers {
            oidc.record_gauges();
        }
    }

    /// `{"status":"ok","auth_mode":"api_key,oidc","methods":{"api_key":"ready","oidc":"stale"},
    /// "issuers":[{"issuer":"https://idp.example","state":"stale","key_age_secs":4000,"keys":2}]}`.
    #[cfg(feature = "axum")]
    pub(crate) fn health_json(&self) -> Value {
        let mut methods = Map::new();
        let mode = self.mode();
        for method in mode.split(',').filter(|m| *m != "none") {
            methods.insert(method.to_owned(), json!("ready"));
        }
        #[cfg_attr(not(feature = "oidc"), allow(unused_mut))]
        let mut issuers: Vec<Value> = Vec::new();
        #[cfg(feature = "oidc")]
        {
            use tower_auth_oidc::IssuerState;
            let mut worst: Option<IssuerState> = None;
            for oidc in &self.settings.issuers {
                for issuer in oidc.issuers() {
                    let Some(status) = oidc.issuer_status(issuer) else {
                        continue;
                    };
                    worst = Some(worst.map_or(status.state, |w| worse(w, status.state)));
                    issuers.push(json!({
                        "issuer": issuer,
                        "state": status.state.as_str(),
                        "key_age_secs": status.age.map(|age| age.as_secs()),
                        "keys": status.keys,
                    }));
                }
            }
            if let Some(state) = worst {
                methods.insert("oidc".to_owned(), json!(state.as_str()));
            }
        }
        #[cfg(feature = "redis")]
        if let Some(redis) = self.redis_sync() {
            let state = if redis.is_connected() {
                "ready"
            } else {
                "stale"
            };
            methods.insert("hmac".to_owned(), json!(state));
        }
        json!({
            "status": "ok",
            "auth_mode": mode,
            "methods": methods,
            "issuers": issuers,
        })
    }
}

/// The worse of two issuer states: `down`, then `loading`, then `stale`, then `ready`.
#[cfg(all(feature = "oidc", feature = "axum"))]
fn worse(
    a: tower_auth_oidc::IssuerState,
    b: tower_auth_oidc::IssuerState,
) -> tower_auth_oidc::IssuerState {
    use tower_auth_oidc::IssuerState::{Loading, Ready, Stale};
    let rank = |state| match state {
        Ready => 0,
        Stale => 1,
        Loading => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}
