//! Server-issued DPoP nonces (RFC 9449 sections 8 and 9): for an issuer with
//! `"dpop_nonce": true`, a proof must carry a `nonce` claim this server (or any replica that
//! shares its key) issued in the current or the previous time slot.
//!
//! A nonce is `<slot>.<MAC>`: the slot number (Unix time divided by the slot length) and an
//! HMAC-SHA256 over it with the nonce key, so any replica with the same key checks it without
//! shared state. Without a configured key each process draws a random one: its nonces are
//! good on that process only (a client moved to another replica, or served after a restart,
//! is asked for a nonce again, one extra round trip each time).

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey};
use rand::Rng;
use tower_auth_core::{AuthError, Secret};

/// How long one slot lasts, unless configured: a nonce is good for 5 to 10 minutes.
pub(crate) const DEFAULT_SLOT: Duration = Duration::from_secs(300);

/// A longer `nonce` claim is refused unread: ours are under 70 bytes.
const MAX_NONCE_LEN: usize = 128;

/// The log reasons of a proof refused for its nonce; each is answered with
/// `error="use_dpop_nonce"` and a fresh `DPoP-Nonce`.
pub(crate) const NONCE_MISSING: &str = "dpop_nonce_missing";
pub(crate) const NONCE_STALE: &str = "dpop_nonce_stale";
pub(crate) const NONCE_INVALID: &str = "dpop_nonce_invalid";

/// Whether `error` refused a proof for its nonce: the answer is a `use_dpop_nonce` challenge
/// with a fresh `DPoP-Nonce` (see [`DpopVerifier::nonce`](crate::DpopVerifier::nonce)).
pub fn asks_for_nonce(error: &AuthError) -> bool {
    matches!(error.reason(), NONCE_MISSING | NONCE_STALE | NONCE_INVALID)
}

/// Whether a refusal for its nonce is the protocol's ordinary round trip (no nonce yet, or
/// one from the previous-but-one slot) rather than a forged or garbled nonce.
pub fn is_nonce_round_trip(error: &AuthError) -> bool {
    matches!(error.reason(), NONCE_MISSING | NONCE_STALE)
}

/// Issues and checks nonces.
pub(crate) struct Nonces {
    key: EncodingKey,
    slot: u64,
    /// Whether the key came from the configuration (replicas agree) or was drawn at random.
    pub(crate) shared: bool,
}

impl Nonces {
    /// Nonces under `key`, or a random key when `None`; slots of `slot` (at least 1 s).
    pub(crate) fn new(key: Option<&Secret>, slot: Duration) -> Self {
        let (key, shared) = match key {
            Some(key) => (EncodingKey::from_secret(key.expose_secret()), true),
            None => {
                let mut bytes = [0u8; 32];
                rand::rng().fill(&mut bytes);
                (EncodingKey::from_secret(&bytes), false)
            }
        };
        Self {
            key,
            slot: slot.as_secs().max(1),
            shared,
        }
    }

    /// The nonce of the slot `now` falls in.
    pub(crate) fn issue(&self, now: u64) -> String {
        let slot = now / self.slot;
        format!("{slot}.{}", self.mac(slot))
    }

