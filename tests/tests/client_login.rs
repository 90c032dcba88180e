//! A person's login against a real authorization server: the test plays the browser (it
//! follows the authorization endpoint's redirect to the loopback listener with a real HTTP
//! client), then the session is stored, refreshed and logged out of.

use std::net::SocketAddr;
use std::time::Duration;

use auth_tests::get;
use auth_tests::token_endpoint::TokenEndpoint;
use http::Uri;
use serde_json::json;
use tower_auth_client::{
    AuthorizationCodeLogin, ClientAuth, LoginError, Logout, PendingLogin, RefreshTokenGrant,
    Revocation, Session, TokenFile, TokenSource,
};

const ID: &str = "cli";

async fn endpoint() -> TokenEndpoint {
    // A public client: registered without a secret.
    TokenEndpoint::start(&[(ID, "")]).await
}

fn login(endpoint: &TokenEndpoint, scope: &str) -> AuthorizationCodeLogin {
    AuthorizationCodeLogin::new(endpoint.issuer(), ID)
        .unwrap()
        .scope(scope)
        .redirect_port(0)
}

fn addr_of(uri: &Uri) -> SocketAddr {
    uri.authority().unwrap().as_str().parse().unwrap()
}

/// The browser: opens the authorization URL, follows its redirect to the listener, and
/// returns the listener's answer (status, page).
async fn browse(url: &str) -> (u16, String) {
    let url: Uri = url.parse().unwrap();
    let idp = get(addr_of(&url), url.path_and_query().unwrap().as_str(), &[]).await;
    assert_eq!(idp.status, 302, "{}", idp.body);
    let location: Uri = idp.header("location").unwrap().parse().unwrap();
    let page = get(
        addr_of(&location),
        location.path_and_query().unwrap().as_str(),
        &[("host", location.authority().unwrap().as_str())],
    )
    .await;
    (page.status, page.body)
}

/// Starts `login`, plays the browser, and returns the listener's answer and the outcome.
async fn run(login: &AuthorizationCodeLogin) -> ((u16, String), Result<Session, LoginError>) {
    let pending: PendingLogin = login.start().await.unwrap();
    let url = pending.authorization_url().to_owned();
    let finished = tokio::spawn(pending.finish());
    let page = browse(&url).await;
    (page, finished.await.unwrap())
}

#[tokio::test]
async fn a_login_with_pkce_is_stored_private_refreshed_and_revoked_at_logout() {
    let endpoint = endpoint().await;
    let login = login(&endpoint, "openid offline_access");
    let ((status, page), session) = run(&login).await;
    assert_eq!(status, 200);
    assert!(page.contains("Login received"), "{page}");
    let session = session.unwrap();
    assert_eq!(
        (session.issuer(), session.client_id()),
        (endpoint.issuer(), ID)
    );
    assert!(session.id().is_some() && session.refresh().is_some());

    // What the browser was sent to: PKCE S256, a state, a nonce, the loopback redirect URI.
    let query = &endpoint.authorize_queries()[0];
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("code_challenge_method"), Some("S256"));
    assert_eq!(param("code_challenge").map(str::len), Some(43));
    assert_eq!(param("state").map(str::len), Some(43));
    assert_eq!(param("nonce").map(str::len), Some(43));
    assert_eq!(param("response_type"), Some("code"));
    let redirect = param("redirect_uri").unwrap();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "{redirect}"
    );
    let exchange = endpoint.last_request();
    assert_eq!(exchange.grant_type.as_deref(), Some("authorization_code"));
    assert_eq!(exchange.auth_method, "none");

    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    file.store(&session).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Kept fresh with the refresh token the login brought.
    let first_refresh =
        String::from_utf8(session.refresh().unwrap().expose_secret().to_vec()).unwrap();
    let grant = RefreshTokenGrant::from_issuer(endpoint.issuer(), ID, file.clone()).unwrap();
    let expired = session
        .clone()
        .expires_at(std::time::SystemTime::now() - Duration::from_secs(1));
    file.store(&expired).unwrap();
    grant.fetch().await.unwrap();
    assert!(!endpoint.refresh_token_live(&first_refresh), "rotated");
    let current = file.load().unwrap().unwrap();
    let current_refresh =
        String::from_utf8(current.refresh().unwrap().expose_secret().to_vec()).unwrap();
    assert!(endpoint.refresh_token_live(&current_refresh));

    // Logout revokes the live refresh token, then deletes the file.
    let revocation = Logout::new(ID).run(&file).await.unwrap();
    assert!(matches!(revocation, Revocation::Revoked), "{revocation:?}");
    assert_eq!(endpoint.revoked(), std::slice::from_ref(&current_refresh));
    assert!(!endpoint.refresh_token_live(&current_refresh));
    assert!(!file.path().exists());
    // Nothing left: a second logout has nothing to revoke.
    let again = Logout::new(ID).run(&file).await.unwrap();
    assert!(matches!(again, Revocation::NothingToRevoke), "{again:?}");
}

