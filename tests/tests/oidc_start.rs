//! Starting the OIDC authenticator from synchronous set-up code (`AuthLayer::from_env()`).

use std::time::Duration;

use auth_tests::idp::{AUDIENCE, NOW, SigningKey, TestIdp, accepted, assert_refused, ready, run};
use tokio::runtime::Runtime;
use tower_auth_core::{Admins, Clock};
use tower_auth_oidc::{IssuerConfig, OidcAuthenticator, OidcConfig};

/// An IdP on a runtime of its own, so that blocking the caller cannot starve it.
fn idp_elsewhere(keys: &[&SigningKey]) -> (Runtime, TestIdp) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let idp = runtime.block_on(TestIdp::start(keys));
    (runtime, idp)
}

fn config(idp: &TestIdp) -> OidcConfig {
    OidcConfig::builder()
        .issuer(IssuerConfig::new(idp.issuer(), AUDIENCE))
        .unknown_kid_cooldown(Duration::ZERO)
        .build()
        .unwrap()
}

/// Start-up loaded the keys, and later fetches (an unknown kid) still run.
async fn works(auth: &OidcAuthenticator, idp: &TestIdp, key: &SigningKey) {
    accepted(ready(auth, &idp.token(key, "u")).expect("keys loaded at start"));
    let stranger = SigningKey::ec("stranger");
    assert_eq!(
        assert_refused(&run(auth, &idp.token(&stranger, "u")).await),
        "unknown_kid"
    );
    let late = SigningKey::ec("late");
    idp.publish(&late);
    accepted(run(auth, &idp.token(&late, "u")).await);
}

#[test]
fn without_a_runtime_the_refreshes_get_their_own_thread() {
    let key = SigningKey::rsa("a", 0);
    let (runtime, idp) = idp_elsewhere(&[&key]);
    let auth = OidcAuthenticator::start_blocking(
        config(&idp).with_clock(Clock::manual(NOW)),
        Admins::default(),
    )
    .unwrap();
    runtime.block_on(works(&auth, &idp, &key));
    assert_eq!(idp.jwks_requests(), 3);
}

#[tokio::test]
async fn in_a_current_thread_runtime_the_refreshes_get_their_own_thread() {
    let key = SigningKey::ec("a");
    let jwk = key.jwk().clone();
    // Built off this runtime's thread: a runtime cannot be started from within one.
    let (runtime, idp) = std::thread::spawn(move || {
        let (runtime, idp) = idp_elsewhere(&[]);
        idp.publish_jwk(jwk);
        (runtime, idp)
    })
    .join()
    .unwrap();
    let auth = OidcAuthenticator::start_blocking(
        config(&idp).with_clock(Clock::manual(NOW)),
        Admins::default(),
    )
    .unwrap();
    works(&auth, &idp, &key).await;
    drop(auth);
    runtime.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_multi_thread_runtime_it_blocks_in_place() {
    let key = SigningKey::rsa("a", 0);
    let idp = TestIdp::start(&[&key]).await;
    let auth = OidcAuthenticator::start_blocking(
        config(&idp).with_clock(Clock::manual(NOW)),
        Admins::default(),
    )
    .unwrap();
    works(&auth, &idp, &key).await;
}

#[test]
fn start_blocking_reports_config_errors() {
    let key = SigningKey::rsa("a", 0);
    let (_runtime, idp) = idp_elsewhere(&[&key]);
    idp.set_discovery_issuer(Some("https://elsewhere.example".into()));
    let e = OidcAuthenticator::start_blocking(
        config(&idp).with_clock(Clock::manual(NOW)),
        Admins::default(),
    )
    .unwrap_err();
    assert_eq!(e.variable(), "OidcConfig");
    assert!(e.message().contains("different issuer"), "{e}");
}
