//! `generateToken` and `hash256`, byte-for-byte as `@blitzjs/auth` produces them.
//!
//! Tokens use nanoid's 64-character URL alphabet; each character is one byte
//! from the operating system's CSPRNG masked to 6 bits, so every character is
//! uniform. Random bytes are drawn in batches into a per-thread pool (the same
//! trick nanoid's JavaScript version uses) so one token costs no syscall.
#![forbid(unsafe_code)]

use std::cell::RefCell;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// nanoid's `urlAlphabet`, in nanoid's order: `alphabet[byte & 63]`.
pub const TOKEN_ALPHABET: &str = "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";

/// Length of a token when the caller gives none (Blitz's default).
pub const DEFAULT_TOKEN_LENGTH: usize = 32;

/// Longest token we agree to make in one call (1 MiB of characters).
pub const MAX_TOKEN_LENGTH: usize = 1 << 20;

const ALPHABET_CHARS: [char; 64] = alphabet_chars();

const fn alphabet_chars() -> [char; 64] {
    let bytes = TOKEN_ALPHABET.as_bytes();
    let mut out = ['\0'; 64];
    let mut i = 0;
    while i < 64 {
        out[i] = bytes[i] as char;
        i += 1;
    }
    out
}

const POOL_BYTES: usize = 4096;

struct RandomPool {
    bytes: Box<[u8; POOL_BYTES]>,
    used: usize,
}

impl RandomPool {
    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        if n > POOL_BYTES {
            let mut big = vec![0u8; n];
            fill_random(&mut big)?;
            return Ok(big);
        }
        if self.used + n > POOL_BYTES {
            fill_random(&mut self.bytes[..])?;
            self.used = 0;
        }
        let slice = &mut self.bytes[self.used..self.used + n];
        let out = slice.to_vec();
        // A byte is handed out once: wipe it so a later bug cannot repeat it.
        slice.fill(0);
        self.used += n;
        Ok(out)
    }
}

thread_local! {
    static POOL: RefCell<RandomPool> = RefCell::new(RandomPool {
        bytes: Box::new([0u8; POOL_BYTES]),
        // Start "used up" so the first call fills the pool.
        used: POOL_BYTES,
    });
}

/// Fill `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorCode::RandomUnavailable,
            format!("the operating system's random number generator failed: {e}"),
        )
    })
}

/// A random token of `length` characters from [`TOKEN_ALPHABET`].
pub fn generate_token(length: usize) -> Result<String> {
    if length > MAX_TOKEN_LENGTH {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("token length {length} is above the limit of {MAX_TOKEN_LENGTH}"),
        ));
    }
    let bytes = POOL.with(|pool| pool.borrow_mut().take(length))?;
    // nanoid::format asks for exactly `length` bytes when the alphabet has 64
    // characters, so handing it the bytes we already drew is exact.
    let mut supplied = Some(bytes);
    Ok(nanoid::format(
        |n| match supplied.take() {
            Some(b) if b.len() == n => b,
            _ => vec![0u8; n],
        },
        &ALPHABET_CHARS,
        length,
    ))
}

/// Lower-case hex SHA-256 of `input`.
pub fn hash256(input: &[u8]) -> String {
    hex::encode(Sha256::digest(input))
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
    fn oversize_token_is_an_error_not_an_allocation() {
        let e = generate_token(MAX_TOKEN_LENGTH + 1).expect_err("too long");
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
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
