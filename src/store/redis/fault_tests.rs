//! The Redis store when its Redis dies under load and comes back: a
//! `redis-server` of the test's own (AOF, `fsync` on every write) is
//! SIGKILLed while tasks create, merge and read sessions through one
//! `RedisStore` and an `Engine`, then restarted on the same port and
//! directory.
//!
//! What it proves (issue 4): while Redis is down every call fails with
//! `Unavailable` (`SESSION_STORE_UNAVAILABLE` from the engine) within the
//! timeout, and the process carries on; once Redis is back the same store
//! works again without being rebuilt; every write acknowledged before the
//! kill is there after the restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::test_server::RedisServer;
use super::*;
use crate::session::config::SessionConfig;
use crate::session::cookie::CLEARED_EXPIRES;
use crate::session::engine::{Engine, RequestInput, ResponseState};
use crate::store::conformance::now_ms;
use crate::token::hash256;

const HOUR: i64 = 3_600_000;
/// The store's `timeout_ms` here.
const TIMEOUT_MS: u64 = 300;
/// What a failing call may take: the timeout plus scheduling on a busy
/// 2-core CI machine. A call that waited for TCP to give up would take
/// seconds.
const FAIL_FAST: Duration = Duration::from_millis(TIMEOUT_MS + 700);
const WORKERS: usize = 8;
/// Bounds of each worker's loop, whatever happens.
const MAX_OPS: usize = 5_000;
const MAX_RUN: Duration = Duration::from_secs(15);

fn merge_of(v: Json) -> JsonMerge {
    let Json::Object(set) = v else {
        panic!("merge set must be an object");
    };
    JsonMerge {
        set,
        remove: Vec::new(),
    }
}

