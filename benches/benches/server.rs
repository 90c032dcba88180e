//! Not a benchmark: the hello-world of one variant served on 127.0.0.1 until killed, for
//! `benches/load.sh` (a bench target only so that it may use the peers, which are
//! dev-dependencies).
//!
//! `server <variant>` prints `HEADER <name>: <value>` (or `HEADER none`) and then
//! `LISTEN 127.0.0.1:<port>`, and serves. Run by `cargo bench` without a variant, it says so
//! and exits.

#[allow(dead_code)] // each bench target uses part of the fixtures
mod support;

use support::Variant;

fn main() {
    let Some(variant) = std::env::args()
        .nth(1)
        .as_deref()
        .and_then(Variant::from_name)
    else {
        let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
        eprintln!(
            "server: a load-test target, run by benches/load.sh: server <{}>",
            names.join("|")
        );
        return;
    };
    // The runtime every variant gets: tokio's default, one worker per core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let keys = support::keys();
        let jwks_url = support::serve_jwks(&keys).await;
        let app = support::app(variant, &jwks_url, &keys).await;
        match &app.credential {
            Some((name, value)) => println!("HEADER {name}: {}", value.to_str().unwrap()),
            None => println!("HEADER none"),
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("LISTEN {}", listener.local_addr().unwrap());
        if app.peer.is_some() {
            // A variant that reads the peer address gets it from the connection, as a real
            // server gives it.
            let service = app
                .router
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, service).await.unwrap();
        } else {
            axum::serve(listener, app.router).await.unwrap();
        }
    });
}
