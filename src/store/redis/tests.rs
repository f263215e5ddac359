//! Tests of the Redis store against a real Redis at `REDIS_URL` (default
//! `redis://127.0.0.1:6379`). They fail, never skip, when it cannot be
//! reached. Each test uses its own key prefix and deletes its keys at the
//! end (also when it fails), so runs never collide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool_redis::redis::{self as redis_rs, AsyncCommands};
use serde_json::{json, Map, Value as Json};

use super::*;
use crate::session::config::SessionConfig;
use crate::session::cookie::CLEARED_EXPIRES;
use crate::session::engine::{Engine, RequestInput, ResponseState};
use crate::store::conformance::{now_ms, store_conformance_tests, Store};
use crate::token::hash256;

const HOUR: i64 = 3_600_000;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn unique_prefix() -> String {
    format!("blitz-auth-test:{}:", generate_token(12).unwrap())
}

fn options(prefix: &str) -> RedisOptions {
    RedisOptions {
        urls: vec![redis_url()],
        prefix: prefix.to_owned(),
        pool_size: 4,
        ..RedisOptions::default()
    }
}

fn unreachable(e: &StoreError) -> ! {
    panic!(
        "Redis at {} is not reachable ({e}). These tests need a running Redis: start one \
         (`redis-server`, or `docker run -p 6379:6379 redis:7`) or point REDIS_URL at one.",
        shown_url(&redis_url())
    )
}

/// Deletes every key under a prefix when dropped (on success and on panic).
struct Cleanup {
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        // Dropped inside a runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(delete_prefix(&prefix)).ok()
        })
        .join();
        if !matches!(done, Ok(Some(_))) {
            eprintln!("could not delete the test keys under {}", self.prefix);
        }
    }
}

async fn try_raw() -> redis_rs::RedisResult<redis_rs::aio::MultiplexedConnection> {
    redis_rs::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await
}

/// A plain connection, to look at what the store wrote.
async fn raw() -> redis_rs::aio::MultiplexedConnection {
    try_raw().await.unwrap_or_else(|e| {
        unreachable(&StoreError::new(StoreErrorKind::Unavailable, e.to_string()))
    })
}

async fn keys_under(prefix: &str) -> redis_rs::RedisResult<Vec<String>> {
    let mut c = try_raw().await?;
    let mut cursor = 0u64;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis_rs::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut c)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

async fn delete_prefix(prefix: &str) -> redis_rs::RedisResult<usize> {
    let keys = keys_under(prefix).await?;
    let mut c = try_raw().await?;
    for chunk in keys.chunks(500) {
        let _: i64 = c.del(chunk).await?;
    }
    Ok(keys.len())
}

/// A store on a fresh prefix, and the guard that cleans it up.
async fn store_with(edit: impl FnOnce(&mut RedisOptions)) -> (RedisStore, Cleanup) {
    let prefix = unique_prefix();
    let mut o = options(&prefix);
    edit(&mut o);
    let cleanup = Cleanup { prefix };
    match RedisStore::connect(o).await {
        Ok(s) => (s, cleanup),
        Err(e) => unreachable(&e),
    }
}

async fn store() -> (RedisStore, Cleanup) {
    store_with(|_| {}).await
}

/// The store as the conformance suite takes it, cleaning up when the last
/// reference goes.
struct Cleaned {
    store: RedisStore,
    _cleanup: Cleanup,
}

#[async_trait]
impl SessionStore for Cleaned {
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        self.store.get(handle, now_ms).await
    }
    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.store.get_for_user(user_id, now_ms).await
    }
    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
        self.store.create(record, now_ms).await
    }
    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool> {
        self.store.update(handle, update, now_ms).await
    }
    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
        self.store.delete(handle, now_ms).await
    }
    fn new_handle(&self, kind: HandleKind, user_id: Option<&str>) -> crate::error::Result<String> {
        self.store.new_handle(kind, user_id)
    }
    async fn merge_public_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.store
            .merge_public_data(handle, merge, expires_at, now_ms)
            .await
    }
    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.store.merge_private_data(handle, merge, now_ms).await
    }
    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        self.store
            .merge_public_data_for_user(user_id, merge, now_ms)
            .await
    }
    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        self.store.delete_for_user(user_id, now_ms).await
    }
}

async fn conformance_store() -> Store {
    let (store, cleanup) = store().await;
    Arc::new(Cleaned {
        store,
        _cleanup: cleanup,
    })
}

/// The suite every store passes; `caller_clock` is left out because Redis
/// expires keys by its own clock (see the conformance module docs).
mod conformance_suite {
    use super::*;

    store_conformance_tests!(groups [semantics, atomicity, expiry]: conformance_store());
}

fn merge_of(v: Json, remove: &[&str]) -> JsonMerge {
    let Json::Object(set) = v else {
        panic!("not an object")
    };
    JsonMerge {
        set,
        remove: remove.iter().map(|k| (*k).to_owned()).collect(),
    }
}

