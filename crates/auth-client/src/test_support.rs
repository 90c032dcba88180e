//! Test fixtures shared by the bearer middlewares' tests.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::service_fn;
use tower_service::Service;

use crate::{FnSource, Token};

pub(crate) fn numbered() -> (FnSource, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let source = FnSource::new(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move { Ok(Token::new(format!("t{n}"), Some(Duration::from_secs(3600)))) }
    });
    (source, calls)
}

/// Echoes the Authorization header it saw; answers `status` (with `grpc_status`) to `rejected`.
pub(crate) fn server(
    rejected: &'static str,
    grpc_status: Option<&'static str>,
    seen: Arc<Mutex<Vec<String>>>,
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(move |request: Request<String>| {
        let seen = seen.clone();
        async move {
            let auth = request.headers()[AUTHORIZATION]
                .to_str()
                .unwrap()
                .to_owned();
            assert!(request.headers()[AUTHORIZATION].is_sensitive());
            seen.lock().unwrap().push(auth.clone());
            let mut response = Response::new(request.into_body());
            if auth == rejected {
                match grpc_status {
                    Some(code) => {
                        response
                            .headers_mut()
                            .insert("grpc-status", HeaderValue::from_static(code));
                    }
                    None => *response.status_mut() = StatusCode::UNAUTHORIZED,
                }
            }
            Ok::<_, Infallible>(response)
        }
    })
}
