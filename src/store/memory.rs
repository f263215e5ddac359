//! The in-memory session store: the package's default, for development and
//! single-process deployments.
//!
//! Everything lives in one process, so a restart logs every user out and
//! drops anonymous private data; run several processes (or need sessions to
//! survive restarts) and you want the Redis store or your database instead.
//!
//! What a user of [`MemoryStore`] can rely on:
//!
//! - **Time comes only from the caller.** The store has no clock: every
//!   expiry decision, anonymous-row idle refresh and purge of an operation
//!   uses the `now_ms` that operation is given (the engine's clock, which an
//!   app's tests may freeze or move). A record is gone once its deadline is
//!   *before* `now_ms`: at `expires_at == now_ms` it is still returned, as the
//!   engine (like Blitz, `expiresAt < now`) still accepts it then. A record
//!   removed by one call stays removed even if a later call passes an earlier
//!   `now_ms`.
//! - **Semantics** are those of the [`SessionStore`] docs, and stricter where
//!   the trait leaves room: `get` never returns an expired record (it removes
//!   it), `update`, `delete` and the merges treat an expired record as
//!   already gone, and `create` over an expired record succeeds.
//!   `get_for_user`, `merge_public_data_for_user` and `delete_for_user` list
//!   the records with `expires_at > now_ms` (rows without `expires_at`
//!   excluded, as Blitz's PrismaStorage does). User ids are compared as JSON
//!   text, so `1` and `"1"` are different users; anonymous rows
//!   (`user_id: None`) belong to no user.
//! - **Atomicity**: every method, including the compound ones
//!   (`merge_public_data`, `merge_private_data`, `merge_public_data_for_user`,
//!   `delete_for_user`), is one critical section, so concurrent merges never
//!   lose a key and nothing revives a deleted session.
//!   `merge_public_data_for_user` is all-or-nothing: if one session's stored
//!   publicData is not valid JSON, no session is changed and the error is
//!   returned.
//! - **Anonymous rows expire when idle.** Blitz stores anonymous private data
//!   (`$setPrivateData`) in rows that have only a handle and no `expires_at`,
//!   and never deletes them. Here such a row (no `user_id`, no `expires_at`)
//!   is dropped once more than [`MemoryStoreOptions::anonymous_ttl_ms`] has
//!   passed (by the callers' `now_ms`) without a `get`, `update` or merge
//!   touching it (default 30 days; `None` keeps them forever, as Blitz does).
//!   An anonymous visitor who returns after that keeps their session (it
//!   lives in the cookie) but finds their private data empty, as after a
//!   restart. Rows with a user and no `expires_at` never expire: that is what
//!   Blitz means by a `null` `expiresAt`, and dropping a logged-in session
//!   silently would be worse than keeping it.
//! - **Memory is bounded by live records.** Expired records are removed
//!   lazily, with no background thread: every operation first purges up to
//!   [`PURGE_BATCH`] records whose deadline is before its `now_ms`, soonest
//!   first, from an index ordered by deadline. Each record is purged once, so
//!   the cost is `O(log n)` per record and no single call stalls on a mass
//!   expiry; while the store is in use, expired records cannot pile up faster
//!   than they are removed. [`MemoryStore::purge_expired`] removes all of them
//!   at once.
//! - **An optional cap** ([`MemoryStoreOptions::max_records`]): when a
//!   `create` would exceed it, the records with the soonest deadline are
//!   evicted first (expired ones, then the live session closest to expiry,
//!   then rows that never expire, oldest first). Evicting a live session logs
//!   that user out, so size the cap well above the expected number of live
//!   sessions; it exists to stop unbounded growth (say, a login flood), not
//!   to do caching. The record being created is always stored (dropping a
//!   fresh login would be worse), unless it is already expired, in which case
//!   `create` succeeds and stores nothing. Default: no cap.
//!
//! Handles are keyed in std's `HashMap`, whose per-process random hash keys
//! keep attacker-chosen handles from degrading lookups. Lock critical sections
//! are short (map updates, plus the shallow JSON merge of one publicData or
//! privateData per session touched) and never span an `.await`; a poisoned
//! lock is recovered, since no code path leaves the maps half-updated.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    JsonMerge, SessionRecord, SessionStore, SessionUpdate, StoreError, StoreErrorKind, StoreResult,
};

/// Default idle lifetime of anonymous rows without `expires_at`: 30 days.
pub const DEFAULT_ANONYMOUS_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Expired records purged per operation, at most. Large enough that purging
/// outpaces any insertion rate (one operation inserts at most one record),
/// small enough that one call never does much work.
pub const PURGE_BATCH: usize = 64;

/// Deadline of a record that never expires; sorts after every real deadline,
/// so such records are evicted last (and no `now_ms` is ever past it).
const NEVER: i64 = i64::MAX;

