//! SECURITY.md F1-F16 ("Faults"): the OIDC authenticator against a misbehaving test IdP.
//!
//! Time is controlled: `warp` moves the wall clock and Tokio's clock together; no test sleeps.

use std::time::Duration;

use auth_tests::idp::{
    AUDIENCE, Fault, NOW, SigningKey, TestIdp, accepted, assert_refused, assert_unavailable, ready,
    run, warp,
};
use serde_json::json;
use tower_auth_core::{Admins, Check, Clock, Credential, Outcome};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig, OidcConfigBuilder};

const REFRESH: Duration = Duration::from_secs(60);

fn builder(idps: &[&TestIdp]) -> OidcConfigBuilder {
    let mut builder = OidcConfig::builder()
        .jwks_refresh_interval(REFRESH)
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_millis(500))
        .startup_timeout(Duration::from_secs(2));
    for idp in idps {
        builder = builder.issuer(IssuerConfig::new(idp.issuer(), AUDIENCE));
    }
    builder
}

async fn start(config: OidcConfig, clock: &Clock) -> OidcAuthenticator {
    OidcAuthenticator::start(config.with_clock(clock.clone()), Admins::default())
        .await
        .unwrap()
}

/// One RSA key `a`, one test IdP publishing it, a manual clock at `NOW`, and an authenticator
/// for that issuer, built by `builder` with `configure` applied.
async fn one_issuer(
    configure: impl FnOnce(OidcConfigBuilder) -> OidcConfigBuilder,
) -> (SigningKey, TestIdp, Clock, OidcAuthenticator) {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    let clock = Clock::manual(NOW);
    let auth = start(configure(builder(&[&idp])).build().unwrap(), &clock).await;
    (key, idp, clock, auth)
}

/// A good token minted now by the wall clock.
fn token(idp: &TestIdp, key: &SigningKey, clock: &Clock, sub: &str) -> String {
    let now = clock.now_unix();
    idp.token_with(key, |c| {
        c["sub"] = json!(sub);
        c["iat"] = json!(now);
        c["exp"] = json!(now + 3600);
    })
}

fn fetches(auth: &OidcAuthenticator, idp: &TestIdp) -> u64 {
    auth.issuer_status(idp.issuer()).unwrap().fetches
}

/// Moves time by `by`, then waits for the refresh that comes due.
async fn refresh(auth: &OidcAuthenticator, idp: &TestIdp, clock: &Clock, by: Duration) {
    let before = fetches(auth, idp);
    warp(clock, by).await;
    auth.wait_for_fetches(idp.issuer(), before + 1).await;
}

/// SECURITY.md F1.
#[tokio::test]
async fn idp_down_at_start_answers_503_while_others_work_and_retries() {
    let key_a = SigningKey::rsa("a", 0);
    let key_b = SigningKey::ec("b");
    let down = TestIdp::start(&[&key_a]).await;
    let up = TestIdp::start(&[&key_b]).await;
    down.set_fault(Fault::Close);
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&down, &up]).build().unwrap(), &clock).await;
    assert!(!auth.issuer_status(down.issuer()).unwrap().available);
    let retry = assert_unavailable(&run(&auth, &token(&down, &key_a, &clock, "u")).await);
    assert!(retry >= Duration::from_secs(1));
    accepted(run(&auth, &token(&up, &key_b, &clock, "u")).await);
    // Retries with backoff: about 1 s, then about 2 s, ...
    let attempts = down.connections();
    refresh(&auth, &down, &clock, Duration::from_secs(1)).await;
    assert!(down.connections() > attempts, "retried in the background");
    down.set_fault(Fault::None);
    refresh(&auth, &down, &clock, Duration::from_secs(2)).await;
    assert!(auth.issuer_status(down.issuer()).unwrap().available);
    accepted(run(&auth, &token(&down, &key_a, &clock, "u")).await);
}

/// SECURITY.md F1.
#[tokio::test]
async fn connection_refused_at_start_does_not_fail_start_up() {
    let key = SigningKey::rsa("a", 0);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(&dead, AUDIENCE))
        .build()
        .unwrap();
    let clock = Clock::manual(NOW);
    let auth = start(config, &clock).await;
    let status = auth.issuer_status(&dead).unwrap();
    assert_eq!(
        (status.available, status.last_error),
        (false, Some("connect_failed"))
    );
    let claims = json!({"iss": dead, "sub": "u", "aud": AUDIENCE, "exp": NOW + 60});
    assert_unavailable(&run(&auth, &key.mint(&key.header(), &claims)).await);
}

