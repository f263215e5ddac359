//! Session storage: the [`SessionStore`] trait every store implements, the
//! record types, and the stores themselves.
//!
//! The primitive operations mirror Blitz's `SessionConfigMethods` one to one
//! (`getSession`, `getSessions`, `createSession`, `updateSession`,
//! `deleteSession`), so a JS-backed store (an app's Prisma storage) is a thin
//! adapter. Operations that must be atomic across a read and a write, or
//! across every session of a user, are trait methods too, with default
//! implementations composed from the primitives (what Blitz does, race and
//! all); native stores override them with a single atomic step.
//!
//! Semantics every store must have (checked by the test-only `conformance`
//! suite):
//! - Every operation gets the caller's `now_ms`: the engine's clock, which a
//!   test may freeze, is the one time source (native stores with their own
//!   expiry, like Redis, also expire by their own clock).
//! - `get` returns the record as stored, byte for byte, or `None`; a record
//!   whose `expires_at` has passed may be returned or not (the engine checks).
//! - `get_for_user` returns only live records of that user: `user_id`
//!   equal and `expires_at` in the future (records without `expires_at` are
//!   excluded), as Blitz's PrismaStorage does. Liveness is
//!   `expires_at > now_ms` with the `now_ms` passed in; user ids compare as
//!   exact JSON text (`1` and `"1"` are different users); anonymous rows
//!   (`user_id: None`) match no user. The compound per-user methods use the
//!   same selection.
//! - An `expires_at` in the past is accepted by `create`, `update` and
//!   `merge_public_data` (the record is then simply not live).
//! - A merge into stored publicData that is not JSON fails with
//!   [`StoreErrorKind::Corrupt`] and leaves that record unchanged.
//! - `create` never overwrites: it fails with [`StoreErrorKind::Conflict`] when
//!   the handle exists.
//! - `update` never creates: updating a missing (revoked) handle is a no-op
//!   that returns `false`, so a request in flight cannot revive a session.
//! - `delete` of a missing handle is a no-op returning `false`.
#![forbid(unsafe_code)]

#[cfg(test)]
pub mod conformance;
pub mod memory;
pub mod redis;

use std::fmt;

use async_trait::async_trait;

use crate::session::token::{generate_handle, HandleKind};
use serde_json::{Map, Value};

/// One stored session (a row of Blitz's `Session` model).
///
/// `user_id` is the JSON text of the app's user id (`1`, `"abc"`), so ids of
/// any JSON type compare exactly; `public_data` / `private_data` are JSON
/// text; times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRecord {
    /// `<32 random chars>:ots` (authenticated) or `:ajwt` (anonymous).
    pub handle: String,
    /// JSON text of the user id; `None` for anonymous rows.
    pub user_id: Option<String>,
    /// Absolute expiry (ms since epoch); `None` never expires.
    pub expires_at: Option<i64>,
    /// `sha256hex` of the session token.
    pub hashed_session_token: Option<String>,
    /// The session's anti-CSRF token.
    pub anti_csrf_token: Option<String>,
    /// JSON text of the public data.
    pub public_data: Option<String>,
    /// JSON text of the private data.
    pub private_data: Option<String>,
}

/// Fields to change in [`SessionStore::update`]; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    /// New absolute expiry.
    pub expires_at: Option<i64>,
    /// New public data (JSON text).
    pub public_data: Option<String>,
    /// New private data (JSON text).
    pub private_data: Option<String>,
    /// New hash of the session token (the token is re-issued when its public data changes).
    pub hashed_session_token: Option<String>,
}

impl SessionUpdate {
    /// Apply to a record in place.
    pub fn apply_to(&self, r: &mut SessionRecord) {
        if let Some(e) = self.expires_at {
            r.expires_at = Some(e);
        }
        if let Some(p) = &self.public_data {
            r.public_data = Some(p.clone());
        }
        if let Some(p) = &self.private_data {
            r.private_data = Some(p.clone());
        }
        if let Some(h) = &self.hashed_session_token {
            r.hashed_session_token = Some(h.clone());
        }
    }
}

/// A shallow merge into a JSON object, `{...base, ...set}` with JS semantics:
/// existing keys keep their position, new keys are appended, and keys in
/// `remove` (values JSON cannot represent, such as `undefined`) are dropped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonMerge {
    /// Keys to set, in the caller's order.
    pub set: Map<String, Value>,
    /// Keys to delete.
    pub remove: Vec<String>,
}

