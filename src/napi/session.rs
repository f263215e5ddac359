//! Binding of the session engine: `SessionEngine`, its per-request
//! `NativeSession`, and the stores JS can hand to it.
//!
//! A request's whole session work crosses napi once each way: `resolve`
//! takes the method, the `Cookie` header and the `anti-csrf` header, and
//! returns the session together with the cookies and headers to send. With
//! the in-memory store the engine's future completes on the first poll, so the
//! result is returned synchronously (no thread hop, no promise); a store that
//! must wait (Redis, the app's JS storage) returns a ticket instead, and the
//! result follows in a batch (`completion.rs`): Redis operations run on the
//! I/O runtime, the JS storage's are polled on the JS thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use napi_derive::napi;
use serde_json::{Map, Value};

use super::completion::Completions;
use super::to_js;
use crate::error::{Error as CoreError, ErrorCode};
use crate::session::config::SessionConfig;
use crate::session::cookie::{CookieOptions, SameSite};
use crate::session::engine::{Engine, RequestInput, RequestSession, FIELD_SEPARATOR};
use crate::store::memory::MemoryStore;
use crate::store::redis::{RedisOptions, RedisStore};
use crate::store::{
    JsonMerge, SessionRecord, SessionStore, SessionUpdate, StoreError, StoreErrorKind, StoreResult,
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Poll once; a store that answers at once (memory) needs no runtime hop.
fn now_or_later<T: Send + 'static>(mut fut: BoxFuture<T>) -> std::result::Result<T, BoxFuture<T>> {
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(fut),
    }
}

/// Either the value now, or a promise of it.
type MaybeAsync<'env, T> = Either<T, PromiseRaw<'env, T>>;

fn run<'env, T, F>(env: &'env Env, fut: F) -> napi::Result<MaybeAsync<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = napi::Result<T>> + Send + 'static,
{
    match now_or_later(Box::pin(fut)) {
        Ok(v) => v.map(Either::A),
        Err(pending) => env.spawn_future(pending).map(Either::B),
    }
}

/// Options of the session engine (Blitz's option names, already validated and
/// defaulted by the JS layer; environment resolved there too).
#[napi(object)]
pub struct SessionEngineOptions {
    pub cookie_prefix: String,
    pub session_expiry_minutes: f64,
    pub anon_session_expiry_minutes: f64,
    /// `"lax" | "strict" | "none" | ""` (empty: no SameSite attribute).
    pub same_site: String,
    pub secure_cookies: bool,
    pub domain: Option<String>,
    pub public_data_keys_to_sync_across_sessions: Vec<String>,
    pub secret: String,
    pub previous_secrets: Vec<String>,
    pub csrf_disabled: bool,
}

impl TryFrom<SessionEngineOptions> for SessionConfig {
    type Error = CoreError;

    fn try_from(o: SessionEngineOptions) -> std::result::Result<Self, CoreError> {
        let same_site = match o.same_site.to_ascii_lowercase().as_str() {
            "lax" => SameSite::Lax,
            "strict" => SameSite::Strict,
            "none" => SameSite::None,
            "" => SameSite::Omitted,
            _ => {
                return Err(CoreError::new(
                    ErrorCode::InvalidConfig,
                    "option sameSite is invalid",
                ))
            }
        };
        Ok(SessionConfig {
            cookie_prefix: o.cookie_prefix,
            session_expiry_minutes: o.session_expiry_minutes,
            anon_session_expiry_minutes: o.anon_session_expiry_minutes,
            cookie: CookieOptions {
                domain: o.domain,
                secure: o.secure_cookies,
                same_site,
            },
            public_data_keys_to_sync: o.public_data_keys_to_sync_across_sessions,
            secret: o.secret,
            previous_secrets: o.previous_secrets,
            csrf_disabled: o.csrf_disabled,
        })
    }
}

/// Options of the Redis store (see `RedisStorage` in the JS API).
#[napi(object)]
pub struct RedisStoreOptions {
    /// One URL (`redis://[:password@]host:port[/db]`), or the seed nodes of a Cluster.
    pub urls: Vec<String>,
    /// Key prefix (default `blitz-auth:`).
    pub prefix: Option<String>,
    /// Redis Cluster (default false).
    pub cluster: Option<bool>,
    /// Connections kept open (default 16).
    pub pool_size: Option<u32>,
    /// Bound on every Redis call, ms (default 1000).
    pub timeout_ms: Option<u32>,
    /// Idle lifetime of anonymous private-data rows, ms (default 30 days; 0 = never expire).
    pub anonymous_ttl_ms: Option<f64>,
}