/// SECURITY.md F1, F4.
#[tokio::test(start_paused = true)]
async fn a_hanging_idp_cannot_hang_start_up() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    idp.set_fault(Fault::Hang);
    let clock = Clock::manual(NOW);
    let began = tokio::time::Instant::now();
    // Default timeouts: 5 s to read, 5 s for start-up in all.
    let config = OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
        .build()
        .unwrap();
    let auth = start(config, &clock).await;
    assert!(
        began.elapsed() <= Duration::from_secs(6),
        "{:?}",
        began.elapsed()
    );
    assert!(!auth.issuer_status(idp.issuer()).unwrap().available);
    assert_unavailable(&run(&auth, &idp.token(&key, "u")).await);
}

/// SECURITY.md F2.
#[tokio::test]
async fn idp_down_later_keeps_last_known_good_keys() {
    let (key, idp, clock, auth) = one_issuer(|b| b).await;
    idp.set_fault(Fault::Close);
    refresh(&auth, &idp, &clock, REFRESH).await;
    let status = auth.issuer_status(idp.issuer()).unwrap();
    assert_eq!(
        (status.available, status.last_error),
        (true, Some("request_failed"))
    );
    accepted(run(&auth, &token(&idp, &key, &clock, "fresh-token")).await);
}

/// SECURITY.md F3.
#[tokio::test]
async fn down_longer_than_max_stale_fails_closed() {
    let (key, idp, clock, auth) = one_issuer(|b| b).await;
    let cached = token(&idp, &key, &clock, "cached");
    accepted(run(&auth, &cached).await);
    idp.set_fault(Fault::Close);
    // Still good just before ten refresh intervals...
    refresh(&auth, &idp, &clock, REFRESH * 9).await;
    accepted(run(&auth, &token(&idp, &key, &clock, "u")).await);
    // ...and closed after them, for cached tokens too.
    refresh(&auth, &idp, &clock, REFRESH * 2).await;
    assert!(!auth.issuer_status(idp.issuer()).unwrap().available);
    assert_unavailable(&run(&auth, &token(&idp, &key, &clock, "u")).await);
    let outcome = ready(&auth, &cached).expect("decided without waiting");
    assert_unavailable(&outcome);
    // The IdP comes back: the next retry restores service.
    idp.set_fault(Fault::None);
    refresh(&auth, &idp, &clock, Duration::from_secs(61)).await;
    accepted(run(&auth, &token(&idp, &key, &clock, "u")).await);
}

/// SECURITY.md F4.
#[tokio::test]
async fn slow_jwks_is_bounded_and_cached_kids_never_wait() {
    let (key, idp, clock, auth) = one_issuer(|b| b).await;
    idp.set_fault(Fault::Hang);
    let before = fetches(&auth, &idp);
    warp(&clock, REFRESH).await;
    idp.wait_for_requests(3).await; // the refresh is now hanging at the IdP
    // A token with a known kid is decided at once, not behind the hanging fetch.
    let outcome = ready(&auth, &token(&idp, &key, &clock, "u")).expect("never waits");
    accepted(outcome);
    // The hanging fetch ends at the read timeout, with the keys kept.
    auth.wait_for_fetches(idp.issuer(), before + 1).await;
    let status = auth.issuer_status(idp.issuer()).unwrap();
    assert_eq!(
        (status.available, status.last_error),
        (true, Some("timeout"))
    );
}