#[tokio::test]
async fn a_login_without_openid_sends_no_nonce_and_needs_no_id_token() {
    let endpoint = endpoint().await;
    // Without openid: no nonce, no ID token required.
    let login = login(&endpoint, "offline_access");
    let ((status, _), session) = run(&login).await;
    assert_eq!(status, 200);
    let session = session.unwrap();
    assert!(session.id().is_none());
    assert_eq!(
        endpoint.authorize_queries()[0]
            .iter()
            .find(|(k, _)| k == "nonce"),
        None
    );
}

/// SECURITY.md O11.
#[tokio::test]
async fn access_denied_is_a_typed_error_and_no_token_is_asked_for() {
    let endpoint = endpoint().await;
    endpoint.deny_logins(Some("access_denied"));
    let ((status, page), outcome) = run(&login(&endpoint, "openid")).await;
    assert_eq!(status, 400);
    assert!(
        !page.contains("the user said no"),
        "no IdP text on the page"
    );
    let error = outcome.unwrap_err();
    assert!(
        matches!(&error, LoginError::AccessDenied { description: Some(d) } if d == "the user said no"),
        "{error:?}"
    );
    assert!(error.to_string().contains("access_denied"), "{error}");
    assert_eq!(endpoint.token_requests(), 0);
}

/// SECURITY.md O10: a redirect with another state (or a page in another tab hitting the
/// well-known port) is refused, its code never exchanged, and the login goes on waiting for
/// its own redirect, which still completes it.
#[tokio::test]
async fn a_redirect_with_another_state_is_refused_and_its_code_never_exchanged() {
    let endpoint = endpoint().await;
    let pending: PendingLogin = login(&endpoint, "openid").start().await.unwrap();
    let url = pending.authorization_url().to_owned();
    let finished = tokio::spawn(pending.finish());
    endpoint.redirect_with_state(Some("forged"));
    let (status, _) = browse(&url).await;
    assert_eq!(status, 400);
    assert_eq!(endpoint.token_requests(), 0);
    assert!(
        !finished.is_finished(),
        "a forged redirect does not end the login"
    );
    // The IdP's own redirect, with this login's state, completes it.
    endpoint.redirect_with_state(None);
    let (status, _) = browse(&url).await;
    assert_eq!(status, 200);
    let session = finished.await.unwrap().unwrap();
    assert_eq!(session.client_id(), ID);
    assert_eq!(endpoint.token_requests(), 1);
}

/// SECURITY.md O14.
#[tokio::test]
async fn an_id_token_of_another_nonce_audience_or_issuer_is_refused() {
    for (change, reason) in [
        (json!({"nonce": "replayed"}), "id_token_nonce"),
        (json!({"aud": "another-client"}), "id_token_audience"),
        (json!({"iss": "https://evil.example"}), "id_token_issuer"),
        (json!({"exp": 1_000_000_000}), "id_token_expired"),
        // Claims all right, signed by a key the issuer does not publish (feature `oidc`).
        (json!({"forged": true}), "id_token_signature"),
    ] {
        let endpoint = endpoint().await;
        endpoint.change_id_tokens(Some(change.clone()));
        let ((status, _), outcome) = run(&login(&endpoint, "openid")).await;
        assert_eq!(status, 200);
        match outcome {
            Err(LoginError::IdToken(got)) => assert_eq!(got, reason, "{change}"),
            other => panic!("{change}: {other:?}"),
        }
    }
}

/// SECURITY.md O13.
#[tokio::test]
async fn the_listener_ignores_other_requests_and_idle_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let endpoint = endpoint().await;
    let pending = login(&endpoint, "openid").start().await.unwrap();
    let url = pending.authorization_url().to_owned();
    let listener: Uri = pending.redirect_uri().parse().unwrap();
    let listener = addr_of(&listener);
    let finished = tokio::spawn(pending.finish());
    // A browser's speculative connection that never sends a request, and an oversized head:
    // neither holds up the login.
    let _idle = tokio::net::TcpStream::connect(listener).await.unwrap();
    let mut oversized = tokio::net::TcpStream::connect(listener).await.unwrap();
    let _ = oversized.write_all(&vec![b'a'; 20 * 1024]).await;
    let mut answer = Vec::new();
    let _ = oversized.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "dropped without an answer");
    // Other paths and methods are answered and ignored.
    let favicon = get(listener, "/favicon.ico", &[]).await;
    assert_eq!(favicon.status, 404);
    assert!(!favicon.body.contains("received"));
    let post = auth_tests::send(
        listener,
        http::Method::POST,
        "/callback?code=x&state=y",
        &[],
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(endpoint.token_requests(), 0);
    let (status, _) = browse(&url).await;
    assert_eq!(status, 200);
    let session = finished.await.unwrap().unwrap();
    assert!(session.id().is_some());
}