/// A session store usable by `SessionEngine`.
#[napi]
pub struct NativeStore {
    inner: Arc<dyn SessionStore>,
    /// Every wait of this store is a JS promise: its operations are polled
    /// on the JS thread instead of the I/O runtime (completion.rs).
    on_js_thread: bool,
}

#[napi]
impl NativeStore {
    /// The embedded in-memory store.
    #[napi(factory)]
    pub fn memory() -> Self {
        NativeStore {
            inner: Arc::new(MemoryStore::new()),
            on_js_thread: false,
        }
    }

    /// The Redis store (single node, or Redis Cluster with `cluster: true`).
    /// Connections open on first use; nothing is sent to Redis here.
    #[napi(factory)]
    pub fn redis(options: RedisStoreOptions) -> napi::Result<Self, String> {
        let defaults = RedisOptions::default();
        let opts = RedisOptions {
            urls: options.urls,
            prefix: options.prefix.unwrap_or(defaults.prefix),
            cluster: options.cluster.unwrap_or(defaults.cluster),
            pool_size: options.pool_size.map_or(defaults.pool_size, |n| n as usize),
            timeout_ms: options.timeout_ms.map_or(defaults.timeout_ms, u64::from),
            anonymous_ttl_ms: match options.anonymous_ttl_ms {
                None => defaults.anonymous_ttl_ms,
                Some(ms) if ms <= 0.0 => None,
                Some(ms) => Some(ms as u64),
            },
        };
        let store = RedisStore::new(opts).map_err(|e| {
            to_js(CoreError::new(
                ErrorCode::InvalidConfig,
                format!("RedisStorage: {}", e.message),
            ))
        })?;
        Ok(NativeStore {
            inner: Arc::new(store),
            on_js_thread: false,
        })
    }

    /// A store backed by the app's JavaScript storage (`SessionConfigMethods`).
    /// `bridge(requestJson)` performs one storage call and resolves to the JSON
    /// of its result (see lib/storage.js for the protocol).
    #[napi(factory)]
    pub fn from_js(bridge: Function<'_, String, Promise<Option<String>>>) -> napi::Result<Self> {
        let tsfn = bridge.build_threadsafe_function().weak::<true>().build()?;
        Ok(NativeStore {
            inner: Arc::new(JsStore { bridge: tsfn }),
            on_js_thread: true,
        })
    }
}

type Bridge = ThreadsafeFunction<String, Promise<Option<String>>, String, Status, false, true>;

/// A store whose five primitives are the app's own JS functions.
struct JsStore {
    bridge: Bridge,
}

impl JsStore {
    async fn call(&self, request: Value) -> StoreResult<Option<Value>> {
        let failed = |e: napi::Error| StoreError::new(StoreErrorKind::Failed, e.reason.clone());
        let promise = self
            .bridge
            .call_async(request.to_string())
            .await
            .map_err(failed)?;
        let answer = promise.await.map_err(|e| {
            // The JS side encodes the storage's own error as `code|message`.
            match e.reason.split_once('|') {
                Some(("SESSION_STORE_UNAVAILABLE", m)) => {
                    StoreError::new(StoreErrorKind::Unavailable, m)
                }
                Some((_, m)) => StoreError::new(StoreErrorKind::Failed, m),
                None => StoreError::new(StoreErrorKind::Failed, e.reason.clone()),
            }
        })?;
        match answer {
            None => Ok(None),
            Some(text) => crate::session::json::parse(&text).map(Some).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("storage answer is not JSON: {e}"),
                )
            }),
        }
    }
}

fn record_to_json(r: &SessionRecord) -> Value {
    let mut m = Map::new();
    // Blitz's createSession key order: expiresAt, handle, userId, hashedSessionToken, antiCSRFToken, publicData, privateData.
    if let Some(e) = r.expires_at {
        m.insert("expiresAt".into(), Value::from(e));
    }
    m.insert("handle".into(), Value::from(r.handle.clone()));
    if let Some(u) = &r.user_id {
        m.insert(
            "userId".into(),
            crate::session::json::parse(u).unwrap_or(Value::Null),
        );
    }
    for (k, v) in [
        ("hashedSessionToken", &r.hashed_session_token),
        ("antiCSRFToken", &r.anti_csrf_token),
        ("publicData", &r.public_data),
        ("privateData", &r.private_data),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), Value::from(v.clone()));
        }
    }
    Value::Object(m)
}

