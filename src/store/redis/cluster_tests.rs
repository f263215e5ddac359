//! The Redis store on a real Redis Cluster: three primaries started by this
//! test binary on loopback ports (see `test_server.rs`), shared by every
//! test here (started by the first one, ~1 s) and killed when the process
//! exits. Each test uses its own key prefix, so they run in parallel.
//!
//! The conformance suite makes its own handles (32 random characters), while
//! on a Cluster a user's session must carry a handle from
//! [`RedisStore::new_handle`] (its first 8 characters are the user's hash
//! tag). [`OnSlots`] bridges the two: on `create` of a user's session it
//! replaces the first 8 characters with the user's tag and remembers the
//! pair, and it translates handles back in every answer. What it runs is the
//! store, unchanged, on keys spread over the three nodes.
//!
//! Two checks of the suite cannot hold on a Cluster and are left out:
//! `create_conflict_keeps_original` and `concurrent_creates_one_wins`
//! create one handle for *different* users, whose indexes are on different
//! slots, which the store refuses in Cluster mode (`Failed`, not
//! `Conflict`); with handles from `new_handle` two users never share one.
//! [`one_users_handle_conflicts`] checks the same rules for one user.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use deadpool_redis::redis as redis_rs;
use serde_json::json;

use super::test_server::RedisCluster;
use super::*;
use crate::store::conformance::{now_ms, Store};
use crate::token::hash256;

const HOUR: i64 = 3_600_000;

/// The Cluster of this test binary, started by the first test that needs it.
fn cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

/// A store over the Cluster on a fresh prefix.
async fn cluster_store() -> RedisStore {
    let urls = tokio::task::block_in_place(|| cluster().urls());
    let options = RedisOptions {
        urls,
        cluster: true,
        prefix: format!("blitz-auth-cluster:{}:", generate_token(12).unwrap()),
        pool_size: 2,
        ..RedisOptions::default()
    };
    RedisStore::connect(options)
        .await
        .unwrap_or_else(|e| panic!("the test Cluster is not usable: {e}"))
}

/// The store with handles moved onto their users' slots (see the module docs).
struct OnSlots {
    store: RedisStore,
    /// Caller's handle → the store's, and back.
    to_store: Mutex<HashMap<String, String>>,
    to_caller: Mutex<HashMap<String, String>>,
}

impl OnSlots {
    fn inward(&self, handle: &str) -> String {
        let map = self.to_store.lock().unwrap();
        map.get(handle)
            .cloned()
            .unwrap_or_else(|| handle.to_owned())
    }

    fn outward(&self, handle: String) -> String {
        let map = self.to_caller.lock().unwrap();
        map.get(&handle).cloned().unwrap_or(handle)
    }

    fn outward_record(&self, mut r: SessionRecord) -> SessionRecord {
        r.handle = self.outward(r.handle);
        r
    }

    /// The store's handle for a new record: the user's tag, then the rest.
    fn bind(&self, record: &SessionRecord) -> String {
        let handle = record.handle.as_str();
        let (Some(user), Some(rest)) = (record.user_id.as_deref(), handle.get(TAG_LEN..)) else {
            return self.inward(handle);
        };
        let mine = format!("{}{rest}", user_tag(user));
        self.to_store
            .lock()
            .unwrap()
            .insert(handle.to_owned(), mine.clone());
        self.to_caller
            .lock()
            .unwrap()
            .insert(mine.clone(), handle.to_owned());
        mine
    }
}

#[async_trait]
impl SessionStore for OnSlots {
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        let r = self.store.get(&self.inward(handle), now_ms).await?;
        Ok(r.map(|r| self.outward_record(r)))
    }
    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let rows = self.store.get_for_user(user_id, now_ms).await?;
        Ok(rows.into_iter().map(|r| self.outward_record(r)).collect())
    }
    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
        let record = SessionRecord {
            handle: self.bind(record),
            ..record.clone()
        };
        self.store.create(&record, now_ms).await
    }
    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool> {
        self.store
            .update(&self.inward(handle), update, now_ms)
            .await
    }
    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
        self.store.delete(&self.inward(handle), now_ms).await
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
            .merge_public_data(&self.inward(handle), merge, expires_at, now_ms)
            .await
    }
    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.store
            .merge_private_data(&self.inward(handle), merge, now_ms)
            .await
    }
    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let handles = self
            .store
            .merge_public_data_for_user(user_id, merge, now_ms)
            .await?;
        Ok(handles.into_iter().map(|h| self.outward(h)).collect())
    }
    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        let handles = self.store.delete_for_user(user_id, now_ms).await?;
        Ok(handles.into_iter().map(|h| self.outward(h)).collect())
    }
}

