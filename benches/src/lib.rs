//! Benchmarks of the auth middleware beside its peers: see `BENCHMARKS.md` at the repository
//! root. Everything lives in the bench targets (`benches/checks.rs`, `benches/service.rs`,
//! `benches/server.rs` with `benches/load.sh`); this library is empty so that
//! `cargo test --workspace` never compiles the peers, which are dev-dependencies.
