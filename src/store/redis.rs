//! The Redis session store (`RedisStorage` in JS): sessions shared by every
//! process of an app, with Redis's own expiry, on one node or a Cluster.
//!
//! # Key layout
//!
//! ```text
//! <prefix>{<tag>}:s:<handle>        HASH   one session
//! <prefix>{<tag>}:u:<userIdJson>    ZSET   a user's sessions: member = handle, score = expiresAt
//! ```
//!
//! `prefix` defaults to `blitz-auth:` and may not contain `{` or `}`. The
//! `{<tag>}` is the Cluster hash tag: every key of one user hashes to one
//! slot, so every per-user operation is a single-slot script.
//!
//! - A handle's tag is its first 8 characters (`_` when those are not all
//!   from the token alphabet). [`RedisStore::new_handle`] makes handles of
//!   Blitz's shape (32 characters, `:ots` / `:ajwt`) whose first 8
//!   characters are, for a logged-in user, the user's tag, and random for
//!   anonymous sessions. Handles made elsewhere (32 random characters) work
//!   too on a single node.
//! - A user's tag is 8 characters of the token alphabet taken from
//!   `sha256(userIdJson)` ([`user_tag`]), `userIdJson` being the JSON text
//!   of the id (`1` and `"1"` are different users).
//!
//! The session hash has one field per [`SessionRecord`] field, absent when
//! `None` (an empty string is a value): `u` user id (JSON), `e` expiresAt
//! (ms since the epoch, decimal), `h` hashed session token, `c` anti-CSRF
//! token, `p` publicData, `v` privateData. Besides: `s` (schema version,
//! always `1`, so a handle-only row exists), `t` (the user's tag, with `u`),
//! and `P` / `V` (`1` when `p` / `v` is known to be `JSON.stringify` output
//! of an object, which the merge scripts can splice; see below).
//!
//! Why a hash rather than one JSON string: a refresh writes two fields
//! (`e`, `h`) without resending or re-parsing the data, the merge scripts
//! read only the field they merge into, and the record is still one
//! `HMGET` (of the record's fields only).
//!
//! # Expiry
//!
//! A record with `expiresAt` has the key TTL `PEXPIREAT expiresAt`, moved
//! with every change of `expiresAt`, so Redis drops it by its own clock. The
//! scripts also take the caller's `now_ms` and treat a record whose
//! `expiresAt < now_ms` as gone (as the engine does), so a store and an app
//! whose clocks differ a little still agree on what is live. An anonymous
//! row without `expiresAt` (Blitz's `$setPrivateData` rows) expires after
//! [`RedisOptions::anonymous_ttl_ms`] without a write; a user's row without
//! `expiresAt` never expires (as in the memory store). A user's index is
//! pruned (`ZREMRANGEBYSCORE -inf (now`) by every script that reads it, and
//! its key expires with its longest-lived member.
//!
//! # Commands (round trips)
//!
//! | operation | Redis |
//! |---|---|
//! | `get` (the hot path) | one `HMGET` |
//! | `create` | one script: `EXISTS`-guarded write (Conflict when a live record holds the handle), `PEXPIREAT`, `ZADD` to the index |
//! | `update` | one script: no write unless a live record exists (never revives a deleted session); moves the TTL and index score |
//! | `delete` | one script: `DEL` + `ZREM` |
//! | `merge_public_data`, `merge_private_data` | one script: read, merge, write |
//! | `get_for_user`, `delete_for_user`, `merge_public_data_for_user` | one script each, whatever the number of sessions |
//!
//! Every script runs atomically, so concurrent merges lose no key, a merge
//! never revives a deleted session, and the per-user operations are atomic
//! with respect to logins, revocations and merges of single sessions.
//!
//! `get_for_user` lists sessions by expiry (soonest first), not by
//! creation as the memory store does.
//!
//! # Merges
//!
//! Merges happen inside Redis on the stored JSON text: Rust sends each key
//! JSON-quoted and each value already `JSON.stringify`'d
//! ([`json::stringify`]), and a small Lua splicer (`redis/prelude.lua`)
//! scans the stored object's top-level members (skipping strings, escapes
//! and nested values), replaces the value text of keys that are set, drops
//! removed keys and appends new keys before the closing brace: byte for
//! byte what [`JsonMerge::apply`] returns (a differential test checks
//! thousands of random cases against the real Redis). That holds when the
//! stored text is itself `JSON.stringify` output, which the store checks in
//! Rust whenever it writes data and records in the `P` / `V` flag; a
//! missing, empty or `null` value is `{}`. The per-user merge splices each
//! distinct stored text once (a user's sessions mostly share theirs).
//!
//! Two cases are merged in Rust instead, with [`JsonMerge::apply`] and a
//! compare-and-set script, retried (for up to `timeout_ms`) when another
//! write came in between:
//! - a stored value not known to be canonical (written by other means, or
//!   not JSON). A value that is not JSON is a [`StoreErrorKind::Corrupt`]
//!   error and stays as it is (for the per-user merge: no session changes);
//!   JSON that is not an object merges as `{}`, as [`JsonMerge::apply`]
//!   and the memory store do;
//! - a merge that adds an array-index key such as `"2"`, which
//!   `JSON.stringify` orders before the other keys.
//!
//! **These are the only operations that take more than one round trip**:
//! two, plus two per lost race.
//!
//! # Connections and failures
//!
//! deadpool-redis makes the connections; the store keeps `pool_size` of
//! them checked out and spreads requests over them (redis-rs connections
//! multiplex concurrent requests), because deadpool-redis sends a `PING`
//! with every connection it hands out, which would double the round trips
//! (see `redis/conn.rs`).
//!
//! Every request is bounded by [`RedisOptions::timeout_ms`] (and so are the
//! pool's waits and connects). Redis down, unreachable, restarting or
//! failing over is [`StoreErrorKind::Unavailable`] (the engine reports
//! `SESSION_STORE_UNAVAILABLE`) with the address (never the password) and
//! what to check. After a dropped connection or a timeout every connection
//! is renewed on its next use, so the store works again as soon as Redis
//! does. A request that finds its connection dropped is sent once more on a
//! new connection, except `create` (a repeat could report its own write as
//! a conflict); a `delete` repeated that way may report `false` for a
//! session it did delete. Unreadable stored data is `Corrupt`; anything
//! else `Failed`. Nothing panics. What Redis acknowledged survives a Redis
//! restart as far as its persistence settings (AOF) keep it.
//!
//! The store's futures must be polled inside a tokio runtime (with its
//! timer enabled); polled elsewhere first (the Node binding polls once on
//! the JS thread), they yield once so the caller can move them onto one,
//! and fail with `Failed` if it does not.
//!
//! # Cluster
//!
//! With `cluster: true` the store uses deadpool-redis's Cluster pool. Every
//! script touches the keys of one hash tag only: the key it is given, plus
//! the session hashes of a user (per-user scripts) or the user's index
//! (session scripts), which the script derives and which are on the same
//! slot. A logged-in session must then carry a handle from
//! [`RedisStore::new_handle`] (its tag is the user's): `create` refuses
//! others, which would put the session and its user's index on different
//! slots. Cluster mode is tested against a real three-node cluster (cluster_tests.rs).
#![forbid(unsafe_code)]

