//! The Redis store's connections: a `deadpool-redis` pool (single node or
//! Cluster) behind one type, the slots that keep a few multiplexed
//! connections checked out, and the mapping of failures to [`StoreError`].
//!
//! Why slots instead of a `pool.get()` per request: deadpool-redis checks
//! every connection it hands out again with a `PING` (its `recycle`), which
//! would double the round trips of every request. A redis-rs connection is
//! multiplexed (concurrent requests are pipelined on it), so the store keeps
//! `pool_size` of them checked out and spreads requests over them. The pool
//! still creates every connection (with its timeouts) and vets the ones that
//! come back: when a request fails on a dropped connection or times out, the
//! slots are renewed, each slot handing its connection back to the pool,
//! whose `PING` on the next `get` discards the dead ones and reconnects.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Script,
    ScriptInvocation, ServerErrorKind, Value,
};
use deadpool_redis::{PoolError, Runtime};

use crate::store::{StoreError, StoreErrorKind, StoreResult};

/// Where the store connects: validated options, with the URLs' passwords
/// already hidden in `target` for messages.
pub(super) struct Target {
    pub urls: Vec<String>,
    pub cluster: bool,
    pub pool_size: usize,
    pub timeout: Duration,
    /// The URLs as shown in messages (no credentials).
    pub shown: String,
}

enum Pool {
    Single(deadpool_redis::Pool),
    Cluster(deadpool_redis::cluster::Pool),
}

/// A connection checked out of the pool for as long as a slot keeps it.
enum Held {
    Single(deadpool_redis::Connection),
    Cluster(deadpool_redis::cluster::Connection),
}

impl Held {
    fn link(&self) -> Link {
        match self {
            Held::Single(c) => Link::Single((**c).clone()),
            Held::Cluster(c) => Link::Cluster((**c).clone()),
        }
    }
}

#[derive(Clone)]
enum Link {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// What one request talks through: a clone of a slot's multiplexed
/// connection that counts the requests it sends.
#[derive(Clone)]
pub(super) struct Conn {
    link: Link,
    round_trips: Arc<AtomicU64>,
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match &mut self.link {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
            Link::Cluster(c) => c.get_db(),
        }
    }
}

struct Lease {
    /// Returned to the pool when the lease is dropped (slot renewed).
    _held: Held,
    link: Link,
    generation: u64,
}

#[derive(Default)]
struct Slot {
    lease: Mutex<Option<Lease>>,
    /// Held while the slot fetches a connection, so one failure does not
    /// make every waiting request connect on its own.
    refill: tokio::sync::Mutex<()>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Lease>> {
        // The guarded value is replaced whole; a panic cannot leave it half-written.
        self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self, generation: u64) -> Option<Link> {
        self.lock()
            .as_ref()
            .filter(|l| l.generation == generation)
            .map(|l| l.link.clone())
    }
}

/// One request to send: a plain command, a script (EVALSHA, loading the
/// script when the server does not know it), or a script load.
#[derive(Clone, Copy)]
pub(super) enum Request<'a> {
    Cmd(&'a Cmd),
    Script(&'a ScriptInvocation<'a>),
    Load(&'a Script),
}

impl Request<'_> {
    async fn send(self, conn: &mut Conn) -> Result<Value, RedisError> {
        match self {
            Request::Cmd(cmd) => cmd.query_async(conn).await,
            Request::Script(inv) => inv.invoke_async(conn).await,
            Request::Load(script) => script.load_async(conn).await.map(Value::SimpleString),
        }
    }
}

/// The pool, the slots and the failure policy.
pub(super) struct Connections {
    pool: Pool,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    /// Bumped to renew every slot (a dropped connection or a timeout usually
    /// means all of them are gone: Redis restarted or the network broke).
    generation: AtomicU64,
    round_trips: Arc<AtomicU64>,
    timeout: Duration,
    shown: String,
}

impl Connections {
    /// Build the pool; no I/O (connections are made on first use).
    pub fn new(target: &Target) -> StoreResult<Self> {
        let t = Some(target.timeout);
        let bad = |e: &dyn std::fmt::Display| {
            StoreError::new(
                StoreErrorKind::Failed,
                format!(
                    "cannot set up the Redis connection pool for {}: {e}",
                    target.shown
                ),
            )
        };
        let pool = if target.cluster {
            let manager = deadpool_redis::cluster::Manager::new(target.urls.clone(), false)
                .map_err(|e| bad(&e))?;
            Pool::Cluster(
                deadpool_redis::cluster::Pool::builder(manager)
                    .max_size(target.pool_size)
                    .wait_timeout(t)
                    .create_timeout(t)
                    .recycle_timeout(t)
                    .runtime(Runtime::Tokio1)
                    .build()
                    .map_err(|e| bad(&e))?,
            )
        } else {
            let url = target.urls.first().map(String::as_str).unwrap_or_default();
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(t)
                .set_response_timeout(t);
            let manager =
                deadpool_redis::Manager::new_with_config(url, config).map_err(|e| bad(&e))?;
            Pool::Single(
                deadpool_redis::Pool::builder(manager)
                    .max_size(target.pool_size)
                    .wait_timeout(t)
                    .create_timeout(t)
                    .recycle_timeout(t)
                    .runtime(Runtime::Tokio1)
                    .build()
                    .map_err(|e| bad(&e))?,
            )
        };
        Ok(Connections {
            pool,
            slots: (0..target.pool_size).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            round_trips: Arc::new(AtomicU64::new(0)),
            timeout: target.timeout,
            shown: target.shown.clone(),
        })
    }

