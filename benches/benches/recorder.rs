//! What the Prometheus recorder adds to a request the layer lets through (issue 16: a cached
//! check may cost at most 50 ns more with it than without a recorder).
//!
//! The service bench measures each variant for seconds, one after the other, and the
//! difference of two such medians moves by about 50 ns from run to run on the 2-core VM: as
//! much as the target. Here the same request goes through the same service without a
//! recorder and with `metrics-exporter-prometheus`'s recorder in scope, alternately in short
//! batches (2,000 requests, a few milliseconds), so that whatever drifts (the VM's neighbours,
//! the clock frequency, the other core's work) drifts for both; the figure is the median over
//! the rounds of each round's difference per request, with its interquartile range.
//!
//! The recorder is the thread's local one (`metrics::with_local_recorder`), not the global:
//! a process can install a global recorder only once, and without one first. The layer looks
//! the recorder up the same way in both cases (the thread's local one, else the global one),
//! and the exporter's upkeep runs between batches, as the demo's `prom-upkeep` thread does
//! every 5 s.
//!
//! `cargo bench -p benches --bench recorder` (about 30 s); `RECORDER_ROUNDS` to change the
//! number of rounds (default 300).

use std::hint::black_box;
use std::time::Instant;

use tower::ServiceExt;

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

use support::Variant;

/// Requests per batch: long enough that two clock readings are nothing against it, short
/// enough that the machine does not change within a pair of batches.
const BATCH: u32 = 2_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter, if given, picks variants by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let rounds: usize = std::env::var("RECORDER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let rt = support::runtime();
    let keys = support::keys();
    let jwks_url = rt.block_on(support::serve_jwks(&keys));
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>22}",
        "variant", "none", "prometheus", "added", "added, 25th-75th pct"
    );
    for variant in [
        Variant::ApiKey,
        Variant::OidcCached,
        Variant::ChainOidcCached,
    ] {
        if filter
            .as_deref()
            .is_some_and(|f| !variant.name().contains(f))
        {
            continue;
        }
        let app = rt.block_on(support::app(variant, &jwks_url, &keys));
        let ready = app.router.clone().with_state(());
        let batch = || {
            let started = Instant::now();
            for _ in 0..BATCH {
                let router = ready.clone();
                let request = app.request();
                let response = rt.block_on(router.oneshot(request)).unwrap();
                debug_assert_eq!(response.status(), 200);
                black_box(response);
            }
            started.elapsed().as_nanos() as f64 / f64::from(BATCH)
        };
        let with_recorder = || metrics::with_local_recorder(&recorder, batch);
        // Warm up both paths (the first recorded request registers the layer's handles).
        assert_eq!(
            rt.block_on(ready.clone().oneshot(app.request()))
                .unwrap()
                .status(),
            200,
            "{} must accept its credential",
            variant.name()
        );
        for _ in 0..20 {
            batch();
            with_recorder();
        }
        let mut none = Vec::with_capacity(rounds);
        let mut prometheus = Vec::with_capacity(rounds);
        let mut added = Vec::with_capacity(rounds);
        for round in 0..rounds {
            // Which goes first alternates, so that a batch's position in the pair cancels.
            let (a, b) = if round % 2 == 0 {
                let a = batch();
                (a, with_recorder())
            } else {
                let b = with_recorder();
                (batch(), b)
            };
            none.push(a);
            prometheus.push(b);
            added.push(b - a);
            handle.run_upkeep();
        }
        let recorded = handle.render();
        assert!(
            recorded.contains("auth_requests_total") && recorded.contains("auth_check_seconds"),
            "the recorder got nothing: the comparison would be void"
        );
        println!(
            "{:<28} {:>8.0}ns {:>8.0}ns {:>+8.1}ns {:>+9.1} .. {:>+6.1} ns",
            variant.name(),
            percentile(&mut none, 0.5),
            percentile(&mut prometheus, 0.5),
            percentile(&mut added, 0.5),
            percentile(&mut added, 0.25),
            percentile(&mut added, 0.75),
        );
    }
}

/// The `p` quantile (0..=1) of `values`, by nearest rank.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * p).round() as usize;
    values[rank]
}