/// SECURITY.md F5.
#[tokio::test]
async fn garbage_jwks_keeps_last_known_good() {
    let key = SigningKey::rsa("a", 0);
    let other = SigningKey::rsa("b", 1);
    let idp = TestIdp::start(&[&key]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    let cases = [
        (
            Fault::Body("<html><body>Login</body></html>".into()),
            None,
            "jwks_not_json",
        ),
        (
            Fault::Body(r#"{"keys": [{"kty": "RSA""#.into()),
            None,
            "jwks_not_json",
        ),
        (
            Fault::Body(r#"{"keys": []}"#.into()),
            None,
            "jwks_no_usable_keys",
        ),
        (
            Fault::Body(r#"{"kids": []}"#.into()),
            None,
            "jwks_without_keys",
        ),
        (Fault::Body(String::new()), None, "jwks_not_json"),
        (Fault::Oversize, None, "body_too_large"),
        (
            Fault::None,
            Some(
                json!({"keys": [key.jwk(), other.jwk().clone()]})
                    .to_string()
                    .replace("\"b\"", "\"a\""),
            ),
            "jwks_duplicate_kid",
        ),
        (Fault::Status(404, None), None, "unexpected_status"),
    ];
    for (fault, body, reason) in cases {
        idp.set_fault(fault);
        idp.set_jwks_body(body);
        refresh(&auth, &idp, &clock, REFRESH).await;
        let status = auth.issuer_status(idp.issuer()).unwrap();
        assert_eq!(
            (status.available, status.keys, status.last_error),
            (true, 1, Some(reason))
        );
        accepted(run(&auth, &token(&idp, &key, &clock, reason)).await);
    }
    // Single bad keys are skipped; the rest of the set is used.
    idp.set_fault(Fault::None);
    idp.set_jwks_body(Some(json!({"keys": [{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"}, {"kty": "EC"}, key.jwk(), other.jwk()]}).to_string()));
    refresh(&auth, &idp, &clock, REFRESH).await;
    let status = auth.issuer_status(idp.issuer()).unwrap();
    assert_eq!((status.keys, status.last_error), (2, None));
    accepted(run(&auth, &token(&idp, &other, &clock, "u")).await);
}

/// SECURITY.md F5.
#[tokio::test]
async fn redirects_are_not_followed() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    let elsewhere = TestIdp::start(&[&SigningKey::rsa("evil", 1)]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    idp.set_fault(Fault::Redirect(elsewhere.jwks_uri()));
    refresh(&auth, &idp, &clock, REFRESH).await;
    assert_eq!(
        auth.issuer_status(idp.issuer()).unwrap().last_error,
        Some("redirect_refused")
    );
    assert_eq!(elsewhere.requests(), 0);
    accepted(run(&auth, &token(&idp, &key, &clock, "u")).await);
}

/// SECURITY.md F6.
#[tokio::test]
async fn retry_after_is_honoured_and_the_budget_kept() {
    let (_, idp, clock, auth) = one_issuer(|b| b).await;
    idp.set_fault(Fault::Status(503, Some(120)));
    refresh(&auth, &idp, &clock, REFRESH).await;
    assert_eq!(
        auth.issuer_status(idp.issuer()).unwrap().last_error,
        Some("server_error")
    );
    let jwks = idp.jwks_requests();
    // Past the unknown-kid cooldown but inside Retry-After: an unknown kid causes no fetch.
    warp(&clock, Duration::from_secs(40)).await;
    let stranger = SigningKey::rsa("new", 1);
    assert_eq!(
        assert_refused(&run(&auth, &token(&idp, &stranger, &clock, "u")).await),
        "unknown_kid"
    );
    // Backoff alone would have retried within seconds; Retry-After holds it off for 120 s.
    warp(&clock, Duration::from_secs(60)).await;
    idp.set_fault(Fault::None);
    refresh(&auth, &idp, &clock, Duration::from_secs(25)).await;
    assert_eq!(
        idp.jwks_requests(),
        jwks + 1,
        "exactly one retry, after Retry-After"
    );
    assert!(auth.issuer_status(idp.issuer()).unwrap().available);
}

/// SECURITY.md F6.
#[tokio::test]
async fn a_429_at_start_sends_its_retry_after_to_clients() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    idp.set_fault(Fault::Status(429, Some(120)));
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    let retry = assert_unavailable(&run(&auth, &idp.token(&key, "u")).await);
    assert!(
        retry > Duration::from_secs(100) && retry <= Duration::from_secs(120),
        "{retry:?}"
    );
    assert_eq!(idp.requests(), 1, "discovery only, then held off");
}

/// SECURITY.md F7.
#[tokio::test]
async fn planned_rotation_has_zero_failures() {
    let old = SigningKey::rsa("old", 0);
    let next = SigningKey::rsa("next", 1);
    let idp = TestIdp::start(&[&old]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    idp.publish(&next);
    refresh(&auth, &idp, &clock, REFRESH).await;
    let jwks = idp.jwks_requests();
    // The IdP switches keys; tokens of both keys pass, with no on-demand fetch.
    for i in 0..5 {
        accepted(run(&auth, &token(&idp, &old, &clock, &format!("old-{i}"))).await);
        accepted(ready(&auth, &token(&idp, &next, &clock, &format!("new-{i}"))).expect("no wait"));
    }
    idp.unpublish("old");
    refresh(&auth, &idp, &clock, REFRESH).await;
    accepted(run(&auth, &token(&idp, &next, &clock, "after")).await);
    assert_eq!(idp.jwks_requests(), jwks + 1);
}

/// Keys `old` (published at start) and `new` (published 31 s later, past the refetch
/// cooldown, without a refresh), with the IdP holding its next answers until `release`.
async fn rotated_unannounced() -> (SigningKey, SigningKey, TestIdp, Clock, OidcAuthenticator) {
    let old = SigningKey::rsa("old", 0);
    let new = SigningKey::rsa("new", 1);
    let idp = TestIdp::start(&[&old]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    warp(&clock, Duration::from_secs(31)).await;
    idp.publish(&new);
    idp.hold();
    (old, new, idp, clock, auth)
}

/// The future of a check that must wait for a key fetch.
fn waiting(auth: &OidcAuthenticator, token: &str) -> tower_auth_core::OutcomeFuture {
    match tower_auth_core::Authenticator::authenticate(auth, Credential::Bearer(token)) {
        Check::Pending(future) => future,
        Check::Ready(outcome) => panic!("should wait for the refetch: {outcome:?}"),
    }
}

/// SECURITY.md F8, F11.
#[tokio::test]
async fn unannounced_rotation_one_coalesced_refetch() {
    let (_, new, idp, clock, auth) = rotated_unannounced().await;
    // Twenty concurrent requests with the new kid share one fetch.
    let pending: Vec<_> = (0..20)
        .map(|i| {
            let t = token(&idp, &new, &clock, &format!("u{i}"));
            waiting(&auth, &t)
        })
        .collect();
    idp.wait_for_requests(3).await;
    idp.release();
    for f in pending {
        accepted(f.await);
    }
    assert_eq!(idp.jwks_requests(), 2, "start-up + one coalesced refetch");
}

/// SECURITY.md F9.
#[tokio::test]
async fn removed_key_stops_verifying_and_its_cached_tokens_are_dropped() {
    let keep = SigningKey::rsa("keep", 0);
    let gone = SigningKey::ec("gone");
    let idp = TestIdp::start(&[&keep, &gone]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    let cached = token(&idp, &gone, &clock, "cached");
    let kept = token(&idp, &keep, &clock, "kept");
    accepted(run(&auth, &cached).await);
    accepted(run(&auth, &kept).await);
    assert_eq!(auth.cached_tokens(), 2);
    idp.unpublish("gone");
    // Until the next refresh the key still verifies: served again and again on this thread,
    // the last times from this thread's own copy of the identity.
    let first = accepted(ready(&auth, &cached).unwrap());
    for _ in 0..2 {
        let again = accepted(ready(&auth, &cached).unwrap());
        assert_eq!(format!("{again:?}"), format!("{first:?}"));
        assert_eq!(again.subject(), "cached");
    }
    refresh(&auth, &idp, &clock, REFRESH).await;
    assert_eq!(
        assert_refused(&ready(&auth, &cached).expect("no refetch in cooldown")),
        "unknown_kid"
    );
    assert_eq!(
        assert_refused(&run(&auth, &token(&idp, &gone, &clock, "new")).await),
        "unknown_kid"
    );
    accepted(ready(&auth, &kept).unwrap());
}

/// SECURITY.md F10.
#[tokio::test]
async fn unknown_kid_flood_costs_one_fetch_and_no_latency() {
    let key = SigningKey::ec("good");
    let idp = TestIdp::start(&[&key]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    warp(&clock, Duration::from_secs(31)).await;
    let bogus = SigningKey::ec("bogus-signer");
    idp.hold();
    let mut waiting = Vec::new();
    for i in 0..50 {
        let header = json!({"alg": "ES256", "kid": format!("bogus-{i}")});
        let t = bogus.mint(&header, &idp.claims("x"));
        match tower_auth_core::Authenticator::authenticate(
            &auth,
            tower_auth_core::Credential::Bearer(&t),
        ) {
            tower_auth_core::Check::Pending(f) => waiting.push(f),
            tower_auth_core::Check::Ready(o) => assert_eq!(assert_refused(&o), "unknown_kid"),
        }
        // Valid tokens are decided at once while the flood's fetch hangs.
        accepted(
            ready(&auth, &token(&idp, &key, &clock, &format!("good-{i}")))
                .expect("no added latency"),
        );
    }
    idp.release();
    for f in waiting {
        assert_eq!(assert_refused(&f.await), "unknown_kid");
    }
    // Another wave inside the cooldown: refused at once.
    for i in 50..100 {
        let t = bogus.mint(
            &json!({"alg": "ES256", "kid": format!("bogus-{i}")}),
            &idp.claims("x"),
        );
        assert_eq!(
            assert_refused(&ready(&auth, &t).expect("no fetch in cooldown")),
            "unknown_kid"
        );
    }
    assert_eq!(idp.jwks_requests(), 2, "start-up + one");
}

/// SECURITY.md F16.
#[tokio::test]
async fn an_unknown_kid_is_forgotten_after_the_cooldown_not_the_refresh_interval() {
    let key = SigningKey::rsa("a", 0);
    let late = SigningKey::rsa("late", 1);
    let idp = TestIdp::start(&[&key]).await;
    let clock = Clock::manual(NOW);
    // An hour between refreshes, so that only an on-demand fetch can bring the late key.
    let config = builder(&[&idp])
        .jwks_refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let auth = start(config, &clock).await;
    let early = token(&idp, &late, &clock, "early");
    // Past the start-up fetch's cooldown: the unknown kid gets one fetch, and is refused.
    warp(&clock, Duration::from_secs(31)).await;
    assert_eq!(assert_refused(&run(&auth, &early).await), "unknown_kid");
    assert_eq!(idp.jwks_requests(), 2, "start-up + one");
    // The IdP publishes the key moments later. Within the cooldown: refused, no fetch.
    idp.publish(&late);
    warp(&clock, Duration::from_secs(29)).await;
    assert_eq!(
        assert_refused(&ready(&auth, &early).expect("no fetch in cooldown")),
        "unknown_kid"
    );
    assert_eq!(idp.jwks_requests(), 2);
    // After the cooldown, the first request fetches and is accepted, long before the refresh.
    warp(&clock, Duration::from_secs(2)).await;
    accepted(run(&auth, &early).await);
    assert_eq!(idp.jwks_requests(), 3);
    accepted(ready(&auth, &token(&idp, &late, &clock, "next")).expect("key loaded"));
}

/// SECURITY.md F11.
#[tokio::test]
async fn thundering_herd_of_first_requests_makes_one_fetch() {
    let key = SigningKey::ed25519("k");
    let idp = TestIdp::start(&[&key]).await;
    idp.hold();
    let clock = Clock::manual(NOW);
    let config = builder(&[&idp])
        .startup_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let auth = start(config, &clock).await;
    let pending: Vec<_> = (0..32)
        .map(|i| {
            let t = token(&idp, &key, &clock, &format!("u{i}"));
            match tower_auth_core::Authenticator::authenticate(
                &auth,
                tower_auth_core::Credential::Bearer(&t),
            ) {
                tower_auth_core::Check::Pending(f) => tokio::spawn(f),
                tower_auth_core::Check::Ready(o) => panic!("first load must be awaited: {o:?}"),
            }
        })
        .collect();
    idp.release();
    for p in pending {
        accepted(p.await.unwrap());
    }
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (1, 1));
}

/// SECURITY.md F12.
#[tokio::test]
async fn cancelled_request_does_not_kill_the_shared_fetch() {
    let (old, new, idp, clock, auth) = rotated_unannounced().await;
    let t = token(&idp, &new, &clock, "u");
    let future = waiting(&auth, &t);
    // Poll it until the fetch reaches the IdP, then cancel the request.
    let mut future = Box::pin(future);
    tokio::select! {
        _ = &mut future => panic!("the IdP is holding the response"),
        () = idp.wait_for_requests(3) => {}
    }
    drop(future);
    idp.release();
    auth.wait_for_fetches(idp.issuer(), 2).await;
    // The fetch finished for everyone; nothing is left locked.
    accepted(ready(&auth, &t).expect("key already loaded"));
    accepted(ready(&auth, &token(&idp, &old, &clock, "v")).unwrap());
    assert_eq!(idp.jwks_requests(), 2);
}

/// SECURITY.md F13.
#[tokio::test]
async fn clock_skew_leeway_on_wall_time_and_cache_ages_on_monotonic_time() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    let clock = Clock::manual(NOW);
    let config = builder(&[&idp])
        .token_cache_ttl(Duration::from_secs(300))
        .build()
        .unwrap();
    let auth = start(config, &clock).await;
    // An IdP clock 50 s ahead: iat and nbf in our future, within the 60 s leeway.
    let ahead = idp.token_with(&key, |c| {
        c["iat"] = json!(NOW + 50);
        c["nbf"] = json!(NOW + 50);
        c["exp"] = json!(NOW + 100);
    });
    accepted(run(&auth, &ahead).await);
    // The wall clock jumps back ten minutes: the cached result stands (its age is monotonic)...
    clock.set(NOW - 600);
    accepted(ready(&auth, &ahead).unwrap());
    // ...until the TTL passes on the monotonic clock; then a fresh check sees nbf too far ahead.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(301)).await;
    tokio::time::resume();
    assert_eq!(
        assert_refused(&ready(&auth, &ahead).unwrap()),
        "not_yet_valid"
    );
    // And exp is checked on the wall clock with the leeway, for cached tokens too.
    clock.set(NOW);
    accepted(run(&auth, &ahead).await);
    clock.set(NOW + 159);
    accepted(ready(&auth, &ahead).unwrap());
    clock.set(NOW + 160);
    assert_eq!(assert_refused(&ready(&auth, &ahead).unwrap()), "expired");
}

/// SECURITY.md F14.
#[tokio::test]
async fn cache_is_bounded_holds_only_valid_results_and_rechecks_exp() {
    let (key, idp, clock, auth) = one_issuer(|b| b.token_cache_size(3)).await;
    for i in 0..20 {
        accepted(run(&auth, &token(&idp, &key, &clock, &format!("u{i}"))).await);
    }
    assert!(auth.cached_tokens() <= 3, "{}", auth.cached_tokens());
    let bad = idp.token_with(&key, |c| c["aud"] = json!("other"));
    for _ in 0..3 {
        assert_eq!(assert_refused(&run(&auth, &bad).await), "aud_mismatch");
    }
    let short = idp.token_with(&key, |c| c["exp"] = json!(NOW + 10));
    accepted(run(&auth, &short).await);
    clock.set(NOW + 69);
    accepted(ready(&auth, &short).unwrap());
    clock.set(NOW + 70);
    assert_eq!(assert_refused(&ready(&auth, &short).unwrap()), "expired");
}

/// SECURITY.md F14.
#[tokio::test]
async fn a_cached_digest_never_stands_for_another_token() {
    let (key, idp, clock, auth) = one_issuer(|b| b).await;
    let good = token(&idp, &key, &clock, "u");
    accepted(run(&auth, &good).await);
    // The same claims with the signature of another token: equal prefix, different token.
    let other = token(&idp, &key, &clock, "v");
    let forged = format!(
        "{}{}",
        &good[..good.rfind('.').unwrap()],
        &other[other.rfind('.').unwrap()..]
    );
    assert_eq!(assert_refused(&run(&auth, &forged).await), "bad_signature");
    // Other claims under the cached token's own signature: the cache key is the same (it is
    // taken from the signature), the token is not. Refused every time, with the cached token
    // answered in between.
    let swapped = format!(
        "{}{}",
        &other[..other.rfind('.').unwrap()],
        &good[good.rfind('.').unwrap()..]
    );
    for _ in 0..2 {
        accepted(run(&auth, &good).await);
        assert_eq!(assert_refused(&run(&auth, &swapped).await), "bad_signature");
    }
}

/// SECURITY.md F15.
#[tokio::test]
async fn one_issuers_fault_never_affects_another() {
    let key_a = SigningKey::rsa("a", 0);
    let key_b = SigningKey::ec("b");
    let a = TestIdp::start(&[&key_a]).await;
    let b = TestIdp::start(&[&key_b]).await;
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&a, &b]).build().unwrap(), &clock).await;
    warp(&clock, Duration::from_secs(31)).await;
    // A: an unknown-kid flood spends A's budget, then A breaks.
    let bogus = SigningKey::rsa("x", 1);
    for i in 0..10 {
        let t = bogus.mint(
            &json!({"alg": "RS256", "kid": format!("x{i}")}),
            &a.claims("x"),
        );
        assert_eq!(assert_refused(&run(&auth, &t).await), "unknown_kid");
    }
    assert_eq!(a.jwks_requests(), 2);
    a.set_fault(Fault::Body("<html>".into()));
    // B's budget is its own: its unknown kid still gets a refetch, and B keeps working.
    let stranger = SigningKey::ec("new-b");
    b.publish(&stranger);
    accepted(run(&auth, &token(&b, &stranger, &clock, "u")).await);
    assert_eq!(b.jwks_requests(), 2);
    refresh(&auth, &a, &clock, REFRESH).await;
    assert_eq!(
        auth.issuer_status(a.issuer()).unwrap().last_error,
        Some("jwks_not_json")
    );
    assert_eq!(auth.issuer_status(b.issuer()).unwrap().last_error, None);
    accepted(run(&auth, &token(&b, &key_b, &clock, "v")).await);
    accepted(run(&auth, &token(&a, &key_a, &clock, "w")).await);
}

#[tokio::test]
async fn discovery_naming_another_issuer_refuses_start_up() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    idp.set_discovery_issuer(Some(format!("{}/", idp.issuer())));
    let config = OidcConfig::from_json(
        "OIDC_CONFIG",
        &json!({"issuers": [{"issuer": idp.issuer(), "audience": AUDIENCE}]}).to_string(),
    )
    .unwrap();
    let error = OidcAuthenticator::start(config.with_clock(Clock::manual(NOW)), Admins::default())
        .await
        .unwrap_err();
    assert_eq!(error.variable(), "OIDC_CONFIG");
    assert!(error.message().contains("different issuer"), "{error}");
    assert_eq!(idp.jwks_requests(), 0);
}

#[tokio::test]
async fn discovery_mismatch_found_later_leaves_the_issuer_at_503() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    idp.set_fault(Fault::Close);
    let clock = Clock::manual(NOW);
    let auth = start(builder(&[&idp]).build().unwrap(), &clock).await;
    idp.set_fault(Fault::None);
    idp.set_discovery_issuer(Some("https://impostor.example".into()));
    refresh(&auth, &idp, &clock, Duration::from_secs(1)).await;
    let status = auth.issuer_status(idp.issuer()).unwrap();
    assert!(status.misconfigured && !status.available);
    assert_unavailable(&run(&auth, &idp.token(&key, "u")).await);
    assert_eq!(idp.jwks_requests(), 0);
}

#[tokio::test]
async fn dropping_the_authenticator_stops_refreshing() {
    let (_, idp, clock, auth) = one_issuer(|b| b).await;
    let requests = idp.requests();
    drop(auth);
    warp(&clock, REFRESH * 3).await;
    tokio::task::yield_now().await;
    assert_eq!(idp.requests(), requests);
}

#[tokio::test]
async fn outcomes_do_not_carry_token_material() {
    let (key, idp, _, auth) = one_issuer(|b| b).await;
    let bad = idp.token_with(&key, |c| c["aud"] = json!("secret-audience-value"));
    let outcome = run(&auth, &bad).await;
    let shown = format!("{outcome:?} {auth:?}");
    for part in bad.split('.') {
        assert!(!shown.contains(part), "{shown}");
    }
    assert!(!shown.contains("secret-audience-value"));
    if let Outcome::Rejected(e) = outcome {
        assert_eq!(e.body(), r#"{"error":"invalid_token"}"#);
    }
}

#[tokio::test]
async fn logs_carry_reason_and_fingerprint_never_the_token() {
    let (logs, _guard) = auth_tests::CapturedLogs::start();
    let (key, idp, clock, auth) = one_issuer(|b| b).await;
    let bad = idp.token_with(&key, |c| c["exp"] = json!(NOW - 3600));
    assert_eq!(assert_refused(&run(&auth, &bad).await), "expired");
    idp.set_fault(Fault::Status(503, Some(30)));
    refresh(&auth, &idp, &clock, REFRESH).await;
    let text = logs.text();
    let fingerprint = tower_auth_core::Fingerprint::of(bad.as_bytes()).to_string();
    assert!(
        text.contains("expired") && text.contains(&fingerprint),
        "{text}"
    );
    assert!(text.contains("server_error"), "{text}");
    for part in bad.split('.') {
        assert!(!text.contains(part), "a token segment was logged");
    }
}
