//! Text encodings whose exact leniency is part of the wire contract.
//!
//! Blitz decodes a stored password hash with Node's `Buffer.from(s, "base64")`,
//! which accepts far more than RFC 4648: both alphabets at once, missing
//! padding, and any character outside the alphabet (whitespace, line breaks,
//! stray punctuation) silently skipped. Decoding stops at the first `=`.
//! Hashes that verify in a Blitz app must verify here, so this module mirrors
//! that decoder instead of using a strict one.
#![forbid(unsafe_code)]

use base64::Engine as _;

const INVALID: u8 = 0xff;

/// Value of a base64 character in either alphabet (`+`/`-` are 62, `/`/`_` are 63).
const fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => INVALID,
    }
}

/// Decode base64 the way Node.js does for `Buffer.from(text, "base64")`.
///
/// Characters outside both alphabets are skipped, the first `=` ends the
/// input, and a trailing group of 2 or 3 characters yields 1 or 2 bytes (a
/// lone trailing character yields nothing). Never fails.
pub fn decode_base64_lenient(text: &[u8]) -> Vec<u8> {
    // Canonical padded base64 (what every encoder writes) decodes the same way
    // under both rules; take the crate's fast decoder for it.
    if text.len().is_multiple_of(4) {
        if let Ok(v) = base64::engine::general_purpose::STANDARD.decode(text) {
            return v;
        }
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    for &c in text {
        if c == b'=' {
            break;
        }
        let v = sextet(c);
        if v == INVALID {
            continue;
        }
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode_base64_lenient as dec;
    use base64::Engine;

    #[test]
    fn canonical_input_matches_a_strict_decoder() {
        let engine = base64::engine::general_purpose::STANDARD;
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = engine.encode(&bytes);
            assert_eq!(dec(text.as_bytes()), bytes, "len {len}");
        }
    }

    #[test]
    fn leniency_matches_node() {
        // Expected values come from Node 20: Buffer.from(input, "base64").
        assert_eq!(dec(b"QUJD"), b"ABC");
        assert_eq!(dec(b"QUI"), b"AB"); // no padding
        assert_eq!(dec(b"QQ"), b"A");
        assert_eq!(dec(b"Q"), b""); // a lone sextet is dropped
        assert_eq!(dec(b" Q U\nJ\tD "), b"ABC"); // whitespace skipped
        assert_eq!(dec(b"QU=JD"), b"A"); // the first '=' stops decoding
        assert_eq!(dec(b"-_-_"), dec(b"+/+/")); // URL alphabet
        assert_eq!(dec(b"QU*JD"), b"ABC"); // other garbage skipped
        assert_eq!(dec(b""), b"");
        assert_eq!(dec("QUJD\u{e9}".as_bytes()), b"ABC");
    }
}
