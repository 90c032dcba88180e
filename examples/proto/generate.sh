#!/usr/bin/env bash
# Regenerates examples/src/pb/ from demo.proto. Needs protoc (Debian: protobuf-compiler);
# the build itself does not, because the output is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "demo-proto-gen"
version = "0.0.0"
edition = "2024"
publish = false
[dependencies]
tonic-prost-build = "0.14"
TOML
cat > "$work/src/main.rs" <<RS
fn main() {
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .out_dir("$here/../src/pb")
        .file_descriptor_set_path("$here/../src/pb/demo_descriptor.bin")
        .compile_protos(&["$here/demo.proto"], &["$here"])
        .unwrap();
}
RS
mkdir -p "$here/../src/pb"
cargo run --quiet --manifest-path "$work/Cargo.toml"
