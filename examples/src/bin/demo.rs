//! The demo server: `cargo run --bin demo`. HTTP on `BIND_ADDR` (default 127.0.0.1:8080),
//! gRPC on `GRPC_ADDR` (default 127.0.0.1:50051), both behind one `AuthLayer`.
//!
//! With any auth variable set (`AUTH_MODE`, `API_KEYS`, `API_KEYS_FILE`, `OIDC_CONFIG`,
//! `HMAC_SECRET`) it is configured by `AuthLayer::from_env()`. With none it generates two API
//! keys and prints `curl` and `grpcurl` lines that show a 200, a 401 and a 403.

use std::net::SocketAddr;

use auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
use auth_examples::grpc::{grpc_auth, serve_grpc};
use auth_examples::{AUTH_VARIABLES, generate_key, router};
use auth_layer::AuthLayer;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let addr = address("BIND_ADDR", "127.0.0.1:8080")?;
    let grpc_addr = address("GRPC_ADDR", "127.0.0.1:50051")?;
    let configured = AUTH_VARIABLES.iter().any(|v| std::env::var_os(v).is_some());
    let (auth, banner) = if configured {
        (AuthLayer::from_env()?, None)
    } else {
        demo_layer()?
    };
    // One AuthLayer value for both surfaces; the gRPC rules only touch gRPC method paths.
    let auth = grpc_auth(auth);

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr).await?;
    let (addr, grpc_addr) = (listener.local_addr()?, grpc_listener.local_addr()?);
    tracing::info!(%addr, %grpc_addr, mode = %auth.mode(), "demo listening");
    if let Some(banner) = banner {
        let banner = banner.replace("{http}", &addr.to_string());
        println!("{}", banner.replace("{grpc}", &grpc_addr.to_string()));
    }

    let (stop, stopped) = watch::channel(());
    tokio::spawn(async move {
        shutdown().await;
        let _ = stop.send(());
    });
    let http =
        axum::serve(listener, router(auth.clone())).with_graceful_shutdown(until(stopped.clone()));
    let grpc = serve_grpc(auth, grpc_listener, until(stopped));
    let (http, grpc) = tokio::join!(http, grpc);
    http?;
    grpc?;
    tracing::info!("demo stopped");
    Ok(())
}

fn address(variable: &str, default: &str) -> Result<SocketAddr, String> {
    let value = std::env::var(variable).unwrap_or_else(|_| default.to_owned());
    value
        .parse()
        .map_err(|_| format!("{variable}: `{value}` is not an address such as {default}"))
}

/// Two fresh keys: `demo` (no roles) and `demo-admin` (role `admin`), and the lines to try them.
fn demo_layer() -> Result<(AuthLayer, Option<String>), auth_core::ConfigError> {
    let (user, admin) = (generate_key(), generate_key());
    let keys = format!(
        r#"[{{"name":"demo","key":"{user}"}},{{"name":"demo-admin","key":"{admin}","roles":["admin"]}}]"#
    );
    let set = ApiKeySet::parse("demo keys", &keys, &Admins::default())?;
    let banner = [
        "".to_owned(),
        "No auth variables are set, so the demo made two API keys for this run:".to_owned(),
        format!("  demo        {user}"),
        format!("  demo-admin  {admin}   (role admin)"),
        "".to_owned(),
        "HTTP:".to_owned(),
        format!("  curl -i http://{{http}}/whoami -H 'X-API-Key: {user}'            # 200"),
        format!("  curl -i http://{{http}}/whoami -H 'Authorization: Bearer {user}' # 200"),
        "  curl -i http://{http}/whoami                                  # 401 WWW-Authenticate: Bearer realm=\"api\"".to_owned(),
        "  curl -i http://{http}/whoami -H 'X-API-Key: wrong'            # 401 invalid_token".to_owned(),
        format!("  curl -i http://{{http}}/admin -H 'X-API-Key: {user}'             # 403 insufficient_scope"),
        format!("  curl -i http://{{http}}/admin -H 'X-API-Key: {admin}'            # 200"),
        "  curl -i http://{http}/health                                  # 200, public".to_owned(),
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
    Ok((AuthLayer::new(ApiKeyAuthenticator::new(set)), Some(banner)))
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