#[cfg(test)]
mod cluster_tests;
mod conn;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis::{self as redis_rs, Script, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use self::conn::{shown_url, Connections, Request, Target};
use super::{
    JsonMerge, SessionRecord, SessionStore, SessionUpdate, StoreError, StoreErrorKind, StoreResult,
};
use crate::session::json;
use crate::session::token::{generate_handle, HandleKind, HANDLE_SEPARATOR};
use crate::token::{generate_token, TOKEN_ALPHABET};

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "blitz-auth:";
/// Default number of connections: one. A connection multiplexes every
/// request, and the binding starts the requests of one event-loop turn
/// together, so they leave in one write and their replies arrive in one read;
/// spread over more connections they cost Redis (and us) more syscalls for
/// the same work (measured on the HTTP bench: 15 commands per Redis read on
/// one connection, 1.6 on 16, and twice the Redis CPU per request).
pub const DEFAULT_POOL_SIZE: usize = 1;
/// Default bound of every request, in ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Default idle lifetime of anonymous rows without expiry: 30 days.
pub const DEFAULT_ANONYMOUS_TTL_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Length of a hash tag (the start of a handle).
const TAG_LEN: usize = 8;

/// Options of [`RedisStore::connect`] / [`RedisStore::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`). One URL
    /// for a single node; for a Cluster, one or more seed nodes.
    pub urls: Vec<String>,
    /// Prefix of every key; no `{` or `}`.
    pub prefix: String,
    /// Connect to a Redis Cluster.
    pub cluster: bool,
    /// Connections kept open (each multiplexes concurrent requests). At least 1.
    pub pool_size: usize,
    /// Bound of every request, connect and pool wait, in ms. At least 1.
    pub timeout_ms: u64,
    /// Idle lifetime of anonymous rows without `expiresAt` (the rows
    /// `$setPrivateData` makes for anonymous sessions): each write restarts
    /// it. `None` keeps them until deleted, as Blitz does.
    pub anonymous_ttl_ms: Option<u64>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            urls: vec!["redis://127.0.0.1:6379".to_owned()],
            prefix: DEFAULT_PREFIX.to_owned(),
            cluster: false,
            pool_size: DEFAULT_POOL_SIZE,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            anonymous_ttl_ms: Some(DEFAULT_ANONYMOUS_TTL_MS),
        }
    }
}