#[tokio::test]
async fn no_redirect_in_time_is_a_timeout() {
    let endpoint = endpoint().await;
    let pending = login(&endpoint, "openid")
        .timeout(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    // Nobody opens the URL; the clock runs ahead instead of the test sleeping.
    tokio::time::pause();
    let outcome = pending.finish().await;
    assert!(matches!(outcome, Err(LoginError::Timeout)), "{outcome:?}");
}

/// SECURITY.md O16.
#[tokio::test]
async fn a_failed_or_impossible_revocation_still_deletes_the_file() {
    let endpoint = endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    let refresh = endpoint.issue_refresh_token(ID);
    let session = Session::new(endpoint.issuer(), ID, "access").refresh_token(refresh.clone());

    endpoint.set_revocation_status(Some(503));
    file.store(&session).unwrap();
    let revocation = Logout::new(ID).run(&file).await.unwrap();
    assert!(
        matches!(&revocation, Revocation::Failed(e) if e.reason() == "server_error"),
        "{revocation:?}"
    );
    assert!(!revocation.to_string().contains(&refresh));
    assert!(!file.path().exists());
    assert!(endpoint.refresh_token_live(&refresh));

    endpoint.set_revocation_status(None);
    endpoint.hide_revocation();
    file.store(&session).unwrap();
    let revocation = Logout::new(ID).run(&file).await.unwrap();
    assert!(
        matches!(revocation, Revocation::NotSupported),
        "{revocation:?}"
    );
    assert!(!file.path().exists());
}

mod device {
    use super::*;
    use tower_auth_client::DeviceLogin;

    fn device(endpoint: &TokenEndpoint) -> DeviceLogin {
        DeviceLogin::new(endpoint.issuer(), ID)
            .unwrap()
            .scope("openid offline_access")
    }

    #[tokio::test]
    async fn a_device_login_polls_slows_down_and_ends_in_a_session() {
        let endpoint = endpoint().await;
        let pending = device(&endpoint).start().await.unwrap();
        let complete = pending.verification_uri_complete().unwrap().to_owned();
        assert!(complete.contains(pending.user_code()), "{complete}");
        assert!(pending.verification_uri().ends_with("/activate"));
        endpoint.slow_down(1);
        endpoint.decide_device(pending.user_code(), true);
        // The waits between polls run on Tokio's clock, not the test's time.
        tokio::time::pause();
        let started = tokio::time::Instant::now();
        let session = pending.finish().await.unwrap();
        // Polled at 5 s (slow_down), then 10 s later (granted).
        assert_eq!(endpoint.device_polls(), 2);
        assert_eq!(started.elapsed().as_secs(), 15);
        assert_eq!(session.issuer(), endpoint.issuer());
        assert!(session.refresh().is_some() && session.id().is_some());
    }

    /// SECURITY.md O17.
    #[tokio::test]
    async fn a_denied_or_expired_device_login_is_a_typed_error() {
        let endpoint = endpoint().await;
        let pending = device(&endpoint).start().await.unwrap();
        endpoint.decide_device(pending.user_code(), false);
        tokio::time::pause();
        let outcome = pending.finish().await;
        assert!(
            matches!(outcome, Err(LoginError::AccessDenied { .. })),
            "{outcome:?}"
        );
        tokio::time::resume();

        let pending = device(&endpoint).start().await.unwrap();
        endpoint.expire_devices();
        tokio::time::pause();
        let outcome = pending.finish().await;
        assert!(matches!(outcome, Err(LoginError::Expired)), "{outcome:?}");
        tokio::time::resume();

        // Never approved: polls until expires_in, then stops.
        endpoint.set_device_expires_in(12);
        let polls = endpoint.device_polls();
        let pending = device(&endpoint).start().await.unwrap();
        tokio::time::pause();
        let outcome = pending.finish().await;
        assert!(matches!(outcome, Err(LoginError::Expired)), "{outcome:?}");
        assert_eq!(endpoint.device_polls() - polls, 2, "at 5 s and 10 s");
    }
}

/// SECURITY.md O16: a client secret given for one issuer is never sent to another: a session
/// of another issuer is revoked as a public client (here the IdP takes that; had the secret
/// gone with it, the IdP would have refused a wrong secret).
#[tokio::test]
async fn a_secret_for_one_issuer_never_goes_to_another_at_logout() {
    let endpoint = endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    let refresh = endpoint.issue_refresh_token(ID);
    file.store(&Session::new(endpoint.issuer(), ID, "access").refresh_token(refresh.clone()))
        .unwrap();
    let revocation = Logout::new(ID)
        .client_secret(
            "https://other-idp.example",
            "secret-of-the-other-idp",
            ClientAuth::Basic,
        )
        .run(&file)
        .await
        .unwrap();
    assert!(matches!(revocation, Revocation::Revoked), "{revocation:?}");
    assert!(!endpoint.refresh_token_live(&refresh));
    assert!(!file.path().exists());
}