fn session(store: &RedisStore, user: &str, expires_at: Option<i64>) -> SessionRecord {
    let handle = store
        .new_handle(HandleKind::Authenticated, Some(user))
        .unwrap();
    SessionRecord {
        hashed_session_token: Some(hash256(handle.as_bytes())),
        anti_csrf_token: Some(generate_token(32).unwrap()),
        public_data: Some(format!(r#"{{"userId":{user},"role":"user"}}"#)),
        private_data: Some("{}".to_owned()),
        user_id: Some(user.to_owned()),
        expires_at,
        handle,
    }
}

fn handles(records: &[SessionRecord]) -> Vec<String> {
    records.iter().map(|r| r.handle.clone()).collect()
}

fn new_user() -> String {
    let mut b = [0u8; 4];
    crate::token::fill_random(&mut b).unwrap();
    u32::from_le_bytes(b).to_string()
}

// ---------------------------------------------------------------- layout

#[tokio::test]
async fn handles_carry_the_users_hash_tag() {
    let (store, _c) = store().await;
    for user in ["1", r#""1""#, r#""user@example.com""#, "0", "{}"] {
        let h = store
            .new_handle(HandleKind::Authenticated, Some(user))
            .unwrap();
        assert_eq!(h.len(), 36, "{h}");
        assert!(h.ends_with(":ots"));
        assert_eq!(&h[..8], user_tag(user));
        assert_eq!(tag_of(&h), user_tag(user));
        let key = store.session_key(&h);
        let index = store.user_index_key(user);
        assert_eq!(
            key,
            format!("{}{{{}}}:s:{h}", store.prefix(), user_tag(user))
        );
        assert_eq!(
            index,
            format!("{}{{{}}}:u:{user}", store.prefix(), user_tag(user))
        );
    }
    assert_ne!(user_tag("1"), user_tag(r#""1""#));
    let a = store.new_handle(HandleKind::Anonymous, None).unwrap();
    let b = store.new_handle(HandleKind::Anonymous, None).unwrap();
    assert!(a.ends_with(":ajwt") && a.len() == 37);
    assert_ne!(&a[..8], &b[..8], "anonymous tags are random");
    // Handles from elsewhere: their first 8 characters, or `_` when those
    // cannot be a tag.
    assert_eq!(tag_of("abcdefgh123:ots"), "abcdefgh");
    assert_eq!(tag_of("short"), "_");
    assert_eq!(tag_of(""), "_");
    assert_eq!(tag_of("ab}defgh123"), "_");
    assert_eq!(tag_of("abcdéfgh123"), "_");
}

#[tokio::test]
async fn records_are_hashes_with_redis_expiry_and_a_scored_index() {
    let (store, _c) = store().await;
    let mut c = raw().await;
    let now = now_ms();
    let user = new_user();
    let rec = session(&store, &user, Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    let key = store.session_key(&rec.handle);
    let index = store.user_index_key(&user);

    let fields: BTreeMap<String, String> = c.hgetall(&key).await.unwrap();
    let want: BTreeMap<String, String> = [
        ("s", "1".to_owned()),
        ("u", user.clone()),
        ("t", user_tag(&user)),
        ("e", (now + HOUR).to_string()),
        ("h", rec.hashed_session_token.clone().unwrap()),
        ("c", rec.anti_csrf_token.clone().unwrap()),
        ("p", rec.public_data.clone().unwrap()),
        ("P", "1".to_owned()),
        ("v", "{}".to_owned()),
        ("V", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(fields, want);
    let expire_at: i64 = redis_rs::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(expire_at, now + HOUR);
    let score: f64 = c.zscore(&index, &rec.handle).await.unwrap();
    assert_eq!(score as i64, now + HOUR);
    let index_expire: i64 = redis_rs::cmd("PEXPIRETIME")
        .arg(&index)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(index_expire, now + HOUR);

    // A sliding refresh moves the key TTL, the score and the index TTL.
    let later = now + 5 * HOUR;
    let update = SessionUpdate {
        expires_at: Some(later),
        ..SessionUpdate::default()
    };
    assert!(store.update(&rec.handle, &update, now).await.unwrap());
    let expire_at: i64 = redis_rs::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(expire_at, later);
    let score: f64 = c.zscore(&index, &rec.handle).await.unwrap();
    assert_eq!(score as i64, later);
    let index_expire: i64 = redis_rs::cmd("PEXPIRETIME")
        .arg(&index)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(index_expire, later);

    // Non-canonical data is stored verbatim and flagged for the Rust merge.
    let odd = SessionUpdate {
        public_data: Some(r#"{ "userId": 1 }"#.to_owned()),
        ..SessionUpdate::default()
    };
    assert!(store.update(&rec.handle, &odd, now).await.unwrap());
    let flag: String = c.hget(&key, "P").await.unwrap();
    assert_eq!(flag, "0");

    // Revoking all removes the records and the index.
    let gone = store.delete_for_user(&user, now).await.unwrap();
    assert_eq!(gone, vec![rec.handle.clone()]);
    let exists: i64 = c.exists(&[&key, &index]).await.unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test]
async fn a_member_whose_record_is_away_stays_indexed_until_it_returns() {
    // What a Cluster resharding looks like to a per-user script: the index
    // is on this node, one session's key has already moved. The script must
    // not drop that session from the index, or $revokeAll would never reach
    // it once the move completes.
    let (store, _c) = store().await;
    let mut c = raw().await;
    let now = now_ms();
    let user = new_user();
    let here = session(&store, &user, Some(now + HOUR));
    let away = session(&store, &user, Some(now + HOUR));
    store.create(&here, now).await.unwrap();
    store.create(&away, now).await.unwrap();
    let key = store.session_key(&away.handle);
    let parked = format!("{key}:parked");
    let _: () = c.rename(&key, &parked).await.unwrap();

    let live = store.get_for_user(&user, now).await.unwrap();
    assert_eq!(handles(&live), vec![here.handle.clone()]);
    let merged = store
        .merge_public_data_for_user(&user, &merge_of(json!({"plan": "pro"}), &[]), now)
        .await
        .unwrap();
    assert_eq!(merged, vec![here.handle.clone()]);
    let score: Option<f64> = c
        .zscore(store.user_index_key(&user), &away.handle)
        .await
        .unwrap();
    assert_eq!(score.map(|s| s as i64), Some(now + HOUR), "still indexed");

    // Back on this node: listed again, and revoked with the others.
    let _: () = c.rename(&parked, &key).await.unwrap();
    let mut live = handles(&store.get_for_user(&user, now).await.unwrap());
    live.sort();
    let mut both = vec![here.handle.clone(), away.handle.clone()];
    both.sort();
    assert_eq!(live, both);
    let mut gone = store.delete_for_user(&user, now).await.unwrap();
    gone.sort();
    assert_eq!(gone, both);
}

#[tokio::test]
async fn anonymous_rows_without_expiry_get_the_idle_ttl() {
    let (store, _c) = store_with(|o| o.anonymous_ttl_ms = Some(60_000)).await;
    let mut c = raw().await;
    let now = now_ms();
    let handle = store.new_handle(HandleKind::Anonymous, None).unwrap();
    let row = SessionRecord {
        handle: handle.clone(),
        ..SessionRecord::default()
    };
    store.create(&row, now).await.unwrap();
    assert_eq!(store.get(&handle, now).await.unwrap(), Some(row));
    let key = store.session_key(&handle);
    let ttl: i64 = c.pttl(&key).await.unwrap();
    assert!((50_000..=60_000).contains(&ttl), "{ttl}");
    // A write restarts it.
    let _: () = c.pexpire(&key, 1_000).await.unwrap();
    store
        .merge_private_data(&handle, &merge_of(json!({"cart": [1]}), &[]), now)
        .await
        .unwrap();
    let ttl: i64 = c.pttl(&key).await.unwrap();
    assert!(ttl > 50_000, "{ttl}");

    // A user's row without expiry never expires; without the option, neither
    // does an anonymous one.
    let user_row = session(&store, &new_user(), None);
    store.create(&user_row, now).await.unwrap();
    let ttl: i64 = c.pttl(store.session_key(&user_row.handle)).await.unwrap();
    assert_eq!(ttl, -1);
    let (forever, _c2) = store_with(|o| o.anonymous_ttl_ms = None).await;
    let h = forever.new_handle(HandleKind::Anonymous, None).unwrap();
    let row = SessionRecord {
        handle: h.clone(),
        ..SessionRecord::default()
    };
    forever.create(&row, now).await.unwrap();
    let ttl: i64 = c.pttl(forever.session_key(&h)).await.unwrap();
    assert_eq!(ttl, -1);
}

#[tokio::test]
async fn the_callers_clock_also_expires_records() {
    let (store, _c) = store().await;
    let now = now_ms();
    let rec = session(&store, &new_user(), Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    // Still in Redis (its TTL is an hour away), gone for a caller an hour on.
    let later = now + HOUR + 1;
    assert_eq!(store.get(&rec.handle, later).await.unwrap(), None);
    assert!(!store
        .update(&rec.handle, &SessionUpdate::default(), later)
        .await
        .unwrap());
    assert_eq!(
        store
            .merge_public_data(&rec.handle, &merge_of(json!({"a": 1}), &[]), None, later)
            .await
            .unwrap(),
        None
    );
    // At its expiry instant it is still there (`expiresAt < now` is gone).
    assert!(store.get(&rec.handle, now + HOUR).await.unwrap().is_some());
    // ...and a create at `later` replaces it.
    let mut fresh = session(&store, &new_user(), Some(later + HOUR));
    fresh.handle = rec.handle.clone();
    store.create(&fresh, later).await.unwrap();
    assert_eq!(store.get(&rec.handle, later).await.unwrap(), Some(fresh));
}

#[tokio::test]
async fn options_are_validated() {
    let bad = [
        RedisOptions {
            urls: vec![],
            ..RedisOptions::default()
        },
        RedisOptions {
            urls: vec!["redis://a".into(), "redis://b".into()],
            ..RedisOptions::default()
        },
        RedisOptions {
            prefix: "app{1}:".into(),
            ..RedisOptions::default()
        },
        RedisOptions {
            pool_size: 0,
            ..RedisOptions::default()
        },
        RedisOptions {
            timeout_ms: 0,
            ..RedisOptions::default()
        },
        RedisOptions {
            anonymous_ttl_ms: Some(0),
            ..RedisOptions::default()
        },
        RedisOptions::new("http://not-redis"),
    ];
    for o in bad {
        let e = RedisStore::new(o.clone()).expect_err(&format!("{o:?}"));
        assert_eq!(e.kind, StoreErrorKind::Failed, "{e}");
    }
    let e = RedisStore::new(RedisOptions::new("redis://:hunter2@localhost:1/0"))
        .map(|s| format!("{s:?}"))
        .unwrap();
    assert!(!e.contains("hunter2"), "{e}");
    let o = RedisOptions::new("redis://x");
    assert_eq!(o.prefix, "blitz-auth:");
    assert_eq!(o.pool_size, 1);
    assert_eq!(o.timeout_ms, 1_000);
}

// ---------------------------------------------------------------- round trips

/// Requests the store sends while `f` runs.
async fn round_trips<T, F: std::future::Future<Output = T>>(store: &RedisStore, f: F) -> (u64, T) {
    let before = store.round_trips();
    let out = f.await;
    (store.round_trips() - before, out)
}

#[tokio::test]
async fn every_operation_is_one_round_trip() {
    let (store, _c) = store().await;
    let now = now_ms();
    let user = new_user();
    let rec = session(&store, &user, Some(now + HOUR));
    let other = session(&store, &user, Some(now + HOUR));
    // Warm every connection first (connecting is not a request).
    for _ in 0..8 {
        store.get("warm", now).await.unwrap();
    }
    let m = merge_of(json!({"role": "admin"}), &[]);
    let (n, r) = round_trips(&store, store.create(&rec, now)).await;
    r.unwrap();
    assert_eq!(n, 1, "create");
    store.create(&other, now).await.unwrap();
    let (n, r) = round_trips(&store, store.get(&rec.handle, now)).await;
    assert!(r.unwrap().is_some());
    assert_eq!(n, 1, "get");
    let (n, r) = round_trips(&store, store.get("missing:ots", now)).await;
    assert!(r.unwrap().is_none());
    assert_eq!(n, 1, "get of a missing handle");
    let update = SessionUpdate {
        expires_at: Some(now + 2 * HOUR),
        hashed_session_token: Some(hash256(b"t")),
        ..SessionUpdate::default()
    };
    let (n, r) = round_trips(&store, store.update(&rec.handle, &update, now)).await;
    assert!(r.unwrap());
    assert_eq!(n, 1, "update");
    let (n, r) = round_trips(
        &store,
        store.merge_public_data(&rec.handle, &m, Some(now + 3 * HOUR), now),
    )
    .await;
    assert!(r.unwrap().is_some());
    assert_eq!(n, 1, "merge_public_data");
    let (n, r) = round_trips(
        &store,
        store.merge_private_data(&rec.handle, &merge_of(json!({"x": [1]}), &["y"]), now),
    )
    .await;
    assert!(r.unwrap().is_some());
    assert_eq!(n, 1, "merge_private_data");
    let (n, r) = round_trips(&store, store.merge_public_data_for_user(&user, &m, now)).await;
    assert_eq!(r.unwrap().len(), 2);
    assert_eq!(n, 1, "merge_public_data_for_user");
    let (n, r) = round_trips(&store, store.get_for_user(&user, now)).await;
    assert_eq!(r.unwrap().len(), 2);
    assert_eq!(n, 1, "get_for_user");
    let (n, r) = round_trips(&store, store.delete(&other.handle, now)).await;
    assert!(r.unwrap());
    assert_eq!(n, 1, "delete");
    let (n, r) = round_trips(&store, store.delete_for_user(&user, now)).await;
    assert_eq!(r.unwrap(), vec![rec.handle.clone()]);
    assert_eq!(n, 1, "delete_for_user");

    // The Rust-side merge (an array-index key): two round trips.
    let rec = session(&store, &user, Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    let before = store.caller_merges();
    let (n, r) = round_trips(
        &store,
        store.merge_public_data(&rec.handle, &merge_of(json!({"7": true}), &[]), None, now),
    )
    .await;
    assert_eq!(
        r.unwrap().as_deref(),
        Some(format!(r#"{{"7":true,"userId":{user},"role":"user"}}"#).as_str())
    );
    assert_eq!(n, 2, "merge adding an array-index key");
    assert_eq!(store.caller_merges(), before + 1);
    let (n, r) = round_trips(
        &store,
        store.merge_public_data_for_user(&user, &merge_of(json!({"8": 1}), &[]), now),
    )
    .await;
    assert_eq!(r.unwrap(), vec![rec.handle.clone()]);
    assert_eq!(n, 2, "merge for user adding an array-index key");
    // A base holding array-index keys is still spliced in Redis.
    let (n, r) = round_trips(
        &store,
        store.merge_public_data(&rec.handle, &merge_of(json!({"z": 0}), &["7"]), None, now),
    )
    .await;
    assert_eq!(
        r.unwrap().as_deref(),
        Some(format!(r#"{{"8":1,"userId":{user},"role":"user","z":0}}"#).as_str())
    );
    assert_eq!(n, 1);
}

fn config() -> SessionConfig {
    SessionConfig {
        secret: "redis-store-tests-secret-0123456789abcdef".to_owned(),
        ..SessionConfig::default()
    }
}

/// The `Cookie` header a browser sends after `response`.
fn cookie_header(response: &ResponseState) -> String {
    response
        .cookies
        .iter()
        .filter(|c| !c.contains(CLEARED_EXPIRES))
        .filter_map(|c| c.split(';').next())
        .filter(|pair| pair.split_once('=').is_some_and(|(_, v)| !v.is_empty()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn cookie(response: &ResponseState, name: &str) -> Option<String> {
    response.cookies.iter().find_map(|c| {
        let pair = c.split(';').next()?;
        let (n, v) = pair.split_once('=')?;
        (n == name && !v.is_empty()).then(|| v.to_owned())
    })
}

fn request<'a>(
    method: &'a str,
    cookies: Option<&'a str>,
    csrf: Option<&'a str>,
    now_ms: i64,
) -> RequestInput<'a> {
    RequestInput {
        method,
        cookie_header: cookies,
        anti_csrf_header: csrf,
        now_ms,
        read_only: false,
    }
}

/// A logged-in browser: an engine over `store`, and the cookies of `$create`.
async fn logged_in(store: &RedisStore, now: i64) -> (Arc<Engine>, String, String) {
    let engine = Engine::new(config(), Arc::new(store.clone())).unwrap();
    let mut s = engine
        .resolve(&request("GET", None, None, now))
        .await
        .map_err(|f| f.error)
        .unwrap();
    let user = new_user();
    s.create(
        &merge_of(
            json!({"userId": user.parse::<u64>().unwrap(), "role": "user"}),
            &[],
        ),
        None,
        now,
    )
    .await
    .unwrap();
    let header = cookie_header(s.response());
    let csrf = cookie(s.response(), "blitz_sAntiCsrfToken").unwrap();
    (engine, header, csrf)
}

#[tokio::test]
async fn an_authenticated_request_is_one_round_trip() {
    let (store, _c) = store().await;
    let now = now_ms();
    let (engine, header, csrf) = logged_in(&store, now).await;
    for _ in 0..8 {
        store.get("warm", now).await.unwrap();
    }
    let jar = Some(header.as_str());
    let minute = 60_000;

    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("GET", jar, None, now + minute)),
    )
    .await;
    let s = s.map_err(|f| f.error).unwrap();
    assert!(s.kernel().user_id.is_some());
    assert!(s.response().cookies.iter().next().is_none(), "no refresh");
    assert_eq!(n, 1, "authenticated GET");

    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("POST", jar, Some(&csrf), now + minute)),
    )
    .await;
    s.map_err(|f| f.error).unwrap();
    assert_eq!(n, 1, "authenticated POST with its CSRF token");

    // Past a quarter of the 30-day window: the sliding refresh is one more.
    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("GET", jar, None, now + 8 * 24 * HOUR)),
    )
    .await;
    let s = s.map_err(|f| f.error).unwrap();
    assert!(s.response().cookies.iter().next().is_some(), "refreshed");
    assert_eq!(n, 2, "refresh");

    // Anonymous requests without private data never reach Redis.
    let (n, s) = round_trips(&store, engine.resolve(&request("GET", None, None, now))).await;
    let s = s.map_err(|f| f.error).unwrap();
    assert_eq!(n, 0, "new anonymous session");
    let anon = cookie_header(s.response());
    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("GET", Some(&anon), None, now)),
    )
    .await;
    s.map_err(|f| f.error).unwrap();
    assert_eq!(n, 0, "returning anonymous session");

    // After setPublicDataForUser (one round trip), the next request of a
    // session re-issues its token (one more), then it is back to one.
    let (engine, header, _) = logged_in(&store, now).await;
    let jar = Some(header.as_str());
    let s = engine
        .resolve(&request("GET", jar, None, now + minute))
        .await
        .map_err(|f| f.error)
        .unwrap();
    let user = s.kernel().user_id.clone().unwrap();
    let (n, changed) = round_trips(
        &store,
        engine.set_public_data_for_user(&user, &merge_of(json!({"role": "admin"}), &[]), now),
    )
    .await;
    assert_eq!(changed.unwrap().len(), 1);
    assert_eq!(n, 1, "setPublicDataForUser");
    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("GET", jar, None, now + minute)),
    )
    .await;
    let s = s.map_err(|f| f.error).unwrap();
    assert!(s.kernel().public_data.contains(r#""role":"admin""#));
    assert_eq!(n, 2, "request after a publicData change");
    let reissued = cookie_header(s.response());
    let (n, s) = round_trips(
        &store,
        engine.resolve(&request("GET", Some(&reissued), None, now + minute)),
    )
    .await;
    s.map_err(|f| f.error).unwrap();
    assert_eq!(n, 1, "the request after that");
}

/// The address Redis sees for the store's only connection (`pool_size: 1`).
async fn client_addr(store: &RedisStore) -> String {
    let mut cmd = redis_rs::cmd("CLIENT");
    cmd.arg("INFO");
    let info = store
        .inner
        .conns
        .send("CLIENT INFO", Request::Cmd(&cmd), false)
        .await
        .unwrap();
    let info = text_of("CLIENT INFO", info).unwrap();
    info.split_whitespace()
        .find_map(|f| f.strip_prefix("addr="))
        .expect("CLIENT INFO has addr=")
        .to_owned()
}

/// Redis's own view: every command MONITOR shows from the store's
/// connection while `f` runs (a marker `get` ends the window).
async fn commands_seen<T, F: std::future::Future<Output = T>>(
    store: &RedisStore,
    addr: &str,
    f: F,
) -> (Vec<String>, T) {
    use futures_util::StreamExt as _;
    let client = redis_rs::Client::open(redis_url()).unwrap();
    let monitor = client.get_async_monitor().await.unwrap();
    let mut lines = Box::pin(monitor.into_on_message::<String>());
    let out = f.await;
    let marker = format!("marker-{}", generate_token(10).unwrap());
    store.get(&marker, now_ms()).await.unwrap();
    let from_us = format!(" {addr}]");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next())
            .await
            .expect("MONITOR shows the marker")
            .expect("MONITOR stream open");
        if line.contains(&marker) {
            return (seen, out);
        }
        if line.contains(&from_us) {
            seen.push(line);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_itself_sees_one_command_per_request() {
    let (store, _c) = store_with(|o| o.pool_size = 1).await;
    let now = now_ms();
    let (engine, header, _) = logged_in(&store, now).await;
    let addr = client_addr(&store).await;
    let command = |line: &str| line.split('"').nth(1).unwrap_or_default().to_owned();

    let (seen, s) = commands_seen(
        &store,
        &addr,
        engine.resolve(&request("GET", Some(&header), None, now + 60_000)),
    )
    .await;
    let s = s.map_err(|f| f.error).unwrap();
    let user = s.kernel().user_id.clone().unwrap();
    assert_eq!(
        seen.iter().map(|l| command(l)).collect::<Vec<_>>(),
        ["HMGET"],
        "{seen:#?}"
    );

    for _ in 0..49 {
        store
            .create(&session(&store, &user, Some(now + HOUR)), now)
            .await
            .unwrap();
    }
    let m = merge_of(json!({"role": "admin"}), &[]);
    let (seen, changed) = commands_seen(
        &store,
        &addr,
        store.merge_public_data_for_user(&user, &m, now),
    )
    .await;
    assert_eq!(changed.unwrap().len(), 50);
    assert_eq!(
        seen.iter().map(|l| command(l)).collect::<Vec<_>>(),
        ["EVALSHA"],
        "{seen:#?}"
    );
    let (seen, gone) = commands_seen(&store, &addr, store.delete_for_user(&user, now)).await;
    assert_eq!(gone.unwrap().len(), 50);
    assert_eq!(seen.len(), 1, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merge_for_user_over_1000_sessions_is_one_round_trip() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let now = now_ms();
    let user = new_user();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let store = store.clone();
        let rec = session(&store, &user, Some(now + HOUR));
        tasks.push(tokio::spawn(async move { store.create(&rec, now).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut times = Vec::new();
    for i in 0..9 {
        let m = merge_of(json!({"role": format!("r{i}"), "plan": "pro"}), &[]);
        let start = Instant::now();
        let (n, changed) =
            round_trips(&store, store.merge_public_data_for_user(&user, &m, now)).await;
        times.push(start.elapsed());
        assert_eq!(n, 1);
        assert_eq!(changed.unwrap().len(), 1000);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "merge_public_data_for_user over 1000 sessions: median {:.2} ms (min {:.2}, max {:.2}), one round trip",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    assert!(median <= Duration::from_millis(50), "{median:?}");
    let rows = store.get_for_user(&user, now).await.unwrap();
    assert_eq!(rows.len(), 1000);
    for r in rows {
        assert_eq!(
            r.public_data.as_deref(),
            Some(format!(r#"{{"userId":{user},"role":"r8","plan":"pro"}}"#).as_str())
        );
    }
}

// ---------------------------------------------------------------- merges

/// xorshift64*: reproducible random cases (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

const KEYS: &[&str] = &[
    "a",
    "b",
    "c",
    "userId",
    "role",
    "roles",
    "plan",
    "0",
    "1",
    "2",
    "10",
    "4294967294",
    "4294967295",
    "01",
    "-1",
    "1.0",
    "",
    "é",
    "a\"b",
    "back\\slash",
    "😀",
    "line\nbreak",
    "__proto__",
    " ",
    "\u{2028}",
    "{",
    "}",
    ":",
    ",",
    "\u{0}",
];

const CHARS: &[char] = &[
    'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\r', '\u{0}', '\u{8}', '\u{c}', '\u{1f}',
    '\u{7f}', 'é', '✓', '😀', '\u{2028}', '{', '}', '[', ']', ':', ',',
];

fn random_string(rng: &mut Rng) -> String {
    (0..rng.below(8)).map(|_| *rng.pick(CHARS)).collect()
}

fn random_number(rng: &mut Rng) -> Json {
    let f = match rng.below(8) {
        0 => return json!(rng.below(100)),
        1 => return json!(-(rng.below(1_000_000) as i64)),
        2 => return json!(rng.next()),
        3 => f64::from_bits(rng.next()),
        4 => (rng.below(2000) as f64 - 1000.0) / 8.0,
        5 => *rng.pick(&[0.1, 1e21, 1e-7, 1.5e300, -0.0, 123456789.123, 5e-324]),
        6 => return json!(9_007_199_254_740_993u64),
        _ => rng.next() as f64 / 3.0,
    };
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn random_value(rng: &mut Rng, depth: usize) -> Json {
    match rng.below(if depth > 2 { 5 } else { 7 }) {
        0 => Json::Null,
        1 => Json::Bool(rng.below(2) == 0),
        2 => random_number(rng),
        3 | 4 => Json::String(random_string(rng)),
        5 => Json::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Json::Object(random_object(rng, depth + 1, 4)),
    }
}

fn random_object(rng: &mut Rng, depth: usize, max_keys: usize) -> Map<String, Json> {
    let mut m = Map::new();
    for _ in 0..rng.below(max_keys + 1) {
        let k = if rng.below(4) == 0 {
            random_string(rng)
        } else {
            (*rng.pick(KEYS)).to_owned()
        };
        m.insert(k, random_value(rng, depth));
    }
    m
}

/// A stored value: mostly `JSON.stringify` output, sometimes empty, null,
/// JSON written differently, JSON that is not an object, or not JSON.
fn random_base(rng: &mut Rng) -> Option<String> {
    let obj = Json::Object(random_object(rng, 0, 8));
    match rng.below(24) {
        0 => None,
        1 => Some(String::new()),
        2 => Some("null".to_owned()),
        3 => Some(" null ".to_owned()),
        4 => Some(serde_json::to_string_pretty(&obj).unwrap()),
        5 => Some(r#"{"a":"\ud83d","b":"\u0041","c":1.0,"d":1E2}"#.to_owned()),
        6 => Some(r#"{"a":1,"a":2}"#.to_owned()),
        7 => Some((*rng.pick(&["[1,2]", "5", "\"s\"", "true"])).to_owned()),
        8 => Some((*rng.pick(&["{not json", r#"{"a":1"#, r#"{"a":1}x"#, "{'a':1}"])).to_owned()),
        _ => Some(json::stringify(&obj)),
    }
}

fn random_merge(rng: &mut Rng) -> JsonMerge {
    let mut set = Map::new();
    for _ in 0..rng.below(5) {
        let k = if rng.below(5) == 0 {
            random_string(rng)
        } else {
            (*rng.pick(KEYS)).to_owned()
        };
        set.insert(k, random_value(rng, 1));
    }
    let remove = (0..rng.below(3))
        .map(|_| (*rng.pick(KEYS)).to_owned())
        .collect();
    JsonMerge { set, remove }
}

/// One random case: a record with a random stored value, two merges in a
/// row; each result (value or error) and what is stored must be
/// `JsonMerge::apply`'s. Returns the number of merges made.
async fn check_merge_case(store: &RedisStore, rng: &mut Rng, case: usize) -> u64 {
    let now = now_ms();
    let public = rng.below(2) == 0;
    let base = random_base(rng);
    let mut rec = if public {
        session(store, &new_user(), Some(now + HOUR))
    } else {
        SessionRecord {
            handle: store.new_handle(HandleKind::Anonymous, None).unwrap(),
            ..SessionRecord::default()
        }
    };
    if public {
        rec.public_data = base.clone();
    } else {
        rec.private_data = base.clone();
    }
    store.create(&rec, now).await.unwrap();
    let mut stored = base;
    let mut merges = 0;
    for step in 0..2 {
        merges += 1;
        let m = random_merge(rng);
        let want = m.apply(stored.as_deref());
        let got = if public {
            store.merge_public_data(&rec.handle, &m, None, now).await
        } else {
            store.merge_private_data(&rec.handle, &m, now).await
        };
        let row = store.get(&rec.handle, now).await.unwrap().unwrap();
        let now_stored = if public {
            row.public_data
        } else {
            row.private_data
        };
        match (want, got) {
            (Ok(want), Ok(Some(got))) => {
                assert_eq!(
                    got, want,
                    "case {case} step {step}: base {stored:?}, merge {m:?}"
                );
                assert_eq!(now_stored.as_deref(), Some(want.as_str()), "case {case}");
                stored = Some(want);
            }
            (Err(_), Err(e)) => {
                assert_eq!(e.kind, StoreErrorKind::Corrupt, "case {case}: {e}");
                assert_eq!(
                    now_stored, stored,
                    "case {case}: a failed merge changed the record"
                );
                return merges;
            }
            (want, got) => panic!(
                "case {case} step {step}: base {stored:?}, merge {m:?}: want {want:?}, got {got:?}"
            ),
        }
    }
    merges
}

fn seed() -> u64 {
    std::env::var("BLITZ_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            crate::token::fill_random(&mut b).unwrap();
            u64::from_le_bytes(b) | 1
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merges_in_redis_equal_json_merge_apply_byte_for_byte() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let seed = seed();
    println!("BLITZ_TEST_SEED={seed}");
    const TASKS: usize = 16;
    const CASES: usize = 250;
    let before = store.round_trips();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut merges = 0;
            for i in 0..CASES {
                merges += check_merge_case(&store, &mut rng, t * CASES + i).await;
            }
            merges
        }));
    }
    let mut merges = 0;
    for t in tasks {
        match t.await {
            Ok(n) => merges += n,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    let caller = store.caller_merges();
    println!(
        "{} cases, {merges} merges: {} spliced in Redis, {caller} merged in Rust; {} round trips",
        TASKS * CASES,
        merges - caller,
        store.round_trips() - before
    );
    // Both paths ran, the Lua splicer most.
    assert!(caller > 0);
    assert!(2 * caller < merges, "{caller} of {merges} merges in Rust");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merges_for_a_user_equal_json_merge_apply_byte_for_byte() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let seed = seed();
    println!("BLITZ_TEST_SEED={seed}");
    let mut rng = Rng(seed);
    let now = now_ms();
    for case in 0..400 {
        let user = new_user();
        let mut recs = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let mut r = session(&store, &user, Some(now + HOUR));
            r.public_data = if rng.below(6) == 0 {
                random_base(&mut rng)
            } else {
                Some(json::stringify(&Json::Object(random_object(
                    &mut rng, 0, 6,
                ))))
            };
            store.create(&r, now).await.unwrap();
            recs.push(r);
        }
        let m = random_merge(&mut rng);
        let want: Result<Vec<String>, _> = recs
            .iter()
            .map(|r| m.apply(r.public_data.as_deref()))
            .collect();
        let got = store.merge_public_data_for_user(&user, &m, now).await;
        match (want, got) {
            (Ok(want), Ok(changed)) => {
                assert_eq!(changed.len(), recs.len(), "case {case}");
                for (r, want) in recs.iter().zip(want) {
                    let row = store.get(&r.handle, now).await.unwrap().unwrap();
                    assert_eq!(
                        row.public_data.as_deref(),
                        Some(want.as_str()),
                        "case {case}: base {:?}, merge {m:?}",
                        r.public_data
                    );
                }
            }
            (Err(_), Err(e)) => {
                assert_eq!(e.kind, StoreErrorKind::Corrupt, "case {case}: {e}");
                for r in &recs {
                    assert_eq!(store.get(&r.handle, now).await.unwrap().as_ref(), Some(r));
                }
            }
            (want, got) => panic!("case {case}: merge {m:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn hundreds_of_concurrent_merges_on_one_session_lose_nothing() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let now = now_ms();
    let rec = session(&store, &new_user(), Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    // Plain keys are spliced in Redis; array-index keys take the Rust
    // compare-and-set path, so both race each other here.
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            let handle = rec.handle.clone();
            tokio::spawn(async move {
                let key = if i % 5 == 0 {
                    i.to_string()
                } else {
                    format!("k{i}")
                };
                let m = merge_of(json!({ key: i }), &[]);
                if i % 3 == 0 {
                    store.merge_private_data(&handle, &m, now).await
                } else {
                    store
                        .merge_public_data(&handle, &m, Some(now + 2 * HOUR), now)
                        .await
                }
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    let row = store.get(&rec.handle, now).await.unwrap().unwrap();
    let public: Map<String, Json> =
        serde_json::from_str(row.public_data.as_deref().unwrap()).unwrap();
    let private: Map<String, Json> =
        serde_json::from_str(row.private_data.as_deref().unwrap()).unwrap();
    for i in 0..300 {
        let key = if i % 5 == 0 {
            i.to_string()
        } else {
            format!("k{i}")
        };
        let data = if i % 3 == 0 { &private } else { &public };
        assert_eq!(data.get(&key), Some(&json!(i)), "lost {key}");
    }
    // What is stored is still exactly JSON.stringify output.
    for text in [row.public_data.unwrap(), row.private_data.unwrap()] {
        assert_eq!(json::stringify(&json::parse(&text).unwrap()), text);
    }
    assert_eq!(row.expires_at, Some(now + 2 * HOUR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_merges_and_deletes_on_a_users_sessions_lose_nothing() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let now = now_ms();
    let user = new_user();
    let recs: Vec<_> = (0..20)
        .map(|_| session(&store, &user, Some(now + HOUR)))
        .collect();
    for r in &recs {
        store.create(r, now).await.unwrap();
    }
    #[derive(Debug)]
    enum Done {
        Merged(String, String),
        MergedAll(Vec<String>, String),
        Deleted(String),
        Other,
    }
    let tasks: Vec<_> = (0..400usize)
        .map(|i| {
            let store = store.clone();
            let handle = recs[i % recs.len()].handle.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let key = format!("k{i}");
                let m = merge_of(json!({ key.clone(): i }), &[]);
                match i % 10 {
                    0..=3 => store
                        .merge_public_data(&handle, &m, None, now)
                        .await
                        .unwrap()
                        .map_or(Done::Other, |_| Done::Merged(handle, key)),
                    4 | 5 => Done::MergedAll(
                        store
                            .merge_public_data_for_user(&user, &m, now)
                            .await
                            .unwrap(),
                        key,
                    ),
                    6 if i % 40 == 6 => {
                        store.delete(&handle, now).await.unwrap();
                        Done::Deleted(handle)
                    }
                    7 => {
                        let u = SessionUpdate {
                            expires_at: Some(now + 2 * HOUR),
                            ..SessionUpdate::default()
                        };
                        store.update(&handle, &u, now).await.unwrap();
                        Done::Other
                    }
                    _ => {
                        store.get_for_user(&user, now).await.unwrap();
                        Done::Other
                    }
                }
            })
        })
        .collect();
    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    let mut deleted = BTreeSet::new();
    for d in &done {
        if let Done::Deleted(h) = d {
            deleted.insert(h.clone());
        }
    }
    for h in &deleted {
        assert_eq!(store.get(h, now).await.unwrap(), None, "{h} revived");
    }
    let mut data = BTreeMap::new();
    for r in &recs {
        if let Some(row) = store.get(&r.handle, now).await.unwrap() {
            let m: Map<String, Json> =
                serde_json::from_str(row.public_data.as_deref().unwrap()).unwrap();
            data.insert(r.handle.clone(), m);
        }
    }
    assert_eq!(data.len(), recs.len() - deleted.len());
    for d in &done {
        match d {
            Done::Merged(h, k) => {
                if let Some(m) = data.get(h) {
                    assert!(m.contains_key(k), "lost {k} on {h}");
                }
            }
            Done::MergedAll(handles, k) => {
                for h in handles {
                    if let Some(m) = data.get(h) {
                        assert!(m.contains_key(k), "lost {k} on {h}");
                    }
                }
            }
            _ => {}
        }
    }
    let live: BTreeSet<_> = store
        .get_for_user(&user, now)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.handle)
        .collect();
    assert_eq!(live, data.keys().cloned().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn revoke_all_racing_merges_and_refreshes_revives_nothing() {
    let (store, _c) = store_with(|o| o.pool_size = 8).await;
    let mut c = raw().await;
    for round in 0..5 {
        let now = now_ms();
        let user = new_user();
        let recs: Vec<_> = (0..30)
            .map(|_| session(&store, &user, Some(now + HOUR)))
            .collect();
        for r in &recs {
            store.create(r, now).await.unwrap();
        }
        let revoker = {
            let store = store.clone();
            let user = user.clone();
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                store.delete_for_user(&user, now).await.unwrap()
            })
        };
        let tasks: Vec<_> = (0..300usize)
            .map(|i| {
                let store = store.clone();
                let handle = recs[i % recs.len()].handle.clone();
                let user = user.clone();
                tokio::spawn(async move {
                    let key = if i % 7 == 0 {
                        i.to_string()
                    } else {
                        format!("k{i}")
                    };
                    let m = merge_of(json!({ key: i }), &[]);
                    match i % 4 {
                        0 => drop(
                            store
                                .merge_public_data(&handle, &m, Some(now + 2 * HOUR), now)
                                .await
                                .unwrap(),
                        ),
                        1 => drop(store.merge_private_data(&handle, &m, now).await.unwrap()),
                        2 => drop(
                            store
                                .merge_public_data_for_user(&user, &m, now)
                                .await
                                .unwrap(),
                        ),
                        _ => {
                            let u = SessionUpdate {
                                expires_at: Some(now + 2 * HOUR),
                                hashed_session_token: Some(hash256(b"x")),
                                ..SessionUpdate::default()
                            };
                            store.update(&handle, &u, now).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let gone = revoker.await.unwrap();
        assert_eq!(gone.len(), recs.len(), "round {round}");
        for r in &recs {
            assert_eq!(store.get(&r.handle, now).await.unwrap(), None, "revived");
            let exists: i64 = c.exists(store.session_key(&r.handle)).await.unwrap();
            assert_eq!(exists, 0, "a key was written back after revokeAll");
        }
        assert!(store.get_for_user(&user, now).await.unwrap().is_empty());
    }
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_unavailable() {
    // Nobody listens on port 1: refused at once.
    let dead = RedisOptions {
        urls: vec!["redis://:secret@127.0.0.1:1".to_owned()],
        timeout_ms: 300,
        pool_size: 2,
        ..RedisOptions::default()
    };
    let start = Instant::now();
    let e = RedisStore::connect(dead.clone()).await.unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Unavailable, "{e}");
    assert!(e.message.contains("redis://127.0.0.1:1"), "{e}");
    assert!(!e.message.contains("secret"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(1));

    // Built without connecting, it fails each request the same way.
    let store = RedisStore::new(dead).unwrap();
    let now = now_ms();
    let rec = session(&store, &new_user(), Some(now + HOUR));
    let m = merge_of(json!({"a": 1}), &[]);
    let start = Instant::now();
    let errors = [
        store.get(&rec.handle, now).await.unwrap_err(),
        store.create(&rec, now).await.unwrap_err(),
        store
            .update(&rec.handle, &SessionUpdate::default(), now)
            .await
            .unwrap_err(),
        store.delete(&rec.handle, now).await.unwrap_err(),
        store
            .merge_public_data(&rec.handle, &m, None, now)
            .await
            .unwrap_err(),
        store
            .merge_private_data(&rec.handle, &m, now)
            .await
            .unwrap_err(),
        store
            .merge_public_data_for_user("1", &m, now)
            .await
            .unwrap_err(),
        store.get_for_user("1", now).await.unwrap_err(),
        store.delete_for_user("1", now).await.unwrap_err(),
    ];
    for e in errors {
        assert_eq!(e.kind, StoreErrorKind::Unavailable, "{e}");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    // Through the engine: SESSION_STORE_UNAVAILABLE for a logged-in request.
    let (live, _c) = store_with(|_| {}).await;
    let (_, header, _) = logged_in(&live, now).await;
    let engine = Engine::new(config(), Arc::new(store)).unwrap();
    let failure = engine
        .resolve(&request("GET", Some(&header), None, now))
        .await
        .err()
        .expect("the store is down");
    assert_eq!(
        failure.error.code(),
        crate::ErrorCode::SessionStoreUnavailable
    );
}

#[tokio::test]
async fn a_silent_redis_fails_within_the_timeout() {
    // A listener that accepts and never answers: every request times out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let store = RedisStore::new(RedisOptions {
        urls: vec![format!("redis://127.0.0.1:{port}")],
        timeout_ms: 200,
        pool_size: 1,
        ..RedisOptions::default()
    })
    .unwrap();
    for _ in 0..2 {
        let start = Instant::now();
        let e = store.get("x", now_ms()).await.unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.kind, StoreErrorKind::Unavailable, "{e}");
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(800),
            "{took:?}"
        );
    }
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_replaced_without_failing_requests() {
    let (store, _c) = store_with(|o| o.pool_size = 3).await;
    let now = now_ms();
    let rec = session(&store, &new_user(), Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    let client_ids = |store: RedisStore| async move {
        let mut ids = BTreeSet::new();
        for _ in 0..3 {
            let mut cmd = redis_rs::cmd("CLIENT");
            cmd.arg("ID");
            let v = store
                .inner
                .conns
                .send("CLIENT ID", Request::Cmd(&cmd), false)
                .await
                .unwrap();
            ids.insert(int_of("CLIENT ID", &v).unwrap());
        }
        ids
    };
    let before = client_ids(store.clone()).await;
    assert_eq!(before.len(), 3);
    // What a Redis restart does to every connection.
    let mut c = raw().await;
    for id in &before {
        let _: i64 = redis_rs::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(*id)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..10 {
        assert_eq!(
            store.get(&rec.handle, now).await.unwrap().as_ref(),
            Some(&rec)
        );
    }
    let m = merge_of(json!({"after": "restart"}), &[]);
    assert!(store
        .merge_public_data(&rec.handle, &m, None, now)
        .await
        .unwrap()
        .is_some());
    let after = client_ids(store.clone()).await;
    assert!(after.is_disjoint(&before), "{before:?} {after:?}");
}

#[test]
fn a_future_first_polled_outside_tokio_yields_then_runs_on_a_runtime() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (store, _c) = rt.block_on(store());
    let now = now_ms();
    let rec = session(&store, &new_user(), Some(now + HOUR));
    rt.block_on(store.create(&rec, now)).unwrap();

    type Fut = Pin<Box<dyn Future<Output = StoreResult<Option<SessionRecord>>> + Send>>;
    let get = || -> Fut {
        let store = store.clone();
        let handle = rec.handle.clone();
        Box::pin(async move { store.get(&handle, now).await })
    };
    let mut cx = Context::from_waker(Waker::noop());
    // What the Node binding does: poll once on its own thread, then hand
    // the pending future to its runtime.
    let mut fut = get();
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    let got = rt.block_on(rt.spawn(fut)).unwrap().unwrap();
    assert_eq!(got.as_ref(), Some(&rec));
    // Never moved onto a runtime: an error, not a panic.
    let mut fut = get();
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert_eq!(e.kind, StoreErrorKind::Failed, "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cluster_mode_refuses_handles_off_the_users_slot() {
    // No Cluster here: the check comes before any I/O.
    let store = RedisStore::new(RedisOptions {
        cluster: true,
        ..RedisOptions::default()
    })
    .unwrap();
    let now = now_ms();
    let mut rec = session(&store, "42", Some(now + HOUR));
    rec.handle = generate_handle(HandleKind::Authenticated).unwrap();
    if tag_of(&rec.handle) == user_tag("42") {
        return; // one chance in 2^48
    }
    let e = store.create(&rec, now).await.unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Failed);
    assert!(e.message.contains("new_handle"), "{e}");
}

#[tokio::test]
async fn tests_leave_no_keys_behind() {
    let (store, cleanup) = store().await;
    let prefix = cleanup.prefix.clone();
    let now = now_ms();
    let user = new_user();
    for _ in 0..5 {
        store
            .create(&session(&store, &user, Some(now + HOUR)), now)
            .await
            .unwrap();
    }
    assert_eq!(keys_under(&prefix).await.unwrap().len(), 6);
    drop(cleanup);
    assert!(keys_under(&prefix).await.unwrap().is_empty());
}
