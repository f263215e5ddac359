//! The Node binding: the only module that knows napi.
//!
//! It converts arguments, hands the work to the core and turns core errors into
//! JS `Error`s whose `code` is the core's stable code. Argument validation that
//! must match Blitz's exact JS errors (Node's `TypeError`s) happens in the JS
//! layer before these functions are called. Password work never runs on the JS
//! thread in the async functions: it goes to the core's bounded [`HashPool`].
#![allow(unsafe_code)] // the napi-derive expansion is unsafe FFI glue
#![allow(missing_docs)] // exported items are documented for TypeScript below

use napi::bindgen_prelude::*;
use napi::{JsString, JsValue};
use napi_derive::napi;

use crate::error::{Error as CoreError, ErrorCode};
use crate::password::pool::{pool_gone, HashPool};
use crate::password::{self, Engine, Verdict};
use crate::token;

mod completion;
mod session;

/// napi's runtime for the session stores' I/O (Redis; and the JS storage's
/// whole-user operations, whose other operations run on the JS thread): one
/// worker thread. The work on it is socket I/O and wake-ups, never CPU-bound
/// (password hashing has its own pool), and with one worker a request's future
/// and the Redis connection's driver task run on the same thread instead of
/// waking each other across threads: measured on the HTTP bench, this is
/// cheaper per request than the default (one worker per core).
#[napi_derive::module_init]
fn init() {
    let threads = crate::thread_count_from_env("BLITZ_AUTH_IO_THREADS").unwrap_or(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("blitz-auth-io")
        .enable_all()
        .build()
    {
        create_custom_tokio_runtime(rt);
    }
}

pub(crate) fn to_js(e: CoreError) -> napi::Error<String> {
    napi::Error::new(e.code().as_str().to_string(), e.message().to_string())
}

/// What an async call resolves to: the value, or an `Error` object carrying the
/// core's code. napi's promise rejection only knows napi's own status codes,
/// so failures travel as values and the JS layer throws them (lib/native.js).
type Outcome<T> = Either<T, napi::Error<String>>;

fn outcome<T>(r: std::result::Result<T, CoreError>) -> napi::Result<Outcome<T>> {
    Ok(match r {
        Ok(v) => Either::A(v),
        Err(e) => Either::B(to_js(e)),
    })
}

/// Outcome of a password verification (`MALFORMED`: libsodium would refuse the stored string).
#[napi(string_enum, js_name = "Verdict")]
pub enum VerdictName {
    #[napi(value = "VALID")]
    Valid,
    #[napi(value = "VALID_NEEDS_REHASH")]
    ValidNeedsRehash,
    #[napi(value = "INVALID")]
    Invalid,
    #[napi(value = "INVALID_UNRECOGNIZED_HASH")]
    UnrecognizedHash,
    #[napi(value = "MALFORMED")]
    Malformed,
}

impl From<Verdict> for VerdictName {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Valid => VerdictName::Valid,
            Verdict::ValidNeedsRehash => VerdictName::ValidNeedsRehash,
            Verdict::Invalid => VerdictName::Invalid,
            Verdict::UnrecognizedHash => VerdictName::UnrecognizedHash,
            Verdict::Malformed => VerdictName::Malformed,
        }
    }
}

/// The stored hash: a base64 string (decoded as Node's `Buffer.from(s, "base64")`) or raw bytes.
fn stored_bytes(stored: Either<String, &[u8]>) -> Vec<u8> {
    match stored {
        Either::A(text) => password::decode_stored_hash(text.as_bytes()),
        Either::B(bytes) => bytes.to_vec(),
    }
}

/// Hash a password (its bytes) on the password worker pool.
/// Resolves to the 172-character base64 string that `SecurePassword.hash` stores.
#[napi(js_name = "hashPassword", ts_return_type = "Promise<string | Error>")]
pub fn hash_password<'env>(
    env: &'env Env,
    password: &[u8],
) -> napi::Result<PromiseRaw<'env, Outcome<String>>> {
    let password = password.to_vec();
    let rx = HashPool::global()
        .submit(move |engine: &mut Engine| password::hash_password(engine, &password));
    env.spawn_future(async move { outcome(rx.await.map_err(pool_gone).and_then(|r| r)) })
}

/// Blocking twin of `hashPassword`: runs on the calling thread, allocating its own arena.
#[napi(js_name = "hashPasswordSync")]
pub fn hash_password_sync(password: &[u8]) -> napi::Result<String, String> {
    password::hash_password(&mut Engine::one_shot(), password).map_err(to_js)
}

