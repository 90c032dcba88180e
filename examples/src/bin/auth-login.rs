//! `auth-login`: a person's session at an OpenID Connect or OAuth 2.0 issuer, kept in a
//! token file, for scripts: `curl -H "Authorization: Bearer $(auth-login token)" ...`.
//!
//! ```text
//! auth-login login [--no-browser]   log in through the browser (authorization code + PKCE)
//! auth-login login --device         log in on another device (RFC 8628 device authorization)
//! auth-login token                  print a fresh access token (refreshing when needed)
//! auth-login status                 who is logged in where, and until when
//! auth-login logout                 revoke the refresh token (if the IdP can) and delete the file
//! ```
//!
//! Configured by `AUTH_ISSUER`, `AUTH_CLIENT_ID`, `AUTH_CLIENT_SECRET` (optional: public
//! clients have none), `AUTH_SCOPE` (default `openid offline_access`), `AUTH_TOKEN_FILE`
//! (default `tower-auth/tokens.json` under the user's configuration directory) and
//! `AUTH_REDIRECT_PORT` (default 48080). Only `token` writes to standard output, and only the
//! token; everything else goes to standard error, and never a token or secret.

use std::process::ExitCode;
use std::time::SystemTime;

use tower_auth_client::{
    AuthorizationCodeLogin, ClientAuth, DEFAULT_REDIRECT_PORT, DeviceLogin, Logout,
    RefreshTokenGrant, Revocation, Session, TokenCache, TokenFile, open_browser,
};

const USAGE: &str = "usage: auth-login login [--no-browser | --device] | token | status | logout

environment: AUTH_ISSUER, AUTH_CLIENT_ID (required); AUTH_CLIENT_SECRET, AUTH_SCOPE
(default \"openid offline_access\"), AUTH_TOKEN_FILE, AUTH_REDIRECT_PORT (default 48080)";

const DEFAULT_SCOPE: &str = "openid offline_access";

/// A failure: the message for standard error and the exit status.
struct Failure(String, u8);

fn fail(message: impl Into<String>) -> Failure {
    Failure(message.into(), 1)
}

enum Command {
    Login { browser: bool, device: bool },
    Token,
    Status,
    Logout,
}

fn parse_args() -> Result<Command, Failure> {
    use lexopt::prelude::*;
    let usage = |m: String| Failure(format!("{m}\n{USAGE}"), 2);
    let mut parser = lexopt::Parser::from_env();
    let mut command = None;
    let mut browser = true;
    let mut device = false;
    while let Some(arg) = parser.next().map_err(|e| usage(e.to_string()))? {
        match arg {
            Long("no-browser") if matches!(command, Some("login")) => browser = false,
            Long("device") if matches!(command, Some("login")) => device = true,
            Short('h') | Long("help") => return Err(Failure(USAGE.into(), 0)),
            Value(value) if command.is_none() => {
                let value = value.string().map_err(|e| usage(e.to_string()))?;
                command = Some(match value.as_str() {
                    "login" => "login",
                    "token" => "token",
                    "status" => "status",
                    "logout" => "logout",
                    other => return Err(usage(format!("unknown command {other:?}"))),
                });
            }
            other => return Err(usage(other.unexpected().to_string())),
        }
    }
    Ok(match command {
        Some("login") => Command::Login { browser, device },
        Some("token") => Command::Token,
        Some("status") => Command::Status,
        Some("logout") => Command::Logout,
        _ => return Err(usage("no command".into())),
    })
}

/// The configuration from the environment.
struct Config {
    issuer: String,
    client_id: String,
    secret: Option<String>,
    scope: String,
    port: u16,
    file: TokenFile,
}

fn var(name: &str) -> Result<Option<String>, Failure> {
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(fail(format!("{name} is not UTF-8"))),
    }
}

fn required(name: &str) -> Result<String, Failure> {
    var(name)?.ok_or_else(|| fail(format!("{name} is not set\n{USAGE}")))
}

impl Config {
    fn from_env() -> Result<Self, Failure> {
        let port = match var("AUTH_REDIRECT_PORT")? {
            None => DEFAULT_REDIRECT_PORT,
            Some(port) => port
                .trim()
                .parse()
                .map_err(|_| fail("AUTH_REDIRECT_PORT is not a port number (0-65535)"))?,
        };
        Ok(Self {
            issuer: required("AUTH_ISSUER")?,
            client_id: required("AUTH_CLIENT_ID")?,
            secret: var("AUTH_CLIENT_SECRET")?,
            scope: var("AUTH_SCOPE")?.unwrap_or_else(|| DEFAULT_SCOPE.into()),
            port,
            file: TokenFile::from_env().ok_or_else(|| {
                fail("no configuration directory (HOME, XDG_CONFIG_HOME): set AUTH_TOKEN_FILE")
            })?,
        })
    }

    /// The session in the file, refused when it is another issuer's or client's.
    fn session(&self) -> Result<Session, Failure> {
        let session = self
            .file
            .load()
            .map_err(|e| fail(format!("cannot read the token file: {e}")))?
            .ok_or_else(|| {
                fail(format!(
                    "not logged in (no session in {}): run `auth-login login`",
                    self.file.path().display()
                ))
            })?;
        if session.issuer() != self.issuer || session.client_id() != self.client_id {
            return Err(fail(format!(
                "the token file holds a session of {} for client {}, not of AUTH_ISSUER / AUTH_CLIENT_ID: run `auth-login logout` then `auth-login login`",
                session.issuer(),
                session.client_id()
            )));
        }
        Ok(session)
    }
}

