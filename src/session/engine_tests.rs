//! Unit tests of the request state machine: [`Engine::resolve`] and the
//! `RequestSession` operations, over the in-memory store with a frozen clock.
//!
//! Requests are chained the way a browser chains them: the `Set-Cookie`
//! values of one response become the `Cookie` header of the next ([`Jar`]).
//! Each Blitz fix (`Qn`, spec §16) has its own test; where
//! `spec/vectors/session-flows.json` has a known answer, the test compares
//! with it (random tokens substituted). A probe store around the memory store
//! records the calls the engine makes, can delete a row right after reading
//! it (a revocation landing while a request is in flight), can yield at
//! random points so concurrent tasks interleave between store calls, and can
//! run on a clock of its own (a store that returns expired rows).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::session::token::generate_handle;
use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::json;
use tokio::task::JoinSet;

use super::*;
use crate::session::cookie::{decode_uri_component, encode_uri_component, CLEARED_EXPIRES};
use crate::session::date::{to_iso_string, to_utc_string};
use crate::session::jwt::{verify_anonymous_jwt, JwtKey};
use crate::session::token::{encode_session_token, SessionTokenParts};
use crate::store::memory::{MemoryStore, MemoryStoreOptions};
use crate::store::StoreResult;

/// 2025-01-15T12:00:00Z, the clock of the vectors.
const T0: i64 = 1_736_942_400_000;
const MINUTE: i64 = 60_000;
/// Default `sessionExpiryMinutes` in ms.
const W: i64 = 43_200 * MINUTE;
/// The vectors' `SESSION_SECRET_KEY`.
const SECRET: &str = "spec-vectors-secret-key-0123456789abcdef";
const ANON_PUBLIC_DATA: &str = r#"{"userId":null}"#;

const SESSION: &str = "blitz_sSessionToken";
const ANON: &str = "blitz_sAnonymousSessionToken";
const CSRF: &str = "blitz_sAntiCsrfToken";
const PUBLIC: &str = "blitz_sPublicDataToken";
const REFRESH: &str = "blitz_sIdRefreshToken";

// ---------------------------------------------------------------------------
// Probe store

/// The memory store, plus a log of the calls the engine made, two ways to
/// provoke races and a clock override (see the module docs).
struct Probe {
    inner: MemoryStore,
    calls: Mutex<Vec<&'static str>>,
    /// Delete this handle right after a `get` has read it.
    delete_after_get: Mutex<Option<String>>,
    /// When set, every call first yields 0–3 times (xorshift state).
    shuffle: AtomicBool,
    rng: AtomicU64,
    /// When set, the memory store is given this `now` instead of the
    /// engine's: a store that lags, or that returns expired rows as Blitz's
    /// storage functions do.
    store_now: Mutex<Option<i64>>,
}

impl Probe {
    fn new(inner: MemoryStore) -> Self {
        Probe {
            inner,
            calls: Mutex::new(Vec::new()),
            delete_after_get: Mutex::new(None),
            shuffle: AtomicBool::new(false),
            rng: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
            store_now: Mutex::new(None),
        }
    }

    /// The `now` the memory store sees for an engine call at `now_ms`.
    fn at(&self, now_ms: i64) -> i64 {
        self.store_now.lock().unwrap().unwrap_or(now_ms)
    }

    async fn enter(&self, op: &'static str) {
        self.calls.lock().unwrap().push(op);
        if self.shuffle.load(Ordering::SeqCst) {
            let mut x = self.rng.load(Ordering::SeqCst);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng.store(x, Ordering::SeqCst);
            for _ in 0..x % 4 {
                tokio::task::yield_now().await;
            }
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls that change the store.
    fn writes(&self) -> Vec<&'static str> {
        self.calls()
            .into_iter()
            .filter(|c| !matches!(*c, "get" | "get_for_user"))
            .collect()
    }

    fn reset(&self) {
        self.calls.lock().unwrap().clear();
    }
}

#[async_trait]
impl SessionStore for Probe {
    async fn get(&self, handle: &str, now_ms: i64) -> StoreResult<Option<SessionRecord>> {
        self.enter("get").await;
        let now_ms = self.at(now_ms);
        let row = self.inner.get(handle, now_ms).await?;
        let revoke = {
            let mut target = self.delete_after_get.lock().unwrap();
            if target.as_deref() == Some(handle) {
                target.take()
            } else {
                None
            }
        };
        if let Some(h) = revoke {
            self.inner.delete(&h, now_ms).await?;
        }
        Ok(row)
    }
    async fn get_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<SessionRecord>> {
        self.enter("get_for_user").await;
        self.inner.get_for_user(user_id, self.at(now_ms)).await
    }
    async fn create(&self, record: &SessionRecord, now_ms: i64) -> StoreResult<()> {
        self.enter("create").await;
        self.inner.create(record, self.at(now_ms)).await
    }
    async fn update(&self, handle: &str, update: &SessionUpdate, now_ms: i64) -> StoreResult<bool> {
        self.enter("update").await;
        self.inner.update(handle, update, self.at(now_ms)).await
    }
    async fn delete(&self, handle: &str, now_ms: i64) -> StoreResult<bool> {
        self.enter("delete").await;
        self.inner.delete(handle, self.at(now_ms)).await
    }
    fn shares_rows_with_blitz(&self) -> bool {
        self.inner.shares_rows_with_blitz()
    }
    async fn merge_public_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.enter("merge_public_data").await;
        self.inner
            .merge_public_data(handle, merge, expires_at, self.at(now_ms))
            .await
    }
    async fn merge_private_data(
        &self,
        handle: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Option<String>> {
        self.enter("merge_private_data").await;
        self.inner
            .merge_private_data(handle, merge, self.at(now_ms))
            .await
    }
    async fn merge_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> StoreResult<Vec<String>> {
        self.enter("merge_public_data_for_user").await;
        self.inner
            .merge_public_data_for_user(user_id, merge, self.at(now_ms))
            .await
    }
    async fn delete_for_user(&self, user_id: &str, now_ms: i64) -> StoreResult<Vec<String>> {
        self.enter("delete_for_user").await;
        self.inner.delete_for_user(user_id, self.at(now_ms)).await
    }
}

// ---------------------------------------------------------------------------
// Cookie jar

/// The cookies a browser holds: `Set-Cookie` values absorbed in order, a
/// cleared cookie removed. Values stay URI-encoded, as on the wire.
#[derive(Debug, Clone, Default)]
struct Jar {
    cookies: Vec<(String, String)>,
}

fn name_and_value(set_cookie: &str) -> (&str, &str) {
    let pair = set_cookie.split(';').next().unwrap_or("");
    pair.split_once('=').unwrap_or((pair, ""))
}

fn is_cleared(set_cookie: &str) -> bool {
    name_and_value(set_cookie).1.is_empty() || set_cookie.contains(CLEARED_EXPIRES)
}

impl Jar {
    fn of(response: &ResponseState) -> Jar {
        let mut jar = Jar::default();
        jar.absorb(response);
        jar
    }

