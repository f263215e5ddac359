//! The conformance suite every [`SessionStore`] must pass: the semantics
//! listed in the [`super`] module docs, checked one behaviour per function.
//!
//! Each check takes a fresh, empty store and uses random handles and user
//! ids, so a store backed by a shared service (Redis with a unique key
//! prefix, a JS adapter over a test database) can run it too. Every
//! operation gets a `now_ms`, as the engine passes its clock. Outside the
//! `caller_clock` group that `now` is the wall clock's, read once at the
//! start of the check, and expiry is tested with times relative to it
//! (`expires_at = now - 1` is expired, `now + 1 h` is live), so stores
//! whose expiry is real (Redis TTLs) agree with it and the suite never
//! sleeps.
//!
//! Four groups:
//! - **semantics**: what every store must do, including one whose compound
//!   methods are the trait's defaults and whose primitives return expired
//!   rows as stored (a JS adapter over Blitz's storage functions);
//! - **atomicity**: no lost update under concurrent merges, which only stores
//!   that override the compound methods with one atomic step can pass;
//! - **expiry**: a record expired at the caller's `now` is gone: hidden by
//!   `get`, not written by `update` or the merges, replaced by `create`.
//!   Expired by the wall clock too, so a store expiring by its own clock
//!   passes;
//! - **caller_clock**: the `now_ms` given is the store's only clock. The
//!   checks pass a `now` frozen a year in the past ([`FROZEN_PAST_MS`]) or
//!   running ahead of the wall clock, as an app's tests with fake timers do,
//!   and expect the store to follow it. A store whose expiry runs on its own
//!   clock (Redis) cannot, and opts out.
//!
//! Use [`store_conformance_tests!`] in a test module to get one
//! `#[tokio::test]` per check (needs tokio's `rt-multi-thread`), or call
//! [`run_all`] / [`run_semantics`] from inside a tokio runtime.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use super::{JsonMerge, SessionRecord, SessionStore, SessionUpdate, StoreErrorKind};
use crate::token::{fill_random, generate_token, hash256};

/// The store under test; `Arc` so concurrency checks can hand it to tasks.
pub type Store = Arc<dyn SessionStore>;

/// Generates the checks, one multi-threaded `#[tokio::test]` per check
/// (needs tokio's `rt-multi-thread`):
///
/// - `store_conformance_tests!(make)`: every group;
/// - `store_conformance_tests!(groups [semantics, atomicity, expiry]: make)`:
///   the groups listed, among `semantics`, `atomicity`, `expiry` and
///   `caller_clock` (see the module docs). `semantics` is itself
///   `semantics_core` plus `one_handle_two_users` (the two checks that
///   create one handle for two different users), so a store that cannot
///   place one handle under two users' keys (Redis Cluster) can run
///   `semantics_core` alone.
///
/// `make` is an expression of type `impl Future<Output = Store>`, evaluated
/// once per test, so each check gets a fresh store.
///
/// Which groups a store runs:
/// - a native store that expires records by the `now_ms` it is given (the
///   memory store): every group;
/// - a native store that expires records by its own clock, such as Redis
///   (key TTLs run on the Redis server's clock): `groups [semantics,
///   atomicity, expiry]`. It must leave out `caller_clock`, whose checks
///   pass a `now_ms` frozen a year in the past, or a day ahead, and expect
///   the store to follow it; the other groups only use the wall clock's
///   `now`;
/// - a store whose compound methods are the trait's (non-atomic) defaults:
///   no `atomicity`; and if it returns expired rows as stored, as Blitz's
///   storage functions do (a JS adapter), `groups [semantics]` only.
///
/// The group lists below are the only ones: [`run_all`] and
/// [`run_semantics`] expand them too.
macro_rules! store_conformance_tests {
    (groups [$($group:ident),* $(,)?]: $make:expr) => {
        $(
            $crate::store::conformance::store_conformance_tests!(@list $group, tests, $make);
        )*
    };
    (@list all, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@list semantics, $mode, $make);
        $crate::store::conformance::store_conformance_tests!(@list atomicity, $mode, $make);
        $crate::store::conformance::store_conformance_tests!(@list expiry, $mode, $make);
        $crate::store::conformance::store_conformance_tests!(@list caller_clock, $mode, $make);
    };
    (@list semantics, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@list semantics_core, $mode, $make);
        $crate::store::conformance::store_conformance_tests!(@list one_handle_two_users, $mode, $make);
    };
    (@list semantics_core, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@$mode $make;
            create_get_round_trip_all_fields,
            create_get_round_trip_nones,
            create_get_handle_only_record,
            get_missing_is_none,
            create_accepts_past_expiry,
            update_each_field_separately,
            update_all_fields_together,
            update_empty_changes_nothing,
            update_missing_returns_false_and_creates_nothing,
            delete_reports_whether_deleted,
            delete_then_writes_do_not_revive,
            get_for_user_only_live_records_of_that_user,
            get_for_user_user_ids_are_json_texts,
            get_for_user_uses_given_now,
            get_for_user_follows_updates_and_deletes,
            merge_public_data_keeps_order_appends_and_removes,
            merge_public_data_moves_expiry_only_when_given,
            merge_public_data_missing_handle,
            merge_public_data_empty_or_null_base,
            merge_public_data_corrupt_base_is_error,
            merge_private_data_keeps_order_appends_and_removes,
            merge_private_data_missing_handle,
            merge_private_data_empty_or_null_base,
            merge_private_data_corrupt_base_is_error,
            merge_public_data_for_user_many_sessions,
            merge_public_data_for_user_unknown_user,
            delete_for_user_deletes_only_live_sessions_of_that_user,
            values_round_trip_verbatim,
            concurrent_delete_vs_writes_never_revives,
            concurrent_delete_for_user_vs_merges_never_revives,
        );
    };
    (@list one_handle_two_users, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@$mode $make;
            create_conflict_keeps_original,
            concurrent_creates_one_wins,
        );
    };
    (@list atomicity, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@$mode $make;
            concurrent_merges_lose_no_update,
            concurrent_private_merges_lose_no_update,
            concurrent_public_and_private_merges_lose_nothing,
            concurrent_merges_for_user_lose_no_update,
        );
    };
    (@list expiry, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@$mode $make;
            expired_records_are_hidden,
            expired_records_are_not_written,
            expired_records_are_replaced_by_create,
        );
    };
    (@list caller_clock, $mode:ident, $make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@$mode $make;
            caller_clock_in_the_past_keeps_records_live,
            caller_clock_record_lives_through_its_expiry_instant,
            caller_clock_expires_by_the_given_now,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store: $crate::store::conformance::Store = $make.await;
                $crate::store::conformance::$name(store).await;
            }
        )*
    };
    (@run $make:expr; $($name:ident),* $(,)?) => {
        $(
            $crate::store::conformance::$name($make().await).await;
        )*
    };
    // Last: an `expr` matcher cannot back off once it has started parsing.
    ($make:expr) => {
        $crate::store::conformance::store_conformance_tests!(@list all, tests, $make);
    };
}
pub(crate) use store_conformance_tests;

/// Run every check of every group, each on a fresh store from `make`.
/// Panics on the first failure. Must run inside a tokio runtime
/// (multi-threaded to exercise real parallelism).
pub async fn run_all<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Store>,
{
    store_conformance_tests!(@list all, run, make);
}

