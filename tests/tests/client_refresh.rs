//! A person's session in a token file, refreshed with its refresh token against a real token
//! endpoint that rotates refresh tokens and spends each once.

use std::time::{Duration, SystemTime};

use auth_tests::token_endpoint::TokenEndpoint;
use tower_auth_client::{ClientAuth, RefreshTokenGrant, Session, TokenFile, TokenSource};

const ID: &str = "cli";
const SECRET: &str = "s3cr3t-5e8a1c3f7b9d0e2a4c6b8d1f3a5c7e9b";

fn refresh_grants(endpoint: &TokenEndpoint) -> usize {
    endpoint
        .recorded()
        .iter()
        .filter(|r| r.grant_type.as_deref() == Some("refresh_token"))
        .count()
}

/// A session whose access token expired, with a live refresh token.
fn seed(file: &TokenFile, endpoint: &TokenEndpoint) -> String {
    let refresh = endpoint.issue_refresh_token(ID);
    let session = Session::new(endpoint.issuer(), ID, "access-0")
        .refresh_token(refresh.clone())
        .expires_at(SystemTime::now() - Duration::from_secs(10));
    file.store(&session).unwrap();
    refresh
}

fn grant(endpoint: &TokenEndpoint, file: &TokenFile) -> RefreshTokenGrant {
    RefreshTokenGrant::new(&endpoint.token_url(), ID, file.clone())
        .unwrap()
        .client_secret(SECRET, ClientAuth::Basic)
}

/// SECURITY.md O7: the rotated refresh token is in the file before the new access token is
/// handed out, and the one spent is gone from it.
#[tokio::test]
async fn a_refresh_rotates_the_refresh_token_into_the_file_first() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    let first = seed(&file, &endpoint);
    let token = grant(&endpoint, &file).fetch().await.unwrap();
    let session = file.load().unwrap().unwrap();
    assert_eq!(
        session.access().expose_secret(),
        token.secret().expose_secret()
    );
    let rotated = session.refresh().unwrap().expose_secret().to_vec();
    assert_ne!(rotated, first.as_bytes(), "rotated");
    assert!(session.expires_in(SystemTime::now()).unwrap() > Duration::from_secs(3000));
    assert_eq!(session.issuer(), endpoint.issuer());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The spent one is refused: a copy of the old file cannot be replayed.
    let replay = TokenFile::new(dir.path().join("old.json"));
    replay
        .store(
            &Session::new(endpoint.issuer(), ID, "access-0")
                .refresh_token(first)
                .expires_at(SystemTime::now()),
        )
        .unwrap();
    let error = grant(&endpoint, &replay).fetch().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
}

/// SECURITY.md O7: two processes sharing the file spend the refresh token once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_refreshing_at_once_spend_the_refresh_token_once() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    seed(&file, &endpoint);
    // Two sources as two processes have them: their own state, one file, one lock file.
    let (a, b) = (grant(&endpoint, &file), grant(&endpoint, &file));
    let (ta, tb) = tokio::join!(a.fetch(), b.fetch());
    let (ta, tb) = (ta.unwrap(), tb.unwrap());
    assert_eq!(ta.secret().expose_secret(), tb.secret().expose_secret());
    assert_eq!(refresh_grants(&endpoint), 1);
    // When the token it handed out is due, each refreshes again, once between them.
    let (ta, tb) = tokio::join!(a.fetch(), b.fetch());
    assert!(ta.is_ok() && tb.is_ok());
    assert_eq!(refresh_grants(&endpoint), 2);
}

/// SECURITY.md O7: no session, another client's, or a refused refresh token: log in again.
#[tokio::test]
async fn without_a_usable_session_the_error_says_log_in_again() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET), ("other", SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    let error = grant(&endpoint, &file).fetch().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
    let refresh = endpoint.issue_refresh_token("other");
    file.store(
        &Session::new(endpoint.issuer(), "other", "access-0")
            .refresh_token(refresh)
            .expires_at(SystemTime::now()),
    )
    .unwrap();
    let error = grant(&endpoint, &file).fetch().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
    assert_eq!(
        refresh_grants(&endpoint),
        0,
        "another client's session is not used"
    );
    file.store(
        &Session::new(endpoint.issuer(), ID, "access-0")
            .refresh_token("refresh-never-issued")
            .expires_at(SystemTime::now()),
    )
    .unwrap();
    let error = grant(&endpoint, &file).fetch().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
    assert!(!error.to_string().contains("refresh-never-issued"));
}

/// SECURITY.md O7: a session of another issuer (staging's, for prod's grant) is never sent
/// there: no request, log in again.
#[tokio::test]
async fn a_session_of_another_issuer_is_not_refreshed_here() {
    let endpoint = TokenEndpoint::start(&[(ID, SECRET)]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = TokenFile::new(dir.path().join("tokens.json"));
    let refresh = endpoint.issue_refresh_token(ID);
    file.store(
        &Session::new("https://staging.example", ID, "access-staging")
            .refresh_token(refresh)
            .expires_at(SystemTime::now() + Duration::from_secs(3_000)),
    )
    .unwrap();
    let grant = RefreshTokenGrant::from_issuer(endpoint.issuer(), ID, file.clone())
        .unwrap()
        .client_secret(SECRET, ClientAuth::Basic);
    let error = grant.fetch().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
    assert_eq!(refresh_grants(&endpoint), 0);
    // The same session under its own issuer's name is used.
    let mut session = file.load().unwrap().unwrap();
    session = Session::new(endpoint.issuer(), ID, session.access().clone())
        .refresh_token(session.refresh().unwrap().clone())
        .expires_at(SystemTime::now() + Duration::from_secs(3_000));
    file.store(&session).unwrap();
    let token = grant.fetch().await.unwrap();
    assert_eq!(token.secret().expose_secret(), b"access-staging");
}
