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

/// A thread count from the environment: `name`'s value when it is a positive
/// integer, `None` when unset. Any other value is reported on stderr (the
/// process is loading the addon; there is no caller to return an error to)
/// and ignored, so a typo never leaves the app without threads.
pub(crate) fn thread_count_from_env(name: &str) -> Option<usize> {
    let raw = std::env::var(name).ok()?;
    match raw.trim().parse::<usize>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            eprintln!(
                "blitz-auth-native: {name}={raw:?} is not a positive whole number of threads; using the default"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thread_counts_from_the_environment() {
        // Names of this test alone: nothing else reads or writes them.
        let name = "BLITZ_AUTH_TEST_THREADS_ONLY_HERE";
        std::env::remove_var(name);
        assert_eq!(super::thread_count_from_env(name), None);
        for (value, want) in [
            (" 3 ", Some(3)),
            ("0", None),
            ("-1", None),
            ("two", None),
            ("", None),
        ] {
            std::env::set_var(name, value);
            assert_eq!(super::thread_count_from_env(name), want, "{value:?}");
        }
        std::env::remove_var(name);
    }
}