async fn login(config: &Config, browser: bool) -> Result<(), Failure> {
    let mut login = AuthorizationCodeLogin::new(&config.issuer, &config.client_id)
        .map_err(|e| fail(e.to_string()))?
        .scope(&config.scope)
        .redirect_port(config.port);
    if let Some(secret) = &config.secret {
        login = login.client_secret(secret.as_str(), ClientAuth::Basic);
    }
    let pending = login.start().await.map_err(|e| fail(e.to_string()))?;
    eprintln!("Open this URL in a browser to log in:");
    eprintln!("{}", pending.authorization_url());
    if browser && open_browser(pending.authorization_url()) {
        eprintln!("(a browser was opened)");
    }
    eprintln!("Waiting for the login at {} ...", pending.redirect_uri());
    let session = pending.finish().await.map_err(|e| fail(e.to_string()))?;
    store(config, &session)
}

fn store(config: &Config, session: &Session) -> Result<(), Failure> {
    // Under the file's lock, as a refresh writes: never half of two sessions.
    let _lock = config
        .file
        .lock()
        .map_err(|e| fail(format!("cannot lock the token file: {e}")))?;
    config
        .file
        .store(session)
        .map_err(|e| fail(format!("cannot write the token file: {e}")))?;
    eprintln!(
        "Logged in to {}; session in {}",
        session.issuer(),
        config.file.path().display()
    );
    Ok(())
}

async fn device_login(config: &Config) -> Result<(), Failure> {
    let mut login = DeviceLogin::new(&config.issuer, &config.client_id)
        .map_err(|e| fail(e.to_string()))?
        .scope(&config.scope);
    if let Some(secret) = &config.secret {
        login = login.client_secret(secret.as_str(), ClientAuth::Basic);
    }
    let pending = login.start().await.map_err(|e| fail(e.to_string()))?;
    match pending.verification_uri_complete() {
        Some(uri) => {
            eprintln!(
                "Open this URL on any device to log in (code {}):",
                pending.user_code()
            );
            eprintln!("{uri}");
        }
        None => {
            eprintln!(
                "Open this URL on any device and enter the code {}:",
                pending.user_code()
            );
            eprintln!("{}", pending.verification_uri());
        }
    }
    eprintln!("Waiting (at most {} s) ...", pending.expires_in().as_secs());
    let session = pending.finish().await.map_err(|e| fail(e.to_string()))?;
    store(config, &session)
}

async fn token(config: &Config) -> Result<(), Failure> {
    config.session()?;
    let mut grant =
        RefreshTokenGrant::from_issuer(&config.issuer, &config.client_id, config.file.clone())
            .map_err(|e| fail(e.to_string()))?;
    if let Some(secret) = &config.secret {
        grant = grant.client_secret(secret.as_str(), ClientAuth::Basic);
    }
    let tokens = TokenCache::start(grant).await.map_err(|e| {
        if e.is_login_required() {
            fail(format!(
                "the session cannot be refreshed ({}): run `auth-login login`",
                e.reason()
            ))
        } else {
            fail(format!("no token: {e}"))
        }
    })?;
    let token = tokens
        .token()
        .await
        .map_err(|e| fail(format!("no token: {e}")))?;
    let text = std::str::from_utf8(token.secret().expose_secret())
        .map_err(|_| fail("the access token is not text"))?;
    println!("{text}");
    Ok(())
}

fn status(config: &Config) -> Result<(), Failure> {
    let session = config.session()?;
    eprintln!("issuer: {}", session.issuer());
    eprintln!("client: {}", session.client_id());
    if let Some(subject) = session.id().and_then(|id| subject_of(id.expose_secret())) {
        eprintln!("subject: {subject}");
    }
    let left = session.expires_in(SystemTime::now());
    match left {
        Some(left) if !left.is_zero() => {
            eprintln!("access token: expires in {} s", left.as_secs());
        }
        Some(_) => eprintln!("access token: expired"),
        None => eprintln!("access token: expiry unknown"),
    }
    let refreshable = session.refresh().is_some();
    eprintln!(
        "refresh token: {}",
        if refreshable { "present" } else { "none" }
    );
    if left.is_some_and(|l| l.is_zero()) && !refreshable {
        return Err(fail("the session has expired: run `auth-login login`"));
    }
    Ok(())
}

/// The `sub` of an ID token, read for display only (it was checked at login).
fn subject_of(id_token: &[u8]) -> Option<String> {
    use base64::Engine;
    let text = std::str::from_utf8(id_token).ok()?;
    let payload = text.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let subject = claims.get("sub")?.as_str()?;
    // Printable only: the terminal is not the IdP's to drive.
    Some(
        subject
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect(),
    )
}

async fn logout(config: &Config) -> Result<(), Failure> {
    let mut logout = Logout::new(&config.client_id);
    if let Some(secret) = &config.secret {
        logout = logout.client_secret(config.issuer.as_str(), secret.as_str(), ClientAuth::Basic);
    }
    let revocation = logout
        .run(&config.file)
        .await
        .map_err(|e| fail(format!("cannot delete the token file: {e}")))?;
    match &revocation {
        Revocation::Failed(_) => eprintln!("warning: {revocation}"),
        _ => eprintln!("{revocation}"),
    }
    eprintln!("Logged out: {} deleted", config.file.path().display());
    Ok(())
}

async fn run() -> Result<(), Failure> {
    let command = parse_args()?;
    let config = Config::from_env()?;
    match command {
        Command::Login { device: true, .. } => device_login(&config).await,
        Command::Login { browser, .. } => login(&config, browser).await,
        Command::Token => token(&config).await,
        Command::Status => status(&config),
        Command::Logout => logout(&config).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}
