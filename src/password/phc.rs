//! The encoded-hash grammar that libsodium 1.0.18's verifier accepts, and no more.
//!
//! `$argon2id` or `$argon2i`, `$v=19`, `$m=<dec>,t=<dec>,p=<dec>`, `$<salt>`,
//! `$<hash>`, then the end of the string. Decimals have no sign and no leading
//! zeros and fit in 32 bits; salt and hash are standard-alphabet base64 with no
//! padding and canonical trailing bits. After decoding, Argon2's own input
//! checks apply (salt >= 8 bytes, hash >= 16 bytes, t >= 1, m >= 8 and >= 8p,
//! 1 <= p < 2^24). A general PHC parser accepts more (other field orders,
//! `keyid`/`data`, padding), which would let strings verify here that never
//! verify in a Blitz app; this one is written to the C decoder's rules.
#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

/// Argon2 variant named by the string's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `$argon2i$`: data-independent addressing (legacy secure-password hashes).
    Argon2i,
    /// `$argon2id$`: what `SecurePassword.hash` produces.
    Argon2id,
}

/// A decoded, validated encoded hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedHash {
    /// Variant from the prefix.
    pub variant: Variant,
    /// Memory cost in KiB.
    pub m_cost: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Lanes.
    pub lanes: u32,
    /// Salt bytes.
    pub salt: Vec<u8>,
    /// Expected tag.
    pub hash: Vec<u8>,
}

/// Argon2's version 1.3, the only one libsodium accepts.
pub const VERSION: u32 = 19;
const MIN_SALT: usize = 8;
const MIN_OUT: usize = 16;
const MAX_LANES: u32 = 0x00ff_ffff;
const SYNC_POINTS: u32 = 4;

/// Why a string was rejected (kept apart from "wrong password").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Neither `$argon2id` nor `$argon2i` at the start.
    UnknownPrefix,
    /// Something does not follow the grammar.
    Syntax,
    /// `v` is not 19.
    Version,
    /// The numbers or lengths break Argon2's input rules.
    Parameters,
}

struct Cursor<'a> {
    s: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, lit: &[u8]) -> Result<(), ParseError> {
        match self.s.strip_prefix(lit) {
            Some(rest) => {
                self.s = rest;
                Ok(())
            }
            None => Err(ParseError::Syntax),
        }
    }

    fn decimal(&mut self) -> Result<u32, ParseError> {
        let digits = self.s.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && self.s[0] == b'0') {
            return Err(ParseError::Syntax);
        }
        let mut v: u64 = 0;
        for &b in &self.s[..digits] {
            v = v * 10 + u64::from(b - b'0');
            if v > u64::from(u32::MAX) {
                return Err(ParseError::Syntax);
            }
        }
        self.s = &self.s[digits..];
        u32::try_from(v).map_err(|_| ParseError::Syntax)
    }

    fn base64(&mut self) -> Result<Vec<u8>, ParseError> {
        let n = self
            .s
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'+' || **b == b'/')
            .count();
        // The engine is strict: no padding, canonical trailing bits, and a
        // lone trailing character is an error, exactly as sodium_base642bin.
        let out = STANDARD_NO_PAD
            .decode(&self.s[..n])
            .map_err(|_| ParseError::Syntax)?;
        self.s = &self.s[n..];
        Ok(out)
    }
}

/// Parse an encoded hash (the C string, without its NUL terminator).
pub fn parse(encoded: &[u8]) -> Result<EncodedHash, ParseError> {
    let mut c = Cursor { s: encoded };
    let variant = if encoded.starts_with(b"$argon2id") {
        c.eat(b"$argon2id")?;
        Variant::Argon2id
    } else if encoded.starts_with(b"$argon2i") {
        c.eat(b"$argon2i")?;
        Variant::Argon2i
    } else {
        return Err(ParseError::UnknownPrefix);
    };
    c.eat(b"$v=")?;
    if c.decimal()? != VERSION {
        return Err(ParseError::Version);
    }
    c.eat(b"$m=")?;
    let m_cost = c.decimal()?;
    c.eat(b",t=")?;
    let t_cost = c.decimal()?;
    c.eat(b",p=")?;
    let lanes = c.decimal()?;
    c.eat(b"$")?;
    let salt = c.base64()?;
    c.eat(b"$")?;
    let hash = c.base64()?;
    // libsodium validates the inputs before it looks for the end of the string.
    let parsed = EncodedHash {
        variant,
        m_cost,
        t_cost,
        lanes,
        salt,
        hash,
    };
    validate(&parsed)?;
    if !c.s.is_empty() {
        return Err(ParseError::Syntax);
    }
    Ok(parsed)
}

