//! The failure limits shared by replicas through Redis (`AUTH_REDIS_URL`, feature `redis`):
//! the token exchange's lock-out and `AUTH_FAILURE_LIMIT` count the failures of every
//! replica, each replica counting locally first (see `tower_auth_hmac::SharedCounts`).
//! Redis down: they count locally, whatever `AUTH_REDIS_FAILURE` says.

use tower_auth_hmac::{ExchangeEndpoint, RedisSettings, ShareError, SharedCounts};

use crate::limits::LimitConfig;

/// Shares the exchange's failure counts, and returns those of `AUTH_FAILURE_LIMIT` when it is
/// set.
pub(crate) fn share(
    settings: &RedisSettings,
    namespace: &str,
    exchange: Option<&ExchangeEndpoint>,
    limits: &LimitConfig,
) -> Result<Option<SharedCounts>, ShareError> {
    if let Some(exchange) = exchange {
        exchange.share_limits(settings, namespace)?;
    }
    limits
        .failure_limit
        .map(|(_, window)| {
            SharedCounts::start(settings, namespace, "source", window, limits.clock.clone())
        })
        .transpose()
}
