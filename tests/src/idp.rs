//! The in-process test identity provider: real discovery and JWKS over HTTP on 127.0.0.1:0.
