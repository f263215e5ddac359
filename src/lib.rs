//! blitz-auth-native: the server half of Blitz.js auth, in Rust.
//!
//! The crate is a plain Rust core that knows nothing of Node.js:
//!
//! - [`password`]: `secure-password`-compatible Argon2id hashing and verification,
//!   with a bounded worker pool that reuses one arena per worker thread.
//! - [`token`]: `generateToken` (nanoid alphabet) and `hash256` (SHA-256 hex).
//! - [`encoding`]: the lenient base64 decoder that Node's `Buffer.from(s, "base64")` implements.
//! - [`error`]: one error enum with stable, SCREAMING_SNAKE codes.
//!
//! The Node binding lives in `src/napi/` behind the `node` cargo feature, so
//! `cargo test` of the core never links napi.

pub mod encoding;
pub mod error;
pub mod password;
pub mod session;
pub mod store;
pub mod token;

#[cfg(feature = "node")]
mod napi;

pub use error::{Error, ErrorCode};