/// Verify a password against a stored hash on the worker pool.
/// Resolves to one of `VALID`, `VALID_NEEDS_REHASH`, `INVALID`, `INVALID_UNRECOGNIZED_HASH`, `MALFORMED`.
#[napi(
    js_name = "verifyPassword",
    ts_return_type = "Promise<Verdict | Error>"
)]
pub fn verify_password<'env>(
    env: &'env Env,
    #[napi(ts_arg_type = "string | Uint8Array")] stored: Either<String, &[u8]>,
    password: &[u8],
) -> napi::Result<PromiseRaw<'env, Outcome<VerdictName>>> {
    let stored = stored_bytes(stored);
    let password = password.to_vec();
    let rx = HashPool::global()
        .submit(move |engine: &mut Engine| password::verify_password(engine, &stored, &password));
    env.spawn_future(async move {
        outcome(
            rx.await
                .map_err(pool_gone)
                .and_then(|r| r)
                .map(VerdictName::from),
        )
    })
}

/// Blocking twin of `verifyPassword`.
#[napi(js_name = "verifyPasswordSync")]
pub fn verify_password_sync(
    #[napi(ts_arg_type = "string | Uint8Array")] stored: Either<String, &[u8]>,
    password: &[u8],
) -> napi::Result<VerdictName, String> {
    let stored = stored_bytes(stored);
    password::verify_password(&mut Engine::one_shot(), &stored, password)
        .map(VerdictName::from)
        .map_err(to_js)
}

/// Figures of the password worker pool.
#[napi(object)]
pub struct HashPoolStats {
    /// Upper bound on concurrent hashes (worker threads).
    pub max_threads: u32,
    /// Worker threads started so far.
    pub threads: u32,
    /// Workers holding a 64 MiB arena right now.
    pub arenas: u32,
    /// Calls waiting for a worker.
    pub queued: u32,
}

/// Current figures of the password worker pool.
#[napi(js_name = "hashPoolStats")]
pub fn hash_pool_stats() -> HashPoolStats {
    let s = HashPool::global().stats();
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    HashPoolStats {
        max_threads: n(s.max_threads),
        threads: n(s.threads),
        arenas: n(s.arenas),
        queued: n(s.queued),
    }
}

/// A random token of `length` characters from nanoid's URL alphabet.
#[napi(js_name = "generateToken")]
pub fn generate_token(length: u32) -> napi::Result<String, String> {
    token::generate_token(length as usize).map_err(to_js)
}

/// Lower-case hex SHA-256 of a string's UTF-8 bytes.
///
/// The hot path of password-reset and API-key lookups: short strings are
/// copied out of V8 into a stack buffer with one call (napi-rs's `String`
/// asks for the length first, then copies), and the hex digest goes back as
/// a Latin-1 string, which V8 creates without UTF-8 decoding.
#[napi(js_name = "hash256String")]
pub fn hash256_string<'env>(env: &'env Env, input: JsString<'env>) -> napi::Result<JsString<'env>> {
    const STACK: usize = 1024;
    let mut buf = [0u8; STACK];
    let mut copied: usize = 0;
    // SAFETY: `buf` is valid for STACK bytes and outlives the call; napi writes
    // at most STACK - 1 bytes plus a NUL and reports how many it wrote.
    let status = unsafe {
        napi::sys::napi_get_value_string_utf8(
            env.raw(),
            input.raw(),
            buf.as_mut_ptr().cast(),
            STACK,
            &mut copied,
        )
    };
    if status != napi::sys::Status::napi_ok {
        return Err(napi::Error::new(
            Status::StringExpected,
            "hash256: input must be a string",
        ));
    }
    // V8 stops before a character that does not fit whole, so a truncated
    // copy leaves fewer than 4 bytes (the longest UTF-8 character) unused.
    let digest = if copied + 4 < STACK {
        token::hash256_hex(&buf[..copied])
    } else {
        // Possibly truncated: take the whole string the ordinary way.
        let full = input.into_utf8()?;
        token::hash256_hex(full.as_slice())
    };
    env.create_string_latin1(digest)
}

/// Lower-case hex SHA-256 of bytes.
#[napi(js_name = "hash256Bytes")]
pub fn hash256_bytes<'env>(env: &'env Env, input: &[u8]) -> napi::Result<JsString<'env>> {
    env.create_string_latin1(token::hash256_hex(input))
}

/// The stable error codes, for the TypeScript declarations.
#[napi(js_name = "errorCodes")]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}