impl RedisOptions {
    /// The defaults, for one node at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisOptions {
            urls: vec![url.into()],
            ..RedisOptions::default()
        }
    }
}

/// The scripts, loaded once per process (their SHA1 is what EVALSHA sends).
struct Scripts {
    create: Script,
    update: Script,
    delete: Script,
    merge: Script,
    swap: Script,
    user_get: Script,
    user_merge: Script,
    user_swap: Script,
    user_delete: Script,
}

impl Scripts {
    fn all(&self) -> [&Script; 9] {
        [
            &self.create,
            &self.update,
            &self.delete,
            &self.merge,
            &self.swap,
            &self.user_get,
            &self.user_merge,
            &self.user_swap,
            &self.user_delete,
        ]
    }
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let prelude = include_str!("redis/prelude.lua");
    let script = |body: &str| Script::new(&format!("{prelude}\n{body}"));
    Scripts {
        create: script(include_str!("redis/create.lua")),
        update: script(include_str!("redis/update.lua")),
        delete: script(include_str!("redis/delete.lua")),
        merge: script(include_str!("redis/merge.lua")),
        swap: script(include_str!("redis/swap.lua")),
        user_get: script(include_str!("redis/user_get.lua")),
        user_merge: script(include_str!("redis/user_merge.lua")),
        user_swap: script(include_str!("redis/user_swap.lua")),
        user_delete: script(include_str!("redis/user_delete.lua")),
    }
});

/// Hash fields (see the module docs).
mod field {
    pub const SCHEMA: &str = "s";
    pub const USER: &str = "u";
    pub const TAG: &str = "t";
    pub const EXPIRES: &str = "e";
    pub const TOKEN_HASH: &str = "h";
    pub const CSRF: &str = "c";
    pub const PUBLIC: &str = "p";
    pub const PUBLIC_SPLICE: &str = "P";
    pub const PRIVATE: &str = "v";
    pub const PRIVATE_SPLICE: &str = "V";
}

/// What `get` reads of a session (`SCHEMA` only tells a present row with no
/// data from a missing one).
const RECORD_FIELDS: [&str; 7] = [
    field::SCHEMA,
    field::USER,
    field::EXPIRES,
    field::TOKEN_HASH,
    field::CSRF,
    field::PUBLIC,
    field::PRIVATE,
];

/// Which data a merge goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    Public,
    Private,
}

impl Data {
    fn field(self) -> &'static str {
        match self {
            Data::Public => field::PUBLIC,
            Data::Private => field::PRIVATE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Data::Public => "publicData",
            Data::Private => "privateData",
        }
    }
}

/// The Redis store (see the module docs). Cloning shares the connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conns: Connections,
    prefix: String,
    cluster: bool,
    /// `anonymous_ttl_ms` as a script argument (`""`: none).
    anonymous_ttl: String,
    shown: String,
    pool_size: usize,
    timeout_ms: u64,
    /// Merges done in Rust (compare-and-set path), for tests and tuning.
    caller_merges: AtomicU64,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.inner.shown)
            .field("prefix", &self.inner.prefix)
            .field("cluster", &self.inner.cluster)
            .field("pool_size", &self.inner.pool_size)
            .field("timeout_ms", &self.inner.timeout_ms)
            .finish()
    }
}

/// The hash tag of a user: 8 token-alphabet characters from
/// `sha256(user_id)`, `user_id` being the JSON text of the id.
pub fn user_tag(user_id: &str) -> String {
    let digest = Sha256::digest(user_id.as_bytes());
    let alphabet = TOKEN_ALPHABET.as_bytes();
    digest
        .iter()
        .take(TAG_LEN)
        .map(|b| char::from(alphabet.get(usize::from(b & 63)).copied().unwrap_or(b'_')))
        .collect()
}

fn is_tag_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-'
}

/// The hash tag of a handle: its first 8 characters when they are all from
/// the token alphabet, `_` otherwise (`session_key` in `prelude.lua`).
fn tag_of(handle: &str) -> &str {
    match handle.get(..TAG_LEN) {
        Some(t) if t.as_bytes().iter().all(is_tag_byte) => t,
        _ => "_",
    }
}

