//! `SecurePassword`: Argon2id hashes in the `secure-password` storage format.
//!
//! A stored hash is the base64 of a 128-byte buffer holding libsodium's encoded
//! string (`$argon2id$v=19$m=65536,t=2,p=1$<salt>$<hash>`) followed by NUL
//! bytes. [`hash_password`] writes that format; [`verify_password`] reads it
//! with the same acceptance rules as libsodium 1.0.18 (see [`phc`]) and returns
//! a [`Verdict`]: wrong passwords and garbage are values, not errors.
//!
//! The memory-hard work runs in an [`Engine`]: a reusable Argon2 arena. The
//! [`pool`] keeps one per worker thread, so a busy server allocates its 64 MiB
//! once per thread instead of once per hash.
#![forbid(unsafe_code)]

pub mod phc;
pub mod pool;

use argon2_rust::params::{Memory, TagLen};
use argon2_rust::{Algorithm, Argon2, Hasher, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::encoding::decode_base64_lenient;
use crate::error::{Error, ErrorCode, Result};
use crate::token::fill_random;

pub use phc::{EncodedHash, ParseError, Variant};

/// Size of the stored buffer (`crypto_pwhash_STRBYTES`).
pub const HASH_BYTES: usize = 128;
/// `secure-password`'s default (and Blitz's only) passes: libsodium's interactive opslimit.
pub const OPSLIMIT_DEFAULT: u32 = 2;
/// `secure-password`'s default memory: 64 MiB.
pub const MEMLIMIT_DEFAULT: u64 = 64 * 1024 * 1024;
/// Memory cost of new hashes in KiB (`MEMLIMIT_DEFAULT / 1024`).
pub const M_COST_DEFAULT: u32 = (MEMLIMIT_DEFAULT / 1024) as u32;
/// Salt length of new hashes (`crypto_pwhash_SALTBYTES`).
pub const SALT_BYTES: usize = 16;
/// Tag length of new hashes (`crypto_pwhash_BYTES_MIN`..; libsodium's `STRHASHBYTES`).
pub const TAG_BYTES: usize = 32;
/// Largest memory cost a stored hash may ask the verifier for: 4 GiB.
///
/// libsodium would try to allocate whatever the string says (up to 4 TiB); a
/// hash that asks for more than this is treated as malformed instead of being
/// allowed to take the machine's memory.
pub const MAX_VERIFY_M_COST: u32 = 4 * 1024 * 1024;

/// Outcome of [`verify_password`]. Only `Valid` and `ValidNeedsRehash` mean "let them in".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Correct password; the hash uses today's policy.
    Valid,
    /// Correct password; re-hash it (other `t`/`m`, or argon2i).
    ValidNeedsRehash,
    /// Well-formed hash, wrong password.
    Invalid,
    /// The buffer carries neither `$argon2i$` nor `$argon2id$` (secure-password's `INVALID_UNRECOGNIZED_HASH`).
    UnrecognizedHash,
    /// Not a 128-byte buffer, or an encoded string libsodium would refuse.
    Malformed,
}

impl Verdict {
    /// True for the two verdicts that accept the password.
    pub const fn is_valid(self) -> bool {
        matches!(self, Verdict::Valid | Verdict::ValidNeedsRehash)
    }

    /// Stable name, as the JS layer receives it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "VALID",
            Verdict::ValidNeedsRehash => "VALID_NEEDS_REHASH",
            Verdict::Invalid => "INVALID",
            Verdict::UnrecognizedHash => "INVALID_UNRECOGNIZED_HASH",
            Verdict::Malformed => "MALFORMED",
        }
    }
}

/// Argon2 computation with optional arena reuse.
///
/// `Engine::pooled()` keeps one arena sized for the default policy and reuses
/// it; `Engine::one_shot()` allocates per call and frees right after (for the
/// synchronous API, which runs on the caller's thread).
pub struct Engine {
    hasher: Option<Hasher>,
}

impl Engine {
    /// An engine that keeps its arena between calls.
    pub fn pooled() -> Self {
        Engine {
            hasher: Some(
                Argon2::new(Algorithm::Argon2id, Version::V0x13, default_params()).hasher(),
            ),
        }
    }

    /// An engine that allocates for every call.
    pub fn one_shot() -> Self {
        Engine { hasher: None }
    }

    /// Give the arena back to the OS (wiped). The next call allocates again.
    pub fn release(&mut self) {
        if let Some(h) = self.hasher.as_mut() {
            h.clear();
        }
    }

    /// Blocks the arena holds (0 when released or one-shot).
    pub fn reserved_blocks(&self) -> usize {
        self.hasher.as_ref().map_or(0, |h| h.reserved_blocks())
    }