fn validate(h: &EncodedHash) -> Result<(), ParseError> {
    let ok = h.hash.len() >= MIN_OUT
        && h.salt.len() >= MIN_SALT
        && h.t_cost >= 1
        && (1..=MAX_LANES).contains(&h.lanes)
        && h.m_cost >= 2 * SYNC_POINTS
        && u64::from(h.m_cost) >= 8 * u64::from(h.lanes);
    if ok {
        Ok(())
    } else {
        Err(ParseError::Parameters)
    }
}

/// Encode an Argon2id v1.3 hash the way libsodium's `crypto_pwhash_str` does.
pub fn encode_argon2id(m_cost: u32, t_cost: u32, lanes: u32, salt: &[u8], hash: &[u8]) -> String {
    format!(
        "$argon2id$v={VERSION}$m={m_cost},t={t_cost},p={lanes}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "$argon2id$v=19$m=65536,t=2,p=1$w19gyyUqp6yj5+Fn6TRxEg$3EJ/O5XidNWP276LJhT9xHNNz+eA9MYlTvtI57f9OLU";

    #[test]
    fn parses_a_libsodium_string() {
        let h = parse(GOOD.as_bytes()).expect("valid");
        assert_eq!(h.variant, Variant::Argon2id);
        assert_eq!((h.m_cost, h.t_cost, h.lanes), (65536, 2, 1));
        assert_eq!((h.salt.len(), h.hash.len()), (16, 32));
        assert_eq!(encode_argon2id(65536, 2, 1, &h.salt, &h.hash), GOOD);
    }

    #[test]
    fn argon2i_prefix() {
        let s = GOOD.replacen("$argon2id$", "$argon2i$", 1);
        assert_eq!(
            parse(s.as_bytes()).expect("valid").variant,
            Variant::Argon2i
        );
    }

    #[test]
    fn rejects_what_libsodium_rejects() {
        let cases: &[(&str, &str)] = &[
            ("$v=19", "$v=16"),                     // other version
            ("$argon2id$", "$argon2d$"),            // argon2d
            ("m=65536,t=2,p=1", "t=2,m=65536,p=1"), // field order
            ("m=65536", "m=065536"),                // leading zero
            ("m=65536", "m=+65536"),                // sign
            ("m=65536", "m=4294967296"),            // > u32
            ("t=2", "t=0"),                         // t < 1
            ("p=1", "p=0"),                         // p < 1
            ("m=65536", "m=7"),                     // m < 8
            ("6TRxEg$", "6TRxEg==$"),               // padding on the salt
            ("OLU", "OLU="),                        // padding on the hash
            ("OLU", "OLU$"),                        // trailing junk
            ("OLU", "OLU,keyid=abc"),               // keyid/data parameters
            ("$v=19", ""),                          // missing version
            ("OLU", "OLV"),                         // non-canonical trailing bits
        ];
        for (from, to) in cases {
            let s = GOOD.replacen(from, to, 1);
            assert!(parse(s.as_bytes()).is_err(), "accepted {s}");
        }
        // m must be at least 8 * p.
        assert!(parse(
            GOOD.replacen("m=65536,t=2,p=1", "m=8,t=2,p=2", 1)
                .as_bytes()
        )
        .is_err());
        // Short salt (6 bytes) and short hash (12 bytes).
        assert!(parse(b"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA").is_err());
        assert!(parse(b"$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAA").is_err());
        assert_eq!(parse(b"bcrypt"), Err(ParseError::UnknownPrefix));
    }

    #[test]
    fn a_lone_zero_is_a_number() {
        // "0" is syntactically fine; it then fails the parameter checks.
        let s = GOOD.replacen("t=2", "t=0", 1);
        assert_eq!(parse(s.as_bytes()), Err(ParseError::Parameters));
    }
}