/// Run the semantics group only (for stores whose compound methods are the
/// trait's non-atomic defaults and whose primitives return expired rows).
pub async fn run_semantics<F, Fut>(mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Store>,
{
    store_conformance_tests!(@list semantics, run, make);
}

// ---------------------------------------------------------------- helpers

const HOUR: i64 = 3_600_000;

/// 2025-01-15T12:00:00Z: the frozen, past `now` of the `caller_clock` group
/// (the clock of the spec vectors, as an app's tests may freeze it).
pub const FROZEN_PAST_MS: i64 = 1_736_942_400_000;

/// Wall-clock now in ms, the time base of every check.
pub fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("ms fit in i64")
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    fill_random(&mut b).expect("random");
    u32::from_le_bytes(b)
}

fn new_handle() -> String {
    format!("{}:ots", generate_token(32).expect("token"))
}

/// A random numeric user id (JSON text), so checks sharing a backend do not
/// see each other's sessions.
fn new_user() -> String {
    random_u32().to_string()
}

/// The JSON-string twin of a numeric user id: `123` → `"123"`.
fn as_json_string(user: &str) -> String {
    Value::String(user.to_owned()).to_string()
}

/// A full authenticated row, as `$create` writes it.
fn session(user: &str, expires_at: Option<i64>) -> SessionRecord {
    let handle = new_handle();
    SessionRecord {
        hashed_session_token: Some(hash256(handle.as_bytes())),
        anti_csrf_token: Some(generate_token(32).expect("token")),
        public_data: Some(format!(r#"{{"userId":{user},"role":"user"}}"#)),
        private_data: Some("{}".to_owned()),
        user_id: Some(user.to_owned()),
        expires_at,
        handle,
    }
}

fn merge(set: Value, remove: &[&str]) -> JsonMerge {
    let Value::Object(set) = set else {
        panic!("merge set must be an object");
    };
    JsonMerge {
        set,
        remove: remove.iter().map(|k| (*k).to_owned()).collect(),
    }
}

async fn create(store: &Store, now: i64, record: &SessionRecord) {
    store
        .create(record, now)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", record.handle));
}

async fn get(store: &Store, now: i64, handle: &str) -> Option<SessionRecord> {
    store
        .get(handle, now)
        .await
        .unwrap_or_else(|e| panic!("get {handle:?}: {e}"))
}

async fn user_handles(store: &Store, user: &str, now: i64) -> BTreeSet<String> {
    let rows = store
        .get_for_user(user, now)
        .await
        .unwrap_or_else(|e| panic!("get_for_user {user}: {e}"));
    let set: BTreeSet<String> = rows.iter().map(|r| r.handle.clone()).collect();
    assert_eq!(set.len(), rows.len(), "get_for_user returned duplicates");
    set
}

fn set_of<'a>(records: impl IntoIterator<Item = &'a SessionRecord>) -> BTreeSet<String> {
    records.into_iter().map(|r| r.handle.clone()).collect()
}

/// A record that is expired may still be returned by `get`; when it is, it
/// must be the record as stored.
async fn gone_or_unchanged(store: &Store, now: i64, record: &SessionRecord, what: &str) {
    if let Some(found) = get(store, now, &record.handle).await {
        assert_eq!(&found, record, "{what}: an expired record was changed");
    }
}

async fn join_all<T: Send + 'static>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("task panicked"));
    }
    out
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        other => panic!("not a JSON object: {text:?} ({other:?})"),
    }
}

// ---------------------------------------------------------------- semantics