/// Whether `key` is an array index, which `JSON.stringify` orders before
/// the other keys: `0`, or digits without a leading zero, below 2^32 − 1
/// (the rule of `session::json`).
fn is_array_index(key: &str) -> bool {
    let b = key.as_bytes();
    let canonical = match b {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 10 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical && key.parse::<u32>().is_ok_and(|n| n != u32::MAX)
}

/// Whether `text` is exactly what `JSON.stringify` writes for an object, so
/// the Lua splicer may merge into it.
fn is_spliceable(text: &str) -> bool {
    match json::parse(text) {
        Ok(v @ Json::Object(_)) => json::stringify(&v) == text,
        _ => false,
    }
}

fn splice_flag(text: &str) -> &'static str {
    if is_spliceable(text) {
        "1"
    } else {
        "0"
    }
}

fn quote(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 2);
    json::write_string(&mut out, key);
    out
}

/// A merge as script arguments (`read_merge` in `prelude.lua`), and whether
/// only Rust can apply it (it adds an array-index key).
fn merge_args(merge: &JsonMerge) -> (Vec<String>, bool) {
    let mut args = Vec::with_capacity(1 + 2 * merge.set.len() + merge.remove.len());
    args.push(merge.set.len().to_string());
    let mut caller = false;
    for (k, v) in &merge.set {
        caller |= is_array_index(k);
        args.push(quote(k));
        args.push(json::stringify(v));
    }
    args.extend(merge.remove.iter().map(|k| quote(k)));
    (args, caller)
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::new(StoreErrorKind::Corrupt, message)
}

/// A reply of the wrong shape (never its content: it may hold session data).
fn unexpected(what: &str, v: &Value) -> StoreError {
    let shape = match v {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Map(_) => "a map",
        Value::ServerError(_) => "an error",
        _ => "another type",
    };
    StoreError::new(
        StoreErrorKind::Failed,
        format!("unexpected reply from Redis to {what}: {shape}"),
    )
}

/// The error of a merge whose stored value `apply` refused.
fn unmergeable(handle: &str, name: &str, e: &StoreError) -> StoreError {
    let detail = e
        .message
        .split_once(": ")
        .map_or(e.message.as_str(), |(_, d)| d);
    corrupt(format!(
        "session {handle}: the stored {name} is not valid JSON ({detail}); it was left as it is"
    ))
}

fn int_of(what: &str, v: &Value) -> StoreResult<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(unexpected(what, other)),
    }
}

fn text_of(what: &str, v: Value) -> StoreResult<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b)
            .map_err(|_| corrupt(format!("Redis returned text that is not UTF-8 to {what}"))),
        Value::SimpleString(s) => Ok(s),
        Value::VerbatimString { text, .. } => Ok(text),
        other => Err(unexpected(what, &other)),
    }
}

fn array_of(what: &str, v: Value) -> StoreResult<Vec<Value>> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(what, &other)),
    }
}

/// The field/value pairs of an `HGETALL` reply (RESP2 array or RESP3 map).
fn pairs_of(what: &str, v: Value) -> StoreResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    match v {
        Value::Map(m) => {
            for (k, v) in m {
                out.push((text_of(what, k)?, text_of(what, v)?));
            }
        }
        other => {
            let mut it = array_of(what, other)?.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((text_of(what, k)?, text_of(what, v)?));
            }
        }
    }
    Ok(out)
}

/// A record from its hash fields; `None` for an empty hash (no key).
fn record_of(handle: &str, pairs: Vec<(String, String)>) -> StoreResult<Option<SessionRecord>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut r = SessionRecord {
        handle: handle.to_owned(),
        ..SessionRecord::default()
    };
    for (k, v) in pairs {
        match k.as_str() {
            field::USER => r.user_id = Some(v),
            field::EXPIRES => {
                r.expires_at = Some(v.parse().map_err(|_| {
                    corrupt(format!(
                        "session {handle}: stored expiresAt {v:?} is not a number"
                    ))
                })?)
            }
            field::TOKEN_HASH => r.hashed_session_token = Some(v),
            field::CSRF => r.anti_csrf_token = Some(v),
            field::PUBLIC => r.public_data = Some(v),
            field::PRIVATE => r.private_data = Some(v),
            _ => {}
        }
    }
    Ok(Some(r))
}

/// What the single-record merge script answered.
enum Merged {
    Gone,
    Done(String),
    /// Rust must merge: the stored value (`None`: field absent).
    Stored(Option<String>),
}

