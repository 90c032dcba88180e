//! The memory of accepted DPoP proofs shared by replicas through Redis (`AUTH_REDIS_URL`,
//! features `redis` and `oidc`), so that a proof accepted by one replica is refused by the
//! others (SECURITY.md P8).
//!
//! Each replica asks its own bounded memory first (a proof it has seen is refused without a
//! round trip), then Redis: `SET <namespace>:<hex digest> 1 NX PX <ms>`, where the digest is
//! the SHA-256 of the key's thumbprint and the proof's `jti` (never the client's `jti`
//! itself: every key has the same length) and the expiry is the end of the proof's `iat`
//! window. Redis set it: the proof is new; Redis had it: a replay.
//!
//! Redis not answering within [`TIMEOUT`] (down, unreachable, slow): with
//! `AUTH_REDIS_FAILURE=closed` (the default) the proof is refused with 503 and `Retry-After`
//! (it is spent: the client makes a fresh one, as it does for every request); with `open`
//! the local memory's word is taken, and a proof may be replayed once on each other replica
//! until Redis is back (an error event marks each outage).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tower_auth_core::{AuthError, ConfigError};
use tower_auth_hmac::{RedisFailure, RedisSettings};
use tower_auth_oidc::{Remembered, ReplayId, ReplayStore};

/// The longest a proof waits for Redis's answer (connection included).
pub(crate) const TIMEOUT: Duration = Duration::from_millis(300);

/// `Retry-After` of the 503 answered when Redis cannot say (`closed`).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The keys' namespace: `tower-auth:dpop:<64 hex digits>`.
pub(crate) const NAMESPACE: &str = "tower-auth:dpop";

/// The shared memory: a [`ReplayStore`] over a Redis connection manager.
pub(crate) struct RedisReplay {
    connection: ConnectionManager,
    failure: RedisFailure,
    /// Whether Redis failed last time: the error event is written once per outage.
    down: Arc<AtomicBool>,
}

impl RedisReplay {
    /// The store of the Redis `settings` name; it connects on first use, and reconnects.
    pub(crate) fn new(settings: &RedisSettings, variable: &str) -> Result<Self, ConfigError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(settings.client().clone(), config)
            .map_err(|_| ConfigError::new(variable, "cannot make a Redis connection"))?;
        Ok(Self {
            connection,
            failure: settings.failure_mode(),
            down: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The Redis key of a proof: bounded, whatever its `jti`.
    fn key(id: &ReplayId) -> String {
        let mut key = String::with_capacity(NAMESPACE.len() + 65);
        key.push_str(NAMESPACE);
        key.push(':');
        for byte in id.proof() {
            let _ = write!(key, "{byte:02x}");
        }
        key
    }
}

impl ReplayStore for RedisReplay {
    fn remember(&self, id: &ReplayId, expires: u64, now: u64) -> Remembered {
        let key = Self::key(id);
        let millis = expires.saturating_sub(now).max(1).saturating_mul(1000);
        let mut connection = self.connection.clone();
        let (failure, down) = (self.failure, Arc::clone(&self.down));
        Remembered::Later(Box::pin(async move {
            let mut command = redis::cmd("SET");
            command.arg(&key).arg(1).arg("NX").arg("PX").arg(millis);
            let set = command.query_async::<Option<String>>(&mut connection);
            match tokio::time::timeout(TIMEOUT, set).await {
                Ok(Ok(reply)) => {
                    if down.swap(false, Ordering::AcqRel) {
                        tracing::info!(target: "auth", event = "dpop_replay_redis_back", "DPoP proofs are checked against Redis again");
                    }
                    // `OK` when set; nil when the key was there: a replay.
                    Ok(reply.is_some())
                }
                Ok(Err(_)) | Err(_) => {
                    if !down.swap(true, Ordering::AcqRel) {
                        match failure {
                            RedisFailure::Open => {
                                tracing::error!(target: "auth", event = "dpop_replay_redis_down", failure = "open", "Redis does not answer: DPoP proofs are checked against this replica's memory only, and may be replayed once on each other replica")
                            }
                            _ => {
                                tracing::error!(target: "auth", event = "dpop_replay_redis_down", failure = "closed", "Redis does not answer: requests with DPoP proofs get 503")
                            }
                        }
                    }
                    match failure {
                        // The local memory, asked first, already said the proof was new.
                        RedisFailure::Open => Ok(true),
                        _ => Err(AuthError::unavailable(
                            "dpop_replay_store_unavailable",
                            Some(RETRY_AFTER),
                        )),
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_namespace_and_a_fixed_length_digest() {
        let long = "j".repeat(256);
        let key = RedisReplay::key(&ReplayId::new("thumbprint", &long));
        assert!(key.starts_with("tower-auth:dpop:"), "{key}");
        assert_eq!(key.len(), "tower-auth:dpop:".len() + 64);
        assert!(!key.contains(&long[..16]));
        assert_ne!(key, RedisReplay::key(&ReplayId::new("other", &long)));
    }
}