    fn mac(&self, slot: u64) -> String {
        let input = format!("tower-auth dpop nonce {slot}");
        // HMAC cannot fail with any key length; an empty MAC would match nothing sent.
        jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, Algorithm::HS256)
            .unwrap_or_default()
    }

    /// Checks a proof's `nonce` claim against the current, the previous and the next slot.
    pub(crate) fn check(
        &self,
        nonce: Option<&serde_json::Value>,
        now: u64,
    ) -> Result<(), AuthError> {
        let nonce = match nonce {
            None => return Err(AuthError::invalid_token(NONCE_MISSING)),
            Some(serde_json::Value::String(nonce)) if nonce.len() <= MAX_NONCE_LEN => nonce,
            Some(_) => return Err(AuthError::invalid_token(NONCE_INVALID)),
        };
        let invalid = || AuthError::invalid_token(NONCE_INVALID);
        let (slot, mac) = nonce.split_once('.').ok_or_else(invalid)?;
        if slot.is_empty() || slot.len() > 20 || !slot.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let slot: u64 = slot.parse().map_err(|_| invalid())?;
        let current = now / self.slot;
        // The next slot too: a replica sharing the key whose clock is a little ahead may have
        // issued it (and a clock stepped back must not turn its own nonces into forgeries).
        if slot > current.saturating_add(1) {
            return Err(invalid());
        }
        let expected = Secret::new(self.mac(slot).into_bytes());
        if expected.is_empty() || !expected.ct_eq(mac.as_bytes()) {
            return Err(invalid());
        }
        if current.saturating_sub(slot) > 1 {
            return Err(AuthError::invalid_token(NONCE_STALE));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_100;

    fn check(nonces: &Nonces, nonce: &str, now: u64) -> Result<(), &'static str> {
        nonces
            .check(Some(&json!(nonce)), now)
            .map_err(|e| e.reason())
    }

    #[test]
    fn a_nonce_is_good_in_its_slot_and_the_next_only() {
        let nonces = Nonces::new(None, Duration::from_secs(300));
        let nonce = nonces.issue(NOW);
        let slot_start = NOW / 300 * 300;
        assert_eq!(check(&nonces, &nonce, slot_start), Ok(()));
        assert_eq!(check(&nonces, &nonce, slot_start + 599), Ok(()));
        assert_eq!(check(&nonces, &nonce, slot_start + 600), Err(NONCE_STALE));
        // Issued by a replica whose clock is ahead by up to a slot: good; further ahead, the
        // slot is none a replica of ours could have issued.
        assert_eq!(check(&nonces, &nonce, slot_start - 1), Ok(()));
        assert_eq!(check(&nonces, &nonce, slot_start - 300), Ok(()));
        assert_eq!(check(&nonces, &nonce, slot_start - 301), Err(NONCE_INVALID));
        assert_eq!(
            nonces.check(None, NOW).map_err(|e| e.reason()),
            Err(NONCE_MISSING)
        );
        assert!(asks_for_nonce(&AuthError::invalid_token(NONCE_STALE)));
        assert!(!is_nonce_round_trip(&AuthError::invalid_token(
            NONCE_INVALID
        )));
        assert!(!asks_for_nonce(&AuthError::invalid_token("dpop_proof_htu")));
    }

    #[test]
    fn replicas_with_one_key_agree_and_others_do_not() {
        let key = Secret::new(b"9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c".to_vec());
        let (a, b) = (
            Nonces::new(Some(&key), DEFAULT_SLOT),
            Nonces::new(Some(&key), DEFAULT_SLOT),
        );
        assert!(a.shared);
        assert_eq!(check(&b, &a.issue(NOW), NOW), Ok(()));
        let random = Nonces::new(None, DEFAULT_SLOT);
        assert!(!random.shared);
        assert_eq!(check(&random, &a.issue(NOW), NOW), Err(NONCE_INVALID));
    }

    #[test]
    fn a_forged_or_garbled_nonce_is_invalid() {
        let nonces = Nonces::new(None, DEFAULT_SLOT);
        let good = nonces.issue(NOW);
        let (slot, mac) = good.split_once('.').unwrap();
        let mut flipped = mac.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{slot}.{}", String::from_utf8(flipped).unwrap());
        for bad in [
            flipped.as_str(),
            mac,
            "",
            ".",
            &format!("+{slot}.{mac}"),
            &format!("{slot}.{mac}x"),
            &format!("{}.{mac}", u64::MAX),
            &"9".repeat(200),
        ] {
            assert_eq!(check(&nonces, bad, NOW), Err(NONCE_INVALID), "{bad}");
        }
        assert_eq!(
            nonces.check(Some(&json!(5)), NOW).map_err(|e| e.reason()),
            Err(NONCE_INVALID)
        );
    }
}