/// Options of [`MemoryStore::with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreOptions {
    /// Idle lifetime (ms) of anonymous rows created without `expires_at`;
    /// each `get`, `update` or merge of the row restarts it. `None` keeps
    /// them forever. Values below 1 are treated as 1.
    pub anonymous_ttl_ms: Option<i64>,
    /// Most records kept; `create` evicts the records closest to their
    /// deadline to stay within it (see the module docs). `None`: no cap.
    /// `Some(0)` is treated as `Some(1)`.
    pub max_records: Option<usize>,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            anonymous_ttl_ms: Some(DEFAULT_ANONYMOUS_TTL_MS),
            max_records: None,
        }
    }
}

/// A snapshot of the store, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreStats {
    /// Records not expired at the `now_ms` given to [`MemoryStore::stats`].
    pub live: usize,
    /// Records held, including expired ones not purged yet.
    pub stored: usize,
    /// Users with at least one record held.
    pub users: usize,
}

struct Entry {
    record: SessionRecord,
    /// When the record stops existing: `expires_at`, the idle deadline of an
    /// anonymous row, or [`NEVER`]. It is gone for a `now_ms` past this.
    deadline: i64,
    /// Creation order: breaks deadline ties and orders `get_for_user`.
    seq: u64,
}

#[derive(Default)]
struct State {
    records: HashMap<String, Entry>,
    /// `user_id` JSON text → handles, kept in step with `records`.
    by_user: HashMap<String, HashSet<String>>,
    /// `(deadline, seq)` → handle, soonest first: drives purge and eviction.
    by_deadline: BTreeMap<(i64, u64), String>,
    next_seq: u64,
}

/// Whether a record with this deadline is gone at `now`: only once the
/// deadline has passed, so a record is still there at `expires_at == now`.
fn expired(deadline: i64, now: i64) -> bool {
    deadline < now
}

impl State {
    fn insert(&mut self, record: SessionRecord, deadline: i64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let handle = record.handle.clone();
        if let Some(user) = &record.user_id {
            self.by_user
                .entry(user.clone())
                .or_default()
                .insert(handle.clone());
        }
        self.by_deadline.insert((deadline, seq), handle.clone());
        self.records.insert(
            handle,
            Entry {
                record,
                deadline,
                seq,
            },
        );
    }

    fn remove(&mut self, handle: &str) -> Option<Entry> {
        let entry = self.records.remove(handle)?;
        self.by_deadline.remove(&(entry.deadline, entry.seq));
        if let Some(user) = &entry.record.user_id {
            if let Some(handles) = self.by_user.get_mut(user) {
                handles.remove(handle);
                if handles.is_empty() {
                    self.by_user.remove(user);
                }
            }
        }
        Some(entry)
    }

    /// The record under `handle` unless it is expired at `now`; an expired
    /// one is removed on the way.
    fn live(&mut self, handle: &str, now: i64) -> Option<&mut Entry> {
        if expired(self.records.get(handle)?.deadline, now) {
            self.remove(handle);
            return None;
        }
        self.records.get_mut(handle)
    }

    fn set_deadline(&mut self, handle: &str, deadline: i64) {
        let Some(entry) = self.records.get_mut(handle) else {
            return;
        };
        if entry.deadline == deadline {
            return;
        }
        self.by_deadline.remove(&(entry.deadline, entry.seq));
        entry.deadline = deadline;
        self.by_deadline
            .insert((deadline, entry.seq), handle.to_owned());
    }

    /// Remove up to `budget` records expired at `now`, soonest first.
    fn purge(&mut self, now: i64, budget: usize) -> usize {
        let mut purged = 0;
        while purged < budget {
            let handle = match self.by_deadline.first_key_value() {
                Some((&(deadline, _), handle)) if expired(deadline, now) => handle.clone(),
                _ => break,
            };
            self.remove(&handle);
            purged += 1;
        }
        purged
    }

    /// Evict soonest-deadline records until one more fits under `max`.
    fn make_room(&mut self, max: usize) {
        while self.records.len() >= max {
            let Some((_, handle)) = self.by_deadline.first_key_value() else {
                break;
            };
            let handle = handle.clone();
            self.remove(&handle);
        }
    }

    /// Records expired at `now`: those whose deadline is before it, which
    /// are exactly the keys below `(now, 0)`.
    fn expired_count(&self, now: i64) -> usize {
        self.by_deadline.range(..(now, 0)).count()
    }

    /// Live records of `user` by the caller's `now`, in creation order.
    fn user_handles(&self, user: &str, now: i64) -> Vec<String> {
        let Some(handles) = self.by_user.get(user) else {
            return Vec::new();
        };
        let mut live: Vec<(u64, &String)> = handles
            .iter()
            .filter_map(|h| {
                let e = self.records.get(h)?;
                let alive = matches!(e.record.expires_at, Some(at) if at > now);
                alive.then_some((e.seq, h))
            })
            .collect();
        live.sort_unstable_by_key(|(seq, _)| *seq);
        live.into_iter().map(|(_, h)| h.clone()).collect()
    }
}

struct Shared {
    state: Mutex<State>,
    anonymous_ttl_ms: Option<i64>,
    max_records: Option<usize>,
}

