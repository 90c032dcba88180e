//! The demo server: `cargo run --bin demo`.
//!
//! With any auth variable set (`AUTH_MODE`, `API_KEYS`, `API_KEYS_FILE`, `OIDC_CONFIG`,
//! `HMAC_SECRET`) it is configured by `AuthLayer::from_env()`. With none it generates two API
//! keys and prints `curl` lines that show a 200, a 401 and a 403.

use std::net::SocketAddr;

use auth_core::{Admins, ApiKeyAuthenticator, ApiKeySet};
use auth_examples::{AUTH_VARIABLES, generate_key, router};
use auth_layer::AuthLayer;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let addr: SocketAddr = std::env::var("BIND_ADDR")
        .as_deref()
        .unwrap_or("127.0.0.1:8080")
        .parse()?;
    let configured = AUTH_VARIABLES.iter().any(|v| std::env::var_os(v).is_some());
    let (auth, banner) = if configured {
        (AuthLayer::from_env()?, None)
    } else {
        demo_layer()?
    };

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, mode = %auth.mode(), "demo listening");
    if let Some(banner) = banner {
        println!("{}", banner.replace("{addr}", &addr.to_string()));
    }
    axum::serve(listener, router(auth))
        .with_graceful_shutdown(shutdown())
        .await?;
    tracing::info!("demo stopped");
    Ok(())
}

/// Two fresh keys: `demo` (no roles) and `demo-admin` (role `admin`).
fn demo_layer() -> Result<(AuthLayer, Option<String>), auth_core::ConfigError> {
    let (user, admin) = (generate_key(), generate_key());
    let keys = format!(
        r#"[{{"name":"demo","key":"{user}"}},{{"name":"demo-admin","key":"{admin}","roles":["admin"]}}]"#
    );
    let set = ApiKeySet::parse("demo keys", &keys, &Admins::default())?;
    let banner = format!(
        "\nNo auth variables are set, so the demo made two API keys for this run:\n\
         \x20 demo        {user}\n\
         \x20 demo-admin  {admin}   (role admin)\n\n\
         Try:\n\
         \x20 curl -i http://{{addr}}/whoami -H 'X-API-Key: {user}'          # 200\n\
         \x20 curl -i http://{{addr}}/whoami -H 'Authorization: Bearer {user}'  # 200\n\
         \x20 curl -i http://{{addr}}/whoami                                  # 401, WWW-Authenticate: Bearer realm=\"api\"\n\
         \x20 curl -i http://{{addr}}/whoami -H 'X-API-Key: wrong'             # 401 invalid_token\n\
         \x20 curl -i http://{{addr}}/admin -H 'X-API-Key: {user}'            # 403 insufficient_scope\n\
         \x20 curl -i http://{{addr}}/admin -H 'X-API-Key: {admin}'           # 200\n\
         \x20 curl -i http://{{addr}}/health                                  # 200, public\n"
    );
    Ok((AuthLayer::new(ApiKeyAuthenticator::new(set)), Some(banner)))
}

async fn shutdown() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::error!(%error, "cannot listen for Ctrl-C; stop the demo with a signal");
        std::future::pending::<()>().await;
    }
    tracing::info!("Ctrl-C received, shutting down");
}