impl RedisStore {
    /// A store over the given Redis, without connecting: the first request
    /// connects (so an app can start while Redis is still coming up).
    /// Fails only on invalid options.
    pub fn new(options: RedisOptions) -> StoreResult<RedisStore> {
        let invalid = |m: String| StoreError::new(StoreErrorKind::Failed, m);
        let RedisOptions {
            urls,
            prefix,
            cluster,
            pool_size,
            timeout_ms,
            anonymous_ttl_ms,
        } = options;
        let urls: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        let shown = urls
            .iter()
            .map(|u| shown_url(u))
            .collect::<Vec<_>>()
            .join(", ");
        match (urls.len(), cluster) {
            (0, _) => return Err(invalid("the Redis store needs a url".to_owned())),
            (1, false) | (_, true) => {}
            (_, false) => {
                return Err(invalid(format!(
                    "several Redis urls ({shown}) are only for a Cluster: set cluster: true, or give one url"
                )))
            }
        }
        if prefix.contains(['{', '}']) {
            return Err(invalid(format!(
                "the Redis key prefix {prefix:?} may not contain {{ or }} (the store's hash tags follow it)"
            )));
        }
        if pool_size == 0 {
            return Err(invalid("the Redis poolSize must be at least 1".to_owned()));
        }
        if timeout_ms == 0 {
            return Err(invalid("the Redis timeoutMs must be at least 1".to_owned()));
        }
        let anonymous_ttl = match anonymous_ttl_ms {
            Some(0) => {
                return Err(invalid(
                    "the anonymous row TTL must be at least 1 ms (or none)".to_owned(),
                ))
            }
            Some(ms) => ms.to_string(),
            None => String::new(),
        };
        let conns = Connections::new(&Target {
            urls,
            cluster,
            pool_size,
            timeout: Duration::from_millis(timeout_ms),
            shown: shown.clone(),
        })?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                conns,
                prefix,
                cluster,
                anonymous_ttl,
                shown,
                pool_size,
                timeout_ms,
                caller_merges: AtomicU64::new(0),
            }),
        })
    }

    /// [`RedisStore::new`], then a first contact: loads the scripts into
    /// Redis (every primary of a Cluster). Fails with
    /// [`StoreErrorKind::Unavailable`] when Redis cannot be reached.
    pub async fn connect(options: RedisOptions) -> StoreResult<RedisStore> {
        let store = RedisStore::new(options)?;
        store.load_scripts().await?;
        Ok(store)
    }

    /// Load the scripts into Redis, which also checks that it answers. Not
    /// needed for correctness: a script Redis does not know (after a restart
    /// or `SCRIPT FLUSH`) is loaded by the request that needs it.
    pub async fn load_scripts(&self) -> StoreResult<()> {
        for script in SCRIPTS.all() {
            self.send("SCRIPT LOAD", Request::Load(script), true)
                .await?;
        }
        Ok(())
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// Requests sent to Redis so far (a script that had to be loaded first
    /// counts its load too). For tests and benchmarks.
    pub fn round_trips(&self) -> u64 {
        self.inner.conns.round_trips()
    }

    /// Merges done in Rust with a compare-and-set (see the module docs).
    pub fn caller_merges(&self) -> u64 {
        self.inner.caller_merges.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.inner.conns.open()
    }

    /// The key of a session's hash.
    pub fn session_key(&self, handle: &str) -> String {
        format!("{}{{{}}}:s:{handle}", self.inner.prefix, tag_of(handle))
    }

    /// The key of a user's index (`user_id`: JSON text of the id).
    pub fn user_index_key(&self, user_id: &str) -> String {
        format!("{}{{{}}}:u:{user_id}", self.inner.prefix, user_tag(user_id))
    }

    async fn send(&self, what: &str, request: Request<'_>, retry: bool) -> StoreResult<Value> {
        self.inner.conns.send(what, request, retry).await
    }

    async fn run(
        &self,
        what: &str,
        script: &Script,
        keys: &[&str],
        args: &[&str],
        retry: bool,
    ) -> StoreResult<Value> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        self.send(what, Request::Script(&inv), retry).await
    }

    /// The single-record merge script; `read_only` asks for the stored value.
    async fn merge_script(
        &self,
        handle: &str,
        data: Data,
        expires_at: &str,
        now: &str,
        read_only: bool,
        merge_args: &[String],
    ) -> StoreResult<Merged> {
        let what = "a merge";
        let key = self.session_key(handle);
        let mut args: Vec<&str> = vec![
            now,
            &self.inner.anonymous_ttl,
            expires_at,
            &self.inner.prefix,
            handle,
            data.field(),
            if read_only { "1" } else { "0" },
        ];
        if read_only {
            args.push("0");
        } else {
            args.extend(merge_args.iter().map(String::as_str));
        }
        let reply = self.run(what, &SCRIPTS.merge, &[&key], &args, true).await?;
        let mut it = array_of(what, reply)?.into_iter();
        let status = it.next().map(|v| int_of(what, &v)).transpose()?;
        match (status, it.next(), it.next()) {
            (Some(0), None, None) => Ok(Merged::Gone),
            (Some(1), Some(text), None) => Ok(Merged::Done(text_of(what, text)?)),
            (Some(2), Some(present), Some(stored)) => {
                let present = text_of(what, present)? == "1";
                let stored = text_of(what, stored)?;
                Ok(Merged::Stored(present.then_some(stored)))
            }
            _ => Err(StoreError::new(
                StoreErrorKind::Failed,
                format!("unexpected reply from Redis to {what}"),
            )),
        }
    }

    /// Merge into one record's public or private data (see the module docs).
    async fn merge_into(
        &self,
        handle: &str,
        data: Data,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let now = now_ms.to_string();
        let expires = expires_at.map(|e| e.to_string()).unwrap_or_default();
        let (args, caller) = merge_args(merge);
        let mut stored = match self
            .merge_script(handle, data, &expires, &now, caller, &args)
            .await?
        {
            Merged::Gone => return Ok(None),
            Merged::Done(text) => return Ok(Some(text)),
            Merged::Stored(stored) => stored,
        };
        self.inner.caller_merges.fetch_add(1, Ordering::Relaxed);
        let key = self.session_key(handle);
        let deadline = self.retry_deadline();
        let mut attempt = 0u32;
        loop {
            let merged = merge
                .apply(stored.as_deref())
                .map_err(|e| unmergeable(handle, data.name(), &e))?;
            let args = [
                now.as_str(),
                &self.inner.anonymous_ttl,
                &expires,
                &self.inner.prefix,
                handle,
                data.field(),
                if stored.is_some() { "1" } else { "0" },
                stored.as_deref().unwrap_or(""),
                &merged,
                splice_flag(&merged),
            ];
            let reply = self
                .run("a merge", &SCRIPTS.swap, &[&key], &args, true)
                .await?;
            match int_of("a merge", &reply)? {
                1 => return Ok(Some(merged)),
                0 => return Ok(None),
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(self.too_contended(&format!("session {handle}")));
            }
            backoff(&mut attempt).await;
            stored = match self
                .merge_script(handle, data, &expires, &now, true, &[])
                .await?
            {
                Merged::Gone => return Ok(None),
                Merged::Done(text) => return Ok(Some(text)),
                Merged::Stored(s) => s,
            };
        }
    }

    /// Until when a merge done in Rust keeps retrying its compare-and-set:
    /// ten times the call timeout, since every attempt is itself bounded and a
    /// burst of writes to the same session ends.
    fn retry_deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.inner.timeout_ms.saturating_mul(10))
    }

    fn too_contended(&self, what: &str) -> StoreError {
        StoreError::new(
            StoreErrorKind::Failed,
            format!(
                "a merge into {what} kept losing races with other writes for {} ms (10 x timeoutMs); try again",
                self.inner.timeout_ms.saturating_mul(10)
            ),
        )
    }

    /// The per-user merge script. `Ok(Ok(handles))` when merged in Redis;
    /// `Ok(Err(rows))` with `(handle, stored publicData)` when Rust must.
    async fn user_merge_script(
        &self,
        index: &str,
        user_id: &str,
        now: &str,
        read_only: bool,
        merge_args: &[String],
    ) -> StoreResult<Result<Vec<String>, Vec<(String, Option<String>)>>> {
        let what = "setPublicDataForUser";
        let tag = user_tag(user_id);
        let mut args: Vec<&str> = vec![
            now,
            &self.inner.prefix,
            user_id,
            &tag,
            if read_only { "1" } else { "0" },
        ];
        if read_only {
            args.push("0");
        } else {
            args.extend(merge_args.iter().map(String::as_str));
        }
        let reply = self
            .run(what, &SCRIPTS.user_merge, &[index], &args, true)
            .await?;
        let mut it = array_of(what, reply)?.into_iter();
        let status = it.next().map(|v| int_of(what, &v)).transpose()?;
        match status {
            Some(1) => Ok(Ok(it
                .map(|v| text_of(what, v))
                .collect::<StoreResult<_>>()?)),
            Some(2) => {
                let mut rows = Vec::new();
                while let (Some(h), Some(present), Some(stored)) = (it.next(), it.next(), it.next())
                {
                    let present = text_of(what, present)? == "1";
                    let stored = text_of(what, stored)?;
                    rows.push((text_of(what, h)?, present.then_some(stored)));
                }
                Ok(Err(rows))
            }
            _ => Err(StoreError::new(
                StoreErrorKind::Failed,
                format!("unexpected reply from Redis to {what}"),
            )),
        }
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        // HMGET of the fields a record has, not HGETALL: half the strings
        // to parse (no field names), and none of the bookkeeping fields.
        let mut cmd = redis_rs::cmd("HMGET");
        cmd.arg(self.session_key(handle)).arg(&RECORD_FIELDS[..]);
        let reply = self.send("get", Request::Cmd(&cmd), true).await?;
        let values = array_of("get", reply)?;
        if values.len() != RECORD_FIELDS.len() {
            return Err(corrupt(format!(
                "Redis answered HMGET of {} fields with {} values",
                RECORD_FIELDS.len(),
                values.len()
            )));
        }
        let mut pairs = Vec::with_capacity(RECORD_FIELDS.len());
        for (name, v) in RECORD_FIELDS.iter().zip(values) {
            if !matches!(v, Value::Nil) {
                pairs.push(((*name).to_owned(), text_of("get", v)?));
            }
        }
        let record = record_of(handle, pairs)?;
        Ok(record.filter(|r| r.expires_at.is_none_or(|e| e >= now_ms)))
    }

    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let what = "getSessions";
        let index = self.user_index_key(user_id);
        let now = now_ms.to_string();
        let tag = user_tag(user_id);
        let args = [now.as_str(), &self.inner.prefix, user_id, &tag];
        let reply = self
            .run(what, &SCRIPTS.user_get, &[&index], &args, true)
            .await?;
        let mut it = array_of(what, reply)?.into_iter();
        let mut out = Vec::new();
        while let (Some(h), Some(fields)) = (it.next(), it.next()) {
            let handle = text_of(what, h)?;
            if let Some(r) = record_of(&handle, pairs_of(what, fields)?)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
        let handle = record.handle.as_str();
        let key = self.session_key(handle);
        let index = record.user_id.as_deref().map(|u| self.user_index_key(u));
        let tag = record.user_id.as_deref().map(user_tag);
        if self.inner.cluster && tag.as_deref().is_some_and(|t| t != tag_of(handle)) {
            return Err(StoreError::new(
                StoreErrorKind::Failed,
                format!(
                    "in Cluster mode a user's session needs a handle from RedisStore::new_handle (its first {TAG_LEN} characters are the user's hash tag); {handle} is not one"
                ),
            ));
        }
        let now = now_ms.to_string();
        let expires = record.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let mut args: Vec<&str> = vec![
            &now,
            &self.inner.anonymous_ttl,
            &expires,
            handle,
            field::SCHEMA,
            "1",
        ];
        if let (Some(u), Some(t)) = (record.user_id.as_deref(), tag.as_deref()) {
            args.extend([field::USER, u, field::TAG, t]);
        }
        if record.expires_at.is_some() {
            args.extend([field::EXPIRES, &expires]);
        }
        if let Some(h) = record.hashed_session_token.as_deref() {
            args.extend([field::TOKEN_HASH, h]);
        }
        if let Some(c) = record.anti_csrf_token.as_deref() {
            args.extend([field::CSRF, c]);
        }
        if let Some(p) = record.public_data.as_deref() {
            args.extend([field::PUBLIC, p, field::PUBLIC_SPLICE, splice_flag(p)]);
        }
        if let Some(v) = record.private_data.as_deref() {
            args.extend([field::PRIVATE, v, field::PRIVATE_SPLICE, splice_flag(v)]);
        }
        let mut keys = vec![key.as_str()];
        keys.extend(index.as_deref());
        // Not retried: a repeat after a lost reply would see its own record.
        let reply = self
            .run("createSession", &SCRIPTS.create, &keys, &args, false)
            .await?;
        match int_of("createSession", &reply)? {
            1 => Ok(()),
            _ => Err(StoreError::new(
                StoreErrorKind::Conflict,
                "a session with this handle already exists",
            )),
        }
    }

    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool> {
        let key = self.session_key(handle);
        let now = now_ms.to_string();
        let expires = update.expires_at.map(|e| e.to_string()).unwrap_or_default();
        let mut args: Vec<&str> = vec![
            &now,
            &self.inner.anonymous_ttl,
            &expires,
            &self.inner.prefix,
            handle,
        ];
        if let Some(h) = update.hashed_session_token.as_deref() {
            args.extend([field::TOKEN_HASH, h]);
        }
        if let Some(p) = update.public_data.as_deref() {
            args.extend([field::PUBLIC, p, field::PUBLIC_SPLICE, splice_flag(p)]);
        }
        if let Some(v) = update.private_data.as_deref() {
            args.extend([field::PRIVATE, v, field::PRIVATE_SPLICE, splice_flag(v)]);
        }
        let reply = self
            .run("updateSession", &SCRIPTS.update, &[&key], &args, true)
            .await?;
        Ok(int_of("updateSession", &reply)? == 1)
    }

    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
        let key = self.session_key(handle);
        let now = now_ms.to_string();
        let args = [now.as_str(), &self.inner.prefix, handle];
        let reply = self
            .run("deleteSession", &SCRIPTS.delete, &[&key], &args, true)
            .await?;
        Ok(int_of("deleteSession", &reply)? == 1)
    }

    fn new_handle(&self, kind: HandleKind, user_id: Option<&str>) -> crate::error::Result<String> {
        match (kind, user_id) {
            (HandleKind::Authenticated, Some(user)) => {
                let mut handle = user_tag(user);
                handle.push_str(&generate_token(32 - TAG_LEN)?);
                handle.push(HANDLE_SEPARATOR);
                handle.push_str(kind.suffix());
                Ok(handle)
            }
            _ => generate_handle(kind),
        }
    }

    async fn merge_public_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.merge_into(handle, Data::Public, merge, expires_at, now_ms)
            .await
    }

    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.merge_into(handle, Data::Private, merge, None, now_ms)
            .await
    }

    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let what = "setPublicDataForUser";
        let index = self.user_index_key(user_id);
        let now = now_ms.to_string();
        let (args, caller) = merge_args(merge);
        let mut rows = match self
            .user_merge_script(&index, user_id, &now, caller, &args)
            .await?
        {
            Ok(handles) => return Ok(handles),
            Err(rows) => rows,
        };
        self.inner.caller_merges.fetch_add(1, Ordering::Relaxed);
        let tag = user_tag(user_id);
        let deadline = self.retry_deadline();
        let mut attempt = 0u32;
        loop {
            // Every merge first: one corrupt record changes nothing.
            let mut merged = Vec::with_capacity(rows.len());
            for (handle, stored) in &rows {
                let text = merge
                    .apply(stored.as_deref())
                    .map_err(|e| unmergeable(handle, "publicData", &e))?;
                let flag = splice_flag(&text);
                merged.push((text, flag));
            }
            let n = rows.len().to_string();
            let mut args: Vec<&str> = vec![&now, &self.inner.prefix, user_id, &tag, &n];
            for ((handle, stored), (text, flag)) in rows.iter().zip(&merged) {
                args.extend([
                    handle.as_str(),
                    if stored.is_some() { "1" } else { "0" },
                    stored.as_deref().unwrap_or(""),
                    text,
                    flag,
                ]);
            }
            let reply = self
                .run(what, &SCRIPTS.user_swap, &[&index], &args, true)
                .await?;
            if int_of(what, &reply)? == 1 {
                return Ok(rows.into_iter().map(|(h, _)| h).collect());
            }
            if Instant::now() >= deadline {
                return Err(self.too_contended(&format!("the sessions of user {user_id}")));
            }
            backoff(&mut attempt).await;
            rows = match self
                .user_merge_script(&index, user_id, &now, true, &[])
                .await?
            {
                Ok(handles) => return Ok(handles),
                Err(rows) => rows,
            };
        }
    }

    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        let what = "revokeAllSessionsForUser";
        let index = self.user_index_key(user_id);
        let now = now_ms.to_string();
        let tag = user_tag(user_id);
        let args = [now.as_str(), &self.inner.prefix, user_id, &tag];
        let reply = self
            .run(what, &SCRIPTS.user_delete, &[&index], &args, true)
            .await?;
        array_of(what, reply)?
            .into_iter()
            .map(|v| text_of(what, v))
            .collect()
    }
}

/// Randomised exponential backoff between compare-and-set attempts (up to
/// 32 ms), so a merge done in Rust is not starved by a burst of merges done
/// inside Redis.
async fn backoff(attempt: &mut u32) {
    let cap_ms = 1u64 << (*attempt).min(5);
    *attempt = attempt.saturating_add(1);
    let mut b = [0u8; 2];
    let jitter = if crate::token::fill_random(&mut b).is_ok() {
        u64::from(u16::from_le_bytes(b)) % (cap_ms * 1000)
    } else {
        cap_ms * 500
    };
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}