    fn compute(
        &mut self,
        argon2: Argon2,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        let reuse = argon2.params().memory_kib() <= M_COST_DEFAULT;
        let r = match (self.hasher.as_mut(), reuse) {
            (Some(h), true) => {
                h.set_argon2(argon2);
                h.hash_into(password, salt, out)
            }
            // Outsized parameters get their own allocation, freed at once, so the
            // pooled arena never grows past the policy's 64 MiB.
            _ => argon2.hash_into(password, salt, out),
        };
        r.map_err(|e| {
            Error::new(
                ErrorCode::PasswordHashingFailed,
                format!("argon2 failed: {e:?}"),
            )
        })
    }
}

fn default_params() -> Params {
    // The builder only fails on out-of-range values; these are constants in range.
    Params::builder()
        .memory(Memory::kib(u64::from(M_COST_DEFAULT)))
        .passes(OPSLIMIT_DEFAULT)
        .lanes(1)
        .threads(1)
        .tag_len(TagLen::bytes(TAG_BYTES as u64))
        .build()
        .unwrap_or(Params::DEFAULT)
}

/// Hash `password` with a fresh random salt; returns the 172-character base64
/// of the NUL-padded 128-byte buffer, exactly as `SecurePassword.hash` does.
pub fn hash_password(engine: &mut Engine, password: &[u8]) -> Result<String> {
    let mut salt = [0u8; SALT_BYTES];
    fill_random(&mut salt)?;
    hash_password_with_salt(engine, password, &salt)
}

/// [`hash_password`] with a caller-chosen salt (for tests and known answers).
pub fn hash_password_with_salt(
    engine: &mut Engine,
    password: &[u8],
    salt: &[u8; SALT_BYTES],
) -> Result<String> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, default_params());
    let mut tag = [0u8; TAG_BYTES];
    engine.compute(argon2, password, salt, &mut tag)?;
    let encoded = phc::encode_argon2id(M_COST_DEFAULT, OPSLIMIT_DEFAULT, 1, salt, &tag);
    let mut buf = [0u8; HASH_BYTES];
    buf[..encoded.len()].copy_from_slice(encoded.as_bytes());
    Ok(STANDARD.encode(buf))
}

/// Decode a stored hash as Blitz does (`Buffer.from(stored, "base64")`).
pub fn decode_stored_hash(stored_base64: &[u8]) -> Vec<u8> {
    decode_base64_lenient(stored_base64)
}

/// Verify `password` against a stored 128-byte hash buffer.
pub fn verify_password(engine: &mut Engine, stored: &[u8], password: &[u8]) -> Result<Verdict> {
    if stored.len() != HASH_BYTES {
        return Ok(Verdict::Malformed);
    }
    if find(stored, b"$argon2i$").is_none() && find(stored, b"$argon2id$").is_none() {
        return Ok(Verdict::UnrecognizedHash);
    }
    // libsodium reads a C string; a buffer with no NUL has no end.
    let Some(end) = stored.iter().position(|&b| b == 0) else {
        return Ok(Verdict::Malformed);
    };
    let parsed = match phc::parse(&stored[..end]) {
        Ok(p) => p,
        Err(_) => return Ok(Verdict::Malformed),
    };
    if parsed.m_cost > MAX_VERIFY_M_COST {
        return Ok(Verdict::Malformed);
    }
    let Some(argon2) = argon2_for(&parsed) else {
        return Ok(Verdict::Malformed);
    };
    let mut tag = vec![0u8; parsed.hash.len()];
    engine.compute(argon2, password, &parsed.salt, &mut tag)?;
    if !bool::from(tag.ct_eq(&parsed.hash)) {
        return Ok(Verdict::Invalid);
    }
    Ok(if needs_rehash(&parsed) {
        Verdict::ValidNeedsRehash
    } else {
        Verdict::Valid
    })
}

/// Whether a (valid) hash should be replaced by one made with today's policy.
///
/// Like libsodium, any difference in `t` or `m` counts, stronger or weaker.
/// Unlike secure-password, an argon2i hash always needs a rehash, so apps
/// move their users to argon2id as they log in.
pub fn needs_rehash(h: &EncodedHash) -> bool {
    h.variant != Variant::Argon2id || h.t_cost != OPSLIMIT_DEFAULT || h.m_cost != M_COST_DEFAULT
}

fn argon2_for(h: &EncodedHash) -> Option<Argon2> {
    let algorithm = match h.variant {
        Variant::Argon2i => Algorithm::Argon2i,
        Variant::Argon2id => Algorithm::Argon2id,
    };
    // Lanes are computed one after another on this thread (as libsodium does):
    // a stored string must not decide how many threads we spawn.
    let params = Params::builder()
        .memory(Memory::kib(u64::from(h.m_cost)))
        .passes(h.t_cost)
        .lanes(h.lanes)
        .threads(1)
        .tag_len(TagLen::bytes(h.hash.len() as u64))
        .build()
        .ok()?;
    Some(Argon2::new(algorithm, Version::V0x13, params))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
