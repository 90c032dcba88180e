//! The demo server: `cargo run --bin demo`. HTTP on `BIND_ADDR` (default 127.0.0.1:8080),
//! gRPC on `GRPC_ADDR` (default 127.0.0.1:50051), both behind one `AuthLayer`.
//!
//! With any `AUTH_*`, `API_KEY*`, `OIDC_*` or `HMAC_*` variable set, misspelt ones included,
//! it is configured by `AuthConfig::from_env()`, and refuses to start when that configures no
//! method (unless `AUTH_MODE=none`): an `OIDC_CONFIG` issuer with `introspection` then
//! validates opaque access tokens (RFC 7662), token clients with `"introspect"` exchange
//! them, and `HTTPS_PROXY` / `NO_PROXY` apply to every IdP request. With none set, and only on loopback addresses, it
//! generates two API keys, an HMAC secret, a token client and an in-process OpenID issuer,
//! and prints to the terminal (stderr, not the log on stdout) `curl` and `grpcurl` lines that
//! show a 200, a 401 and a 403, a role token for `/metrics`, the token exchange and the
//! revocation of its tokens.
//!
//! From the environment, `API_KEY_BASIC=true`, `AUTH_COOKIE`, `AUTH_RESOURCE` and
//! `AUTH_PROBLEM_JSON=true` turn on Basic passwords, cookie tokens, RFC 9728 metadata and
//! RFC 9457 answers (README, "Basic passwords, cookies, MCP discovery, your own answers").

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_examples::{METRICS_ROLES, Startup, generate_key, install_prometheus, router, startup};
use tokio::sync::watch;
use tower_auth::{AuthConfig, AuthLayer};
use tower_auth_hmac::HmacConfig;
use tower_auth_oidc::dev_issuer::DevIssuer;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    // Before the layer is built, so that the first key fetches are counted too.
    install_prometheus()?;

    let addr = address("BIND_ADDR", "127.0.0.1:8080")?;
    let grpc_addr = address("GRPC_ADDR", "127.0.0.1:50051")?;
    let names = std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned());
    let mut listen = vec![("BIND_ADDR", addr), ("GRPC_ADDR", grpc_addr)];
    if std::env::var_os("TLS_ADDR").is_some_and(|v| !v.is_empty()) {
        listen.push(("TLS_ADDR", address("TLS_ADDR", "127.0.0.1:8443")?));
    }
    let startup = startup(names, &listen)?;
    // Kept alive for the whole run: the no-variables mode's in-process OpenID provider.
    let mut dev_issuer = None;
    let (auth, banner) = match startup {
        Startup::FromEnv(variables) => {
            let config = AuthConfig::from_env()?;
            let off = std::env::var("AUTH_MODE").is_ok_and(|mode| mode.trim() == "none");
            if config.authenticators().is_empty() && !off {
                return Err(format!(
                    "{} set, so the demo makes no demo secrets and is configured from the \
                     environment, which configures no authentication method: set API_KEYS, \
                     API_KEYS_FILE, OIDC_CONFIG or HMAC_SECRET (see the README), AUTH_MODE=none \
                     to serve without authentication, or unset them all for the demo",
                    variables.join(", ")
                )
                .into());
            }
            tracing::info!(?variables, "configured from the environment");
            (config.build().await?, None)
        }
        Startup::Demo => {
            let issuer = DevIssuer::start().await?;
            let demo = demo_layer(&issuer).await?;
            dev_issuer = Some(issuer);
            demo
        }
    };
    // One AuthLayer value for both surfaces; the gRPC rules only touch gRPC method paths.
    let auth = grpc_auth(auth);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr).await?;
    let (addr, grpc_addr) = (listener.local_addr()?, grpc_listener.local_addr()?);
    tracing::info!(%addr, %grpc_addr, mode = %auth.mode(), "demo listening");
    if let Some(banner) = banner {
        let banner = banner.replace("{http}", &addr.to_string());
        // The terminal, not the log: demo secrets never go to a log collector.
        eprintln!("{}", banner.replace("{grpc}", &grpc_addr.to_string()));
    }

    let (stop, stopped) = watch::channel(());
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop.send(());
    });
    // With the peer address in each request: the token exchange counts failures per source.
    let app = router(auth.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let http = axum::serve(listener, app).with_graceful_shutdown(until(stopped.clone()));
    let https = serve_https(auth.clone(), until(stopped.clone())).await?;
    let grpc = serve_grpc(auth, grpc_listener, until(stopped));
    let (http, grpc, https) = tokio::join!(http, grpc, https);
    http?;
    grpc?;
    https?;
    drop(dev_issuer);
    tracing::info!("demo stopped");
    Ok(())
}