async fn conformance_store() -> Store {
    Arc::new(OnSlots {
        store: cluster_store().await,
        to_store: Mutex::default(),
        to_caller: Mutex::default(),
    })
}

mod conformance {
    use super::conformance_store;
    use crate::store::conformance::store_conformance_tests;

    // The semantics group but the two checks that create one handle for two
    // users (see the module docs).
    store_conformance_tests!(groups [semantics_core, atomicity, expiry]: conformance_store());
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

fn new_user() -> String {
    let mut b = [0u8; 4];
    crate::token::fill_random(&mut b).unwrap();
    u32::from_le_bytes(b).to_string()
}

fn merge_of(v: serde_json::Value, remove: &[&str]) -> JsonMerge {
    let serde_json::Value::Object(set) = v else {
        panic!("merge set must be an object");
    };
    JsonMerge {
        set,
        remove: remove.iter().map(|k| (*k).to_owned()).collect(),
    }
}

/// A plain connection to one node.
async fn node(port: u16) -> redis_rs::aio::MultiplexedConnection {
    redis_rs::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keyslot(c: &mut redis_rs::aio::MultiplexedConnection, key: &str) -> i64 {
    redis_rs::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(c)
        .await
        .unwrap()
}

/// The keys under `prefix` held by each node (a node stores only its slots).
async fn keys_by_node(prefix: &str) -> BTreeMap<u16, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for port in tokio::task::block_in_place(|| cluster().ports()) {
        let mut c = node(port).await;
        let keys: Vec<String> = redis_rs::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut c)
            .await
            .unwrap();
        out.insert(port, keys.into_iter().collect());
    }
    out
}

/// What replaces the two checks left out of the suite: one handle created
/// twice for one user conflicts, and of 32 concurrent creates one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_users_handle_conflicts() {
    let store = cluster_store().await;
    let now = now_ms();
    let user = new_user();
    let rec = session(&store, &user, Some(now + HOUR));
    store.create(&rec, now).await.unwrap();
    let mut again = session(&store, &user, Some(now + 2 * HOUR));
    again.handle = rec.handle.clone();
    let e = store.create(&again, now).await.unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Conflict, "{e}");
    assert_eq!(store.get(&rec.handle, now).await.unwrap(), Some(rec));

    let handle = store
        .new_handle(HandleKind::Authenticated, Some(&user))
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let mut rec = session(&store, &user, Some(now + HOUR + i));
            rec.handle = handle.clone();
            tokio::spawn(async move { (store.create(&rec, now).await, rec) })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (Ok(()), rec) => winners.push(rec),
            (Err(e), _) => assert_eq!(e.kind, StoreErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(
        store.get(&handle, now).await.unwrap().as_ref(),
        winners.first()
    );
}