/// The in-memory store (see the module docs). Cloning shares it.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (stored, users) = {
            let st = self.lock();
            (st.records.len(), st.by_user.len())
        };
        f.debug_struct("MemoryStore")
            .field("anonymous_ttl_ms", &self.shared.anonymous_ttl_ms)
            .field("max_records", &self.shared.max_records)
            .field("stored", &stored)
            .field("users", &users)
            .finish()
    }
}

impl MemoryStore {
    /// A store with the default options.
    pub fn new() -> Self {
        Self::with_options(MemoryStoreOptions::default())
    }

    /// A store with the given options.
    pub fn with_options(options: MemoryStoreOptions) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                anonymous_ttl_ms: options.anonymous_ttl_ms.map(|ttl| ttl.max(1)),
                max_records: options.max_records.map(|max| max.max(1)),
            }),
        }
    }

    /// Number of records held, including expired ones not purged yet (the
    /// store has no clock to tell them apart; see [`MemoryStore::stats`]).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// True when no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts of records live at `now_ms`, of records held and of users.
    /// Changes nothing (no purge).
    pub fn stats(&self, now_ms: i64) -> MemoryStoreStats {
        let st = self.lock();
        let stored = st.records.len();
        MemoryStoreStats {
            live: stored.saturating_sub(st.expired_count(now_ms)),
            stored,
            users: st.by_user.len(),
        }
    }

    /// Remove every record expired at `now_ms`; returns how many. Operations
    /// purge incrementally anyway, so this is only for callers that want
    /// memory back at a moment of their choosing.
    pub fn purge_expired(&self, now_ms: i64) -> usize {
        self.lock().purge(now_ms, usize::MAX)
    }

    /// Take the lock, recovering it if a thread panicked while holding it: no
    /// code path leaves the maps half-updated, so the state is still valid.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Take the lock and purge a batch of records expired at `now`.
    fn begin(&self, now: i64) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        st.purge(now, PURGE_BATCH);
        st
    }

    /// Where a record's life ends as of `now` (see [`Entry::deadline`]).
    fn deadline_of(&self, record: &SessionRecord, now: i64) -> i64 {
        match (
            record.expires_at,
            &record.user_id,
            self.shared.anonymous_ttl_ms,
        ) {
            (Some(at), _, _) => at,
            (None, None, Some(ttl)) => now.saturating_add(ttl),
            (None, _, _) => NEVER,
        }
    }

    /// Recompute a record's deadline after it was read or written, which
    /// restarts an anonymous row's idle lifetime.
    fn touch(&self, st: &mut State, handle: &str, now: i64) {
        let deadline = match st.records.get(handle) {
            Some(entry) => self.deadline_of(&entry.record, now),
            None => return,
        };
        st.set_deadline(handle, deadline);
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        let mut st = self.begin(now_ms);
        let Some(entry) = st.live(handle, now_ms) else {
            return Ok(None);
        };
        let record = entry.record.clone();
        self.touch(&mut st, handle, now_ms);
        Ok(Some(record))
    }

    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let st = self.begin(now_ms);
        Ok(st
            .user_handles(user_id, now_ms)
            .iter()
            .filter_map(|h| st.records.get(h).map(|e| e.record.clone()))
            .collect())
    }

    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
        let mut st = self.begin(now_ms);
        if st.live(&record.handle, now_ms).is_some() {
            return Err(StoreError::new(
                StoreErrorKind::Conflict,
                "a session with this handle already exists",
            ));
        }
        let deadline = self.deadline_of(record, now_ms);
        if expired(deadline, now_ms) {
            // Born expired: storing it could only cost a live record its
            // place under the cap, and nobody could read it back.
            return Ok(());
        }
        if let Some(max) = self.shared.max_records {
            st.make_room(max);
        }
        st.insert(record.clone(), deadline);
        Ok(())
    }

    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool> {
        let mut st = self.begin(now_ms);
        let Some(entry) = st.live(handle, now_ms) else {
            return Ok(false);
        };
        update.apply_to(&mut entry.record);
        self.touch(&mut st, handle, now_ms);
        Ok(true)
    }

    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
        let mut st = self.begin(now_ms);
        // An expired record is already gone as far as callers can tell.
        let live = st.live(handle, now_ms).is_some();
        st.remove(handle);
        Ok(live)
    }

    async fn merge_public_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let mut st = self.begin(now_ms);
        let Some(entry) = st.live(handle, now_ms) else {
            return Ok(None);
        };
        let public_data = merge.apply(entry.record.public_data.as_deref())?;
        entry.record.public_data = Some(public_data.clone());
        if let Some(at) = expires_at {
            entry.record.expires_at = Some(at);
        }
        self.touch(&mut st, handle, now_ms);
        Ok(Some(public_data))
    }

    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let mut st = self.begin(now_ms);
        let Some(entry) = st.live(handle, now_ms) else {
            return Ok(None);
        };
        let private_data = merge.apply(entry.record.private_data.as_deref())?;
        entry.record.private_data = Some(private_data.clone());
        self.touch(&mut st, handle, now_ms);
        Ok(Some(private_data))
    }

    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let mut st = self.begin(now_ms);
        let handles = st.user_handles(user_id, now_ms);
        // Merge everything first so a corrupt row changes nothing (Blitz
        // would leave the rows before it updated and the rest not).
        let mut merged = Vec::with_capacity(handles.len());
        for h in &handles {
            let base = st
                .records
                .get(h)
                .and_then(|e| e.record.public_data.as_deref());
            merged.push(merge.apply(base)?);
        }
        for (h, public_data) in handles.iter().zip(merged) {
            if let Some(entry) = st.records.get_mut(h) {
                entry.record.public_data = Some(public_data);
            }
        }
        Ok(handles)
    }

    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        let mut st = self.begin(now_ms);
        let handles = st.user_handles(user_id, now_ms);
        for h in &handles {
            st.remove(h);
        }
        Ok(handles)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::conformance::{self, store_conformance_tests, Store};

    mod suite {
        use super::*;

        store_conformance_tests!(async { Arc::new(MemoryStore::new()) as Store });
    }

    /// The suite again with every option on (a cap far above what the checks
    /// create), so the bookkeeping for TTL and eviction is exercised too.
    mod suite_with_options {
        use super::*;

        store_conformance_tests!(async {
            Arc::new(MemoryStore::with_options(MemoryStoreOptions {
                anonymous_ttl_ms: Some(60_000),
                max_records: Some(100_000),
            })) as Store
        });
    }

    /// Forwards only the primitives, so the compound methods are the trait's
    /// defaults: what a JS-backed adapter gets. It must pass every group but
    /// atomicity (the defaults are not atomic); the expiry groups pass
    /// because its primitives are the memory store's.
    struct PrimitivesOnly(MemoryStore);

    #[async_trait]
    impl SessionStore for PrimitivesOnly {
        async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
            self.0.get(handle, now_ms).await
        }
        async fn get_for_user(
            &self,
            user_id: &str,
            now_ms: i64,
        ) -> StoreResult<Vec<SessionRecord>> {
            self.0.get_for_user(user_id, now_ms).await
        }
        async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
            self.0.create(record, now_ms).await
        }
        async fn update(
            &self,
            handle: &str,
            update: &SessionUpdate,
            now_ms: i64,
        ) -> StoreResult<bool> {
            self.0.update(handle, update, now_ms).await
        }
        async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
            self.0.delete(handle, now_ms).await
        }
    }

    mod suite_with_default_compound_methods {
        use super::*;

        store_conformance_tests!(groups [semantics, expiry, caller_clock]: async {
            Arc::new(PrimitivesOnly(MemoryStore::new())) as Store
        });
    }

    #[tokio::test]
    async fn run_all_on_a_single_thread() {
        conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Store }).await;
    }

    /// 2023-11-14T22:13:20Z: in the past, so any use of the system clock
    /// instead of the caller's `now_ms` shows.
    const T0: i64 = 1_700_000_000_000;
    const YEAR: i64 = 365 * 24 * 3_600_000;

    fn store(anonymous_ttl_ms: Option<i64>, max_records: Option<usize>) -> MemoryStore {
        MemoryStore::with_options(MemoryStoreOptions {
            anonymous_ttl_ms,
            max_records,
        })
    }

    fn rec(handle: &str, user: Option<&str>, expires_at: Option<i64>) -> SessionRecord {
        SessionRecord {
            handle: handle.to_owned(),
            user_id: user.map(str::to_owned),
            expires_at,
            public_data: Some(r#"{"userId":1}"#.to_owned()),
            ..SessionRecord::default()
        }
    }

    fn anon(handle: &str) -> SessionRecord {
        SessionRecord {
            handle: handle.to_owned(),
            ..SessionRecord::default()
        }
    }

    fn set(v: serde_json::Value) -> JsonMerge {
        let serde_json::Value::Object(set) = v else {
            panic!("not an object");
        };
        JsonMerge {
            set,
            remove: Vec::new(),
        }
    }

    /// The three maps agree with each other.
    fn check_invariants(store: &MemoryStore) {
        let st = store.lock();
        assert_eq!(st.by_deadline.len(), st.records.len());
        for (handle, e) in &st.records {
            assert_eq!(&e.record.handle, handle);
            assert_eq!(st.by_deadline.get(&(e.deadline, e.seq)), Some(handle));
            if let Some(user) = &e.record.user_id {
                assert!(st.by_user.get(user).is_some_and(|s| s.contains(handle)));
            }
        }
        for (user, handles) in &st.by_user {
            assert!(!handles.is_empty(), "empty index entry for {user}");
            for h in handles {
                let e = st.records.get(h).expect("indexed handle exists");
                assert_eq!(e.record.user_id.as_deref(), Some(user.as_str()));
            }
        }
    }

    #[test]
    fn is_send_sync_and_a_trait_object() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<MemoryStore>();
        let _: Store = Arc::new(MemoryStore::new());
    }

    #[tokio::test]
    async fn get_hides_and_removes_expired_records() {
        let store = store(None, None);
        store
            .create(&rec("h", Some("1"), Some(T0 + 100)), T0)
            .await
            .unwrap();
        assert!(store.get("h", T0 + 99).await.unwrap().is_some());
        // At the expiry instant the record is still there (the engine, like
        // Blitz, expires a session when `expiresAt < now`) but no longer
        // listed for its user (`expiresAt > now`, as PrismaStorage does).
        assert!(store.get("h", T0 + 100).await.unwrap().is_some());
        assert!(store.get_for_user("1", T0 + 100).await.unwrap().is_empty());
        assert_eq!(store.stats(T0 + 100).live, 1);
        // One ms later it is gone; `stats` only looks.
        let held = MemoryStoreStats {
            live: 0,
            stored: 1,
            users: 1,
        };
        assert_eq!(store.stats(T0 + 101), held);
        assert_eq!(store.stats(T0 + 101), held);
        assert_eq!(store.len(), 1);
        assert_eq!(store.get("h", T0 + 101).await.unwrap(), None);
        let empty = MemoryStoreStats {
            live: 0,
            stored: 0,
            users: 0,
        };
        assert_eq!(store.stats(T0 + 101), empty);
        // A later call with an earlier `now` does not bring it back.
        assert_eq!(store.get("h", T0).await.unwrap(), None);
        assert!(store.is_empty());
        check_invariants(&store);
    }

    /// The store has no clock: a `now` years in the past or in the future is
    /// taken as given.
    #[tokio::test]
    async fn time_comes_only_from_the_callers_now() {
        let store = store(Some(1_000), None);
        let past = T0 - 10 * YEAR;
        store
            .create(&rec("h", Some("1"), Some(past + 1_000)), past)
            .await
            .unwrap();
        store.create(&anon("a"), past).await.unwrap();
        assert!(store.get("h", past + 10).await.unwrap().is_some());
        assert!(store.get("a", past + 10).await.unwrap().is_some());
        assert_eq!(store.get_for_user("1", past + 10).await.unwrap().len(), 1);
        assert_eq!(store.stats(past + 10).live, 2);

        let future = T0 + 1_000 * YEAR;
        assert_eq!(store.stats(future).live, 0);
        assert_eq!(store.get("a", future).await.unwrap(), None);
        assert_eq!(store.get("h", future).await.unwrap(), None);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn expired_records_are_gone_for_writes_and_can_be_recreated() {
        let store = store(None, None);
        for h in ["u", "d", "m", "p", "c"] {
            store
                .create(&rec(h, Some("1"), Some(T0 + 10)), T0)
                .await
                .unwrap();
        }
        let now = T0 + 11;
        let update = SessionUpdate {
            expires_at: Some(T0 + 1_000_000),
            ..SessionUpdate::default()
        };
        assert!(!store.update("u", &update, now).await.unwrap());
        assert!(!store.delete("d", now).await.unwrap());
        let m = JsonMerge::default();
        assert_eq!(
            store
                .merge_public_data("m", &m, Some(T0 + 1_000_000), now)
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.merge_private_data("p", &m, now).await.unwrap(), None);
        let fresh = rec("c", Some("2"), Some(T0 + 1_000));
        store.create(&fresh, now).await.unwrap();
        assert_eq!(store.get("c", now).await.unwrap(), Some(fresh));
        assert_eq!(store.get("u", now).await.unwrap(), None);
        assert_eq!(store.stats(now).live, 1);
        assert!(store.get_for_user("1", now).await.unwrap().is_empty());
        check_invariants(&store);
    }

    #[tokio::test]
    async fn anonymous_rows_expire_after_idle_ttl() {
        let store = store(Some(1_000), None);
        let mut now = T0;
        store.create(&anon("a"), now).await.unwrap();
        store.create(&anon("idle"), now).await.unwrap();
        // Idle for exactly the TTL: still there. Each read, write or merge
        // restarts the idle time, by the caller's `now`.
        now += 1_000;
        assert!(store.get("a", now).await.unwrap().is_some());
        now += 1_000;
        let u = SessionUpdate {
            private_data: Some(r#"{"cart":1}"#.to_owned()),
            ..SessionUpdate::default()
        };
        assert!(store.update("a", &u, now).await.unwrap());
        assert_eq!(store.get("idle", now).await.unwrap(), None);
        now += 1_000;
        let merged = store
            .merge_private_data("a", &set(json!({"n": 1})), now)
            .await
            .unwrap();
        assert_eq!(merged.as_deref(), Some(r#"{"cart":1,"n":1}"#));
        now += 1_000;
        let merged = store
            .merge_public_data("a", &set(json!({"userId": null})), None, now)
            .await
            .unwrap();
        assert_eq!(merged.as_deref(), Some(r#"{"userId":null}"#));
        now += 1_000;
        let got = store.get("a", now).await.unwrap().unwrap();
        // The TTL is the store's bookkeeping, not data: `expires_at` stays None.
        assert_eq!(got.expires_at, None);
        assert_eq!(got.private_data.as_deref(), Some(r#"{"cart":1,"n":1}"#));
        now += 1_001;
        assert_eq!(store.stats(now).live, 0);
        assert_eq!(store.get("a", now).await.unwrap(), None);
        check_invariants(&store);
    }

    #[tokio::test]
    async fn default_anonymous_ttl_is_thirty_days() {
        let store = MemoryStore::new();
        store.create(&anon("a"), T0).await.unwrap();
        assert_eq!(store.stats(T0 + DEFAULT_ANONYMOUS_TTL_MS).live, 1);
        assert_eq!(store.stats(T0 + DEFAULT_ANONYMOUS_TTL_MS + 1).live, 0);
        assert_eq!(
            MemoryStoreOptions::default(),
            MemoryStoreOptions {
                anonymous_ttl_ms: Some(DEFAULT_ANONYMOUS_TTL_MS),
                max_records: None,
            }
        );
    }

    #[tokio::test]
    async fn without_ttl_anonymous_rows_are_kept() {
        let store = store(None, None);
        store.create(&anon("a"), T0).await.unwrap();
        assert!(store.get("a", T0 + 100 * YEAR).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_explicit_expiry_overrides_the_anonymous_ttl() {
        let store = store(Some(1_000), None);
        store
            .create(&rec("x", None, Some(T0 + 10_000)), T0)
            .await
            .unwrap();
        store.create(&anon("later"), T0).await.unwrap();
        let u = SessionUpdate {
            expires_at: Some(T0 + 50_000),
            ..SessionUpdate::default()
        };
        assert!(store.update("later", &u, T0).await.unwrap());
        assert!(store.get("x", T0 + 5_000).await.unwrap().is_some());
        assert!(store.get("later", T0 + 5_000).await.unwrap().is_some());
        assert!(store.get("x", T0 + 10_000).await.unwrap().is_some());
        assert_eq!(store.get("x", T0 + 10_001).await.unwrap(), None);
        assert!(store.get("later", T0 + 50_000).await.unwrap().is_some());
        assert_eq!(store.get("later", T0 + 50_001).await.unwrap(), None);
    }

    #[tokio::test]
    async fn user_rows_without_expiry_never_expire_and_are_not_listed() {
        let store = store(Some(1_000), None);
        store.create(&rec("h", Some("7"), None), T0).await.unwrap();
        let now = T0 + YEAR;
        assert!(store.get("h", now).await.unwrap().is_some());
        assert!(store.get_for_user("7", now).await.unwrap().is_empty());
        assert!(store.delete_for_user("7", now).await.unwrap().is_empty());
        assert_eq!(store.stats(i64::MAX).live, 1);
    }

    #[tokio::test]
    async fn purge_reclaims_expired_records_a_batch_per_operation() {
        let store = store(Some(1_000), None);
        let n = 10_000;
        for i in 0..n {
            let r = if i % 2 == 0 {
                rec(
                    &format!("h{i}"),
                    Some(&format!("{}", i % 97)),
                    Some(T0 + 1 + i),
                )
            } else {
                anon(&format!("h{i}"))
            };
            store.create(&r, T0).await.unwrap();
        }
        assert_eq!(store.stats(T0).live, n as usize);
        let now = T0 + n + 1_000;
        assert_eq!(store.stats(now).live, 0);
        assert_eq!(store.len(), n as usize);

        // Unrelated traffic frees the memory, PURGE_BATCH records per call.
        let calls = n as usize / PURGE_BATCH + 1;
        for i in 0..calls {
            store.get("missing", now).await.unwrap();
            let stored = store.len();
            assert_eq!(stored, (n as usize).saturating_sub((i + 1) * PURGE_BATCH));
        }
        assert_eq!(
            store.stats(now),
            MemoryStoreStats {
                live: 0,
                stored: 0,
                users: 0
            }
        );
        check_invariants(&store);
    }

    #[tokio::test]
    async fn steady_traffic_keeps_memory_at_the_live_set() {
        let store = store(Some(300), None);
        let mut now = T0;
        for i in 0..20_000 {
            let r = if i % 3 == 0 {
                anon(&format!("h{i}"))
            } else {
                rec(
                    &format!("h{i}"),
                    Some(&format!("{}", i % 50)),
                    Some(now + 200),
                )
            };
            store.create(&r, now).await.unwrap();
            now += 1;
            // Records created in the last 301 ms at most (an anonymous row
            // lives until 300 ms have passed, its deadline included).
            assert!(store.len() <= 301, "step {i}: {:?}", store.stats(now));
        }
        check_invariants(&store);
    }

    #[tokio::test]
    async fn purge_expired_removes_everything_expired() {
        let store = store(None, None);
        for i in 0..500 {
            store
                .create(
                    &rec(&format!("h{i}"), Some("1"), Some(T0 + 10 + i % 2 * 1_000)),
                    T0,
                )
                .await
                .unwrap();
        }
        assert_eq!(store.purge_expired(T0 + 10), 0);
        assert_eq!(store.purge_expired(T0 + 11), 250);
        assert_eq!(store.len(), 250);
        assert_eq!(store.stats(T0 + 11).live, 250);
        check_invariants(&store);
    }

    #[tokio::test]
    async fn the_cap_evicts_the_soonest_expiring_records_first() {
        let store = store(Some(10_000), Some(3));
        store
            .create(&rec("a", Some("1"), Some(T0 + 300)), T0)
            .await
            .unwrap();
        store
            .create(&rec("b", Some("1"), Some(T0 + 100)), T0)
            .await
            .unwrap();
        store
            .create(&rec("c", Some("2"), Some(T0 + 200)), T0)
            .await
            .unwrap();
        store
            .create(&rec("d", Some("2"), Some(T0 + 400)), T0)
            .await
            .unwrap();
        assert_eq!(store.get("b", T0).await.unwrap(), None);
        assert_eq!(store.len(), 3);

        // A row that never expires outlives every row that does.
        store
            .create(&rec("never", Some("3"), None), T0)
            .await
            .unwrap();
        assert_eq!(store.get("c", T0).await.unwrap(), None);
        // An anonymous row's idle deadline (now + 10 s) counts as its expiry.
        store.create(&anon("anon"), T0).await.unwrap();
        assert_eq!(store.get("a", T0).await.unwrap(), None);
        store
            .create(&rec("e", Some("1"), Some(T0 + 20_000)), T0)
            .await
            .unwrap();
        assert_eq!(store.get("d", T0).await.unwrap(), None);
        store
            .create(&rec("f", Some("1"), Some(T0 + 30_000)), T0)
            .await
            .unwrap();
        assert_eq!(store.get("anon", T0).await.unwrap(), None);
        for h in ["never", "e", "f"] {
            assert!(store.get(h, T0).await.unwrap().is_some(), "{h} evicted");
        }
        // The user index forgot the evicted rows.
        let handles: Vec<_> = store
            .get_for_user("1", T0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.handle)
            .collect();
        assert_eq!(handles, ["e", "f"]);
        assert!(store.get_for_user("2", T0).await.unwrap().is_empty());
        check_invariants(&store);

        // With nothing but rows that never expire, the oldest goes first.
        let store = self::store(None, Some(2));
        for h in ["n1", "n2", "n3"] {
            store.create(&rec(h, Some("1"), None), T0).await.unwrap();
        }
        assert_eq!(store.get("n1", T0).await.unwrap(), None);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn the_cap_spends_expired_records_before_live_ones() {
        let store = store(None, Some(2));
        store
            .create(&rec("old", Some("1"), Some(T0 + 5)), T0)
            .await
            .unwrap();
        store
            .create(&rec("live", Some("1"), Some(T0 + 1_000)), T0)
            .await
            .unwrap();
        let now = T0 + 6;
        store
            .create(&rec("new", Some("1"), Some(T0 + 500)), now)
            .await
            .unwrap();
        assert!(store.get("live", now).await.unwrap().is_some());
        assert!(store.get("new", now).await.unwrap().is_some());
        // A zero cap would make the store useless; it means one record.
        let store = self::store(None, Some(0));
        store.create(&rec("x", None, None), T0).await.unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn a_record_created_expired_is_not_stored_and_evicts_nothing() {
        let store = store(None, Some(1));
        store
            .create(&rec("live", Some("1"), Some(T0 + 100)), T0)
            .await
            .unwrap();
        store
            .create(&rec("dead", Some("1"), Some(T0 - 1)), T0)
            .await
            .unwrap();
        assert!(store.get("live", T0).await.unwrap().is_some());
        assert_eq!(store.len(), 1);

        // Expiring at the very `now` it is created is not expired yet.
        let store = self::store(None, None);
        let edge = rec("edge", Some("1"), Some(T0));
        store.create(&edge, T0).await.unwrap();
        assert_eq!(store.get("edge", T0).await.unwrap(), Some(edge));
    }

    #[tokio::test]
    async fn a_conflicting_create_evicts_nothing() {
        let store = store(None, Some(2));
        store
            .create(&rec("a", Some("1"), Some(T0 + 100)), T0)
            .await
            .unwrap();
        store
            .create(&rec("b", Some("1"), Some(T0 + 200)), T0)
            .await
            .unwrap();
        let err = store
            .create(&rec("b", Some("1"), None), T0)
            .await
            .unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Conflict);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn get_for_user_lists_in_creation_order_by_the_given_now() {
        let store = store(None, None);
        for (h, at) in [("e", 500), ("b", 100), ("d", 300), ("a", 200)] {
            store
                .create(&rec(h, Some("1"), Some(T0 + at)), T0)
                .await
                .unwrap();
        }
        let list = |now| {
            let store = store.clone();
            async move {
                store
                    .get_for_user("1", now)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.handle)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(list(T0).await, ["e", "b", "d", "a"]);
        assert_eq!(list(T0 + 150).await, ["e", "d", "a"]);
        assert_eq!(list(T0 + 300).await, ["e"]);
    }

    #[tokio::test]
    async fn merge_for_user_is_all_or_nothing() {
        let store = store(None, None);
        let good = rec("good", Some("1"), Some(T0 + 100));
        let mut bad = rec("bad", Some("1"), Some(T0 + 100));
        bad.public_data = Some("{oops".to_owned());
        let later = rec("later", Some("1"), Some(T0 + 100));
        for r in [&good, &bad, &later] {
            store.create(r, T0).await.unwrap();
        }
        let m = set(json!({"role": "admin"}));
        let err = store
            .merge_public_data_for_user("1", &m, T0)
            .await
            .unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Corrupt);
        assert_eq!(store.get("good", T0).await.unwrap(), Some(good));
        assert_eq!(store.get("later", T0).await.unwrap(), Some(later));
    }

    #[tokio::test]
    async fn merge_private_data_leaves_everything_else_alone() {
        let store = store(Some(1_000), None);
        let mut r = rec("h", Some("1"), Some(T0 + 100));
        r.private_data = Some(r#"{"a":1}"#.to_owned());
        r.hashed_session_token = Some("hash".to_owned());
        store.create(&r, T0).await.unwrap();
        let out = store
            .merge_private_data("h", &set(json!({"b": 2})), T0 + 50)
            .await
            .unwrap();
        assert_eq!(out.as_deref(), Some(r#"{"a":1,"b":2}"#));
        r.private_data = out;
        assert_eq!(store.get("h", T0 + 100).await.unwrap(), Some(r));
        // A user's row keeps its own expiry: a merge does not extend it.
        assert_eq!(store.get("h", T0 + 101).await.unwrap(), None);
        check_invariants(&store);
    }

    #[tokio::test]
    async fn a_poisoned_lock_is_recovered() {
        let store = MemoryStore::new();
        store.create(&anon("a"), T0).await.unwrap();
        let shared = store.clone();
        let crashed = std::thread::spawn(move || {
            let _guard = shared.shared.state.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(crashed.is_err());
        assert!(store.shared.state.is_poisoned());
        assert!(store.get("a", T0).await.unwrap().is_some());
        store.create(&anon("b"), T0).await.unwrap();
        assert!(store.delete("a", T0).await.unwrap());
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn clones_share_one_store() {
        let store = MemoryStore::new();
        let other = store.clone();
        store.create(&anon("a"), T0).await.unwrap();
        assert!(other.get("a", T0).await.unwrap().is_some());
        assert_eq!(other.len(), 1);
        assert!(!other.is_empty());
        assert!(format!("{other:?}").contains("stored: 1"));
    }

    /// Random operations with a moving `now`, a TTL and a cap: the indexes
    /// stay consistent and `get_for_user` only ever lists live rows of the
    /// user asked for.
    #[tokio::test]
    async fn random_operations_keep_the_indexes_consistent() {
        let store = store(Some(400), Some(150));
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = T0;
        for step in 0..20_000 {
            let handle = format!("h{}", next(300));
            let user = format!("{}", next(8));
            match next(10) {
                0 | 1 => {
                    let expires = match next(3) {
                        0 => None,
                        _ => Some(now + next(1_000) as i64 - 100),
                    };
                    let owner = (next(4) != 0).then_some(user.as_str());
                    let _ = store.create(&rec(&handle, owner, expires), now).await;
                }
                2 => {
                    let u = SessionUpdate {
                        expires_at: (next(2) == 0).then(|| now + next(1_000) as i64),
                        private_data: Some("{}".to_owned()),
                        ..SessionUpdate::default()
                    };
                    store.update(&handle, &u, now).await.unwrap();
                }
                3 => {
                    store.delete(&handle, now).await.unwrap();
                }
                4 => {
                    if let Some(r) = store.get(&handle, now).await.unwrap() {
                        assert!(r.expires_at.is_none_or(|at| at >= now), "step {step}");
                    }
                }
                5 => {
                    let m = JsonMerge {
                        remove: vec!["x".to_owned()],
                        ..JsonMerge::default()
                    };
                    store
                        .merge_public_data(&handle, &m, None, now)
                        .await
                        .unwrap();
                }
                6 => {
                    let m = set(json!({ "k": step }));
                    store.merge_private_data(&handle, &m, now).await.unwrap();
                }
                7 => {
                    let m = JsonMerge::default();
                    store
                        .merge_public_data_for_user(&user, &m, now)
                        .await
                        .unwrap();
                }
                8 => {
                    store.delete_for_user(&user, now).await.unwrap();
                }
                _ => {
                    for r in store.get_for_user(&user, now).await.unwrap() {
                        assert_eq!(r.user_id.as_deref(), Some(user.as_str()));
                        assert!(r.expires_at.is_some_and(|at| at > now), "step {step}");
                    }
                }
            }
            now += next(5) as i64;
            assert!(store.len() <= 150);
            if step % 97 == 0 {
                check_invariants(&store);
            }
        }
        check_invariants(&store);
    }
}
