//! The demo's gRPC side: tonic-health, reflection, and `demo.v1.Demo`, behind the same
//! `AuthLayer` value as the HTTP routes.

use std::net::SocketAddr;

use tonic::{Request, Response, Status};
use tower_auth::AuthLayer;
use tower_auth::grpc::RequestIdentity;

/// Code generated from `examples/proto/demo.proto` (see `examples/proto/generate.sh`).
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod pb {
    include!("pb/demo.v1.rs");

    /// The encoded descriptors, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("pb/demo_descriptor.bin");
}

use pb::demo_server::{Demo, DemoServer};
use pb::{AdminPingRequest, AdminPingResponse, WhoAmIRequest, WhoAmIResponse};

/// The full method that needs role `admin`.
pub const ADMIN_PING: &str = "/demo.v1.Demo/AdminPing";

/// `demo.v1.Demo`: `WhoAmI` for anyone authenticated, `AdminPing` for role `admin`
/// (enforced by the layer's rule for [`ADMIN_PING`], not by the handler).
#[derive(Debug, Default)]
pub struct DemoService;

#[tonic::async_trait]
impl Demo for DemoService {
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let identity = request.authenticated()?;
        Ok(Response::new(WhoAmIResponse {
            subject: identity.subject().to_owned(),
            method: identity.method().kind().to_owned(),
            roles: identity.roles().iter().cloned().collect(),
        }))
    }

    async fn admin_ping(
        &self,
        request: Request<AdminPingRequest>,
    ) -> Result<Response<AdminPingResponse>, Status> {
        let identity = request.authenticated()?;
        Ok(Response::new(AdminPingResponse {
            message: format!("pong, {}", identity.subject()),
        }))
    }
}

/// The demo's gRPC rules on top of `auth`: `AdminPing` needs `admin`, and reflection is public
/// so that `grpcurl` can discover services without a credential.
pub fn grpc_auth(auth: AuthLayer) -> AuthLayer {
    auth.into_builder()
        .require_any(ADMIN_PING, ["admin"])
        .exempt("/grpc.reflection.v1.ServerReflection/*")
        .exempt("/grpc.reflection.v1alpha.ServerReflection/*")
        .build()
        .expect("the demo's gRPC rules are constants, checked by the tests")
}

/// Serves the gRPC side on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    auth: AuthLayer,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<DemoServer<DemoService>>().await;
    // Both reflection versions: grpcurl 1.8 asks v1alpha, newer clients v1.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .expect("the committed descriptor sets are valid");
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .expect("the committed descriptor sets are valid");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .layer(auth)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(DemoServer::new(DemoService))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Binds `addr` for [`serve_grpc`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
