//! What the token exchange, the revocation endpoint and the Redis sharing record through
//! the [`metrics`] facade. Nothing is recorded when the application installs no recorder;
//! every label value is one of the fixed words below, never a client id, subject or token.

/// `auth_exchange_total{result}`: answers of `POST /auth/token`, `result` one of
/// [`EXCHANGE_RESULTS`].
pub const EXCHANGE_TOTAL: &str = "auth_exchange_total";
/// `auth_revocations_total`: role tokens revoked through `POST /auth/revoke`.
pub const REVOCATIONS_TOTAL: &str = "auth_revocations_total";
/// `auth_rate_limited_total{endpoint}`: requests answered 429, here with `endpoint` `token`
/// or `revoke` (the layer counts its own as `api`).
pub const RATE_LIMITED_TOTAL: &str = "auth_rate_limited_total";
/// `auth_redis_up`: 1 while the revocations are in sync with Redis, 0 otherwise.
#[cfg(feature = "redis")]
pub const REDIS_UP: &str = "auth_redis_up";
/// `auth_redis_lag_seconds`: how old the local copy of the shared revocations is.
#[cfg(feature = "redis")]
pub const REDIS_LAG_SECONDS: &str = "auth_redis_lag_seconds";

/// The values of the `result` label of [`EXCHANGE_TOTAL`]: a token issued, a client refused
/// (401), a client locked out (429), a malformed request (400 and the like), a server error.
pub const EXCHANGE_RESULTS: [&str; 5] =
    ["issued", "refused", "rate_limited", "bad_request", "error"];

/// One answer of the token exchange, by its status.
pub(crate) fn exchange(status: http::StatusCode) {
    match status.as_u16() {
        200 => metrics::counter!(EXCHANGE_TOTAL, "result" => "issued").increment(1),
        401 => metrics::counter!(EXCHANGE_TOTAL, "result" => "refused").increment(1),
        429 => metrics::counter!(EXCHANGE_TOTAL, "result" => "rate_limited").increment(1),
        500.. => metrics::counter!(EXCHANGE_TOTAL, "result" => "error").increment(1),
        _ => metrics::counter!(EXCHANGE_TOTAL, "result" => "bad_request").increment(1),
    }
}

/// A 429 of the endpoint `endpoint` (`token` or `revoke`).
pub(crate) fn rate_limited(endpoint: &'static str) {
    metrics::counter!(RATE_LIMITED_TOTAL, "endpoint" => endpoint).increment(1);
}

/// A role token revoked.
pub(crate) fn revoked() {
    metrics::counter!(REVOCATIONS_TOTAL).increment(1);
}

/// Where the shared revocations stand after an exchange with Redis.
#[cfg(feature = "redis")]
pub(crate) fn redis(up: bool, lag: std::time::Duration) {
    metrics::gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
    metrics::gauge!(REDIS_LAG_SECONDS).set(lag);
}