/// HTTPS beside HTTP when `TLS_ADDR`, `TLS_CERT_FILE` and `TLS_KEY_FILE` are set, asking for a
/// client certificate signed by `TLS_CLIENT_CA_FILE` when that is set (certificate-bound
/// tokens, RFC 8705). Setting some of the first three but not all is an error.
async fn serve_https(
    auth: AuthLayer,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<
    std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
    Box<dyn std::error::Error>,
> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let (addr, cert, key) = match (var("TLS_ADDR"), var("TLS_CERT_FILE"), var("TLS_KEY_FILE")) {
        (None, None, None) => return Ok(Box::pin(async { Ok(()) })),
        (Some(_), Some(cert), Some(key)) => (address("TLS_ADDR", "127.0.0.1:8443")?, cert, key),
        _ => {
            return Err(
                "TLS_ADDR, TLS_CERT_FILE and TLS_KEY_FILE go together: set all three".into(),
            );
        }
    };
    let client_ca = var("TLS_CLIENT_CA_FILE");
    let config = auth_examples::tls_server_config(
        cert.as_ref(),
        key.as_ref(),
        client_ca.as_deref().map(AsRef::as_ref),
    )?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(
        https = %listener.local_addr()?,
        client_certificates = client_ca.is_some(),
        "demo listening for HTTPS"
    );
    Ok(Box::pin(auth_examples::serve_tls(
        listener, config, auth, stop,
    )))
}

fn address(variable: &str, default: &str) -> Result<SocketAddr, String> {
    let value = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    value
        .parse()
        .map_err(|_| format!("{variable}: `{value}` is not an address such as {default}"))
}

