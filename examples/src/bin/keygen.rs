//! `cargo run --bin keygen`: prints a new API key and the `sha256:` digest to configure
//! instead of it, so the plaintext never has to sit in the server's configuration.

fn main() {
    let key = auth_examples::generate_key();
    let digest = hex::encode(tower_auth_core::sha256_digest(key.as_bytes()));
    println!("key (give to the client):        {key}");
    println!("API_KEYS entry (for the server): sha256:{digest}");
}
