//! Strict base64url without padding (RFC 7515 section 2): the only encoding a compact JWS
//! segment may use.
//!
//! Strict means one spelling per byte string: `=`, `+`, `/` and whitespace are not in the
//! alphabet, a length of 4n+1 characters cannot be produced by any input, and the unused
//! low bits of the last character must be zero. Two readers can then never disagree on what
//! a segment says.

/// `INVALID` marks bytes outside the alphabet.
const INVALID: u8 = 0xFF;

const VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Whether every character of `segment` is in the base64url alphabet.
pub(crate) fn is_alphabet(segment: &str) -> bool {
    segment.bytes().all(|b| VALUES[b as usize] != INVALID)
}

/// How many bytes `segment` decodes to, if its length is one an encoder can produce.
pub(crate) fn decoded_len(segment: &str) -> Option<usize> {
    let (full, rest) = (segment.len() / 4, segment.len() % 4);
    match rest {
        0 => Some(full * 3),
        2 => Some(full * 3 + 1),
        3 => Some(full * 3 + 2),
        _ => None,
    }
}

/// Decodes `segment` into the front of `out`, returning the bytes written; `None` when the
/// segment is not strict base64url or `out` is too short.
pub(crate) fn decode_into<'b>(segment: &str, out: &'b mut [u8]) -> Option<&'b [u8]> {
    let len = decoded_len(segment)?;
    let out = out.get_mut(..len)?;
    let input = segment.as_bytes();
    let full = input.len() / 4;
    // Values are 0..=63; INVALID has the top bit set, so one OR over a chunk tells.
    let mut seen = 0u8;
    for (chunk, bytes) in input.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let [a, b, c, d] = [chunk[0], chunk[1], chunk[2], chunk[3]].map(|x| VALUES[x as usize]);
        seen |= a | b | c | d;
        let word = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        bytes.copy_from_slice(&word.to_be_bytes()[1..]);
    }
    if seen & 0x80 != 0 {
        return None;
    }
    let tail = &input[full * 4..];
    if !tail.is_empty() {
        let mut word: u32 = 0;
        for &c in tail {
            let v = VALUES[c as usize];
            if v == INVALID {
                return None;
            }
            word = word << 6 | u32::from(v);
        }
        // Two characters carry 12 bits for one byte, three carry 18 for two: the rest
        // must be zero, or a second spelling of the same bytes would be accepted.
        let (bytes, spare) = if tail.len() == 2 { (1, 4) } else { (2, 2) };
        if word & ((1 << spare) - 1) != 0 {
            return None;
        }
        let be = (word >> spare).to_be_bytes();
        out[full * 3..].copy_from_slice(&be[4 - bytes..]);
    }
    Some(out)
}

/// Decodes `segment`; `None` when it is not strict base64url.
pub(crate) fn decode(segment: &str) -> Option<Vec<u8>> {
    let mut out = vec![0; decoded_len(segment)?];
    let len = decode_into(segment, &mut out)?.len();
    out.truncate(len);
    Some(out)
}

/// Base64url without padding, for tests that build tokens by hand. Written independently of
/// the decoder, which is tested against it.
#[cfg(test)]
pub(crate) fn encode(bytes: &[u8]) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut buf = [0u8; 3];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(buf[0]) << 16 | u32::from(buf[1]) << 8 | u32::from(buf[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_vectors_in_the_url_alphabet() {
        for (encoded, decoded) in [
            ("", &b""[..]),
            ("Zg", b"f"),
            ("Zm8", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg", b"foob"),
            ("Zm9vYmE", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("-_8", &[0xfb, 0xff]),
        ] {
            assert_eq!(decode(encoded).as_deref(), Some(decoded), "{encoded}");
        }
    }

    #[test]
    fn every_other_spelling_is_refused() {
        for bad in [
            "Zg==", "Zg=", "Zm9v=", "+_8", "-/8", "Zm 9v", "Zm9v\n", "Z", "Zm9vY", "Zh", "Zm9",
            "Zm-",
        ] {
            // "Zh", "Zm9" and "Zm-" set unused low bits: "Zg" and "Zm8" are the only spellings.
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn agrees_with_a_reference_encoder_on_every_length_and_byte() {
        // The test encoder below, written independently of the decoder, over pseudo-random input.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let encoded = encode(&bytes);
            assert_eq!(decode(&encoded), Some(bytes), "{encoded}");
            assert!(is_alphabet(&encoded));
        }
    }

    #[test]
    fn decode_into_refuses_a_short_buffer() {
        let mut buf = [0u8; 2];
        assert_eq!(decode_into("Zm9v", &mut buf), None);
        let mut buf = [0u8; 8];
        assert_eq!(decode_into("Zm9v", &mut buf), Some(&b"foo"[..]));
    }
}