    /// Requests sent so far (a pipeline counts once).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Connections currently held by the slots.
    pub fn open(&self) -> usize {
        self.slots.iter().filter(|s| s.lock().is_some()).count()
    }

    /// Send one request, bounded by the timeout. `retry`: the request may be
    /// sent again once when its connection turns out to be dropped (only for
    /// requests whose repetition is harmless, see the module docs of the
    /// store).
    pub async fn send(&self, what: &str, request: Request<'_>, retry: bool) -> StoreResult<Value> {
        if !on_tokio().await {
            return Err(StoreError::new(
                StoreErrorKind::Failed,
                "the Redis store must be driven by a tokio runtime (poll its futures inside one)",
            ));
        }
        match tokio::time::timeout(self.timeout, self.send_untimed(what, request, retry)).await {
            Ok(result) => result,
            Err(_) => {
                self.renew();
                Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!(
                        "Redis at {} did not answer {what} within {} ms; check that Redis is running and reachable from this process (url option), or raise timeoutMs if it is merely slow",
                        self.shown,
                        self.timeout.as_millis()
                    ),
                ))
            }
        }
    }

    async fn send_untimed(
        &self,
        what: &str,
        request: Request<'_>,
        mut retry: bool,
    ) -> StoreResult<Value> {
        loop {
            let mut conn = self
                .checkout()
                .await
                .map_err(|e| self.pool_error(e, what))?;
            match request.send(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e) if is_dropped(&e) => {
                    self.renew();
                    if retry {
                        retry = false;
                        continue;
                    }
                    return Err(self.redis_error(&e, what));
                }
                Err(e) => return Err(self.redis_error(&e, what)),
            }
        }
    }

    /// Renew every slot on its next use.
    fn renew(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    async fn checkout(&self) -> Result<Conn, PoolError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len().max(1);
        let Some(slot) = self.slots.get(i) else {
            return Err(PoolError::Closed);
        };
        let generation = self.generation.load(Ordering::Acquire);
        let conn = |link| Conn {
            link,
            round_trips: Arc::clone(&self.round_trips),
        };
        if let Some(link) = slot.current(generation) {
            return Ok(conn(link));
        }
        let _refilling = slot.refill.lock().await;
        if let Some(link) = slot.current(generation) {
            return Ok(conn(link));
        }
        // Hand the old connection back first: the pool vets it (PING) and
        // may give it right back if it is fine.
        drop(slot.lock().take());
        let held = match &self.pool {
            Pool::Single(p) => Held::Single(p.get().await?),
            Pool::Cluster(p) => Held::Cluster(p.get().await?),
        };
        let link = held.link();
        *slot.lock() = Some(Lease {
            _held: held,
            link: link.clone(),
            generation,
        });
        Ok(conn(link))
    }

    fn pool_error(&self, e: PoolError, what: &str) -> StoreError {
        match e {
            PoolError::Backend(e) => self.redis_error(&e, what),
            PoolError::Timeout(_) | PoolError::Closed => {
                unavailable(&self.shown, what, &format!("no connection: {e}"))
            }
            PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => StoreError::new(
                StoreErrorKind::Failed,
                format!("Redis connection pool for {}: {e}", self.shown),
            ),
        }
    }

    fn redis_error(&self, e: &RedisError, what: &str) -> StoreError {
        redis_error(&self.shown, e, what)
    }
}

/// Map a redis-rs error to the store's categories.
pub(super) fn redis_error(shown: &str, e: &RedisError, what: &str) -> StoreError {
    if is_unreachable(e) {
        return unavailable(shown, what, &e.to_string());
    }
    let text = e.to_string();
    if text.contains("CORRUPT") {
        return StoreError::new(
            StoreErrorKind::Corrupt,
            format!("Redis at {shown}: {what} found unreadable data: {text}"),
        );
    }
    let hint = match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => {
            "; check the user name and password in the url option"
        }
        ErrorKind::Server(ServerErrorKind::CrossSlot) => {
            "; in Cluster mode every session of a user must have a handle from RedisStore::new_handle"
        }
        _ => "",
    };
    StoreError::new(
        StoreErrorKind::Failed,
        format!("Redis at {shown} failed {what}: {text}{hint}"),
    )
}

fn unavailable(shown: &str, what: &str, detail: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!(
            "Redis at {shown} is unavailable ({detail}) for {what}; check that Redis is running and reachable from this process at that address (url option)"
        ),
    )
}

/// The connection is gone: the request may not have reached Redis.
fn is_dropped(e: &RedisError) -> bool {
    e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// Redis cannot be reached or cannot serve now (down, restarting, failing over).
fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || is_dropped(e)
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::ClusterDown
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::BusyLoading
                        | ServerErrorKind::ReadOnly
                )
        )
}

/// `url` without its password (and user name), for messages.
pub(super) fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = String::with_capacity(url.len());
    let _ = write!(out, "{scheme}://{host}{path}");
    out
}

/// Whether we are inside a tokio runtime; if not, give the caller's executor
/// one chance to move the future onto one (the Node binding polls a request
/// once on the JS thread, then hands what is pending to its tokio runtime).
async fn on_tokio() -> bool {
    if tokio::runtime::Handle::try_current().is_ok() {
        return true;
    }
    YieldOnce(false).await;
    tokio::runtime::Handle::try_current().is_ok()
}

struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            shown_url("redis://:secret@cache.internal:6380/2"),
            "redis://cache.internal:6380/2"
        );
        assert_eq!(shown_url("rediss://user:p%40ss@h:1"), "rediss://h:1");
        assert_eq!(shown_url("redis://127.0.0.1"), "redis://127.0.0.1");
        assert_eq!(shown_url("not a url"), "not a url");
    }
}
