//! Calls the demo (`cargo run --bin demo`) over HTTP and over gRPC with every token source
//! that is configured, each through `tower_auth_client`'s `Bearer` service:
//!
//! | Source | Variables (values from the demo's banner, or your IdP) |
//! |---|---|
//! | `StaticToken` | `AUTH_STATIC_TOKEN`: an API key or a role token |
//! | `TokenExchange` | `AUTH_EXCHANGE_CLIENT_ID`, `AUTH_EXCHANGE_CREDENTIAL` (`demo-client` and its secret), exchanged at `http://$DEMO_HTTP/auth/token` |
//! | `FnSource` | `AUTH_TOKEN_FILE`: a file holding a token, read afresh at each fetch |
//! | `ClientCredentials` | `AUTH_CLIENT_ID`, `AUTH_CLIENT_SECRET`, `AUTH_TOKEN_URL` or `AUTH_ISSUER`, optional `AUTH_SCOPE`, `AUTH_AUDIENCE` |
//!
//! `DEMO_HTTP` (default 127.0.0.1:8080) and `DEMO_GRPC` (default 127.0.0.1:50051) locate the
//! demo. The HTTP call goes over a tonic `Channel` too (the demo speaks HTTP/2 without TLS on
//! its HTTP port as well); a hyper client takes the same `Bearer` service.

use std::time::Duration;

use auth_examples::grpc::pb::WhoAmIRequest;
use auth_examples::grpc::pb::demo_client::DemoClient;
use tonic::codegen::{Body as _, Service as _, http};
use tonic::transport::Channel;
use tower_auth_client::{
    Bearer, FnSource, StaticToken, Token, TokenCache, TokenError, TokenExchange,
};
use tower_auth_core::Secret;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let http_addr = env("DEMO_HTTP").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let grpc_addr = env("DEMO_GRPC").unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let sources = sources(&http_addr)?;
    if sources.is_empty() {
        eprintln!(
            "No token source is configured: set AUTH_STATIC_TOKEN, AUTH_EXCHANGE_CLIENT_ID and \
             AUTH_EXCHANGE_CREDENTIAL, AUTH_TOKEN_FILE, or AUTH_CLIENT_ID and its companions \
             (see the top of examples/src/bin/call-demo.rs)."
        );
        std::process::exit(2);
    }
    let http_channel = Channel::from_shared(format!("http://{http_addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let grpc_channel = Channel::from_shared(format!("http://{grpc_addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;

    let mut failed = false;
    for (name, tokens) in sources {
        println!("{name}:");
        // Fail fast: a rejected credential or an unreachable endpoint shows here, once.
        if let Err(error) = tokens.token().await {
            println!("  no token: {error}");
            failed = true;
            continue;
        }
        match whoami_http(
            Bearer::new(http_channel.clone(), tokens.clone()),
            &http_addr,
        )
        .await
        {
            Ok((status, body)) => println!("  HTTP GET /whoami      -> {status} {body}"),
            Err(error) => {
                println!("  HTTP GET /whoami      -> error: {error}");
                failed = true;
            }
        }
        let mut demo = DemoClient::new(Bearer::new(grpc_channel.clone(), tokens));
        match demo.who_am_i(WhoAmIRequest {}).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                println!(
                    "  gRPC demo.v1.Demo/WhoAmI -> OK subject={} method={} roles={:?}",
                    reply.subject, reply.method, reply.roles
                );
            }
            Err(status) => {
                println!(
                    "  gRPC demo.v1.Demo/WhoAmI -> {:?}: {}",
                    status.code(),
                    status.message()
                );
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A token cache for every source the environment configures, with a name to print.
fn sources(http_addr: &str) -> Result<Vec<(&'static str, TokenCache)>, BoxError> {
    let mut sources = Vec::new();
    if env("AUTH_STATIC_TOKEN").is_some() {
        let source = StaticToken::from_env()?;
        sources.push(("StaticToken (AUTH_STATIC_TOKEN)", TokenCache::new(source)));
    }
    if let (Some(client_id), Some(credential)) = (
        env("AUTH_EXCHANGE_CLIENT_ID"),
        env("AUTH_EXCHANGE_CREDENTIAL"),
    ) {
        let url = format!("http://{http_addr}/auth/token");
        let source = TokenExchange::new(&url, client_id, Secret::from(credential))?;
        sources.push(("TokenExchange (POST /auth/token)", TokenCache::new(source)));
    }
    if let Some(path) = env("AUTH_TOKEN_FILE") {
        // Read at each fetch, so that a token rotated on disk is picked up at the next refresh.
        let source = FnSource::new(move || {
            let path = path.clone();
            async move {
                let text = std::fs::read_to_string(&path).map_err(TokenError::other)?;
                Ok(Token::new(text.trim().to_owned(), None))
            }
        });
        sources.push(("FnSource (AUTH_TOKEN_FILE)", TokenCache::new(source)));
    }
    if env("AUTH_CLIENT_ID").is_some() {
        // The client credentials variables alone (AUTH_STATIC_TOKEN was used above).
        let tokens = TokenCache::from_lookup("", |name| {
            (name != "AUTH_STATIC_TOKEN").then(|| env(name)).flatten()
        })?;
        sources.push(("ClientCredentials (AUTH_CLIENT_ID)", tokens));
    }
    Ok(sources)
}

/// `GET /whoami` through `client`; the status and the body.
async fn whoami_http(
    mut client: Bearer<Channel>,
    http_addr: &str,
) -> Result<(http::StatusCode, String), BoxError> {
    let request =
        http::Request::get(format!("http://{http_addr}/whoami")).body(tonic::body::Body::empty())?;
    std::future::poll_fn(|cx| client.poll_ready(cx)).await?;
    let response = client.call(request).await?;
    let status = response.status();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame?.into_data() {
            bytes.extend_from_slice(&data);
        }
    }
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