fn record_from_json(v: &Value) -> StoreResult<SessionRecord> {
    let corrupt = |what: &str| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!("storage returned a session whose {what}"),
        )
    };
    let obj = v
        .as_object()
        .ok_or_else(|| corrupt("value is not an object"))?;
    let text = |k: &str| -> StoreResult<Option<String>> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(corrupt(&format!("{k} is not a string"))),
        }
    };
    let handle = text("handle")?.ok_or_else(|| corrupt("handle is missing"))?;
    let expires_at = match obj.get("expiresAt") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().map(|f| f as i64),
        Some(_) => return Err(corrupt("expiresAt is not a Date")),
    };
    let user_id = match obj.get("userId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::session::json::stringify(v)),
    };
    Ok(SessionRecord {
        handle,
        user_id,
        expires_at,
        hashed_session_token: text("hashedSessionToken")?,
        anti_csrf_token: text("antiCSRFToken")?,
        public_data: text("publicData")?,
        private_data: text("privateData")?,
    })
}

fn update_to_json(u: &SessionUpdate) -> Value {
    let mut m = Map::new();
    if let Some(e) = u.expires_at {
        m.insert("expiresAt".into(), Value::from(e));
    }
    if let Some(h) = &u.hashed_session_token {
        m.insert("hashedSessionToken".into(), Value::from(h.clone()));
    }
    if let Some(p) = &u.public_data {
        m.insert("publicData".into(), Value::from(p.clone()));
    }
    if let Some(p) = &u.private_data {
        m.insert("privateData".into(), Value::from(p.clone()));
    }
    Value::Object(m)
}

fn request(op: &str, args: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("op".into(), Value::from(op));
    m.insert("args".into(), Value::Array(args));
    Value::Object(m)
}