impl JsonMerge {
    /// Merge into `base` (JSON text of an object; `None`, empty or `null` is `{}`).
    pub fn apply(&self, base: Option<&str>) -> Result<String, StoreError> {
        let mut obj = match base.map(str::trim) {
            None | Some("") | Some("null") => Map::new(),
            Some(text) => match crate::session::json::parse(text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => Map::new(),
                Err(e) => {
                    return Err(StoreError::new(
                        StoreErrorKind::Corrupt,
                        format!("stored publicData is not valid JSON: {e}"),
                    ))
                }
            },
        };
        for (k, v) in &self.set {
            obj.insert(k.clone(), v.clone());
        }
        for k in &self.remove {
            obj.shift_remove(k);
        }
        Ok(crate::session::json::stringify(&Value::Object(obj)))
    }

    /// True when the merge changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// What went wrong in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store cannot be reached (down, timeout, pool exhausted).
    Unavailable,
    /// `create` found the handle already there.
    Conflict,
    /// A stored value cannot be read (bad JSON, wrong type).
    Corrupt,
    /// The store (or the app's storage functions) failed otherwise.
    Failed,
}

/// A store failure with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    /// Category.
    pub kind: StoreErrorKind,
    /// Details.
    pub message: String,
}

impl StoreError {
    /// Build one.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for StoreError {}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The storage a session engine runs on.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Blitz `getSession(handle)`. A record expired at `now_ms` may be hidden.
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>>;

    /// Blitz `getSessions(userId)`: live records of the user (see module docs).
    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Blitz `createSession(record)`; never overwrites (a record expired at `now_ms` may be replaced).
    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()>;

    /// Blitz `updateSession(handle, update)`; never creates. `Ok(false)` when
    /// the handle is gone; a store that expires records itself also answers
    /// `false` for a record expired at `now_ms` (a record is expired when
    /// `expires_at < now_ms`, matching the engine).
    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool>;

    /// Blitz `deleteSession(handle)`. `Ok(false)` when there was nothing to delete.
    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool>;

    /// Whether the records are shared with `@blitzjs/auth` (an app's own
    /// `SessionConfigMethods`). The engine then keeps `hashed_session_token`
    /// equal to the hash of the latest cookie, which Blitz can check; native
    /// stores get a hash bound to the token's secret id instead, which no
    /// concurrent re-issue can invalidate (see the engine's token rules).
    fn shares_rows_with_blitz(&self) -> bool {
        false
    }

    /// A new session handle (`<32 chars>:ots` or `:ajwt`). `user_id` is the
    /// JSON text of the user id for authenticated sessions. A store may shape
    /// the random part, e.g. to put every session of one user on one Redis
    /// Cluster slot; the default is 32 random characters.
    fn new_handle(&self, kind: HandleKind, _user_id: Option<&str>) -> crate::error::Result<String> {
        generate_handle(kind)
    }

    /// Merge into the public data of one session and optionally move its
    /// expiry, as one step. Returns the new public data, or `None` when the
    /// handle is gone. Default: `get` then `update` (not atomic).
    async fn merge_public_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let Some(row) = self.get(handle, now_ms).await? else {
            return Ok(None);
        };
        let public_data = merge.apply(row.public_data.as_deref())?;
        let update = SessionUpdate {
            expires_at,
            public_data: Some(public_data.clone()),
            ..SessionUpdate::default()
        };
        Ok(self
            .update(handle, &update, now_ms)
            .await?
            .then_some(public_data))
    }

    /// Merge into the private data of one session, as one step. Returns the
    /// new private data, or `None` when the handle is gone. Default: `get`
    /// then `update` (not atomic).
    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        let Some(row) = self.get(handle, now_ms).await? else {
            return Ok(None);
        };
        let private_data = merge.apply(row.private_data.as_deref())?;
        let update = SessionUpdate {
            private_data: Some(private_data.clone()),
            ..SessionUpdate::default()
        };
        Ok(self
            .update(handle, &update, now_ms)
            .await?
            .then_some(private_data))
    }

    /// Merge into the public data of every live session of a user
    /// (`setPublicDataForUser`). Returns the handles changed. Default: one
    /// `get_for_user`, then one `update` per record (not atomic).
    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        let mut changed = Vec::new();
        for row in self.get_for_user(user_id, now_ms).await? {
            let update = SessionUpdate {
                public_data: Some(merge.apply(row.public_data.as_deref())?),
                ..SessionUpdate::default()
            };
            if self.update(&row.handle, &update, now_ms).await? {
                changed.push(row.handle);
            }
        }
        Ok(changed)
    }

    /// Delete every live session of a user (`$revokeAll`). Returns the handles
    /// deleted. Default: `get_for_user`, then `delete` each.
    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        let mut gone = Vec::new();
        for row in self.get_for_user(user_id, now_ms).await? {
            if self.delete(&row.handle, now_ms).await? {
                gone.push(row.handle);
            }
        }
        Ok(gone)
    }
}