/// `create` then `get` returns every field exactly, including odd
/// milliseconds, non-ASCII JSON and a JSON-string user id.
pub async fn create_get_round_trip_all_fields(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut rec = session(&user, Some(now + HOUR + 123));
    rec.public_data = Some(format!(
        r#"{{"userId":{user},"role":"admin","ünï":"✓ \"q\" \\ 😀"}}"#
    ));
    rec.private_data = Some(r#"{"cart":[1,2.5,{"x":null}]}"#.to_owned());
    create(&store, now, &rec).await;
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    let mut named = session(r#""user-abc""#, Some(now + 7 * 24 * HOUR + 1));
    named.public_data = Some(r#"{"userId":"user-abc"}"#.to_owned());
    create(&store, now, &named).await;
    assert_eq!(get(&store, now, &named.handle).await, Some(named));
    // The first record is untouched by the second.
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// `None` fields come back as `None`, not as empty strings or defaults.
pub async fn create_get_round_trip_nones(store: Store) {
    let now = now_ms();
    let anon = SessionRecord {
        handle: format!("{}:ajwt", generate_token(32).expect("token")),
        expires_at: Some(now + HOUR),
        ..SessionRecord::default()
    };
    create(&store, now, &anon).await;
    assert_eq!(get(&store, now, &anon.handle).await, Some(anon));

    let user = new_user();
    let sparse = SessionRecord {
        handle: new_handle(),
        user_id: Some(user),
        expires_at: Some(now + HOUR),
        hashed_session_token: Some(hash256(b"t")),
        ..SessionRecord::default()
    };
    create(&store, now, &sparse).await;
    assert_eq!(get(&store, now, &sparse.handle).await, Some(sparse));
}

/// The row `$setPrivateData` creates: only a handle, then `update` or
/// `merge_private_data` of the private data. It round-trips and belongs to
/// no user.
pub async fn create_get_handle_only_record(store: Store) {
    let now = now_ms();
    let mut rec = SessionRecord {
        handle: format!("{}:ajwt", generate_token(32).expect("token")),
        ..SessionRecord::default()
    };
    create(&store, now, &rec).await;
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    let update = SessionUpdate {
        private_data: Some(r#"{"cart":[7]}"#.to_owned()),
        ..SessionUpdate::default()
    };
    assert!(store
        .update(&rec.handle, &update, now)
        .await
        .expect("update"));
    rec.private_data = update.private_data.clone();
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    let out = store
        .merge_private_data(&rec.handle, &merge(json!({"n": 1}), &[]), now)
        .await
        .expect("merge_private_data");
    assert_eq!(out.as_deref(), Some(r#"{"cart":[7],"n":1}"#));
    rec.private_data = out;
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
    assert!(user_handles(&store, "null", now).await.is_empty());
    assert!(user_handles(&store, "", now).await.is_empty());
}

/// `get` of a handle never created is `None`.
pub async fn get_missing_is_none(store: Store) {
    let now = now_ms();
    assert_eq!(get(&store, now, &new_handle()).await, None);
    assert_eq!(get(&store, now, "").await, None);
}

/// A second `create` of a handle fails with `Conflict` and overwrites
/// nothing, whether it carries a full row or only the handle.
pub async fn create_conflict_keeps_original(store: Store) {
    let now = now_ms();
    let rec = session(&new_user(), Some(now + HOUR));
    create(&store, now, &rec).await;

    let mut other = session(&new_user(), Some(now + 2 * HOUR));
    other.handle = rec.handle.clone();
    let err = store.create(&other, now).await.expect_err("second create");
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{err}");

    let bare = SessionRecord {
        handle: rec.handle.clone(),
        ..SessionRecord::default()
    };
    let err = store
        .create(&bare, now)
        .await
        .expect_err("handle-only create");
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{err}");

    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));
    assert!(
        user_handles(&store, other.user_id.as_deref().unwrap_or_default(), now)
            .await
            .is_empty()
    );
}

/// Expiry in the past is legal everywhere (a Redis store must not send a
/// negative TTL); such a record is never live for `get_for_user`.
pub async fn create_accepts_past_expiry(store: Store) {
    let now = now_ms();
    let user = new_user();
    let expired = session(&user, Some(now - 1));
    create(&store, now, &expired).await;
    gone_or_unchanged(&store, now, &expired, "create with past expiry").await;
    assert!(user_handles(&store, &user, now).await.is_empty());

    let live = session(&user, Some(now + HOUR));
    create(&store, now, &live).await;
    let past = SessionUpdate {
        expires_at: Some(now - HOUR),
        ..SessionUpdate::default()
    };
    store
        .update(&live.handle, &past, now)
        .await
        .expect("update to past");
    assert!(user_handles(&store, &user, now).await.is_empty());

    let other = session(&user, Some(now + HOUR));
    create(&store, now, &other).await;
    store
        .merge_public_data(
            &other.handle,
            &merge(json!({"a": 1}), &[]),
            Some(now - 5),
            now,
        )
        .await
        .expect("merge with past expiry");
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// Each field of [`SessionUpdate`] changes that field alone.
pub async fn update_each_field_separately(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut rec = session(&user, Some(now + HOUR));
    create(&store, now, &rec).await;

    let steps = [
        SessionUpdate {
            expires_at: Some(now + 3 * HOUR + 7),
            ..SessionUpdate::default()
        },
        SessionUpdate {
            public_data: Some(format!(r#"{{"userId":{user},"role":"admin"}}"#)),
            ..SessionUpdate::default()
        },
        SessionUpdate {
            private_data: Some(r#"{"secret":1}"#.to_owned()),
            ..SessionUpdate::default()
        },
        SessionUpdate {
            hashed_session_token: Some(hash256(b"re-issued token")),
            ..SessionUpdate::default()
        },
    ];
    for step in steps {
        assert!(store.update(&rec.handle, &step, now).await.expect("update"));
        step.apply_to(&mut rec);
        assert_eq!(
            get(&store, now, &rec.handle).await,
            Some(rec.clone()),
            "{step:?}"
        );
    }
    let rows = store.get_for_user(&user, now).await.expect("get_for_user");
    assert_eq!(rows, vec![rec]);
}

/// All fields of one update land together.
pub async fn update_all_fields_together(store: Store) {
    let now = now_ms();
    let mut rec = session(&new_user(), Some(now + HOUR));
    create(&store, now, &rec).await;
    let update = SessionUpdate {
        expires_at: Some(now + 2 * HOUR),
        public_data: Some(r#"{"userId":1,"role":"x"}"#.to_owned()),
        private_data: Some(r#"{"p":true}"#.to_owned()),
        hashed_session_token: Some(hash256(b"new token")),
    };
    assert!(store
        .update(&rec.handle, &update, now)
        .await
        .expect("update"));
    update.apply_to(&mut rec);
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// An update with no fields succeeds on a live handle and changes nothing.
pub async fn update_empty_changes_nothing(store: Store) {
    let now = now_ms();
    let rec = session(&new_user(), Some(now + HOUR));
    create(&store, now, &rec).await;
    let empty = SessionUpdate::default();
    assert!(store
        .update(&rec.handle, &empty, now)
        .await
        .expect("update"));
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// `update` never creates.
pub async fn update_missing_returns_false_and_creates_nothing(store: Store) {
    let now = now_ms();
    let user = new_user();
    let phantom = session(&user, Some(now + HOUR));
    let update = SessionUpdate {
        expires_at: phantom.expires_at,
        public_data: phantom.public_data.clone(),
        private_data: phantom.private_data.clone(),
        hashed_session_token: phantom.hashed_session_token.clone(),
    };
    assert!(!store
        .update(&phantom.handle, &update, now)
        .await
        .expect("update"));
    assert_eq!(get(&store, now, &phantom.handle).await, None);
    assert!(user_handles(&store, &user, now).await.is_empty());
    // Creating it afterwards is not a conflict.
    create(&store, now, &phantom).await;
}

/// `delete` reports whether it deleted; a deleted handle can be created again.
pub async fn delete_reports_whether_deleted(store: Store) {
    let now = now_ms();
    let rec = session(&new_user(), Some(now + HOUR));
    assert!(!store
        .delete(&rec.handle, now)
        .await
        .expect("delete missing"));
    create(&store, now, &rec).await;
    assert!(store.delete(&rec.handle, now).await.expect("delete"));
    assert_eq!(get(&store, now, &rec.handle).await, None);
    assert!(!store.delete(&rec.handle, now).await.expect("delete twice"));
    create(&store, now, &rec).await;
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// After `delete`, no write path brings the session back.
pub async fn delete_then_writes_do_not_revive(store: Store) {
    let now = now_ms();
    let user = new_user();
    let rec = session(&user, Some(now + HOUR));
    create(&store, now, &rec).await;
    assert!(store.delete(&rec.handle, now).await.expect("delete"));

    let update = SessionUpdate {
        expires_at: Some(now + 2 * HOUR),
        public_data: Some("{}".to_owned()),
        private_data: Some("{}".to_owned()),
        hashed_session_token: Some(hash256(b"t")),
    };
    assert!(!store
        .update(&rec.handle, &update, now)
        .await
        .expect("update"));
    let merged = store
        .merge_public_data(
            &rec.handle,
            &merge(json!({"a": 1}), &[]),
            Some(now + HOUR),
            now,
        )
        .await
        .expect("merge");
    assert_eq!(merged, None);
    let merged = store
        .merge_private_data(&rec.handle, &merge(json!({"a": 1}), &[]), now)
        .await
        .expect("merge private");
    assert_eq!(merged, None);
    let changed = store
        .merge_public_data_for_user(&user, &merge(json!({"a": 1}), &[]), now)
        .await
        .expect("merge for user");
    assert!(changed.is_empty());
    assert_eq!(get(&store, now, &rec.handle).await, None);
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// `get_for_user` returns exactly the user's rows with `expires_at > now`,
/// each as stored: not expired rows, rows without expiry, other users' rows,
/// anonymous rows.
pub async fn get_for_user_only_live_records_of_that_user(store: Store) {
    let now = now_ms();
    let a = new_user();
    let b = new_user();
    let a1 = session(&a, Some(now + HOUR));
    let a2 = session(&a, Some(now + 2 * HOUR));
    let a_just_expired = session(&a, Some(now - 1));
    let a_long_expired = session(&a, Some(now - 24 * HOUR));
    let a_no_expiry = session(&a, None);
    let b1 = session(&b, Some(now + HOUR));
    let a_as_string = session(&as_json_string(&a), Some(now + HOUR));
    let anon = SessionRecord {
        handle: new_handle(),
        expires_at: Some(now + HOUR),
        public_data: Some(format!(r#"{{"userId":{a}}}"#)),
        ..SessionRecord::default()
    };
    for r in [
        &a1,
        &a2,
        &a_just_expired,
        &a_long_expired,
        &a_no_expiry,
        &b1,
        &a_as_string,
        &anon,
    ] {
        create(&store, now, r).await;
    }

    let mut rows = store.get_for_user(&a, now).await.expect("get_for_user");
    rows.sort_by(|x, y| x.handle.cmp(&y.handle));
    let mut want = vec![a1, a2];
    want.sort_by(|x, y| x.handle.cmp(&y.handle));
    assert_eq!(rows, want);

    assert_eq!(user_handles(&store, &b, now).await, set_of([&b1]));
    assert!(user_handles(&store, &new_user(), now).await.is_empty());
    gone_or_unchanged(&store, now, &a_just_expired, "get_for_user").await;
}

/// User ids are JSON texts: `123` and `"123"` are different users.
pub async fn get_for_user_user_ids_are_json_texts(store: Store) {
    let now = now_ms();
    let n = new_user();
    let s = as_json_string(&n);
    let by_number = session(&n, Some(now + HOUR));
    let by_string = session(&s, Some(now + HOUR));
    create(&store, now, &by_number).await;
    create(&store, now, &by_string).await;
    assert_eq!(user_handles(&store, &n, now).await, set_of([&by_number]));
    assert_eq!(user_handles(&store, &s, now).await, set_of([&by_string]));

    let changed = store
        .merge_public_data_for_user(&s, &merge(json!({"k": 1}), &[]), now)
        .await
        .expect("merge for user");
    assert_eq!(changed, vec![by_string.handle.clone()]);
    assert_eq!(
        get(&store, now, &by_number.handle).await,
        Some(by_number.clone())
    );
    let gone = store
        .delete_for_user(&n, now)
        .await
        .expect("delete_for_user");
    assert_eq!(gone, vec![by_number.handle.clone()]);
    assert!(get(&store, now, &by_string.handle).await.is_some());
}

/// Liveness is judged by the `now_ms` given, strictly: `expires_at == now`
/// is not live.
pub async fn get_for_user_uses_given_now(store: Store) {
    let now = now_ms();
    let user = new_user();
    let rec = session(&user, Some(now + HOUR));
    create(&store, now, &rec).await;
    let at = now + HOUR;
    assert_eq!(
        user_handles(&store, &user, now - HOUR).await,
        set_of([&rec])
    );
    assert_eq!(user_handles(&store, &user, at - 1).await, set_of([&rec]));
    assert!(user_handles(&store, &user, at).await.is_empty());

    let none = merge(json!({"k": 1}), &[]);
    let changed = store
        .merge_public_data_for_user(&user, &none, at)
        .await
        .expect("merge for user");
    assert!(
        changed.is_empty(),
        "merged a record not live at the given now"
    );
    let gone = store
        .delete_for_user(&user, at)
        .await
        .expect("delete_for_user");
    assert!(
        gone.is_empty(),
        "deleted a record not live at the given now"
    );
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
    // Last: given a `now` past the expiry, a store may drop the record.
    assert!(user_handles(&store, &user, at + HOUR).await.is_empty());
}

/// `get_for_user` sees expiry moves, data changes and deletes.
pub async fn get_for_user_follows_updates_and_deletes(store: Store) {
    let now = now_ms();
    let user = new_user();
    let a1 = session(&user, Some(now + HOUR));
    let mut a2 = session(&user, Some(now + HOUR));
    create(&store, now, &a1).await;
    create(&store, now, &a2).await;
    assert_eq!(user_handles(&store, &user, now).await, set_of([&a1, &a2]));

    let expire = SessionUpdate {
        expires_at: Some(now - 1),
        ..SessionUpdate::default()
    };
    store
        .update(&a1.handle, &expire, now)
        .await
        .expect("update");
    assert_eq!(user_handles(&store, &user, now).await, set_of([&a2]));

    let extend = SessionUpdate {
        expires_at: Some(now + 5 * HOUR),
        public_data: Some(format!(r#"{{"userId":{user},"v":2}}"#)),
        ..SessionUpdate::default()
    };
    assert!(store
        .update(&a2.handle, &extend, now)
        .await
        .expect("update"));
    extend.apply_to(&mut a2);
    let rows = store
        .get_for_user(&user, now + 4 * HOUR)
        .await
        .expect("get_for_user");
    assert_eq!(rows, vec![a2.clone()]);

    assert!(store.delete(&a2.handle, now).await.expect("delete"));
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// `{...stored, ...set}` minus `remove`: existing keys keep their place,
/// new ones are appended, the result is returned and stored, nothing else
/// changes.
pub async fn merge_public_data_keeps_order_appends_and_removes(store: Store) {
    let now = now_ms();
    let mut rec = session(&new_user(), Some(now + HOUR));
    rec.public_data = Some(r#"{"userId":5,"role":"user","tmp":true,"theme":"dark"}"#.to_owned());
    create(&store, now, &rec).await;

    let m = merge(
        json!({"role": "admin", "plan": "pro", "n": null}),
        &["tmp", "absent"],
    );
    let out = store
        .merge_public_data(&rec.handle, &m, None, now)
        .await
        .expect("merge");
    let want = r#"{"userId":5,"role":"admin","theme":"dark","plan":"pro","n":null}"#;
    assert_eq!(out.as_deref(), Some(want));
    rec.public_data = Some(want.to_owned());
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    // An empty merge still answers with the (normalised) current data.
    let out = store
        .merge_public_data(&rec.handle, &JsonMerge::default(), None, now)
        .await
        .expect("empty merge");
    assert_eq!(out.as_deref(), Some(want));
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// The expiry moves only when one is given, and `get_for_user` follows it.
pub async fn merge_public_data_moves_expiry_only_when_given(store: Store) {
    let now = now_ms();
    let user = new_user();
    let rec = session(&user, Some(now + HOUR));
    create(&store, now, &rec).await;

    let m = merge(json!({"a": 1}), &[]);
    store
        .merge_public_data(&rec.handle, &m, None, now)
        .await
        .expect("merge");
    let got = get(&store, now, &rec.handle).await.expect("record");
    assert_eq!(got.expires_at, rec.expires_at);

    let later = now + 5 * HOUR + 11;
    store
        .merge_public_data(&rec.handle, &m, Some(later), now)
        .await
        .expect("merge");
    let got = get(&store, now, &rec.handle).await.expect("record");
    assert_eq!(got.expires_at, Some(later));
    assert_eq!(got.hashed_session_token, rec.hashed_session_token);
    assert_eq!(got.anti_csrf_token, rec.anti_csrf_token);
    assert_eq!(got.private_data, rec.private_data);
    assert_eq!(
        user_handles(&store, &user, now + 4 * HOUR).await,
        set_of([&rec])
    );
}

/// Merging into a handle that does not exist answers `None` and creates
/// nothing.
pub async fn merge_public_data_missing_handle(store: Store) {
    let now = now_ms();
    let handle = new_handle();
    let out = store
        .merge_public_data(&handle, &merge(json!({"a": 1}), &[]), Some(now + HOUR), now)
        .await
        .expect("merge");
    assert_eq!(out, None);
    assert_eq!(get(&store, now, &handle).await, None);
}

/// Stored publicData that is missing, empty or `null` merges as `{}`.
pub async fn merge_public_data_empty_or_null_base(store: Store) {
    let now = now_ms();
    for base in [None, Some(""), Some("null"), Some(" null ")] {
        let mut rec = session(&new_user(), Some(now + HOUR));
        rec.public_data = base.map(str::to_owned);
        create(&store, now, &rec).await;
        let out = store
            .merge_public_data(&rec.handle, &merge(json!({"a": 1}), &[]), None, now)
            .await
            .expect("merge");
        assert_eq!(out.as_deref(), Some(r#"{"a":1}"#), "base {base:?}");
        let got = get(&store, now, &rec.handle).await.expect("record");
        assert_eq!(
            got.public_data.as_deref(),
            Some(r#"{"a":1}"#),
            "base {base:?}"
        );
    }
}

/// Stored publicData that is not JSON is a `Corrupt` error and stays as it
/// was, for one session and for the per-user merge.
pub async fn merge_public_data_corrupt_base_is_error(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut bad = session(&user, Some(now + HOUR));
    bad.public_data = Some("{not json".to_owned());
    create(&store, now, &bad).await;

    let m = merge(json!({"a": 1}), &[]);
    let err = store
        .merge_public_data(&bad.handle, &m, Some(now + 2 * HOUR), now)
        .await
        .expect_err("merge into corrupt data");
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{err}");
    assert_eq!(get(&store, now, &bad.handle).await, Some(bad.clone()));

    let err = store
        .merge_public_data_for_user(&user, &m, now)
        .await
        .expect_err("merge for user into corrupt data");
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{err}");
    assert_eq!(get(&store, now, &bad.handle).await, Some(bad));
}

/// `merge_private_data` is `{...stored, ...set}` minus `remove` on the
/// private data: existing keys keep their place, new ones are appended, the
/// result is returned and stored, nothing else changes.
pub async fn merge_private_data_keeps_order_appends_and_removes(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut rec = session(&user, Some(now + HOUR));
    rec.private_data = Some(r#"{"cart":[1],"tmp":true,"theme":"dark"}"#.to_owned());
    create(&store, now, &rec).await;

    let m = merge(
        json!({"cart": [1, 2], "plan": "pro", "n": null}),
        &["tmp", "absent"],
    );
    let out = store
        .merge_private_data(&rec.handle, &m, now)
        .await
        .expect("merge");
    let want = r#"{"cart":[1,2],"theme":"dark","plan":"pro","n":null}"#;
    assert_eq!(out.as_deref(), Some(want));
    rec.private_data = Some(want.to_owned());
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    // An empty merge still answers with the (normalised) current data.
    let out = store
        .merge_private_data(&rec.handle, &JsonMerge::default(), now)
        .await
        .expect("empty merge");
    assert_eq!(out.as_deref(), Some(want));
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));
    assert_eq!(user_handles(&store, &user, now).await, set_of([&rec]));
}

/// Merging private data into a handle that does not exist answers `None` and
/// creates nothing.
pub async fn merge_private_data_missing_handle(store: Store) {
    let now = now_ms();
    let handle = format!("{}:ajwt", generate_token(32).expect("token"));
    let out = store
        .merge_private_data(&handle, &merge(json!({"a": 1}), &[]), now)
        .await
        .expect("merge");
    assert_eq!(out, None);
    assert_eq!(get(&store, now, &handle).await, None);
    // Creating it afterwards is not a conflict.
    let rec = SessionRecord {
        handle: handle.clone(),
        ..SessionRecord::default()
    };
    create(&store, now, &rec).await;
    assert_eq!(get(&store, now, &handle).await, Some(rec));
}

/// Stored privateData that is missing, empty or `null` merges as `{}`.
pub async fn merge_private_data_empty_or_null_base(store: Store) {
    let now = now_ms();
    for base in [None, Some(""), Some("null"), Some(" null ")] {
        let mut rec = session(&new_user(), Some(now + HOUR));
        rec.private_data = base.map(str::to_owned);
        create(&store, now, &rec).await;
        let out = store
            .merge_private_data(&rec.handle, &merge(json!({"a": 1}), &[]), now)
            .await
            .expect("merge");
        assert_eq!(out.as_deref(), Some(r#"{"a":1}"#), "base {base:?}");
        rec.private_data = out;
        assert_eq!(
            get(&store, now, &rec.handle).await,
            Some(rec),
            "base {base:?}"
        );
    }
}

/// Stored privateData that is not JSON is a `Corrupt` error and stays as it
/// was.
pub async fn merge_private_data_corrupt_base_is_error(store: Store) {
    let now = now_ms();
    let mut bad = session(&new_user(), Some(now + HOUR));
    bad.private_data = Some("{not json".to_owned());
    create(&store, now, &bad).await;

    let err = store
        .merge_private_data(&bad.handle, &merge(json!({"a": 1}), &[]), now)
        .await
        .expect_err("merge into corrupt data");
    assert_eq!(err.kind, StoreErrorKind::Corrupt, "{err}");
    assert_eq!(get(&store, now, &bad.handle).await, Some(bad));
}

/// `setPublicDataForUser` over 50 sessions changes each one's publicData
/// (keeping its other keys and every other field) and nobody else's.
pub async fn merge_public_data_for_user_many_sessions(store: Store) {
    let now = now_ms();
    let a = new_user();
    let b = new_user();
    let mut mine = Vec::new();
    for i in 0..50 {
        let mut r = session(&a, Some(now + HOUR + i));
        r.public_data = Some(format!(r#"{{"userId":{a},"role":"user","n":{i},"tmp":1}}"#));
        create(&store, now, &r).await;
        mine.push(r);
    }
    let expired = session(&a, Some(now - 1));
    let no_expiry = session(&a, None);
    let string_twin = session(&as_json_string(&a), Some(now + HOUR));
    let mut others = vec![expired.clone(), no_expiry.clone(), string_twin];
    for _ in 0..5 {
        others.push(session(&b, Some(now + HOUR)));
    }
    for r in &others {
        create(&store, now, r).await;
    }

    let m = merge(json!({"role": "admin", "plan": "pro"}), &["tmp"]);
    let changed = store
        .merge_public_data_for_user(&a, &m, now)
        .await
        .expect("merge for user");
    assert_eq!(changed.len(), 50, "handles changed: {changed:?}");
    let changed: BTreeSet<String> = changed.into_iter().collect();
    assert_eq!(changed, set_of(&mine));

    for (i, r) in mine.iter().enumerate() {
        let mut want = r.clone();
        want.public_data = Some(format!(
            r#"{{"userId":{a},"role":"admin","n":{i},"plan":"pro"}}"#
        ));
        assert_eq!(get(&store, now, &r.handle).await, Some(want));
    }
    gone_or_unchanged(&store, now, &expired, "merge for user").await;
    assert_eq!(get(&store, now, &no_expiry.handle).await, Some(no_expiry));
    for r in &others[2..] {
        assert_eq!(get(&store, now, &r.handle).await.as_ref(), Some(r));
    }
}

/// A user without sessions: nothing changes, nothing is created.
pub async fn merge_public_data_for_user_unknown_user(store: Store) {
    let now = now_ms();
    let user = new_user();
    let changed = store
        .merge_public_data_for_user(&user, &merge(json!({"a": 1}), &[]), now)
        .await
        .expect("merge for user");
    assert!(changed.is_empty());
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// `$revokeAll` done right: every live session of the user goes, and only
/// those.
pub async fn delete_for_user_deletes_only_live_sessions_of_that_user(store: Store) {
    let now = now_ms();
    let a = new_user();
    let b = new_user();
    let mine: Vec<_> = (0..5).map(|i| session(&a, Some(now + HOUR + i))).collect();
    let expired = session(&a, Some(now - 1));
    let theirs: Vec<_> = (0..2).map(|_| session(&b, Some(now + HOUR))).collect();
    let string_twin = session(&as_json_string(&a), Some(now + HOUR));
    for r in mine.iter().chain(&theirs).chain([&expired, &string_twin]) {
        create(&store, now, r).await;
    }

    let gone = store
        .delete_for_user(&a, now)
        .await
        .expect("delete_for_user");
    assert_eq!(gone.len(), mine.len(), "{gone:?}");
    assert_eq!(gone.into_iter().collect::<BTreeSet<_>>(), set_of(&mine));
    for r in &mine {
        assert_eq!(get(&store, now, &r.handle).await, None);
    }
    assert!(user_handles(&store, &a, now).await.is_empty());
    gone_or_unchanged(&store, now, &expired, "delete_for_user").await;
    for r in theirs.iter().chain([&string_twin]) {
        assert_eq!(get(&store, now, &r.handle).await.as_ref(), Some(r));
    }
    let again = store
        .delete_for_user(&a, now)
        .await
        .expect("delete_for_user");
    assert!(again.is_empty());
}

/// Stored text is kept byte for byte (the publicData hash in the session
/// token depends on it): whitespace, escapes, large values.
pub async fn values_round_trip_verbatim(store: Store) {
    let now = now_ms();
    let mut rec = session(&new_user(), Some(now + HOUR));
    rec.public_data = Some("{ \"userId\" : 1 ,\"a\":\"\\u00e9\\n\" }".to_owned());
    rec.private_data = Some(format!(r#"{{"blob":"{}"}}"#, "x".repeat(256 * 1024)));
    rec.anti_csrf_token = Some("a-b_c~d".to_owned());
    create(&store, now, &rec).await;
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec.clone()));

    let update = SessionUpdate {
        public_data: Some("{\"é\":\"😀\",\"q\":\"\\\"\"}".to_owned()),
        ..SessionUpdate::default()
    };
    assert!(store
        .update(&rec.handle, &update, now)
        .await
        .expect("update"));
    update.apply_to(&mut rec);
    assert_eq!(get(&store, now, &rec.handle).await, Some(rec));
}

/// Concurrent `create`s of one handle: exactly one wins, the others get
/// `Conflict`, and the stored record is the winner's.
pub async fn concurrent_creates_one_wins(store: Store) {
    let now = now_ms();
    let handle = new_handle();
    let tasks = (0..32)
        .map(|i| {
            let store = store.clone();
            let mut rec = session(&new_user(), Some(now + HOUR + i));
            rec.handle = handle.clone();
            tokio::spawn(async move {
                let result = store.create(&rec, now).await;
                (rec, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (rec, result) in join_all(tasks).await {
        match result {
            Ok(()) => winners.push(rec),
            Err(e) => assert_eq!(e.kind, StoreErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "creates that succeeded: {}",
        winners.len()
    );
    assert_eq!(get(&store, now, &handle).await.as_ref(), winners.first());
}

/// `delete` racing `update` and both merges on the same sessions:
/// every delete reports success and no session survives.
pub async fn concurrent_delete_vs_writes_never_revives(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut recs = Vec::new();
    for _ in 0..50 {
        let r = session(&user, Some(now + HOUR));
        create(&store, now, &r).await;
        recs.push(r);
    }
    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    for r in &recs {
        for kind in 0..5 {
            let store = store.clone();
            let handle = r.handle.clone();
            writes.push(tokio::spawn(async move {
                match kind {
                    0 => {
                        let u = SessionUpdate {
                            expires_at: Some(now + 2 * HOUR),
                            ..SessionUpdate::default()
                        };
                        store.update(&handle, &u, now).await.map(|_| ())
                    }
                    1 => {
                        let u = SessionUpdate {
                            public_data: Some("{\"userId\":1}".to_owned()),
                            private_data: Some("{}".to_owned()),
                            ..SessionUpdate::default()
                        };
                        store.update(&handle, &u, now).await.map(|_| ())
                    }
                    2 | 3 => store
                        .merge_public_data(
                            &handle,
                            &merge(json!({"k": kind}), &[]),
                            Some(now + HOUR),
                            now,
                        )
                        .await
                        .map(|_| ()),
                    _ => store
                        .merge_private_data(&handle, &merge(json!({"k": kind}), &[]), now)
                        .await
                        .map(|_| ()),
                }
            }));
        }
        let store = store.clone();
        let handle = r.handle.clone();
        deletes.push(tokio::spawn(
            async move { store.delete(&handle, now).await },
        ));
    }
    for result in join_all(writes).await {
        result.expect("write");
    }
    for deleted in join_all(deletes).await {
        assert!(deleted.expect("delete"), "a delete found nothing to delete");
    }
    for r in &recs {
        assert_eq!(
            get(&store, now, &r.handle).await,
            None,
            "revived {}",
            r.handle
        );
    }
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// `delete_for_user` racing per-user merges and per-session updates: all the
/// user's sessions are deleted and none comes back.
pub async fn concurrent_delete_for_user_vs_merges_never_revives(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut recs = Vec::new();
    for _ in 0..20 {
        let r = session(&user, Some(now + HOUR));
        create(&store, now, &r).await;
        recs.push(r);
    }
    let mut writes = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let user = user.clone();
        writes.push(tokio::spawn(async move {
            let m = merge(json!({ format!("u{i}"): i }), &[]);
            store
                .merge_public_data_for_user(&user, &m, now)
                .await
                .map(|_| ())
        }));
    }
    for r in &recs {
        let store = store.clone();
        let handle = r.handle.clone();
        writes.push(tokio::spawn(async move {
            let u = SessionUpdate {
                expires_at: Some(now + 2 * HOUR),
                ..SessionUpdate::default()
            };
            store.update(&handle, &u, now).await.map(|_| ())
        }));
    }
    let deleter = {
        let store = store.clone();
        let user = user.clone();
        tokio::spawn(async move { store.delete_for_user(&user, now).await })
    };
    for result in join_all(writes).await {
        result.expect("write");
    }
    let gone = deleter.await.expect("task").expect("delete_for_user");
    assert_eq!(gone.into_iter().collect::<BTreeSet<_>>(), set_of(&recs));
    for r in &recs {
        assert_eq!(
            get(&store, now, &r.handle).await,
            None,
            "revived {}",
            r.handle
        );
    }
    assert!(user_handles(&store, &user, now).await.is_empty());
}

// ---------------------------------------------------------------- atomicity

/// 200 concurrent `merge_public_data` calls, each setting its own key on one
/// session (half also moving the expiry): every key survives.
pub async fn concurrent_merges_lose_no_update(store: Store) {
    let now = now_ms();
    let user = new_user();
    let rec = session(&user, Some(now + HOUR));
    create(&store, now, &rec).await;

    let tasks = (0..200i64)
        .map(|i| {
            let store = store.clone();
            let handle = rec.handle.clone();
            tokio::spawn(async move {
                let m = merge(json!({ format!("k{i}"): i }), &[]);
                let expiry = (i % 2 == 0).then_some(now + 2 * HOUR + i);
                store.merge_public_data(&handle, &m, expiry, now).await
            })
        })
        .collect();
    for out in join_all(tasks).await {
        assert!(out.expect("merge").is_some(), "merge lost the session");
    }

    let got = get(&store, now, &rec.handle).await.expect("record");
    let data = object(got.public_data.as_deref().unwrap_or_default());
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(keys[..2], ["userId", "role"], "original keys moved");
    for i in 0..200i64 {
        assert_eq!(data.get(&format!("k{i}")), Some(&json!(i)), "lost k{i}");
    }
    assert_eq!(data.len(), 202);
    let at = got.expires_at.expect("expiry");
    let offset = at - (now + 2 * HOUR);
    assert!(
        (0..200).contains(&offset) && offset % 2 == 0,
        "expiry {at} is none of the values written"
    );
}

/// 200 concurrent `merge_private_data` calls, each setting its own key on
/// one session (`$setPrivateData` in 200 parallel requests): every key
/// survives, and nothing but the private data changes.
pub async fn concurrent_private_merges_lose_no_update(store: Store) {
    let now = now_ms();
    let mut rec = session(&new_user(), Some(now + HOUR));
    rec.private_data = Some(r#"{"cart":[1]}"#.to_owned());
    create(&store, now, &rec).await;

    let tasks = (0..200i64)
        .map(|i| {
            let store = store.clone();
            let handle = rec.handle.clone();
            tokio::spawn(async move {
                let m = merge(json!({ format!("k{i}"): i }), &[]);
                store.merge_private_data(&handle, &m, now).await
            })
        })
        .collect();
    for out in join_all(tasks).await {
        assert!(out.expect("merge").is_some(), "merge lost the session");
    }

    let got = get(&store, now, &rec.handle).await.expect("record");
    let data = object(got.private_data.as_deref().unwrap_or_default());
    assert_eq!(data.keys().next().map(String::as_str), Some("cart"));
    for i in 0..200i64 {
        assert_eq!(data.get(&format!("k{i}")), Some(&json!(i)), "lost k{i}");
    }
    assert_eq!(data.len(), 201);
    assert_eq!(
        SessionRecord {
            private_data: rec.private_data.clone(),
            ..got
        },
        rec,
        "a private-data merge changed another field"
    );
}

/// `$setPublicData` and `$setPrivateData` racing on one session: 100 public
/// and 100 private merges, interleaved, and neither kind overwrites the
/// other's data.
pub async fn concurrent_public_and_private_merges_lose_nothing(store: Store) {
    let now = now_ms();
    let rec = session(&new_user(), Some(now + HOUR));
    create(&store, now, &rec).await;

    let tasks = (0..200i64)
        .map(|i| {
            let store = store.clone();
            let handle = rec.handle.clone();
            tokio::spawn(async move {
                let m = merge(json!({ format!("k{i}"): i }), &[]);
                if i % 2 == 0 {
                    store
                        .merge_public_data(&handle, &m, Some(now + 2 * HOUR), now)
                        .await
                } else {
                    store.merge_private_data(&handle, &m, now).await
                }
            })
        })
        .collect();
    for out in join_all(tasks).await {
        assert!(out.expect("merge").is_some(), "merge lost the session");
    }

    let got = get(&store, now, &rec.handle).await.expect("record");
    let public = object(got.public_data.as_deref().unwrap_or_default());
    let private = object(got.private_data.as_deref().unwrap_or_default());
    for i in 0..200i64 {
        let (mine, other) = if i % 2 == 0 {
            (&public, &private)
        } else {
            (&private, &public)
        };
        assert_eq!(mine.get(&format!("k{i}")), Some(&json!(i)), "lost k{i}");
        assert_eq!(other.get(&format!("k{i}")), None, "k{i} in the wrong data");
    }
    assert_eq!(public.len(), 2 + 100);
    assert_eq!(private.len(), 100);
    assert_eq!(got.expires_at, Some(now + 2 * HOUR));
}

/// Concurrent per-user merges and per-session merges over the same sessions:
/// every session ends up with every key.
pub async fn concurrent_merges_for_user_lose_no_update(store: Store) {
    let now = now_ms();
    let user = new_user();
    let mut recs = Vec::new();
    for _ in 0..10 {
        let r = session(&user, Some(now + HOUR));
        create(&store, now, &r).await;
        recs.push(r);
    }
    let mut for_user = Vec::new();
    for i in 0..30 {
        let store = store.clone();
        let user = user.clone();
        for_user.push(tokio::spawn(async move {
            let m = merge(json!({ format!("u{i}"): i }), &[]);
            store.merge_public_data_for_user(&user, &m, now).await
        }));
    }
    let mut single = Vec::new();
    for (j, r) in recs.iter().enumerate() {
        for k in 0..5 {
            let store = store.clone();
            let handle = r.handle.clone();
            single.push(tokio::spawn(async move {
                let m = merge(json!({ format!("s{j}_{k}"): k }), &[]);
                store.merge_public_data(&handle, &m, None, now).await
            }));
        }
    }
    for changed in join_all(for_user).await {
        let changed = changed.expect("merge for user");
        assert_eq!(changed.into_iter().collect::<BTreeSet<_>>(), set_of(&recs));
    }
    for out in join_all(single).await {
        assert!(out.expect("merge").is_some());
    }
    for (j, r) in recs.iter().enumerate() {
        let got = get(&store, now, &r.handle).await.expect("record");
        let data = object(got.public_data.as_deref().unwrap_or_default());
        for i in 0..30 {
            assert_eq!(data.get(&format!("u{i}")), Some(&json!(i)), "lost u{i}");
        }
        for k in 0..5 {
            assert_eq!(
                data.get(&format!("s{j}_{k}")),
                Some(&json!(k)),
                "lost s{j}_{k}"
            );
        }
        assert_eq!(data.len(), 2 + 30 + 5);
    }
}

// ---------------------------------------------------------------- expiry

/// Records of `user` expired at `now` (and by the wall clock), made the three
/// ways a store meets them: created with a past expiry, moved into the past
/// by `update`, and by `merge_public_data`.
async fn expired_records(store: &Store, now: i64, user: &str) -> Vec<SessionRecord> {
    let born = session(user, Some(now - 1));
    create(store, now, &born).await;

    let mut updated = session(user, Some(now + HOUR));
    create(store, now, &updated).await;
    let past = SessionUpdate {
        expires_at: Some(now - HOUR),
        ..SessionUpdate::default()
    };
    assert!(store
        .update(&updated.handle, &past, now)
        .await
        .expect("update to the past"));
    past.apply_to(&mut updated);

    let mut merged = session(user, Some(now + HOUR));
    create(store, now, &merged).await;
    merged.public_data = store
        .merge_public_data(
            &merged.handle,
            &merge(json!({"a": 1}), &[]),
            Some(now - 5),
            now,
        )
        .await
        .expect("merge with past expiry");
    assert!(merged.public_data.is_some(), "merge lost a live session");
    merged.expires_at = Some(now - 5);

    vec![born, updated, merged]
}

/// A record expired at the caller's `now` is not returned by `get`, then or
/// later, nor listed for its user.
pub async fn expired_records_are_hidden(store: Store) {
    let now = now_ms();
    let user = new_user();
    for r in expired_records(&store, now, &user).await {
        assert_eq!(get(&store, now, &r.handle).await, None, "{r:?}");
        assert_eq!(get(&store, now + HOUR, &r.handle).await, None, "{r:?}");
    }
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// An expired record is gone for every write: `update` answers `false`, the
/// merges `None` or nothing changed, and none of them brings it back.
pub async fn expired_records_are_not_written(store: Store) {
    let now = now_ms();
    let user = new_user();
    let records = expired_records(&store, now, &user).await;
    let m = merge(json!({"b": 2}), &[]);
    for r in &records {
        let revive = SessionUpdate {
            expires_at: Some(now + HOUR),
            public_data: Some("{}".to_owned()),
            private_data: Some("{}".to_owned()),
            hashed_session_token: Some(hash256(b"t")),
        };
        let updated = store.update(&r.handle, &revive, now).await.expect("update");
        assert!(!updated, "updated an expired record: {r:?}");
        let out = store
            .merge_public_data(&r.handle, &m, Some(now + HOUR), now)
            .await
            .expect("merge");
        assert_eq!(out, None, "merged into an expired record: {r:?}");
        let out = store
            .merge_private_data(&r.handle, &m, now)
            .await
            .expect("merge private");
        assert_eq!(out, None, "merged into an expired record: {r:?}");
        assert_eq!(get(&store, now, &r.handle).await, None, "revived {r:?}");
    }
    let changed = store
        .merge_public_data_for_user(&user, &m, now)
        .await
        .expect("merge for user");
    assert!(changed.is_empty(), "{changed:?}");
    for r in &records {
        // Whether it reports a deletion is up to the store; it stays gone.
        store.delete(&r.handle, now).await.expect("delete");
        assert_eq!(get(&store, now, &r.handle).await, None, "revived {r:?}");
    }
    assert!(user_handles(&store, &user, now).await.is_empty());
}

/// `create` over a handle whose record is expired succeeds (the handle is
/// free again) and stores the new record.
pub async fn expired_records_are_replaced_by_create(store: Store) {
    let now = now_ms();
    let user = new_user();
    let other = new_user();
    let mut fresh = Vec::new();
    for r in expired_records(&store, now, &user).await {
        let mut new = session(&other, Some(now + HOUR));
        new.handle = r.handle.clone();
        store
            .create(&new, now)
            .await
            .unwrap_or_else(|e| panic!("create over an expired record: {e}"));
        assert_eq!(get(&store, now, &new.handle).await.as_ref(), Some(&new));
        fresh.push(new);
    }
    assert_eq!(user_handles(&store, &other, now).await, set_of(&fresh));
    assert!(user_handles(&store, &user, now).await.is_empty());
}

// ---------------------------------------------------------------- caller_clock

/// With the caller's clock frozen a year in the past ([`FROZEN_PAST_MS`]), a
/// record expiring a second after that `now` lives through every operation,
/// although by the wall clock it expired long ago; so does an anonymous
/// handle-only row.
pub async fn caller_clock_in_the_past_keeps_records_live(store: Store) {
    let now = FROZEN_PAST_MS;
    let user = new_user();
    let mut rec = session(&user, Some(now + 1_000));
    create(&store, now, &rec).await;
    let mut anon = SessionRecord {
        handle: format!("{}:ajwt", generate_token(32).expect("token")),
        ..SessionRecord::default()
    };
    create(&store, now, &anon).await;

    assert_eq!(get(&store, now + 10, &rec.handle).await, Some(rec.clone()));
    assert_eq!(
        get(&store, now + 10, &anon.handle).await,
        Some(anon.clone())
    );
    assert_eq!(user_handles(&store, &user, now + 10).await, set_of([&rec]));

    let update = SessionUpdate {
        hashed_session_token: Some(hash256(b"re-issued")),
        ..SessionUpdate::default()
    };
    assert!(store
        .update(&rec.handle, &update, now + 20)
        .await
        .expect("update"));
    update.apply_to(&mut rec);

    let out = store
        .merge_public_data(
            &rec.handle,
            &merge(json!({"role": "admin"}), &[]),
            Some(now + 2_000),
            now + 30,
        )
        .await
        .expect("merge");
    assert_eq!(
        out,
        Some(format!(r#"{{"userId":{user},"role":"admin"}}"#)),
        "merge_public_data at a frozen past now"
    );
    rec.public_data = out;
    rec.expires_at = Some(now + 2_000);

    let out = store
        .merge_private_data(&rec.handle, &merge(json!({"p": 1}), &[]), now + 40)
        .await
        .expect("merge private");
    assert_eq!(out.as_deref(), Some(r#"{"p":1}"#));
    rec.private_data = out;
    let out = store
        .merge_private_data(&anon.handle, &merge(json!({"cart": [1]}), &[]), now + 40)
        .await
        .expect("merge private");
    assert_eq!(out.as_deref(), Some(r#"{"cart":[1]}"#));
    anon.private_data = out;

    let changed = store
        .merge_public_data_for_user(&user, &merge(json!({"plan": "pro"}), &[]), now + 50)
        .await
        .expect("merge for user");
    assert_eq!(changed, vec![rec.handle.clone()]);
    rec.public_data = Some(format!(
        r#"{{"userId":{user},"role":"admin","plan":"pro"}}"#
    ));
    assert_eq!(get(&store, now + 60, &rec.handle).await, Some(rec.clone()));

    let err = store
        .create(&rec, now + 70)
        .await
        .expect_err("create over a live record");
    assert_eq!(err.kind, StoreErrorKind::Conflict, "{err}");
    assert!(store.delete(&rec.handle, now + 80).await.expect("delete"));
    assert_eq!(get(&store, now + 80, &rec.handle).await, None);

    let other = session(&user, Some(now + 1_000));
    create(&store, now + 90, &other).await;
    let gone = store
        .delete_for_user(&user, now + 100)
        .await
        .expect("delete_for_user");
    assert_eq!(gone, vec![other.handle.clone()]);
    assert_eq!(get(&store, now + 110, &anon.handle).await, Some(anon));
}

/// A record expiring at `t` is still there, for reads and writes, at
/// `now == t`: the engine (like Blitz, `expiresAt < now`) still accepts the
/// session then, so a store hiding it would end the session a millisecond
/// early. Only `get_for_user` drops it (`expiresAt > now`).
pub async fn caller_clock_record_lives_through_its_expiry_instant(store: Store) {
    for base in [FROZEN_PAST_MS, now_ms()] {
        let user = new_user();
        let t = base + 1_000;
        let rec = session(&user, Some(t));
        create(&store, base, &rec).await;
        assert_eq!(get(&store, t, &rec.handle).await.as_ref(), Some(&rec));
        assert!(store
            .update(&rec.handle, &SessionUpdate::default(), t)
            .await
            .expect("update"));
        let out = store
            .merge_private_data(&rec.handle, &JsonMerge::default(), t)
            .await
            .expect("merge private");
        assert_eq!(out, rec.private_data);
        let out = store
            .merge_public_data(&rec.handle, &JsonMerge::default(), None, t)
            .await
            .expect("merge");
        assert_eq!(out, rec.public_data);
        assert_eq!(get(&store, t, &rec.handle).await.as_ref(), Some(&rec));
        assert!(user_handles(&store, &user, t).await.is_empty());
        assert!(store.delete(&rec.handle, t).await.expect("delete"));
    }
}

/// Expiry is judged by the `now_ms` given, whatever the wall clock says: a
/// record expiring at `t` is gone from `now = t + 1` on (hidden, not
/// written, not deleted again, replaced by `create`), both for a `now`
/// frozen in the past and for one running a day ahead of the wall clock.
pub async fn caller_clock_expires_by_the_given_now(store: Store) {
    for base in [FROZEN_PAST_MS, now_ms() + 24 * HOUR] {
        let user = new_user();
        let t = base + 1_000;
        // One record per operation: a store may drop an expired record as
        // soon as it meets it.
        let recs: Vec<_> = (0..6).map(|_| session(&user, Some(t))).collect();
        for r in &recs {
            create(&store, base, r).await;
        }
        assert_eq!(user_handles(&store, &user, t - 1).await, set_of(&recs));

        let now = t + 1;
        let [hidden, updated, merged, private, deleted, replaced] = &recs[..] else {
            unreachable!("six records");
        };
        assert_eq!(get(&store, now, &hidden.handle).await, None);
        let revive = SessionUpdate {
            expires_at: Some(now + HOUR),
            ..SessionUpdate::default()
        };
        assert!(!store
            .update(&updated.handle, &revive, now)
            .await
            .expect("update"));
        let m = merge(json!({"a": 1}), &[]);
        let out = store
            .merge_public_data(&merged.handle, &m, Some(now + HOUR), now)
            .await
            .expect("merge");
        assert_eq!(out, None);
        let out = store
            .merge_private_data(&private.handle, &m, now)
            .await
            .expect("merge private");
        assert_eq!(out, None);
        assert!(!store.delete(&deleted.handle, now).await.expect("delete"));
        let mut fresh = session(&user, Some(now + HOUR));
        fresh.handle = replaced.handle.clone();
        create(&store, now, &fresh).await;

        for r in [hidden, updated, merged, private, deleted] {
            assert_eq!(get(&store, now, &r.handle).await, None, "revived {r:?}");
        }
        assert_eq!(get(&store, now, &fresh.handle).await, Some(fresh.clone()));
        assert_eq!(user_handles(&store, &user, now).await, set_of([&fresh]));
    }
}