#[async_trait]
impl SessionStore for JsStore {
    async fn get(&self, handle: &str, _now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        match self
            .call(request("getSession", vec![Value::from(handle)]))
            .await?
        {
            None | Some(Value::Null) => Ok(None),
            Some(v) => record_from_json(&v).map(Some),
        }
    }

    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        let uid: Value = crate::session::json::parse(user_id).unwrap_or(Value::Null);
        let rows = self.call(request("getSessions", vec![uid])).await?;
        let rows = match rows {
            Some(Value::Array(rows)) => rows,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => {
                return Err(StoreError::new(
                    StoreErrorKind::Corrupt,
                    "storage getSessions did not return an array",
                ))
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let rec = record_from_json(r)?;
            // The contract is "live sessions of this user"; storages that
            // return more (a simple in-memory one) are filtered here.
            if rec.user_id.as_deref() == Some(user_id) && rec.expires_at.is_some_and(|e| e > now_ms)
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    async fn create(&self, record: &SessionRecord, _now_ms: i64) -> StoreResult<()> {
        self.call(request("createSession", vec![record_to_json(record)]))
            .await?;
        Ok(())
    }

    async fn update(
        &self,
        handle: &str,
        update: &SessionUpdate,
        _now_ms: i64,
    ) -> StoreResult<bool> {
        let answer = self
            .call(request(
                "updateSession",
                vec![Value::from(handle), update_to_json(update)],
            ))
            .await?;
        // Blitz's storages return the row or undefined; undefined for a missing row.
        Ok(!matches!(answer, Some(Value::Bool(false))))
    }

    async fn delete(&self, handle: &str, _now_ms: i64) -> StoreResult<bool> {
        let answer = self
            .call(request("deleteSession", vec![Value::from(handle)]))
            .await?;
        Ok(!matches!(answer, Some(Value::Bool(false))))
    }

    /// The app's storage may be shared with @blitzjs/auth (during a migration,
    /// or a rollback): keep the token hashes Blitz checks.
    fn shares_rows_with_blitz(&self) -> bool {
        true
    }
}

/// The session engine for one configuration and store.
///
/// A request session crosses napi as one string (see
/// `RequestSession::encode`): building a JS object field by field, and a class
/// instance with a finalizer per request, cost more than the engine's work.
/// The JS layer splits it, keeps it, and hands it back to the operations.
#[napi]
pub struct SessionEngine {
    inner: Arc<Engine>,
    completions: Arc<Completions>,
    on_js_thread: bool,
}

/// A session operation's encoded result now, or the ticket under which
/// `drain()` will hand it over (see `completion.rs`).
type Ticketed = Either<String, u32>;

impl SessionEngine {
    fn ticketed<F>(&self, env: &Env, fut: F) -> napi::Result<Ticketed>
    where
        F: Future<Output = String> + Send + 'static,
    {
        if self.on_js_thread {
            return self.completions.spawn_local(env, Box::pin(fut));
        }
        match now_or_later(Box::pin(fut)) {
            Ok(v) => Ok(Either::A(v)),
            Err(pending) => self.completions.spawn(env, pending).map(Either::B),
        }
    }
}

fn js_merge(set_json: &str, remove: Vec<String>) -> std::result::Result<JsonMerge, CoreError> {
    match crate::session::json::parse(set_json) {
        Ok(Value::Object(set)) => Ok(JsonMerge { set, remove }),
        Ok(_) | Err(_) => Err(CoreError::new(
            ErrorCode::InvalidArgument,
            "session data must be a plain object that JSON can represent",
        )),
    }
}

/// `err␁0␁code␁message`: an operation failed; the session is unchanged.
pub(super) fn op_error(e: &CoreError) -> String {
    let sep = FIELD_SEPARATOR;
    format!(
        "err{sep}0{sep}{}{sep}{}",
        e.code().as_str(),
        e.message().replace(sep, " ")
    )
}

/// The encoded session after an operation, or its error (the session unchanged).
fn settle(r: std::result::Result<String, CoreError>) -> String {
    r.unwrap_or_else(|e| op_error(&e))
}

#[napi]
impl SessionEngine {
    #[napi(constructor)]
    /// `onReady` is called (without arguments) when results of operations
    /// that returned a ticket are ready to `drain()`.
    pub fn new(
        options: SessionEngineOptions,
        store: &NativeStore,
        on_ready: Function<'_, (), ()>,
    ) -> napi::Result<Self, String> {
        let config = SessionConfig::try_from(options).map_err(to_js)?;
        let inner = Engine::new(config, Arc::clone(&store.inner)).map_err(to_js)?;
        let completions = Completions::new(on_ready).map_err(|e| {
            napi::Error::new(
                ErrorCode::InvalidArgument.as_str().to_owned(),
                format!("SessionEngine needs an onReady function as its third argument ({e})"),
            )
        })?;
        Ok(SessionEngine {
            inner,
            completions,
            on_js_thread: store.on_js_thread,
        })
    }

    /// Start the operations queued for the runtime, then hand over the
    /// results that are ready, as `[ticket, result, ticket, result, …]`.
    /// JS calls it from `onReady`.
    #[napi(ts_return_type = "Array<number | string>")]
    pub fn drain(&self, env: &Env) -> napi::Result<Vec<Either<u32, String>>> {
        self.completions.drain(env)
    }

    /// Resolve a request's session (Blitz's `getSession`): the encoded session,
    /// or `err␁flags␁code␁message␁cookie…` with what to send anyway.
    #[napi(ts_return_type = "string | number")]
    pub fn resolve(
        &self,
        env: &Env,
        method: String,
        cookie_header: Option<String>,
        anti_csrf_header: Option<String>,
        now_ms: f64,
        read_only: Option<bool>,
    ) -> napi::Result<Ticketed> {
        let engine = Arc::clone(&self.inner);
        self.ticketed(env, async move {
            let input = RequestInput {
                method: &method,
                cookie_header: cookie_header.as_deref(),
                anti_csrf_header: anti_csrf_header.as_deref(),
                now_ms: now_ms as i64,
                read_only: read_only.unwrap_or(false),
            };
            match engine.resolve(&input).await {
                Ok(session) => session.encode(),
                Err(failure) => failure.encode(),
            }
        })
    }

    /// `$create(publicData, privateData)` on an encoded session.
    #[napi(ts_return_type = "string | number")]
    #[allow(clippy::too_many_arguments)] // mirrors the JS call one to one
    pub fn session_create(
        &self,
        env: &Env,
        state: String,
        public_json: String,
        public_remove: Vec<String>,
        private_json: Option<String>,
        private_remove: Vec<String>,
        now_ms: f64,
    ) -> napi::Result<Ticketed> {
        let engine = Arc::clone(&self.inner);
        self.ticketed(env, async move {
            let r = async {
                let mut s = RequestSession::decode(&engine, &state)?;
                let public = js_merge(&public_json, public_remove)?;
                let private = private_json
                    .map(|p| js_merge(&p, private_remove))
                    .transpose()?;
                s.create(&public, private.as_ref(), now_ms as i64).await?;
                Ok(s.encode())
            };
            settle(r.await)
        })
    }

    /// `$revoke()` (`all`: `$revokeAll()`) on an encoded session.
    #[napi(ts_return_type = "string | number")]
    pub fn session_revoke(
        &self,
        env: &Env,
        state: String,
        all: bool,
        now_ms: f64,
    ) -> napi::Result<Ticketed> {
        let engine = Arc::clone(&self.inner);
        self.ticketed(env, async move {
            let r = async {
                let mut s = RequestSession::decode(&engine, &state)?;
                if all {
                    s.revoke_all(now_ms as i64).await?;
                } else {
                    s.revoke(now_ms as i64).await?;
                }
                Ok(s.encode())
            };
            settle(r.await)
        })
    }

    /// `$setPublicData(data)` (`private`: `$setPrivateData(data)`) on an encoded session.
    #[napi(ts_return_type = "string | number")]
    pub fn session_set_data(
        &self,
        env: &Env,
        state: String,
        private: bool,
        set_json: String,
        remove: Vec<String>,
        now_ms: f64,
    ) -> napi::Result<Ticketed> {
        let engine = Arc::clone(&self.inner);
        self.ticketed(env, async move {
            let r = async {
                let mut s = RequestSession::decode(&engine, &state)?;
                let data = js_merge(&set_json, remove)?;
                if private {
                    s.set_private_data(&data, now_ms as i64).await?;
                } else {
                    s.set_public_data(&data, now_ms as i64).await?;
                }
                Ok(s.encode())
            };
            settle(r.await)
        })
    }

    /// `$getPrivateData()`: `ok␁<json>` or an error.
    #[napi(ts_return_type = "string | number")]
    pub fn session_get_private_data(
        &self,
        env: &Env,
        state: String,
        now_ms: f64,
    ) -> napi::Result<Ticketed> {
        let engine = Arc::clone(&self.inner);
        self.ticketed(env, async move {
            let r = async {
                let s = RequestSession::decode(&engine, &state)?;
                let text = s.get_private_data(now_ms as i64).await?;
                Ok(format!("ok{FIELD_SEPARATOR}{text}"))
            };
            settle(r.await)
        })
    }

    /// `getAllSessionHandlesForUser(userId)`; `userIdJson` is `JSON.stringify(userId)`.
    #[napi(ts_return_type = "string[] | Error | Promise<string[] | Error>")]
    pub fn session_handles_for_user<'env>(
        &self,
        env: &'env Env,
        user_id_json: String,
        now_ms: f64,
    ) -> napi::Result<MaybeAsync<'env, Either<Vec<String>, napi::Error<String>>>> {
        let engine = Arc::clone(&self.inner);
        run(env, async move {
            Ok(
                match engine
                    .session_handles_for_user(&user_id_json, now_ms as i64)
                    .await
                {
                    Ok(v) => Either::A(v),
                    Err(e) => Either::B(to_js(e)),
                },
            )
        })
    }

    /// `setPublicDataForUser(userId, data)`: `setJson` is the data as JSON,
    /// `remove` the keys whose value JSON cannot hold (`undefined`).
    /// Resolves the number of sessions changed (the handles stay in Rust: a
    /// JS array of a thousand strings nobody reads is a measurable part of
    /// the call).
    #[napi(ts_return_type = "number | Error | Promise<number | Error>")]
    pub fn set_public_data_for_user<'env>(
        &self,
        env: &'env Env,
        user_id_json: String,
        set_json: String,
        remove: Vec<String>,
        now_ms: f64,
    ) -> napi::Result<MaybeAsync<'env, Either<u32, napi::Error<String>>>> {
        let engine = Arc::clone(&self.inner);
        run(env, async move {
            let merge = match js_merge(&set_json, remove) {
                Ok(m) => m,
                Err(e) => return Ok(Either::B(to_js(e))),
            };
            Ok(
                match engine
                    .set_public_data_for_user(&user_id_json, &merge, now_ms as i64)
                    .await
                {
                    Ok(v) => Either::A(u32::try_from(v.len()).unwrap_or(u32::MAX)),
                    Err(e) => Either::B(to_js(e)),
                },
            )
        })
    }
}
