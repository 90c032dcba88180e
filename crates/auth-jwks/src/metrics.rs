//! What the OIDC validator records through the [`metrics`] facade: fetches, key sets, the
//! token cache. Nothing is recorded when the application installs no recorder. The `issuer`
//! label is the configured issuer URL, a set the operator wrote; `result` is one of
//! [`FETCH_RESULTS`].

use std::sync::OnceLock;

use crate::IssuerStatus;

/// `auth_token_cache_hits_total`: tokens answered from the validated-token cache.
pub const TOKEN_CACHE_HITS_TOTAL: &str = "auth_token_cache_hits_total";
/// `auth_token_cache_misses_total`: tokens validated in full.
pub const TOKEN_CACHE_MISSES_TOTAL: &str = "auth_token_cache_misses_total";
/// `auth_jwks_fetches_total{issuer, result}`: key fetch attempts (discovery included).
pub const JWKS_FETCHES_TOTAL: &str = "auth_jwks_fetches_total";
/// `auth_jwks_keys{issuer}`: usable keys in the issuer's current set.
pub const JWKS_KEYS: &str = "auth_jwks_keys";
/// `auth_jwks_age_seconds{issuer}`: time since the issuer last confirmed its keys.
pub const JWKS_AGE_SECONDS: &str = "auth_jwks_age_seconds";
/// `auth_issuer_up{issuer}`: 1 while the issuer's tokens can be validated, 0 while they get 503.
pub const ISSUER_UP: &str = "auth_issuer_up";

/// The values of the `result` label of [`JWKS_FETCHES_TOTAL`]: keys fetched; the issuer did
/// not answer as it should (unreachable, an error status, a timeout, a refused URL); it
/// answered with something that is not a usable key set or discovery document; it asked to
/// wait (429).
pub const FETCH_RESULTS: [&str; 4] = ["ok", "error", "garbage", "rate_limited"];

/// The `result` label for a failed fetch's reason code.
pub(crate) fn fetch_result(reason: &str) -> &'static str {
    match reason {
        "rate_limited" => "rate_limited",
        "body_too_large" | "discovery_not_json" | "discovery_bad_jwks_uri" | "missing_endpoint" => {
            "garbage"
        }
        reason if reason.starts_with("jwks_") => "garbage",
        _ => "error",
    }
}

/// A completed fetch attempt of `issuer` (`reason` of its failure, if it failed), and where
/// the issuer's keys stand after it.
pub(crate) fn fetched(issuer: &str, failure: Option<&str>, status: &IssuerStatus) {
    let result = failure.map_or("ok", fetch_result);
    metrics::counter!(JWKS_FETCHES_TOTAL, "issuer" => issuer.to_owned(), "result" => result)
        .increment(1);
    gauges(issuer, status);
}

/// Sets the gauges of `issuer` from its `status`.
pub(crate) fn gauges(issuer: &str, status: &IssuerStatus) {
    let issuer = issuer.to_owned();
    metrics::gauge!(JWKS_KEYS, "issuer" => issuer.clone()).set(status.keys as f64);
    if let Some(age) = status.age {
        metrics::gauge!(JWKS_AGE_SECONDS, "issuer" => issuer.clone()).set(age);
    }
    metrics::gauge!(ISSUER_UP, "issuer" => issuer).set(if status.available { 1.0 } else { 0.0 });
}

/// The handles of the token cache's counters, one set per recorder.
pub(crate) type CacheCounters = PerRecorder<CacheHandles>;

/// The token cache's counters of one recorder.
pub(crate) struct CacheHandles {
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl Default for CacheCounters {
    fn default() -> Self {
        Self {
            slots: Default::default(),
            // Literal names: `static` keys.
            register: || CacheHandles {
                hits: metrics::counter!("auth_token_cache_hits_total"),
                misses: metrics::counter!("auth_token_cache_misses_total"),
            },
        }
    }
}

impl CacheCounters {
    /// A token answered from the cache.
    pub(crate) fn hit(&self) {
        self.with_handles(|handles| match handles {
            Some(handles) => handles.hits.increment(1),
            None => metrics::counter!("auth_token_cache_hits_total").increment(1),
        });
    }

    /// A token the cache did not hold, validated in full.
    pub(crate) fn miss(&self) {
        self.with_handles(|handles| match handles {
            Some(handles) => handles.misses.increment(1),
            None => metrics::counter!("auth_token_cache_misses_total").increment(1),
        });
    }
}

/// A recorder as the facade hands it out: its address, size and alignment. `None` for a
/// recorder of no size, whose address says nothing (every boxed or constant one of an
/// alignment has the same), and which goes through the facade's lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RecorderId {
    address: usize,
    size: usize,
    align: usize,
}

impl RecorderId {
    fn of(recorder: &dyn metrics::Recorder) -> Option<Self> {
        let size = std::mem::size_of_val(recorder);
        (size != 0).then(|| Self {
            address: std::ptr::from_ref(recorder).cast::<()>() as usize,
            size,
            align: std::mem::align_of_val(recorder),
        })
    }
}

/// How many recorders a validator keeps handles for: the application's global one and a few
/// local ones (tests).
const SLOTS: usize = 4;

/// (The same as tower-auth's, which cannot share it without the `oidc` feature.) Metric
/// handles, one set `H` per recorder recorded into, registered (by `register`) the
/// first time a request is recorded with that recorder in scope (`metrics::with_recorder`:
/// the thread's local recorder, else the global one, else the facade's no-op one).
///
/// So an application may install its recorder before or after building the layer: requests
/// recorded before the installation went to the facade's no-op recorder (and are lost, as
/// with any `metrics` user), the first one after it registers the series with the new
/// recorder and every later one uses those handles. A test's local recorder
/// (`metrics::with_local_recorder`) gets its own handles the same way. Past [`SLOTS`]
/// recorders the caller falls back to the facade's per-call lookup, which is slower but
/// records into the recorder in scope; so does a recorder of no size (the facade's no-op one,
/// or an application's forwarding to statics), which cannot be told from another by its
/// address. A recorder is recognised by its address, size and alignment: a local recorder
/// dropped and replaced by another of its size at the same address while the same layer
/// serves would keep the first one's handles, so a test builds its layer inside the scope of
/// its recorder (as tests/tests/metrics.rs does); the global recorder lives as long as the
/// process and is never mistaken.
pub(crate) struct PerRecorder<H> {
    slots: [OnceLock<(RecorderId, H)>; SLOTS],
    register: fn() -> H,
}

impl<H> PerRecorder<H> {
    /// The handles for the recorder in scope, registering them on first use; `None` once
    /// every slot holds another recorder's.
    pub(crate) fn with_handles<T>(&self, f: impl FnOnce(Option<&H>) -> T) -> T {
        metrics::with_recorder(|recorder| {
            let Some(current) = RecorderId::of(recorder) else {
                return f(None);
            };
            for slot in &self.slots {
                let (id, handles) = slot.get_or_init(|| (current, (self.register)()));
                if *id == current {
                    return f(Some(handles));
                }
            }
            f(None)
        })
    }
}
