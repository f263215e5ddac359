//! `generateToken` and `hash256`, byte-for-byte as `@blitzjs/auth` produces them.
//!
//! Tokens use nanoid's 64-character URL alphabet: each character is one byte
//! from a CSPRNG masked to 6 bits (`alphabet[byte & 63]`, nanoid's rule), so
//! every character is uniform and independent. The bytes come from `rand`'s
//! `ThreadRng` (ChaCha12 seeded from the OS, reseeded periodically): a token
//! costs no system call. Salts for password hashes use the OS generator
//! directly ([`fill_random`]).
#![forbid(unsafe_code)]

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// nanoid's `urlAlphabet`, in nanoid's order: `alphabet[byte & 63]`.
pub const TOKEN_ALPHABET: &str = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/// Length of a token when the caller gives none (Blitz's default).
pub const DEFAULT_TOKEN_LENGTH: usize = 32;

/// Longest token we agree to make in one call (1 MiB of characters).
pub const MAX_TOKEN_LENGTH: usize = 1 << 20;

/// Fill `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorCode::RandomUnavailable,
            format!("the operating system's random number generator failed: {e}"),
        )
    })
}

/// Map random bytes to token characters (nanoid's rule).
fn encode_token(mut bytes: Vec<u8>) -> String {
    let alphabet = TOKEN_ALPHABET.as_bytes();
    for b in bytes.iter_mut() {
        *b = alphabet[usize::from(*b & 63)];
    }
    // Every byte is now one of the 64 ASCII characters above.
    String::from_utf8(bytes).unwrap_or_default()
}

/// A random token of `length` characters from [`TOKEN_ALPHABET`].
pub fn generate_token(length: usize) -> Result<String> {
    if length > MAX_TOKEN_LENGTH {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("token length {length} is above the limit of {MAX_TOKEN_LENGTH}"),
        ));
    }
    let mut bytes = vec![0u8; length];
    rand::rng().fill_bytes(&mut bytes);
    Ok(encode_token(bytes))
}

/// Lower-case hex SHA-256 of `input`.
pub fn hash256(input: &[u8]) -> String {
    // Every byte of the buffer is an ASCII hex digit.
    String::from_utf8(hash256_hex(input).to_vec()).unwrap_or_default()
}

/// [`hash256`] into a fixed buffer of 64 ASCII hex digits (no allocation).
pub fn hash256_hex(input: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // The buffer is exactly twice the digest length, so this cannot fail.
    let _ = hex::encode_to_slice(Sha256::digest(input), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_right_length_and_alphabet() {
        for len in [0, 1, 21, 32, 64, 4097, 10_000] {
            let t = generate_token(len).expect("token");
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| TOKEN_ALPHABET.as_bytes().contains(&b)));
        }
    }

    #[test]
    fn tokens_differ_and_every_character_appears() {
        let a = generate_token(32).expect("token");
        let b = generate_token(32).expect("token");
        assert_ne!(a, b);
        let many = generate_token(20_000).expect("token");
        for c in TOKEN_ALPHABET.chars() {
            assert!(many.contains(c), "{c} never drawn");
        }
    }

    #[test]
    fn mapping_is_nanoids() {
        // nanoid's own formatter, fed the same bytes, gives the same token.
        let alphabet: Vec<char> = TOKEN_ALPHABET.chars().collect();
        let mut bytes = vec![0u8; 256];
        fill_random(&mut bytes).expect("random");
        let ours = encode_token(bytes.clone());
        let mut once = Some(bytes);
        let theirs = nanoid::format(
            |n| once.take().filter(|b| b.len() == n).unwrap_or_default(),
            &alphabet,
            256,
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn oversize_token_is_an_error_not_an_allocation() {
        let e = generate_token(MAX_TOKEN_LENGTH + 1).expect_err("too long");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn hash256_hex_matches_hash256() {
        for input in [&b""[..], b"abc", &[0u8; 1000]] {
            assert_eq!(hash256_hex(input).as_slice(), hash256(input).as_bytes());
        }
    }

    #[test]
    fn hash256_known_answers() {
        assert_eq!(
            hash256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hash256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