    fn absorb(&mut self, response: &ResponseState) {
        for c in response.cookies.iter() {
            let (name, value) = name_and_value(c);
            self.cookies.retain(|(n, _)| n != name);
            if !is_cleared(c) {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn then(&self, response: &ResponseState) -> Jar {
        let mut jar = self.clone();
        jar.absorb(response);
        jar
    }

    /// The request `Cookie` header.
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A cookie's decoded value.
    fn value(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| decode_uri_component(v).unwrap_or_else(|| v.clone()))
    }

    fn with(&self, name: &str, raw_value: &str) -> Jar {
        let mut jar = self.without(name);
        jar.cookies.push((name.to_owned(), raw_value.to_owned()));
        jar
    }

    fn without(&self, name: &str) -> Jar {
        let mut jar = self.clone();
        jar.cookies.retain(|(n, _)| n != name);
        jar
    }

    fn csrf(&self) -> String {
        self.value(CSRF).expect("jar holds the CSRF cookie")
    }
}

/// The `Cookie` header a browser sends after this response alone:
/// `name=value` of each cookie that was not cleared.
fn cookie_header(response: &ResponseState) -> String {
    Jar::of(response).header()
}

/// Cookie names in the order they were written.
fn names(response: &ResponseState) -> Vec<String> {
    response
        .cookies
        .iter()
        .map(|c| name_and_value(c).0.to_owned())
        .collect()
}

/// The full `Set-Cookie` text written for `name`.
fn set_cookie(response: &ResponseState, name: &str) -> String {
    response
        .cookies
        .iter()
        .find(|c| name_and_value(c).0 == name)
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", response.cookies))
        .to_owned()
}

/// The decoded value written for `name`.
fn value_of(response: &ResponseState, name: &str) -> String {
    let c = set_cookie(response, name);
    let raw = name_and_value(&c).1;
    decode_uri_component(raw).unwrap_or_else(|| raw.to_owned())
}

fn expires_of(response: &ResponseState, name: &str) -> String {
    let c = set_cookie(response, name);
    let start = c.find("Expires=").expect("Expires attribute") + "Expires=".len();
    c[start..].split(';').next().unwrap_or("").to_owned()
}

/// A cookie as the engine must write it with the default options.
fn expected_cookie(name: &str, value: &str, expires_ms: i64, http_only: bool) -> String {
    format!(
        "{name}={}; Path=/; Expires={}{}; SameSite=Lax",
        encode_uri_component(value),
        to_utc_string(expires_ms),
        if http_only { "; HttpOnly" } else { "" }
    )
}

fn cleared_cookie(name: &str, http_only: bool) -> String {
    format!(
        "{name}=; Path=/; Expires={CLEARED_EXPIRES}{}; SameSite=Lax",
        if http_only { "; HttpOnly" } else { "" }
    )
}

fn public_data_token(json_text: &str) -> String {
    STANDARD.encode(json_text)
}

/// The stored hash of a session whose token has been re-issued: the hash of
/// `base64("handle;id;;v0")`, which depends on nothing but the handle and id.
fn id_hash(handle: &str, id: &str) -> String {
    hash256(STANDARD.encode(format!("{handle};{id};;v0")).as_bytes())
}

fn parts_of(token: &str) -> SessionTokenParts {
    parse_session_token(token).expect("a valid session token")
}

/// The payload text of a JWT.
fn jwt_payload(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).expect("three segments");
    String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("utf-8")
}

fn merge(v: Value) -> JsonMerge {
    match v {
        Value::Object(set) => JsonMerge {
            set,
            remove: Vec::new(),
        },
        other => panic!("not an object: {other}"),
    }
}

fn ok(r: std::result::Result<RequestSession, ResolveFailure>) -> RequestSession {
    match r {
        Ok(s) => s,
        Err(f) => panic!("resolve failed: {:?}", f.error),
    }
}

fn failure(r: std::result::Result<RequestSession, ResolveFailure>) -> ResolveFailure {
    match r {
        Ok(s) => panic!("resolve succeeded: {:?}", s.kernel()),
        Err(f) => f,
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        secret: SECRET.to_owned(),
        ..SessionConfig::default()
    }
}

fn vectors() -> Value {
    let path = format!(
        "{}/spec/vectors/session-flows.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("JSON")
}

fn scenario(id: &str) -> Value {
    vectors()["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no scenario {id}"))
        .clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Harness

/// An engine over a probe store, and the clock the test moves. The store has
/// no clock: it gets the `now` of each request (or the probe's override).
struct Harness {
    engine: Arc<Engine>,
    probe: Arc<Probe>,
    clock: AtomicI64,
}

impl Harness {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: SessionConfig) -> Self {
        let store = MemoryStore::with_options(MemoryStoreOptions {
            anonymous_ttl_ms: None,
            max_records: None,
        });
        let probe = Arc::new(Probe::new(store));
        let engine =
            Engine::new(config, Arc::clone(&probe) as Arc<dyn SessionStore>).expect("engine");
        Harness {
            engine,
            probe,
            clock: AtomicI64::new(T0),
        }
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn set_now(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    fn advance(&self, ms: i64) {
        self.set_now(self.now() + ms);
    }

    fn store(&self) -> &MemoryStore {
        &self.probe.inner
    }

    /// The `now` the memory store sees at the current time.
    fn store_now(&self) -> i64 {
        self.probe.at(self.now())
    }

    /// The stored row, read as the engine's store would read it now (an
    /// expired row is dropped, as the memory store does).
    async fn row(&self, handle: &str) -> Option<SessionRecord> {
        self.store()
            .get(handle, self.store_now())
            .await
            .expect("store")
    }

    async fn raw(
        &self,
        method: &str,
        cookie_header: Option<&str>,
        anti_csrf: Option<&str>,
    ) -> std::result::Result<RequestSession, ResolveFailure> {
        self.engine
            .resolve(&RequestInput {
                method,
                cookie_header,
                anti_csrf_header: anti_csrf,
                now_ms: self.now(),
                read_only: false,
            })
            .await
    }

    async fn request(
        &self,
        method: &str,
        jar: &Jar,
        anti_csrf: Option<&str>,
    ) -> std::result::Result<RequestSession, ResolveFailure> {
        let header = jar.header();
        let header = (!header.is_empty()).then_some(header.as_str());
        self.raw(method, header, anti_csrf).await
    }

    async fn get(&self, jar: &Jar) -> RequestSession {
        ok(self.request("GET", jar, None).await)
    }

    /// A POST with the header the Blitz client sends (the CSRF cookie's value).
    async fn post(&self, jar: &Jar) -> RequestSession {
        let csrf = jar.value(CSRF);
        ok(self.request("POST", jar, csrf.as_deref()).await)
    }

    /// A new visitor who then logs in: the jar after `$create`, and the handle.
    async fn login(&self, public_data: Value) -> (Jar, String) {
        let mut s = ok(self.raw("GET", None, None).await);
        s.create(&merge(public_data), None, self.now())
            .await
            .expect("create");
        (Jar::of(s.response()), s.kernel().handle.clone())
    }

    /// A visitor with an anonymous session.
    async fn visit(&self) -> (Jar, String) {
        let s = ok(self.raw("GET", None, None).await);
        (Jar::of(s.response()), s.kernel().handle.clone())
    }
}

fn assert_new_anonymous(s: &RequestSession) {
    let k = s.kernel();
    assert_eq!(k.kind, SessionKind::Anonymous);
    assert_eq!(k.public_data, ANON_PUBLIC_DATA);
    assert!(s.response().session_created);
    assert_eq!(names(s.response()), [ANON, CSRF, PUBLIC, SESSION]);
    assert_eq!(
        set_cookie(s.response(), SESSION),
        cleared_cookie(SESSION, true)
    );
}

// ---------------------------------------------------------------------------
// 1. New anonymous session (§5.3)

#[tokio::test]
async fn new_anonymous_session_writes_four_cookies_and_nothing_to_the_store() {
    let h = Harness::new();
    for method in ["GET", "POST", "DELETE"] {
        h.probe.reset();
        // No CSRF check on this path: a POST without the header succeeds.
        let s = ok(h.raw(method, None, None).await);
        let k = s.kernel();
        assert_eq!(k.kind, SessionKind::Anonymous);
        assert_eq!(k.handle.len(), 37);
        assert!(k.handle.ends_with(":ajwt"));
        assert_eq!(k.user_id, None);
        assert_eq!(k.public_data, ANON_PUBLIC_DATA);
        assert_eq!(k.anti_csrf_token.len(), 32);

        let r = s.response();
        assert!(r.session_created);
        assert!(r.public_data_token);
        assert!(!r.csrf_error);
        let jwt = value_of(r, ANON);
        // 2 628 000 minutes after 2025-01-15T12:00:00Z (vector A).
        assert_eq!(
            to_utc_string(T0 + 2_628_000 * MINUTE),
            "Mon, 14 Jan 2030 12:00:00 GMT"
        );
        let expires = T0 + 2_628_000 * MINUTE;
        let cookies: Vec<String> = r.cookies.iter().map(str::to_owned).collect();
        assert_eq!(
            cookies,
            [
                expected_cookie(ANON, &jwt, expires, true),
                expected_cookie(CSRF, &k.anti_csrf_token, expires, false),
                format!(
                    "{PUBLIC}=eyJ1c2VySWQiOm51bGx9; Path=/; Expires=Mon, 14 Jan 2030 12:00:00 GMT; SameSite=Lax"
                ),
                cleared_cookie(SESSION, true),
            ]
        );

        // The JWT is signed with the secret and carries the session.
        let key = JwtKey::new(SECRET).unwrap();
        let claims = verify_anonymous_jwt(&jwt, &[key], T0).expect("verifies");
        assert_eq!(claims.handle, k.handle);
        assert_eq!(claims.anti_csrf_token, k.anti_csrf_token);
        assert_eq!(claims.public_data_json, ANON_PUBLIC_DATA);
        assert!(claims.is_anonymous);
        assert_eq!(
            jwt.split('.').next(),
            Some("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
        );
        assert_eq!(
            jwt_payload(&jwt),
            format!(
                r#"{{"blitzjs":{{"isAnonymous":true,"handle":"{}","publicData":{{"userId":null}},"antiCSRFToken":"{}"}},"iat":1736942400,"aud":"blitzjs","iss":"blitzjs","sub":"anonymous"}}"#,
                k.handle, k.anti_csrf_token
            )
        );
        let wrong = JwtKey::new("another-secret-another-secret-0000").unwrap();
        assert!(verify_anonymous_jwt(&jwt, &[wrong], T0).is_err());

        assert!(h.probe.calls().is_empty(), "{:?}", h.probe.calls());
        assert_eq!(h.store().len(), 0);
    }
}

#[tokio::test]
async fn new_anonymous_session_expiry_follows_the_option_in_whole_minutes() {
    let h = Harness::with(SessionConfig {
        anon_session_expiry_minutes: 90.9,
        ..config()
    });
    let s = ok(h.raw("GET", None, None).await);
    let expires = to_utc_string(T0 + 90 * MINUTE);
    for name in [ANON, CSRF, PUBLIC] {
        assert_eq!(expires_of(s.response(), name), expires);
    }
}

#[tokio::test]
async fn new_anonymous_session_matches_vector_a() {
    let h = Harness::with(SessionConfig {
        cookie_prefix: "test".into(),
        ..config()
    });
    let v = scenario("A_no_cookies_GET");
    let s = ok(h.raw("GET", None, None).await);
    let jwt = value_of(s.response(), "test_sAnonymousSessionToken");
    let expected = strings(&v["response"]["set_cookie_split"]);
    let v_jwt = name_and_value(&expected[0]).1.to_owned();
    let v_csrf = v["session"]["antiCSRFToken"].as_str().unwrap();
    let v_handle = v["session"]["handle"].as_str().unwrap();
    let ours: Vec<String> = s
        .response()
        .cookies
        .iter()
        .map(|c| {
            c.replace(&jwt, &v_jwt)
                .replace(&s.kernel().anti_csrf_token, v_csrf)
        })
        .collect();
    assert_eq!(ours, expected);
    // For the vector's handle and CSRF token the engine signs the vector's JWT.
    assert_eq!(
        h.engine
            .sign(v_handle, ANON_PUBLIC_DATA, v_csrf, T0)
            .unwrap(),
        v_jwt
    );
}

// ---------------------------------------------------------------------------
// 2. Anonymous requests and CSRF (§5.1 C, Q4)

#[tokio::test]
async fn anonymous_cookie_get_resumes_the_session_without_writing() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    h.advance(MINUTE);
    h.probe.reset();
    let s = h.get(&jar).await;
    assert_eq!(s.kernel().handle, handle);
    assert_eq!(s.kernel().kind, SessionKind::Anonymous);
    assert_eq!(s.kernel().anti_csrf_token, jar.csrf());
    assert_eq!(s.kernel().public_data, ANON_PUBLIC_DATA);
    assert_eq!(*s.response(), ResponseState::default());
    assert!(h.probe.calls().is_empty());
}

#[tokio::test]
async fn anonymous_mutation_needs_the_csrf_header() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "get", "head"] {
        for header in [None, Some(""), Some("wrong"), Some(&jar.csrf()[1..])] {
            let f = failure(h.request(method, &jar, header).await);
            assert_eq!(f.error.code(), ErrorCode::CsrfTokenMismatch, "{method}");
            assert_eq!(f.error.code().as_str(), "CSRF_TOKEN_MISMATCH");
            // Q4: the client is told through the `csrf-error` header.
            assert!(f.response.csrf_error);
            assert!(f.response.cookies.is_empty());
            assert!(!f.response.session_created);
        }
        let s = ok(h.request(method, &jar, Some(&jar.csrf())).await);
        assert_eq!(s.kernel().handle, handle);
        assert_eq!(*s.response(), ResponseState::default());
    }
}

#[tokio::test]
async fn head_and_options_skip_the_csrf_check() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    for method in ["GET", "HEAD", "OPTIONS"] {
        for header in [None, Some("wrong")] {
            let s = ok(h.request(method, &jar, header).await);
            assert_eq!(s.kernel().handle, handle);
            assert!(s.response().cookies.is_empty());
        }
    }
    // Authenticated sessions too.
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    for method in ["HEAD", "OPTIONS"] {
        let s = ok(h.request(method, &jar, Some("wrong")).await);
        assert_eq!(s.kernel().handle, handle);
    }
}

#[tokio::test]
async fn csrf_disabled_skips_the_check() {
    let h = Harness::with(SessionConfig {
        csrf_disabled: true,
        ..config()
    });
    let (jar, anon) = h.visit().await;
    let s = ok(h.request("POST", &jar, Some("wrong")).await);
    assert_eq!(s.kernel().handle, anon);
    let (jar, authed) = h.login(json!({"userId": 1})).await;
    let s = ok(h.request("DELETE", &jar, None).await);
    assert_eq!(s.kernel().handle, authed);
}

#[tokio::test]
async fn authenticated_mutation_needs_the_csrf_header() {
    let h = Harness::new();
    let (jar, _) = h.login(json!({"userId": 1})).await;
    for header in [None, Some("wrong")] {
        let f = failure(h.request("POST", &jar, header).await);
        assert_eq!(f.error.code(), ErrorCode::CsrfTokenMismatch);
        assert!(f.response.csrf_error);
        assert!(f.response.cookies.is_empty());
    }
    // The anonymous session's token is not the authenticated one's.
    let (anon_jar, _) = h.visit().await;
    let f = failure(h.request("POST", &jar, Some(&anon_jar.csrf())).await);
    assert_eq!(f.error.code(), ErrorCode::CsrfTokenMismatch);
}

// ---------------------------------------------------------------------------
// 3. $create (§6.3, Q12, Q14)

#[tokio::test]
async fn create_from_anonymous_writes_cookies_and_record() {
    let h = Harness::new();
    let (jar, anon) = h.visit().await;
    h.advance(2 * MINUTE);
    let mut s = h.post(&jar).await;
    h.probe.reset();
    s.create(&merge(json!({"userId": 1, "role": "user"})), None, h.now())
        .await
        .unwrap();

    let k = s.kernel().clone();
    assert_eq!(k.kind, SessionKind::Authenticated);
    assert!(k.handle.ends_with(":ots"));
    assert_eq!(k.handle.len(), 36);
    assert_ne!(k.anti_csrf_token, jar.csrf());
    assert_eq!(k.user_id.as_deref(), Some("1"));
    let public = r#"{"userId":1,"role":"user"}"#;
    assert_eq!(k.public_data, public);

    let r = s.response();
    assert!(r.session_created);
    assert!(r.public_data_token);
    let token = value_of(r, SESSION);
    let expires = h.now() + W;
    let cookies: Vec<String> = r.cookies.iter().map(str::to_owned).collect();
    assert_eq!(
        cookies,
        [
            expected_cookie(SESSION, &token, expires, true),
            expected_cookie(CSRF, &k.anti_csrf_token, expires, false),
            expected_cookie(PUBLIC, &public_data_token(public), expires, false),
            cleared_cookie(ANON, true),
        ]
    );
    assert_eq!(to_utc_string(expires), "Fri, 14 Feb 2025 12:02:00 GMT");

    // Token format (§4.3).
    assert_eq!(token.len(), 184);
    assert!(set_cookie(r, SESSION).contains("%3D;"));
    let parts = parts_of(&token);
    assert_eq!(parts.handle, k.handle);
    assert_eq!(parts.id.len(), 32);
    assert_eq!(parts.hashed_public_data, hash256(public.as_bytes()));
    assert_eq!(parts.version, "v0");

    // The stored record.
    let row = h.row(&k.handle).await.expect("stored");
    assert_eq!(
        row,
        SessionRecord {
            handle: k.handle.clone(),
            user_id: Some("1".into()),
            expires_at: Some(expires),
            hashed_session_token: Some(hash256(token.as_bytes())),
            anti_csrf_token: Some(k.anti_csrf_token.clone()),
            public_data: Some(public.into()),
            private_data: Some("{}".into()),
        }
    );
    // The anonymous session had no row: looked up, nothing deleted.
    assert_eq!(h.probe.calls(), ["get", "create"]);
    assert!(h.row(&anon).await.is_none());

    // The next request is authenticated and writes nothing.
    let next = h.post(&jar.then(r)).await;
    assert_eq!(next.kernel().handle, k.handle);
    assert_eq!(next.kernel().user_id.as_deref(), Some("1"));
    assert!(next.response().cookies.is_empty());
}

#[tokio::test]
async fn create_carries_current_anonymous_public_and_private_data() {
    let h = Harness::new();
    let (jar, anon) = h.visit().await;
    // Private data in an earlier request: the anonymous session gets a row.
    let mut s = h.post(&jar).await;
    s.set_private_data(&merge(json!({"cart": [1, 2]})), h.now())
        .await
        .unwrap();
    assert!(h.row(&anon).await.is_some());

    // Q12: public data set earlier in the same request is carried over.
    let mut s = h.post(&jar).await;
    s.set_public_data(&merge(json!({"foo": "bar"})), h.now())
        .await
        .unwrap();
    s.set_public_data(&merge(json!({"second": 2})), h.now())
        .await
        .unwrap();
    s.create(
        &merge(json!({"userId": 1, "role": "user"})),
        Some(&merge(json!({"secret": "p"}))),
        h.now(),
    )
    .await
    .unwrap();
    let public = r#"{"userId":1,"foo":"bar","second":2,"role":"user"}"#;
    assert_eq!(s.kernel().public_data, public);
    let row = h.row(&s.kernel().handle).await.unwrap();
    assert_eq!(row.public_data.as_deref(), Some(public));
    assert_eq!(
        row.private_data.as_deref(),
        Some(r#"{"cart":[1,2],"secret":"p"}"#)
    );
    // The anonymous row is gone.
    assert!(h.row(&anon).await.is_none());
    assert_eq!(h.store().len(), 1);
    // Replace-in-place: the anonymous and public-data cookies written first
    // keep their places.
    assert_eq!(names(s.response()), [ANON, PUBLIC, SESSION, CSRF]);
    assert_eq!(set_cookie(s.response(), ANON), cleared_cookie(ANON, true));
    assert_eq!(value_of(s.response(), PUBLIC), public_data_token(public));
}

#[tokio::test]
async fn create_matches_vector_e() {
    let h = Harness::with(SessionConfig {
        cookie_prefix: "test".into(),
        ..config()
    });
    let v = scenario("E_create_from_anonymous");
    let s = ok(h.raw("GET", None, None).await);
    let jar = Jar::of(s.response());
    let csrf = jar.value("test_sAntiCsrfToken").unwrap();
    h.advance(MINUTE);
    let mut s = ok(h.request("POST", &jar, Some(&csrf)).await);
    s.set_public_data(&merge(json!({"second": 2})), h.now())
        .await
        .unwrap();
    s.set_private_data(&merge(json!({"cart": [1, 2]})), h.now())
        .await
        .unwrap();
    let jar = jar.then(s.response());
    h.advance(MINUTE);
    let mut s = ok(h.request("POST", &jar, Some(&csrf)).await);
    s.create(
        &merge(json!({"userId": 1, "role": "user"})),
        Some(&merge(json!({"secret": "p"}))),
        h.now(),
    )
    .await
    .unwrap();

    let expected = strings(&v["response"]["set_cookie_split"]);
    let v_token = name_and_value(&expected[0]).1.to_owned();
    let v_csrf = v["session"]["antiCSRFToken"].as_str().unwrap();
    let ours_raw = name_and_value(&set_cookie(s.response(), "test_sSessionToken"))
        .1
        .to_owned();
    let ours: Vec<String> = s
        .response()
        .cookies
        .iter()
        .map(|c| {
            c.replace(&ours_raw, &v_token)
                .replace(&s.kernel().anti_csrf_token, v_csrf)
        })
        .collect();
    assert_eq!(ours, expected);

    let stored = &v["stored_row"];
    let row = h.row(&s.kernel().handle).await.unwrap();
    assert_eq!(row.public_data.as_deref(), stored["publicData"].as_str());
    assert_eq!(row.private_data.as_deref(), stored["privateData"].as_str());
    assert_eq!(row.user_id.as_deref(), Some("1"));
    assert_eq!(
        to_iso_string(row.expires_at.unwrap()),
        stored["expiresAt"].as_str().unwrap()
    );
    let token = decode_uri_component(&ours_raw).unwrap();
    assert_eq!(
        row.hashed_session_token.as_deref(),
        Some(hash256(token.as_bytes()).as_str())
    );
}

#[tokio::test]
async fn create_in_the_request_that_created_the_anonymous_session_matches_vector_q() {
    let h = Harness::with(SessionConfig {
        cookie_prefix: "test".into(),
        ..config()
    });
    h.advance(10 * MINUTE);
    let v = scenario("Q_create_in_same_request_as_anonymous_creation");
    let mut s = ok(h.raw("POST", None, None).await);
    s.create(&merge(json!({"userId": 4})), None, h.now())
        .await
        .unwrap();
    let expected = strings(&v["response"]["set_cookie_split"]);
    let v_csrf = name_and_value(&expected[1]).1.to_owned();
    let v_token = name_and_value(&expected[3]).1.to_owned();
    let ours_raw = name_and_value(&set_cookie(s.response(), "test_sSessionToken"))
        .1
        .to_owned();
    let ours: Vec<String> = s
        .response()
        .cookies
        .iter()
        .map(|c| {
            c.replace(&ours_raw, &v_token)
                .replace(&s.kernel().anti_csrf_token, &v_csrf)
        })
        .collect();
    assert_eq!(ours, expected);
    assert!(s.response().session_created);
    let row = h.row(&s.kernel().handle).await.unwrap();
    assert_eq!(row.private_data.as_deref(), Some("{}"));
    assert_eq!(row.public_data.as_deref(), Some(r#"{"userId":4}"#));
}

#[tokio::test]
async fn create_validates_user_id() {
    let h = Harness::new();
    let (jar, _) = h.visit().await;
    let cases = [
        (merge(json!({})), "You must provide publicData.userId"),
        (
            merge(json!({"role": "x"})),
            "You must provide publicData.userId",
        ),
        (
            JsonMerge {
                set: Map::new(),
                remove: vec!["userId".into()],
            },
            "You must provide publicData.userId",
        ),
        (
            merge(json!({"userId": null})),
            "You must provide a non-empty userId as publicData.userId",
        ),
    ];
    for (data, message) in cases {
        let mut s = h.post(&jar).await;
        let before = s.kernel().clone();
        let e = s.create(&data, None, h.now()).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidSessionOperation);
        assert_eq!(e.message(), message);
        // Nothing happened.
        assert_eq!(*s.kernel(), before);
        assert!(s.response().cookies.is_empty());
        assert!(h.store().is_empty());
    }
    // Q14: falsy ids are ids.
    for (id, text) in [
        (json!(0), "0"),
        (json!(""), "\"\""),
        (json!(false), "false"),
    ] {
        let mut s = h.post(&jar).await;
        s.create(&merge(json!({"userId": id})), None, h.now())
            .await
            .unwrap();
        assert_eq!(s.kernel().user_id.as_deref(), Some(text));
        let row = h.row(&s.kernel().handle).await.unwrap();
        assert_eq!(row.user_id.as_deref(), Some(text));
        // And the session works.
        let next = h.post(&jar.then(s.response())).await;
        assert_eq!(next.kernel().handle, s.kernel().handle);
        assert_eq!(next.kernel().user_id.as_deref(), Some(text));
    }
}

// ---------------------------------------------------------------------------
// 4. Authenticated requests (§5.1 A, Q7, Q8, Q9)

#[tokio::test]
async fn valid_session_token_resolves_from_the_store() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": "u1", "role": "admin"})).await;
    h.advance(MINUTE);
    for method in ["GET", "POST"] {
        h.probe.reset();
        let csrf = jar.csrf();
        let s = ok(h.request(method, &jar, Some(&csrf)).await);
        let k = s.kernel();
        assert_eq!(k.kind, SessionKind::Authenticated);
        assert_eq!(k.handle, handle);
        assert_eq!(k.user_id.as_deref(), Some(r#""u1""#));
        assert_eq!(k.public_data, r#"{"userId":"u1","role":"admin"}"#);
        assert_eq!(k.anti_csrf_token, csrf);
        assert_eq!(*s.response(), ResponseState::default());
        assert_eq!(h.probe.calls(), ["get"]);
    }
    // The session cookie wins over an anonymous one.
    let (anon_jar, _) = h.visit().await;
    let both = jar.with(ANON, &encode_uri_component(&anon_jar.value(ANON).unwrap()));
    let s = h.post(&both).await;
    assert_eq!(s.kernel().handle, handle);
}

/// Session-cookie values that must each fall back to an anonymous session.
async fn unusable_session_tokens(h: &Harness) -> Vec<(&'static str, String)> {
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let token = jar.value(SESSION).unwrap();
    let parts = parts_of(&token);
    let public = r#"{"userId":1}"#;
    let b64 = |s: String| STANDARD.encode(s);
    // A session whose row is then deleted.
    let (gone_jar, gone) = h.login(json!({"userId": 2})).await;
    h.store().delete(&gone, h.now()).await.unwrap();
    vec![
        ("revoked", gone_jar.value(SESSION).unwrap()),
        (
            "unknown handle",
            encode_session_token("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:ots", &parts.id, public),
        ),
        (
            "hash mismatch",
            encode_session_token(&handle, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", public),
        ),
        (
            "wrong version",
            b64(format!(
                "{};{};{};v1",
                parts.handle, parts.id, parts.hashed_public_data
            )),
        ),
        (
            "three fields",
            b64(format!(
                "{};{};{}",
                parts.handle, parts.id, parts.hashed_public_data
            )),
        ),
        (
            "empty field",
            b64(format!("{};;{};v0", parts.handle, parts.hashed_public_data)),
        ),
        ("garbage", "garbage".into()),
        ("bad escape", "%E0%A4%A".into()),
        ("one field", "YQ==".into()),
        ("not base64", "!!!!".into()),
        ("anonymous jwt", h.visit().await.0.value(ANON).unwrap()),
    ]
}

#[tokio::test]
async fn unusable_session_cookie_falls_back_to_a_new_anonymous_session() {
    let h = Harness::new();
    for (case, bad) in unusable_session_tokens(&h).await {
        let jar = Jar::default().with(SESSION, &encode_uri_component(&bad));
        // Q7: no error, even on a POST without a CSRF header.
        for method in ["GET", "POST"] {
            let s = match h.request(method, &jar, None).await {
                Ok(s) => s,
                Err(f) => panic!("{case}: {:?}", f.error),
            };
            assert_new_anonymous(&s);
        }
    }
}

#[tokio::test]
async fn unusable_session_cookie_keeps_a_valid_anonymous_session() {
    let h = Harness::new();
    let (anon_jar, anon) = h.visit().await;
    // Q9: the anonymous session's private data survives too.
    let mut s = h.post(&anon_jar).await;
    s.set_private_data(&merge(json!({"cart": [1]})), h.now())
        .await
        .unwrap();
    for (case, bad) in unusable_session_tokens(&h).await {
        let jar = anon_jar.with(SESSION, &encode_uri_component(&bad));
        let s = match h.request("POST", &jar, Some(&anon_jar.csrf())).await {
            Ok(s) => s,
            Err(f) => panic!("{case}: {:?}", f.error),
        };
        assert_eq!(s.kernel().handle, anon, "{case}");
        assert_eq!(s.kernel().kind, SessionKind::Anonymous);
        assert!(!s.response().session_created);
        // Only the stale session cookie is cleared.
        let cookies: Vec<String> = s.response().cookies.iter().map(str::to_owned).collect();
        assert_eq!(cookies, [cleared_cookie(SESSION, true)], "{case}");
        assert_eq!(
            s.get_private_data(h.now()).await.unwrap(),
            r#"{"cart":[1]}"#,
            "{case}"
        );
        // The anonymous session still needs its CSRF token.
        let f = failure(h.request("POST", &jar, None).await);
        assert_eq!(f.error.code(), ErrorCode::CsrfTokenMismatch);
        assert!(f.response.csrf_error);
        assert_eq!(
            names(&f.response),
            [SESSION],
            "{case}: the failure still clears the stale cookie"
        );
    }
}

#[tokio::test]
async fn expired_row_falls_back_to_anonymous() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    // A store that still returns the row (its clock lags, or it ignores
    // expiry as Blitz's storage functions do): the engine's own check must
    // refuse it.
    *h.probe.store_now.lock().unwrap() = Some(T0);
    h.set_now(T0 + W + 1);
    assert!(h.row(&handle).await.is_some());
    let s = h.post(&jar).await;
    assert_new_anonymous(&s);
    // At the expiry instant itself the session is still valid (Blitz:
    // `expiresAt < now`), and the memory store, given the engine's `now`,
    // still returns the row then.
    *h.probe.store_now.lock().unwrap() = None;
    h.set_now(T0 + W);
    let s = h.post(&jar).await;
    assert_eq!(s.kernel().handle, handle);
    // ... and takes the sliding refresh made at that instant.
    assert_eq!(h.row(&handle).await.unwrap().expires_at, Some(T0 + 2 * W));
}

#[tokio::test]
async fn refresh_token_cookie_is_ignored() {
    let h = Harness::new();
    let (jar, anon) = h.visit().await;
    // Q8: Blitz started a new anonymous session on every such request.
    let with_refresh = jar.with(REFRESH, "anything");
    let s = h.post(&with_refresh).await;
    assert_eq!(s.kernel().handle, anon);
    assert!(s.response().cookies.is_empty());
    let only_refresh = Jar::default().with(REFRESH, "anything");
    let s = h.get(&only_refresh).await;
    assert_new_anonymous(&s);
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let s = h.post(&jar.with(REFRESH, "x")).await;
    assert_eq!(s.kernel().handle, handle);
}

#[tokio::test]
async fn row_without_anti_csrf_token_is_a_store_error() {
    let h = Harness::new();
    for csrf in [None, Some(String::new())] {
        let handle = generate_handle(HandleKind::Authenticated).unwrap();
        let public = r#"{"userId":1}"#;
        let token = encode_session_token(&handle, "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC", public);
        h.store()
            .create(
                &SessionRecord {
                    handle: handle.clone(),
                    user_id: Some("1".into()),
                    expires_at: Some(T0 + W),
                    hashed_session_token: Some(hash256(token.as_bytes())),
                    anti_csrf_token: csrf,
                    public_data: Some(public.into()),
                    private_data: None,
                },
                h.now(),
            )
            .await
            .unwrap();
        let jar = Jar::default().with(SESSION, &encode_uri_component(&token));
        for method in ["GET", "POST"] {
            let f = failure(h.request(method, &jar, None).await);
            assert_eq!(f.error.code(), ErrorCode::SessionStoreFailed);
            assert_eq!(f.error.code().as_str(), "SESSION_STORE_FAILED");
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Sliding expiry (§5.1 A.7, Q1)

#[tokio::test]
async fn sliding_expiry_boundary_matches_vectors_g1_and_g2() {
    let g1 = scenario("G1_exactly_75pct_left");
    let g2 = scenario("G2_just_under_75pct_left");
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    h.set_now(T0 + 3 * MINUTE);
    assert_eq!(to_iso_string(h.now()), g1["now"].as_str().unwrap());

    // G1: 32 400 whole minutes (and 30 s) left: not below 0.75 × W.
    let e1 = h.now() + 32_400 * MINUTE + 30_000;
    assert_eq!(
        to_iso_string(e1),
        g1["stored_expiresAt_before"].as_str().unwrap()
    );
    let set_expiry = |e: i64| SessionUpdate {
        expires_at: Some(e),
        ..SessionUpdate::default()
    };
    h.store()
        .update(&handle, &set_expiry(e1), h.now())
        .await
        .unwrap();
    h.probe.reset();
    let s = h.post(&jar).await;
    assert_eq!(s.kernel().handle, handle);
    assert!(s.response().cookies.is_empty());
    assert_eq!(h.probe.calls(), ["get"]);
    assert_eq!(h.row(&handle).await.unwrap().expires_at, Some(e1));

    // G2: 32 399 minutes left: refresh.
    let e2 = h.now() + 32_399 * MINUTE + 30_000;
    assert_eq!(
        to_iso_string(e2),
        g2["stored_expiresAt_before"].as_str().unwrap()
    );
    h.store()
        .update(&handle, &set_expiry(e2), h.now())
        .await
        .unwrap();
    h.probe.reset();
    let s = h.post(&jar).await;
    assert_eq!(s.kernel().handle, handle);
    assert_eq!(h.probe.writes(), ["update"]);
    let new_expiry = h.now() + W;
    assert_eq!(
        to_iso_string(new_expiry),
        g2["storage_calls"][1][2]["expiresAt"].as_str().unwrap()
    );
    let row = h.row(&handle).await.unwrap();
    assert_eq!(row.expires_at, Some(new_expiry));
    // Q1: the session and CSRF cookies follow the new expiry (same values),
    // and so does the public-data cookie (Blitz left it to expire first).
    let r = s.response();
    let cookies: Vec<String> = r.cookies.iter().map(str::to_owned).collect();
    assert_eq!(
        cookies,
        [
            expected_cookie(SESSION, &jar.value(SESSION).unwrap(), new_expiry, true),
            expected_cookie(CSRF, &jar.csrf(), new_expiry, false),
            expected_cookie(
                PUBLIC,
                &public_data_token(r#"{"userId":1}"#),
                new_expiry,
                false
            ),
        ]
    );
    assert!(r.public_data_token);
    assert!(!r.session_created);
    assert_eq!(s.kernel().expires_at, Some(new_expiry));
    // The token itself did not change; the memory store does not share rows
    // with Blitz, so the refresh also stored the hash bound to its id.
    let token = jar.value(SESSION).unwrap();
    assert_eq!(
        row.hashed_session_token,
        Some(id_hash(&handle, &parts_of(&token).id))
    );
}

#[tokio::test]
async fn sliding_expiry_also_refreshes_on_get_and_head() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    for method in ["GET", "HEAD"] {
        // A little over a quarter of the window later.
        h.advance(W / 4 + MINUTE);
        let s = ok(h.request(method, &jar, None).await);
        assert_eq!(s.kernel().handle, handle);
        let expiry = h.now() + W;
        assert_eq!(h.row(&handle).await.unwrap().expires_at, Some(expiry));
        assert_eq!(names(s.response()), [SESSION, CSRF, PUBLIC]);
        for name in [SESSION, CSRF, PUBLIC] {
            assert_eq!(expires_of(s.response(), name), to_utc_string(expiry));
        }
        // Right after, nothing to do.
        h.probe.reset();
        let s = h.get(&jar.then(s.response())).await;
        assert!(s.response().cookies.is_empty());
        assert!(h.probe.writes().is_empty());
    }
    // Without activity for the whole window it is gone.
    h.advance(W + 1);
    let s = h.get(&jar).await;
    assert_new_anonymous(&s);
}

// ---------------------------------------------------------------------------
// 6. Public data changed behind the session's back (§10, Q2)

#[tokio::test]
async fn public_data_changed_elsewhere_reissues_the_token_once() {
    let h = Harness::new();
    let (jar0, handle) = h.login(json!({"userId": 1, "a": 1})).await;
    let old_token = jar0.value(SESSION).unwrap();
    h.advance(MINUTE);
    let changed = h
        .engine
        .set_public_data_for_user(
            "1",
            &merge(json!({"role": "admin", "userId": 555})),
            h.now(),
        )
        .await
        .unwrap();
    assert_eq!(changed, std::slice::from_ref(&handle));
    let public = r#"{"userId":1,"a":1,"role":"admin"}"#;
    assert_eq!(
        h.row(&handle).await.unwrap().public_data.as_deref(),
        Some(public)
    );

    // The next request (any method) re-issues the token and the public data.
    h.advance(MINUTE);
    let s = h.get(&jar0).await;
    let k = s.kernel();
    assert_eq!(k.handle, handle);
    assert_eq!(k.public_data, public);
    let r = s.response();
    assert_eq!(names(r), [SESSION, CSRF, PUBLIC]);
    assert!(r.public_data_token);
    assert!(!r.session_created);
    let new_token = value_of(r, SESSION);
    let (old, new) = (parts_of(&old_token), parts_of(&new_token));
    assert_eq!(new.handle, old.handle);
    assert_eq!(new.id, old.id);
    assert_eq!(new.hashed_public_data, hash256(public.as_bytes()));
    assert_ne!(new_token, old_token);
    assert_eq!(value_of(r, PUBLIC), public_data_token(public));
    // The row's expiry did not move (no quarter passed): the cookies keep it.
    assert_eq!(expires_of(r, SESSION), to_utc_string(T0 + W));
    assert_eq!(expires_of(r, PUBLIC), to_utc_string(T0 + W));
    let row = h.row(&handle).await.unwrap();
    // The store no longer accepts the old token by its exact hash, but by
    // the hash of its id, which every token of this session shares.
    assert_eq!(row.hashed_session_token, Some(id_hash(&handle, &old.id)));
    assert_ne!(
        row.hashed_session_token,
        Some(hash256(old_token.as_bytes()))
    );
    assert_eq!(row.expires_at, Some(T0 + W));

    // The request after that needs no write.
    let jar1 = jar0.then(r);
    h.probe.reset();
    let s = h.post(&jar1).await;
    assert_eq!(s.kernel().public_data, public);
    assert!(s.response().cookies.is_empty());
    assert!(h.probe.writes().is_empty());

    // A parallel tab still sending the old token is not logged out: it gets
    // the current token, and the store needs no write for that.
    let s = h.post(&jar0).await;
    assert_eq!(s.kernel().handle, handle);
    assert_eq!(s.kernel().kind, SessionKind::Authenticated);
    assert_eq!(value_of(s.response(), SESSION), new_token);
    assert_eq!(value_of(s.response(), PUBLIC), public_data_token(public));
    assert!(h.probe.writes().is_empty(), "{:?}", h.probe.writes());
    assert_eq!(
        h.row(&handle).await.unwrap().hashed_session_token,
        Some(id_hash(&handle, &old.id))
    );

    // A second change: the first and second tokens both still work.
    h.engine
        .set_public_data_for_user("1", &merge(json!({"b": 2})), h.now())
        .await
        .unwrap();
    for jar in [&jar0, &jar1] {
        let s = h.post(jar).await;
        assert_eq!(s.kernel().handle, handle);
        assert_eq!(
            s.kernel().public_data,
            r#"{"userId":1,"a":1,"role":"admin","b":2}"#
        );
        assert_eq!(names(s.response()), [SESSION, CSRF, PUBLIC]);
    }
    // And a token with the right handle but another id still is refused.
    let forged = encode_session_token(&handle, "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", public);
    let s = h
        .post(&jar1.with(SESSION, &encode_uri_component(&forged)))
        .await;
    assert_new_anonymous(&s);
}

// ---------------------------------------------------------------------------
// 7. $setPublicData (§6.5, Q2, Q12, Q13, Q19)

#[tokio::test]
async fn set_public_data_merges_into_the_stored_data_and_reissues_the_token() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1, "a": 1})).await;
    h.advance(MINUTE);
    let mut s = h.post(&jar).await;
    // Changed by someone else after this request read it.
    h.engine
        .set_public_data_for_user("1", &merge(json!({"b": 2})), h.now())
        .await
        .unwrap();
    h.advance(MINUTE);
    s.set_public_data(&merge(json!({"c": 3, "userId": 2})), h.now())
        .await
        .unwrap();
    let public = r#"{"userId":1,"a":1,"b":2,"c":3}"#;
    assert_eq!(s.kernel().public_data, public);
    assert_eq!(s.kernel().user_id.as_deref(), Some("1"));
    let row = h.row(&handle).await.unwrap();
    assert_eq!(row.public_data.as_deref(), Some(public));
    let expiry = h.now() + W;
    assert_eq!(row.expires_at, Some(expiry));

    let r = s.response();
    assert_eq!(names(r), [SESSION, CSRF, PUBLIC]);
    assert!(r.public_data_token);
    let token = value_of(r, SESSION);
    assert_eq!(
        parts_of(&token).hashed_public_data,
        hash256(public.as_bytes())
    );
    assert_eq!(
        parts_of(&token).id,
        parts_of(&jar.value(SESSION).unwrap()).id
    );
    assert_eq!(
        row.hashed_session_token,
        Some(id_hash(&handle, &parts_of(&token).id))
    );
    let cookies: Vec<String> = r.cookies.iter().map(str::to_owned).collect();
    assert_eq!(
        cookies,
        [
            expected_cookie(SESSION, &token, expiry, true),
            expected_cookie(CSRF, &jar.csrf(), expiry, false),
            expected_cookie(PUBLIC, &public_data_token(public), expiry, false),
        ]
    );

    // The next request carries the current token: nothing to do.
    h.probe.reset();
    let s = h.post(&jar.then(r)).await;
    assert_eq!(s.kernel().public_data, public);
    assert!(s.response().cookies.is_empty());
    assert!(h.probe.writes().is_empty());
}

#[tokio::test]
async fn set_public_data_never_changes_user_id() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let mut s = h.post(&jar).await;
    let data = JsonMerge {
        set: merge(json!({"userId": 2, "x": 1})).set,
        remove: vec!["userId".into()],
    };
    s.set_public_data(&data, h.now()).await.unwrap();
    // Q13: the caller's object is not mutated.
    assert!(data.set.contains_key("userId"));
    assert_eq!(s.kernel().user_id.as_deref(), Some("1"));
    let row = h.row(&handle).await.unwrap();
    assert_eq!(row.public_data.as_deref(), Some(r#"{"userId":1,"x":1}"#));
    assert_eq!(row.user_id.as_deref(), Some("1"));
    let changed = h
        .engine
        .set_public_data_for_user("1", &merge(json!({"userId": 3})), h.now())
        .await
        .unwrap();
    assert!(changed.is_empty());
    assert_eq!(
        h.row(&handle).await.unwrap().public_data.as_deref(),
        Some(r#"{"userId":1,"x":1}"#)
    );
}

#[tokio::test]
async fn set_public_data_syncs_truthy_roles_to_every_session_of_the_user() {
    let h = Harness::new();
    let (a_jar, a) = h.login(json!({"userId": 1, "role": "user"})).await;
    let (b_jar, b) = h.login(json!({"userId": 1, "role": "user"})).await;
    let (_, c) = h.login(json!({"userId": 2, "role": "user"})).await;
    let hr = &h;
    let pd = |handle: String| async move { hr.row(&handle).await.unwrap().public_data.unwrap() };

    let mut s = h.post(&a_jar).await;
    s.set_public_data(
        &merge(json!({"role": "admin", "roles": ["a"], "nick": "n"})),
        h.now(),
    )
    .await
    .unwrap();
    assert_eq!(
        pd(a.clone()).await,
        r#"{"userId":1,"role":"admin","roles":["a"],"nick":"n"}"#
    );
    // Only the sync keys reach the other session of the user.
    assert_eq!(
        pd(b.clone()).await,
        r#"{"userId":1,"role":"admin","roles":["a"]}"#
    );
    assert_eq!(pd(c.clone()).await, r#"{"userId":2,"role":"user"}"#);

    // Q19: falsy values are not synced (but the session's own data takes them).
    let mut s = h.post(&a_jar.then(s.response())).await;
    s.set_public_data(&merge(json!({"role": "", "roles": null})), h.now())
        .await
        .unwrap();
    assert_eq!(
        pd(a.clone()).await,
        r#"{"userId":1,"role":"","roles":null,"nick":"n"}"#
    );
    assert_eq!(
        pd(b.clone()).await,
        r#"{"userId":1,"role":"admin","roles":["a"]}"#
    );

    // The other session picks the change up on its next request.
    let s = h.post(&b_jar).await;
    assert_eq!(
        s.kernel().public_data,
        r#"{"userId":1,"role":"admin","roles":["a"]}"#
    );
    assert_eq!(names(s.response()), [SESSION, CSRF, PUBLIC]);
}

#[tokio::test]
async fn set_public_data_on_an_anonymous_session_resigns_the_jwt() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    h.advance(MINUTE);
    let mut s = h.post(&jar).await;
    h.probe.reset();
    s.set_public_data(&merge(json!({"foo": "bar", "userId": 7})), h.now())
        .await
        .unwrap();
    // Q12: the second call builds on the first.
    s.set_public_data(&merge(json!({"second": 2})), h.now())
        .await
        .unwrap();
    let public = r#"{"userId":null,"foo":"bar","second":2}"#;
    assert_eq!(s.kernel().public_data, public);
    assert_eq!(s.kernel().user_id, None);
    assert_eq!(s.kernel().kind, SessionKind::Anonymous);

    let r = s.response();
    assert_eq!(names(r), [ANON, PUBLIC]);
    assert!(r.public_data_token);
    assert!(!r.session_created);
    // 30 years of 365.25 days (vector D: Sat, 16 Jan 2055 00:01:00 GMT).
    let expiry = h.now() + 15_778_800 * MINUTE;
    assert_eq!(to_utc_string(expiry), "Sat, 16 Jan 2055 00:01:00 GMT");
    let jwt = value_of(r, ANON);
    let cookies: Vec<String> = r.cookies.iter().map(str::to_owned).collect();
    assert_eq!(
        cookies,
        [
            expected_cookie(ANON, &jwt, expiry, true),
            expected_cookie(PUBLIC, &public_data_token(public), expiry, false),
        ]
    );
    let claims = verify_anonymous_jwt(&jwt, &[JwtKey::new(SECRET).unwrap()], h.now()).unwrap();
    assert_eq!(claims.handle, handle);
    assert_eq!(claims.anti_csrf_token, jar.csrf());
    assert_eq!(claims.public_data_json, public);
    assert!(h.probe.calls().is_empty());

    // The browser sends the new JWT back: same session, new public data.
    let s = h.post(&jar.then(r)).await;
    assert_eq!(s.kernel().handle, handle);
    assert_eq!(s.kernel().public_data, public);
    assert!(s.response().cookies.is_empty());
}

// ---------------------------------------------------------------------------
// 8. $revoke, $revokeAll, $create on an authenticated session (§6.4, §6.8, Q3, Q15)

#[tokio::test]
async fn revoke_deletes_the_row_and_adopts_a_new_anonymous_session() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let mut s = h.post(&jar).await;
    s.revoke(h.now()).await.unwrap();
    assert!(h.row(&handle).await.is_none());
    assert_ne!(s.kernel().handle, handle);
    assert_new_anonymous(&s);
    let anon = s.kernel().handle.clone();
    // The browser is now anonymous.
    let s = h.post(&jar.then(s.response())).await;
    assert_eq!(s.kernel().handle, anon);
    assert!(s.response().cookies.is_empty());
    // The old token is dead.
    let s = h.post(&jar).await;
    assert_new_anonymous(&s);

    // Revoking an anonymous session deletes its private-data row.
    let (jar, anon) = h.visit().await;
    let mut s = h.post(&jar).await;
    s.set_private_data(&merge(json!({"x": 1})), h.now())
        .await
        .unwrap();
    s.revoke(h.now()).await.unwrap();
    assert!(h.row(&anon).await.is_none());
    assert_ne!(s.kernel().handle, anon);
}

#[tokio::test]
async fn revoke_all_deletes_every_live_session_of_the_user() {
    let h = Harness::new();
    let (a_jar, a) = h.login(json!({"userId": 1})).await;
    let (b_jar, b) = h.login(json!({"userId": 1})).await;
    let (_, c) = h.login(json!({"userId": 1})).await;
    let (d_jar, d) = h.login(json!({"userId": 2})).await;
    let (e_jar, e) = h.visit().await;
    let mut s = h.post(&e_jar).await;
    s.set_private_data(&merge(json!({"x": 1})), h.now())
        .await
        .unwrap();
    let (_, f) = h.login(json!({"userId": "1"})).await;

    let mut s = h.post(&a_jar).await;
    s.revoke_all(h.now()).await.unwrap();
    assert_new_anonymous(&s);
    // Q3: every session of user 1, not only this one.
    for gone in [&a, &b, &c] {
        assert!(h.row(gone).await.is_none());
    }
    // Other users (`"1"` is another id than `1`) and anonymous rows are untouched.
    for kept in [&d, &e, &f] {
        assert!(h.row(kept).await.is_some());
    }
    assert_new_anonymous(&h.post(&b_jar).await);
    assert_eq!(h.post(&d_jar).await.kernel().handle, d);

    // On an anonymous session it only revokes that session.
    let mut s = h.post(&e_jar).await;
    s.revoke_all(h.now()).await.unwrap();
    assert!(h.row(&e).await.is_none());
    assert!(h.row(&d).await.is_some());
    assert!(h.row(&f).await.is_some());
}

#[tokio::test]
async fn create_on_an_authenticated_session_replaces_it() {
    let h = Harness::new();
    let (jar, old) = h.login(json!({"userId": 1})).await;
    let mut s = h.post(&jar).await;
    s.create(&merge(json!({"userId": 2})), None, h.now())
        .await
        .unwrap();
    // Q15: the previous session is deleted, not left valid.
    assert!(h.row(&old).await.is_none());
    let new = s.kernel().handle.clone();
    assert_ne!(new, old);
    // Nothing carried over from the authenticated session.
    assert_eq!(s.kernel().public_data, r#"{"userId":2}"#);
    assert!(h.row(&new).await.is_some());
    assert_new_anonymous(&h.post(&jar).await);
    let s = h.post(&jar.then(s.response())).await;
    assert_eq!(s.kernel().handle, new);
    assert_eq!(s.kernel().user_id.as_deref(), Some("2"));
}

// ---------------------------------------------------------------------------
// 9. Private data (§6.6, §6.7)

#[tokio::test]
async fn private_data_of_an_anonymous_session() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    let mut s = h.post(&jar).await;
    assert_eq!(s.get_private_data(h.now()).await.unwrap(), "{}");
    assert!(h.store().is_empty());
    s.set_private_data(&merge(json!({"a": 1})), h.now())
        .await
        .unwrap();
    // A row with only the handle and the private data.
    assert_eq!(
        h.row(&handle).await.unwrap(),
        SessionRecord {
            handle: handle.clone(),
            private_data: Some(r#"{"a":1}"#.into()),
            ..SessionRecord::default()
        }
    );
    s.set_private_data(&merge(json!({"b": {"c": 2}})), h.now())
        .await
        .unwrap();
    s.set_private_data(&merge(json!({"a": 3})), h.now())
        .await
        .unwrap();
    assert_eq!(
        s.get_private_data(h.now()).await.unwrap(),
        r#"{"a":3,"b":{"c":2}}"#
    );
    s.set_private_data(
        &JsonMerge {
            set: Map::new(),
            remove: vec!["a".into()],
        },
        h.now(),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_private_data(h.now()).await.unwrap(),
        r#"{"b":{"c":2}}"#
    );
    assert!(s.response().cookies.is_empty());
    // Another request of the same session sees it.
    let s = h.get(&jar).await;
    assert_eq!(
        s.get_private_data(h.now()).await.unwrap(),
        r#"{"b":{"c":2}}"#
    );
    // Another session does not.
    let (other, _) = h.visit().await;
    assert_eq!(
        h.get(&other).await.get_private_data(h.now()).await.unwrap(),
        "{}"
    );
}

#[tokio::test]
async fn private_data_of_an_authenticated_session() {
    let h = Harness::new();
    let (jar, handle) = h.visit().await;
    let mut s = h.post(&jar).await;
    s.create(
        &merge(json!({"userId": 1})),
        Some(&merge(json!({"x": 1}))),
        h.now(),
    )
    .await
    .unwrap();
    assert_eq!(s.get_private_data(h.now()).await.unwrap(), r#"{"x":1}"#);
    let jar = jar.then(s.response());
    let mut s = h.post(&jar).await;
    let before = h.row(&s.kernel().handle).await.unwrap();
    s.set_private_data(&merge(json!({"y": [2], "x": "one"})), h.now())
        .await
        .unwrap();
    let after = h.row(&s.kernel().handle).await.unwrap();
    assert_eq!(
        after.private_data.as_deref(),
        Some(r#"{"x":"one","y":[2]}"#)
    );
    // Nothing else of the row changed, no cookies.
    assert_eq!(
        SessionRecord {
            private_data: before.private_data.clone(),
            ..after
        },
        before
    );
    assert!(s.response().cookies.is_empty());
    assert!(h.row(&handle).await.is_none());
    assert_eq!(
        h.post(&jar).await.get_private_data(h.now()).await.unwrap(),
        r#"{"x":"one","y":[2]}"#
    );
}

// ---------------------------------------------------------------------------
// 10. A revoked session stays revoked

#[tokio::test]
async fn refresh_racing_a_revocation_does_not_revive_the_session() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    h.advance(W / 4 + MINUTE);
    // The row is revoked between the request's read and its write.
    *h.probe.delete_after_get.lock().unwrap() = Some(handle.clone());
    let s = h.post(&jar).await;
    assert_new_anonymous(&s);
    assert!(h.row(&handle).await.is_none());
    assert!(h.store().is_empty());
}

#[tokio::test]
async fn reissue_racing_a_revocation_does_not_revive_the_session() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    h.engine
        .set_public_data_for_user("1", &merge(json!({"role": "x"})), h.now())
        .await
        .unwrap();
    *h.probe.delete_after_get.lock().unwrap() = Some(handle.clone());
    let s = h.post(&jar).await;
    assert_new_anonymous(&s);
    assert!(h.row(&handle).await.is_none());
    assert!(h.store().is_empty());
}

#[tokio::test]
async fn operations_after_a_revocation_do_not_revive_the_session() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let mut s = h.post(&jar).await;
    // Logged out elsewhere ($revokeAll on another device) while in flight.
    let (other_jar, _) = h.login(json!({"userId": 1})).await;
    let mut other = h.post(&other_jar).await;
    other.revoke_all(h.now()).await.unwrap();
    assert!(h.row(&handle).await.is_none());

    let e = s
        .set_public_data(&merge(json!({"a": 1})), h.now())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidSessionOperation);
    assert!(h.row(&handle).await.is_none());
    assert!(s.response().cookies.is_empty());

    let e = s
        .set_private_data(&merge(json!({"a": 1})), h.now())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidSessionOperation);
    assert!(h.row(&handle).await.is_none());
    assert_eq!(s.get_private_data(h.now()).await.unwrap(), "{}");

    // The old cookie still falls back to anonymous (no broken row was left).
    assert_new_anonymous(&h.post(&jar).await);
    assert!(h.store().is_empty());
}

// ---------------------------------------------------------------------------
// 11. Concurrency

/// 100 requests of one session each add a key at the same time.
async fn concurrent_set_public_data_on_one_session(h: Harness) {
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    let header = jar.header();
    let csrf = jar.csrf();
    h.probe.shuffle.store(true, Ordering::SeqCst);
    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let engine = Arc::clone(&h.engine);
        let (header, csrf, now) = (header.clone(), csrf.clone(), h.now());
        tasks.spawn(async move {
            let input = RequestInput {
                method: "POST",
                cookie_header: Some(&header),
                anti_csrf_header: Some(&csrf),
                now_ms: now,
                read_only: false,
            };
            let mut s = ok(engine.resolve(&input).await);
            let mut set = Map::new();
            set.insert(format!("k{i}"), json!(i));
            s.set_public_data(
                &JsonMerge {
                    set,
                    remove: vec![],
                },
                now,
            )
            .await
            .expect("set_public_data");
            s.response().clone()
        });
    }
    let mut responses = Vec::new();
    while let Some(r) = tasks.join_next().await {
        responses.push(r.expect("task"));
    }
    h.probe.shuffle.store(false, Ordering::SeqCst);

    let row = h.row(&handle).await.unwrap();
    let public: Map<String, Value> =
        serde_json::from_str(row.public_data.as_deref().unwrap()).unwrap();
    assert_eq!(public.len(), 101);
    for i in 0..100 {
        assert_eq!(public.get(&format!("k{i}")), Some(&json!(i)), "k{i} lost");
    }
    // Whichever response the browser kept, the session is still there.
    for r in &responses {
        let s = h.post(&jar.then(r)).await;
        assert_eq!(s.kernel().handle, handle);
        assert_eq!(s.kernel().public_data, *row.public_data.as_ref().unwrap());
    }
}

#[tokio::test]
async fn concurrent_set_public_data_on_one_session_interleaved() {
    concurrent_set_public_data_on_one_session(Harness::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_set_public_data_on_one_session_multi_thread() {
    concurrent_set_public_data_on_one_session(Harness::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_set_public_data_across_sessions_of_one_user_loses_no_key() {
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let h = Harness::with(SessionConfig {
        public_data_keys_to_sync: keys.clone(),
        ..config()
    });
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(h.login(json!({"userId": 1})).await);
    }
    let (other_jar, other) = h.login(json!({"userId": 2})).await;
    h.probe.shuffle.store(true, Ordering::SeqCst);
    let mut tasks = JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        let engine = Arc::clone(&h.engine);
        let jar = sessions[i % sessions.len()].0.clone();
        let (key, now) = (key.clone(), h.now());
        tasks.spawn(async move {
            let (header, csrf) = (jar.header(), jar.csrf());
            let input = RequestInput {
                method: "POST",
                cookie_header: Some(&header),
                anti_csrf_header: Some(&csrf),
                now_ms: now,
                read_only: false,
            };
            let mut s = ok(engine.resolve(&input).await);
            let mut set = Map::new();
            set.insert(key, json!(true));
            s.set_public_data(
                &JsonMerge {
                    set,
                    remove: vec![],
                },
                now,
            )
            .await
            .expect("set_public_data");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    h.probe.shuffle.store(false, Ordering::SeqCst);
    for (_, handle) in &sessions {
        let row = h.row(handle).await.unwrap();
        let public: Map<String, Value> =
            serde_json::from_str(row.public_data.as_deref().unwrap()).unwrap();
        for key in &keys {
            assert_eq!(
                public.get(key),
                Some(&json!(true)),
                "{key} lost in {handle}"
            );
        }
    }
    assert_eq!(
        h.row(&other).await.unwrap().public_data.as_deref(),
        Some(r#"{"userId":2}"#)
    );
    assert_eq!(h.post(&other_jar).await.kernel().handle, other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_all_racing_logins_leaves_only_later_sessions() {
    let h = Harness::new();
    let mut old = Vec::new();
    for _ in 0..20 {
        old.push(h.login(json!({"userId": 1})).await);
    }
    let (bystander_jar, bystander) = h.login(json!({"userId": 2})).await;
    let mut visitors = Vec::new();
    for _ in 0..40 {
        visitors.push(h.visit().await.0);
    }
    h.probe.shuffle.store(true, Ordering::SeqCst);
    let now = h.now();
    let mut tasks = JoinSet::new();
    let revoker = old[0].0.clone();
    let engine = Arc::clone(&h.engine);
    tasks.spawn(async move {
        let (header, csrf) = (revoker.header(), revoker.csrf());
        let input = RequestInput {
            method: "POST",
            cookie_header: Some(&header),
            anti_csrf_header: Some(&csrf),
            now_ms: now,
            read_only: false,
        };
        let mut s = ok(engine.resolve(&input).await);
        s.revoke_all(now).await.expect("revoke_all");
        assert_eq!(s.kernel().kind, SessionKind::Anonymous);
        None
    });
    for jar in visitors {
        let engine = Arc::clone(&h.engine);
        tasks.spawn(async move {
            let (header, csrf) = (jar.header(), jar.csrf());
            let input = RequestInput {
                method: "POST",
                cookie_header: Some(&header),
                anti_csrf_header: Some(&csrf),
                now_ms: now,
                read_only: false,
            };
            let mut s = ok(engine.resolve(&input).await);
            s.create(&merge(json!({"userId": 1})), None, now)
                .await
                .expect("create");
            Some((jar.then(s.response()), s.kernel().handle.clone()))
        });
    }
    let mut new = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Some(login) = r.expect("task") {
            new.push(login);
        }
    }
    h.probe.shuffle.store(false, Ordering::SeqCst);

    // Every session that existed before the revocation is gone.
    for (jar, handle) in &old {
        assert!(h.row(handle).await.is_none());
        assert_new_anonymous(&h.post(jar).await);
    }
    // What is left of user 1 are logins from the race, each either fully
    // alive or cleanly logged out.
    let new_handles: BTreeSet<&String> = new.iter().map(|(_, h)| h).collect();
    for row in h.store().get_for_user("1", h.now()).await.unwrap() {
        assert!(new_handles.contains(&row.handle));
    }
    for (jar, handle) in &new {
        let s = h.post(jar).await;
        if h.row(handle).await.is_some() {
            assert_eq!(s.kernel().handle, *handle);
        } else {
            assert_eq!(s.kernel().kind, SessionKind::Anonymous);
        }
    }
    assert_eq!(h.post(&bystander_jar).await.kernel().handle, bystander);
}

/// Concurrent `$setPrivateData` calls on one session, with the store calls
/// interleaved: each is one `merge_private_data` (atomic in the memory
/// store), so no key is lost.
#[tokio::test]
async fn concurrent_set_private_data_loses_no_key() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    h.probe.shuffle.store(true, Ordering::SeqCst);
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let engine = Arc::clone(&h.engine);
        let (header, csrf, now) = (jar.header(), jar.csrf(), h.now());
        tasks.spawn(async move {
            let input = RequestInput {
                method: "POST",
                cookie_header: Some(&header),
                anti_csrf_header: Some(&csrf),
                now_ms: now,
                read_only: false,
            };
            let mut s = ok(engine.resolve(&input).await);
            let mut set = Map::new();
            set.insert(format!("k{i}"), json!(i));
            s.set_private_data(
                &JsonMerge {
                    set,
                    remove: vec![],
                },
                now,
            )
            .await
            .expect("set_private_data");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task");
    }
    let row = h.row(&handle).await.unwrap();
    let private: Map<String, Value> =
        serde_json::from_str(row.private_data.as_deref().unwrap()).unwrap();
    assert_eq!(private.len(), 20, "{private:?}");
}

// ---------------------------------------------------------------------------
// 12. Garbage in, no panic out

/// xorshift64*: deterministic, so a failure reproduces.
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
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const FRAGMENTS: &[&str] = &[
    "a",
    "Z",
    "0",
    "=",
    ";",
    ",",
    " ",
    "\"",
    "%",
    "%2",
    "%25",
    "%3D",
    "%3B",
    "%E0%A4%A",
    "%FF",
    "%C0%80",
    "%ED%A0%80",
    "%F4%90%80%80",
    "%00",
    "é",
    "\u{fffd}",
    "💥",
    "\t",
    ".",
    ":",
    "ots",
    "ajwt",
    "v0",
    "v1",
    "eyJ",
    "==",
    "-",
    "_",
    "+",
    "/",
    "\\",
    "\u{0}",
    "\u{7f}",
];

fn garbage(rng: &mut Rng, max_pieces: usize) -> String {
    let n = rng.below(max_pieces + 1);
    (0..n).map(|_| *rng.pick(FRAGMENTS)).collect()
}

/// Change a valid value a little: flip, cut, extend or re-encode it.
fn mutate(rng: &mut Rng, valid: &str) -> String {
    let mut chars: Vec<char> = valid.chars().collect();
    match rng.below(6) {
        0 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            chars[i] = rng.pick(FRAGMENTS).chars().next().unwrap_or('x');
            chars.into_iter().collect()
        }
        1 => {
            let cut = rng.below(chars.len() + 1);
            chars[..cut].iter().collect()
        }
        2 => format!("{valid}{}", garbage(rng, 8)),
        3 => encode_uri_component(valid),
        4 => format!("\"{valid}\""),
        _ => STANDARD.encode(format!(
            "{};{};{};{}",
            garbage(rng, 3),
            garbage(rng, 3),
            garbage(rng, 3),
            rng.pick(&["v0", "v1", ""][..])
        )),
    }
}

#[tokio::test]
async fn resolve_never_panics_on_garbage() {
    let h = Harness::new();
    let (auth_jar, _) = h.login(json!({"userId": 1, "role": "admin"})).await;
    let (anon_jar, _) = h.visit().await;
    // A row reachable through a session cookie but without a CSRF token.
    let broken_handle = generate_handle(HandleKind::Authenticated).unwrap();
    let broken_token =
        encode_session_token(&broken_handle, "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE", "{}");
    h.store()
        .create(
            &SessionRecord {
                handle: broken_handle,
                user_id: Some("9".into()),
                expires_at: Some(T0 + 1000 * W),
                hashed_session_token: Some(hash256(broken_token.as_bytes())),
                public_data: Some("{}".into()),
                ..SessionRecord::default()
            },
            h.now(),
        )
        .await
        .unwrap();
    let valid_values: &[String] = &[
        auth_jar.value(SESSION).unwrap(),
        anon_jar.value(ANON).unwrap(),
        auth_jar.csrf(),
        anon_jar.csrf(),
        auth_jar.value(PUBLIC).unwrap(),
        broken_token,
    ];
    let cookie_names: &[&str] = &[
        SESSION,
        ANON,
        CSRF,
        PUBLIC,
        REFRESH,
        "other",
        "",
        " ",
        "constructor",
        "__proto__",
        "blitz_s",
        "blitz_sSessionTokenX",
    ];
    let methods: &[&str] = &[
        "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "get", "", "POST ", "GET\0",
        "💥",
    ];
    let separators: &[&str] = &["; ", ";", ";;", " ; ", "\t;", ", "];

    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut outcomes = [0usize; 3];
    for round in 0..4000 {
        let count = if rng.chance(2) {
            300 + rng.below(300)
        } else {
            rng.below(8)
        };
        let mut header = String::new();
        for i in 0..count {
            if i > 0 {
                let separator: &&str = rng.pick(separators);
                header.push_str(separator);
            }
            let name = if rng.chance(5) {
                garbage(&mut rng, 4)
            } else {
                (*rng.pick(cookie_names)).to_owned()
            };
            let value = match rng.below(10) {
                0..=2 => rng.pick(valid_values).clone(),
                3..=5 => {
                    let valid = rng.pick(valid_values).clone();
                    mutate(&mut rng, &valid)
                }
                6 => "A".repeat(4096 + rng.below(8192)),
                7 => format!(
                    "{}{}",
                    "%E2%82".repeat(1 + rng.below(2000)),
                    garbage(&mut rng, 3)
                ),
                _ => garbage(&mut rng, 24),
            };
            if rng.chance(5) {
                header.push_str(&name); // a pair without `=`
            } else {
                header.push_str(&format!("{name}={value}"));
            }
        }
        let cookie_header = match rng.below(10) {
            0 => None,
            1 => Some(String::new()),
            _ => Some(header),
        };
        let csrf = match rng.below(6) {
            0 => None,
            1 => Some(String::new()),
            2 => Some(auth_jar.csrf()),
            3 => Some(anon_jar.csrf()),
            4 => Some("x".repeat(rng.below(10_000))),
            _ => Some(garbage(&mut rng, 12)),
        };
        let method = *rng.pick(methods);
        let result = h
            .engine
            .resolve(&RequestInput {
                method,
                cookie_header: cookie_header.as_deref(),
                anti_csrf_header: csrf.as_deref(),
                now_ms: h.now(),
                read_only: false,
            })
            .await;
        match result {
            Ok(s) => {
                outcomes[0] += 1;
                let k = s.kernel();
                assert!(
                    k.handle.ends_with(":ots") || k.handle.ends_with(":ajwt"),
                    "round {round}"
                );
                let public: Value =
                    serde_json::from_str(&k.public_data).expect("public data is JSON");
                assert!(public.is_object(), "round {round}: {public}");
                assert_eq!(k.anti_csrf_token.len(), 32);
                assert!(!s.response().csrf_error);
            }
            Err(f) => match f.error.code() {
                ErrorCode::CsrfTokenMismatch => {
                    outcomes[1] += 1;
                    assert!(f.response.csrf_error, "round {round}");
                }
                ErrorCode::SessionStoreFailed => outcomes[2] += 1,
                other => panic!("round {round}: unexpected {other}: {:?}", f.error),
            },
        }
        if round % 500 == 0 {
            h.advance(MINUTE);
        }
    }
    // The generator reaches every outcome.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    // And the real sessions are intact.
    assert_eq!(
        h.post(&auth_jar).await.kernel().kind,
        SessionKind::Authenticated
    );
    assert_eq!(cookie_header(&ResponseState::default()), "");
}

// ---------------------------------------------------------------------------
// Odd but possible inputs

#[tokio::test]
async fn jwt_with_non_object_public_data_is_anonymous_with_null_user() {
    let h = Harness::new();
    let handle = generate_handle(HandleKind::Anonymous).unwrap();
    let csrf = generate_token(32).unwrap();
    for public in [r#""text""#, "[1]", "null"] {
        let jwt = h.engine.sign(&handle, public, &csrf, h.now()).unwrap();
        let jar = Jar::default().with(ANON, &jwt);
        let s = h.get(&jar).await;
        assert_eq!(s.kernel().handle, handle);
        assert_eq!(s.kernel().user_id, None);
        assert_eq!(s.kernel().public_data, ANON_PUBLIC_DATA);
    }
}

#[tokio::test]
async fn jar_helper_turns_set_cookie_into_cookie_header() {
    let h = Harness::new();
    let s = ok(h.raw("GET", None, None).await);
    let header = cookie_header(s.response());
    // Three cookies; the cleared session cookie is not sent back.
    assert_eq!(header.matches("; ").count(), 2);
    assert!(header.starts_with(&format!("{ANON}=")));
    assert!(!header.contains(SESSION));
    assert_eq!(
        crate::session::cookie::cookie_value(&header, CSRF).as_deref(),
        Some(s.kernel().anti_csrf_token.as_str())
    );
}

/// Native stores bind the stored hash to the token's id once; later public
/// data changes re-issue the token without another write (a Redis round trip).
#[tokio::test]
async fn set_public_data_writes_the_id_bound_hash_only_once() {
    let h = Harness::new();
    let (jar, handle) = h.login(json!({"userId": 1})).await;
    h.advance(MINUTE);
    let mut s = h.post(&jar).await;
    h.probe.reset();
    s.set_public_data(&merge(json!({"a": 1})), h.now())
        .await
        .unwrap();
    assert_eq!(h.probe.writes(), ["merge_public_data", "update"]);
    h.probe.reset();
    s.set_public_data(&merge(json!({"b": 2})), h.now())
        .await
        .unwrap();
    assert_eq!(h.probe.writes(), ["merge_public_data"]);

    // A later request carries that knowledge too, and its token still works.
    let next_jar = jar.then(s.response());
    h.advance(MINUTE);
    let mut t = h.post(&next_jar).await;
    assert_eq!(t.kernel().handle, handle);
    h.probe.reset();
    t.set_public_data(&merge(json!({"c": 3})), h.now())
        .await
        .unwrap();
    assert_eq!(h.probe.writes(), ["merge_public_data"]);
    let row = h.row(&handle).await.unwrap();
    assert_eq!(
        row.public_data.as_deref(),
        Some(r#"{"userId":1,"a":1,"b":2,"c":3}"#)
    );
}