fn session(store: &RedisStore, user: &str, now: i64) -> SessionRecord {
    let handle = store
        .new_handle(HandleKind::Authenticated, Some(user))
        .unwrap();
    SessionRecord {
        hashed_session_token: Some(hash256(handle.as_bytes())),
        anti_csrf_token: Some(generate_token(32).unwrap()),
        public_data: Some(format!(r#"{{"userId":{user}}}"#)),
        private_data: Some("{}".to_owned()),
        user_id: Some(user.to_owned()),
        expires_at: Some(now + HOUR),
        handle,
    }
}

fn request(cookies: &str, now_ms: i64) -> RequestInput<'_> {
    RequestInput {
        method: "GET",
        cookie_header: Some(cookies),
        anti_csrf_header: None,
        now_ms,
        read_only: false,
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

/// Which phase a call started in (by the clock of the test's main task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Up,
    Down,
    Back,
}

/// What the workers saw.
#[derive(Default)]
struct Log {
    /// Sessions whose `create` was acknowledged.
    created: Vec<SessionRecord>,
    /// `(handle, key)` of acknowledged merges into a worker's own session.
    merged: Vec<(String, String)>,
    /// Successes per phase.
    ok: [usize; 3],
    /// Failures: phase, kind, how long the call took, message.
    failed: Vec<(Phase, StoreErrorKind, Duration, String)>,
}

struct Shared {
    phase: Mutex<Phase>,
    stop: AtomicBool,
    log: Mutex<Log>,
}

impl Shared {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap()
    }

    fn record<T>(&self, phase: Phase, took: Duration, r: &StoreResult<T>) -> bool {
        let mut log = self.log.lock().unwrap();
        match r {
            Ok(_) => {
                log.ok[phase as usize] += 1;
                true
            }
            Err(e) => {
                log.failed.push((phase, e.kind, took, e.message.clone()));
                false
            }
        }
    }
}

/// One client: creates sessions of its user, merges a new key into its own
/// session, reads one of its sessions back, round after round.
async fn worker(store: RedisStore, shared: Arc<Shared>, w: usize, own: String) {
    let user = format!("{}", 1_000 + w);
    let started = Instant::now();
    let mut last_created: Option<String> = None;
    for i in 0..MAX_OPS {
        if shared.stop.load(AtomicOrdering::Relaxed) || started.elapsed() > MAX_RUN {
            return;
        }
        let now = now_ms();

        let phase = shared.phase();
        let rec = session(&store, &user, now);
        let t = Instant::now();
        let r = store.create(&rec, now).await;
        if shared.record(phase, t.elapsed(), &r) {
            last_created = Some(rec.handle.clone());
            shared.log.lock().unwrap().created.push(rec);
        }

        let phase = shared.phase();
        let key = format!("w{w}i{i}");
        let t = Instant::now();
        let r = store
            .merge_public_data(&own, &merge_of(json!({ key.as_str(): i })), None, now)
            .await;
        if shared.record(phase, t.elapsed(), &r) {
            assert!(r.unwrap().is_some(), "worker {w}: its session vanished");
            shared.log.lock().unwrap().merged.push((own.clone(), key));
        }

        let phase = shared.phase();
        let read = last_created.as_deref().unwrap_or(&own);
        let t = Instant::now();
        let r = store.get(read, now).await;
        if shared.record(phase, t.elapsed(), &r) {
            assert!(r.unwrap().is_some(), "worker {w}: {read} vanished");
        }
        // A failing call returns at once; do not spin on a dead Redis.
        if phase == Phase::Down {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Wait (bounded) until the log has `n` more successes in `phase`.
async fn successes(shared: &Shared, phase: Phase, n: usize, within: Duration) {
    let start = Instant::now();
    let base = shared.log.lock().unwrap().ok[phase as usize];
    while shared.log.lock().unwrap().ok[phase as usize] < base + n {
        assert!(
            start.elapsed() < within,
            "fewer than {n} successful calls in {within:?} ({phase:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_under_load_fails_fast_then_recovers_losing_nothing_acknowledged() {
    let t0 = Instant::now();
    let mut server = tokio::task::block_in_place(|| {
        RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"])
    });
    let store = RedisStore::connect(RedisOptions {
        urls: vec![server.url()],
        prefix: "blitz-auth-fault:".to_owned(),
        // The default (one multiplexed connection), as users run it.
        timeout_ms: TIMEOUT_MS,
        ..RedisOptions::default()
    })
    .await
    .unwrap();
    let now = now_ms();

    // A logged-in browser, through the engine.
    let config = SessionConfig {
        secret: "redis-fault-tests-secret-0123456789abcdef".to_owned(),
        ..SessionConfig::default()
    };
    let engine = Engine::new(config, Arc::new(store.clone())).unwrap();
    let mut s = engine
        .resolve(&RequestInput {
            method: "GET",
            cookie_header: None,
            anti_csrf_header: None,
            now_ms: now,
            read_only: false,
        })
        .await
        .map_err(|f| f.error)
        .unwrap();
    s.create(&merge_of(json!({"userId": 7, "role": "user"})), None, now)
        .await
        .unwrap();
    let jar = cookie_header(s.response());

    // Each worker's own session, for its merges.
    let mut own = Vec::new();
    for w in 0..WORKERS {
        let rec = session(&store, &format!("{}", 1_000 + w), now);
        store.create(&rec, now).await.unwrap();
        own.push(rec.handle);
    }

    let shared = Arc::new(Shared {
        phase: Mutex::new(Phase::Up),
        stop: AtomicBool::new(false),
        log: Mutex::default(),
    });
    let tasks: Vec<_> = own
        .iter()
        .enumerate()
        .map(|(w, h)| tokio::spawn(worker(store.clone(), Arc::clone(&shared), w, h.clone())))
        .collect();

    // Up: let the load run.
    successes(&shared, Phase::Up, 300, Duration::from_secs(5)).await;

    // Down: SIGKILL mid-load.
    *shared.phase.lock().unwrap() = Phase::Down;
    tokio::task::block_in_place(|| server.kill());
    let killed = Instant::now();
    let down = Instant::now();
    let failure = engine
        .resolve(&request(&jar, now_ms()))
        .await
        .err()
        .expect("the store is down");
    assert!(down.elapsed() < FAIL_FAST, "{:?}", down.elapsed());
    assert_eq!(
        failure.error.code(),
        crate::ErrorCode::SessionStoreUnavailable
    );
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Back: same port, same directory (the AOF), same store.
    *shared.phase.lock().unwrap() = Phase::Back;
    tokio::task::block_in_place(|| server.restart());
    let outage = killed.elapsed();
    successes(&shared, Phase::Back, 300, Duration::from_secs(5)).await;
    shared.stop.store(true, AtomicOrdering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }

    let log = std::mem::take(&mut *shared.log.lock().unwrap());
    let down_failures = log
        .failed
        .iter()
        .filter(|(p, ..)| *p == Phase::Down)
        .count();
    assert!(
        down_failures >= WORKERS,
        "calls while Redis was down: {down_failures} failed"
    );
    for (phase, kind, took, message) in &log.failed {
        // Calls started just before the kill or the restart may fail too;
        // every failure is Unavailable and fast, whenever it happened.
        assert_eq!(*kind, StoreErrorKind::Unavailable, "{phase:?}: {message}");
        assert!(*took < FAIL_FAST, "{phase:?}: took {took:?}: {message}");
    }

    // Nothing acknowledged is lost: every created session, every merged key.
    let now = now_ms();
    for rec in &log.created {
        assert_eq!(
            store.get(&rec.handle, now).await.unwrap().as_ref(),
            Some(rec),
            "an acknowledged create is missing after the restart"
        );
    }
    let mut data = std::collections::HashMap::new();
    for h in &own {
        let r = store.get(h, now).await.unwrap().unwrap();
        let v: Json = serde_json::from_str(r.public_data.as_deref().unwrap()).unwrap();
        data.insert(h.clone(), v);
    }
    for (h, key) in &log.merged {
        assert!(
            data[h].get(key).is_some(),
            "an acknowledged merge of {key} into {h} is missing after the restart"
        );
    }

    // The engine serves the logged-in browser again.
    let s = engine
        .resolve(&request(&jar, now_ms()))
        .await
        .map_err(|f| f.error)
        .unwrap();
    assert_eq!(s.kernel().user_id.as_deref(), Some("7"));

    eprintln!(
        "fault test: {} creates and {} merges acknowledged, ok up/down/back {:?}, {} failures, outage {outage:?}, total {:?}",
        log.created.len(),
        log.merged.len(),
        log.ok,
        log.failed.len(),
        t0.elapsed()
    );
}