/// `setPublicDataForUser` over 200 sessions of one user: all on the user's
/// slot (one node), merged in one script, then revoked in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merge_for_user_covers_200_sessions_on_the_users_slot() {
    let store = cluster_store().await;
    let now = now_ms();
    let user = new_user();
    let recs: Vec<_> = (0..200)
        .map(|i| session(&store, &user, Some(now + HOUR + i)))
        .collect();
    for r in &recs {
        store.create(r, now).await.unwrap();
    }

    let ports = tokio::task::block_in_place(|| cluster().ports());
    let mut c = node(ports[0]).await;
    let slot = keyslot(&mut c, &store.user_index_key(&user)).await;
    for r in &recs {
        assert_eq!(keyslot(&mut c, &store.session_key(&r.handle)).await, slot);
    }
    let by_node = keys_by_node(store.prefix()).await;
    let holders: Vec<_> = by_node.iter().filter(|(_, k)| !k.is_empty()).collect();
    assert_eq!(holders.len(), 1, "one user's keys on one node: {by_node:?}");
    assert_eq!(holders[0].1.len(), 201, "200 sessions and the index");

    let m = merge_of(json!({"role": "admin", "plan": "pro"}), &[]);
    let merged: BTreeSet<String> = store
        .merge_public_data_for_user(&user, &m, now)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let all: BTreeSet<String> = recs.iter().map(|r| r.handle.clone()).collect();
    assert_eq!(merged, all);
    for r in &recs {
        let got = store.get(&r.handle, now).await.unwrap().unwrap();
        assert_eq!(
            got.public_data.as_deref(),
            Some(format!(r#"{{"userId":{user},"role":"admin","plan":"pro"}}"#).as_str())
        );
    }
    assert_eq!(store.get_for_user(&user, now).await.unwrap().len(), 200);

    let deleted: BTreeSet<String> = store
        .delete_for_user(&user, now)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(deleted, all);
    for r in &recs {
        assert_eq!(store.get(&r.handle, now).await.unwrap(), None);
    }
    assert!(keys_by_node(store.prefix())
        .await
        .values()
        .all(BTreeSet::is_empty));
}

/// Sessions of many users (and anonymous ones) land on every node, and every
/// operation works on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_users_spread_over_all_three_nodes() {
    let store = cluster_store().await;
    let now = now_ms();
    let users: Vec<String> = (0..60).map(|_| new_user()).collect();
    let mut by_user = BTreeMap::new();
    for u in &users {
        let recs = [
            session(&store, u, Some(now + HOUR)),
            session(&store, u, Some(now + 2 * HOUR)),
        ];
        for r in &recs {
            store.create(r, now).await.unwrap();
        }
        by_user.insert(u.clone(), recs);
    }
    let anon: Vec<_> = (0..30)
        .map(|_| SessionRecord {
            handle: store.new_handle(HandleKind::Anonymous, None).unwrap(),
            private_data: Some("{}".to_owned()),
            ..SessionRecord::default()
        })
        .collect();
    for r in &anon {
        store.create(r, now).await.unwrap();
    }

    let by_node = keys_by_node(store.prefix()).await;
    let total: usize = by_node.values().map(BTreeSet::len).sum();
    assert_eq!(
        total,
        60 * 3 + 30,
        "2 sessions + 1 index per user, anon rows"
    );
    for (port, keys) in &by_node {
        assert!(keys.len() >= 10, "node {port} holds {} keys", keys.len());
    }
    // Each user's keys are on one node.
    for (u, recs) in &by_user {
        let mut keys = vec![store.user_index_key(u)];
        keys.extend(recs.iter().map(|r| store.session_key(&r.handle)));
        let holders: BTreeSet<u16> = keys
            .iter()
            .map(|k| {
                by_node
                    .iter()
                    .find(|(_, ks)| ks.contains(k))
                    .map(|(p, _)| *p)
                    .unwrap_or_else(|| panic!("{k} on no node"))
            })
            .collect();
        assert_eq!(holders.len(), 1, "user {u}: {holders:?}");
    }

    for (u, recs) in &by_user {
        let m = merge_of(json!({"seen": u}), &["role"]);
        assert_eq!(
            store
                .merge_public_data_for_user(u, &m, now)
                .await
                .unwrap()
                .len(),
            2
        );
        let one = &recs[0].handle;
        let private = merge_of(json!({"n": 1}), &[]);
        assert_eq!(
            store
                .merge_private_data(one, &private, now)
                .await
                .unwrap()
                .as_deref(),
            Some(r#"{"n":1}"#)
        );
        let got = store.get(one, now).await.unwrap().unwrap();
        assert_eq!(
            got.public_data.unwrap(),
            format!(r#"{{"userId":{u},"seen":"{u}"}}"#)
        );
        assert_eq!(store.get_for_user(u, now).await.unwrap().len(), 2);
        assert!(store.delete(&recs[1].handle, now).await.unwrap());
        assert_eq!(
            store.delete_for_user(u, now).await.unwrap(),
            vec![one.clone()]
        );
    }
    for r in &anon {
        let m = merge_of(json!({"cart": [1]}), &[]);
        assert!(store
            .merge_private_data(&r.handle, &m, now)
            .await
            .unwrap()
            .is_some());
        assert!(store.delete(&r.handle, now).await.unwrap());
    }
    assert!(keys_by_node(store.prefix())
        .await
        .values()
        .all(BTreeSet::is_empty));
}