/// Fresh secrets for this run, configured through the same code path as the environment:
/// API keys `demo` (no roles) and `demo-admin` (role `admin`), an HMAC secret for role
/// tokens, a token-exchange client `demo-client` that gets both metrics roles, and the
/// in-process `issuer` as the OIDC issuer for audience `demo-api`.
async fn demo_layer(
    issuer: &DevIssuer,
) -> Result<(AuthLayer, Option<String>), Box<dyn std::error::Error>> {
    let (user, admin, hmac_secret, client_secret) = (
        generate_key(),
        generate_key(),
        generate_key(),
        generate_key(),
    );
    let vars = [
        (
            "API_KEYS",
            format!(
                r#"[{{"name":"demo","key":"{user}"}},{{"name":"demo-admin","key":"{admin}","roles":["admin"]}}]"#
            ),
        ),
        ("HMAC_SECRET", hmac_secret.clone()),
        (
            "OIDC_CONFIG",
            format!(
                r#"{{"issuers":[{{"issuer":"{}","audience":"demo-api"}}]}}"#,
                issuer.issuer()
            ),
        ),
        (
            "AUTH_TOKEN_CLIENTS",
            format!(
                r#"[{{"client_id":"demo-client","secret_sha256":"{}","roles":["{}","{}"]}}]"#,
                hex::encode(tower_auth_core::sha256_digest(client_secret.as_bytes())),
                METRICS_ROLES[0],
                METRICS_ROLES[1]
            ),
        ),
    ];
    let get = |name: &str| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    };
    let auth = AuthConfig::from_lookup("", get)?.build().await?;
    let alice = issuer.mint(
        "alice",
        "demo-api",
        &["orders:read"],
        Duration::from_secs(3600),
    );
    let metrics_token = HmacConfig::builder(hmac_secret).build()?.mint(
        "demo-metrics",
        METRICS_ROLES,
        Duration::from_secs(3600),
        None,
    )?;
    let banner = [
        "".to_owned(),
        "No AUTH_*, API_KEY*, OIDC_* or HMAC_* variable is set, so the demo made secrets for this run".to_owned(),
        "(shown here on the terminal, never in the log):".to_owned(),
        format!("  API key demo        {user}"),
        format!("  API key demo-admin  {admin}   (role admin)"),
        format!("  role token (1 h, roles {} {})", METRICS_ROLES[0], METRICS_ROLES[1]),
        format!("      {metrics_token}"),
        format!("  token client demo-client, secret {client_secret}"),
        format!("  OIDC access token for alice (1 h, scope orders:read) from the in-process issuer {}", issuer.issuer()),
        format!("      {alice}"),
        "".to_owned(),
        "HTTP:".to_owned(),
        format!("  curl -i http://{{http}}/whoami -H 'X-API-Key: {user}'            # 200"),
        format!("  curl -i http://{{http}}/whoami -H 'Authorization: Bearer {user}' # 200"),
        "  curl -i http://{http}/whoami                                  # 401 WWW-Authenticate: Bearer realm=\"api\"".to_owned(),
        "  curl -i http://{http}/whoami -H 'X-API-Key: wrong'            # 401 invalid_token".to_owned(),
        format!("  curl -i http://{{http}}/admin -H 'X-API-Key: {user}'             # 403 insufficient_scope"),
        format!("  curl -i http://{{http}}/admin -H 'X-API-Key: {admin}'            # 200"),
        format!("  curl -s http://{{http}}/metrics -H 'Authorization: Bearer {metrics_token}'  # 200, the auth_* metrics (Prometheus text)"),
        format!("  curl -i http://{{http}}/whoami -H 'Authorization: Bearer {alice}'  # 200, method oidc"),
        format!("  curl -i http://{{http}}/admin -H 'Authorization: Bearer {alice}'   # 403, alice is no admin"),
        format!("  curl -i http://{{http}}/metrics -H 'X-API-Key: {user}'           # 403, the key lacks the roles"),
        "  curl -i http://{http}/health                                  # 200, public".to_owned(),
        "  curl -i http://{http}/ready                                   # 200 once the OIDC issuer's keys are loaded, public".to_owned(),
        "".to_owned(),
        "Exchange the client secret for a role token, then use it:".to_owned(),
        format!(
            "  curl -s http://{{http}}/auth/token -H 'content-type: application/json' -d '{{\"client_id\":\"demo-client\",\"credential\":\"{client_secret}\"}}'"
        ),
        "Revoke a token (RFC 7009) as the client it was issued to, or as an admin; the layer refuses it from then on:".to_owned(),
        format!("  curl -i http://{{http}}/auth/revoke -u 'demo-client:{client_secret}' -d 'token=TOKEN'   # 200"),
        format!("  curl -i http://{{http}}/auth/revoke -H 'X-API-Key: {admin}' -d 'token=TOKEN'   # 200, any role token"),
        "".to_owned(),
        "gRPC:".to_owned(),
        "  grpcurl -plaintext {grpc} grpc.health.v1.Health/Check                            # SERVING, public".to_owned(),
        "  grpcurl -plaintext {grpc} demo.v1.Demo/WhoAmI                                    # Unauthenticated".to_owned(),
        format!("  grpcurl -plaintext -H 'x-api-key: {user}' {{grpc}} demo.v1.Demo/WhoAmI     # OK"),
        format!("  grpcurl -plaintext -H 'x-api-key: {user}' {{grpc}} demo.v1.Demo/AdminPing  # PermissionDenied"),
        format!("  grpcurl -plaintext -H 'x-api-key: {admin}' {{grpc}} demo.v1.Demo/AdminPing # OK"),
        "".to_owned(),
    ]
    .join("\n");
    Ok((auth, Some(banner)))
}

async fn until(mut stopped: watch::Receiver<()>) {
    let _ = stopped.changed().await;
}

async fn shutdown() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C; stop the demo with a signal");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received, shutting down");
}
