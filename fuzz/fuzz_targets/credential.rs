//! Credential extraction from arbitrary header maps: never a panic, and a credential found is
//! always, byte for byte, the tail of one header the client sent (nothing is made up,
//! nothing is decoded), and the same headers always give the same answer.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use tower_auth_core::{Credential, CredentialExtractor};

const NAMES: [&str; 4] = ["authorization", "x-api-key", "cookie", "x-other"];

fuzz_target!(|headers: Vec<(u8, Vec<u8>)>| {
    let mut map = HeaderMap::new();
    for (name, value) in &headers {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let name = HeaderName::from_static(NAMES[usize::from(*name) % NAMES.len()]);
        map.append(name, value);
    }
    let extractor = CredentialExtractor::default();
    let first = extractor.extract(&map);
    let again = extractor.extract(&map);
    assert_eq!(first.is_ok(), again.is_ok());
    if let Ok(Some(credential)) = first {
        let (header, text) = match credential {
            Credential::Bearer(t) => ("authorization", t),
            Credential::ApiKey(t) => ("x-api-key", t),
        };
        assert!(!text.is_empty());
        assert!(
            map.get_all(header)
                .iter()
                .any(|v| v.as_bytes().ends_with(text.as_bytes())),
            "a credential that no header carries"
        );
    }
});
