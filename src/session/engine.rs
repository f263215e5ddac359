//! The request state machine of Blitz's `getSession` and `SessionContext`
//! (spec §5–§8), as a value-returning engine over any [`SessionStore`].
//!
//! [`Engine::resolve`] reads the request's cookies and headers, checks the
//! anti-CSRF token, refreshes the session when due and creates an anonymous
//! session when there is none. It returns a [`RequestSession`]: the session
//! state plus the exact cookies and headers to send. The `SessionContext`
//! operations (`$create`, `$revoke`, …) are methods on it and add to the same
//! response. Nothing here touches a socket, the process environment or the
//! clock: time comes in as `now_ms`, so tests can freeze it.
//!
//! Where Blitz 3.0.2 has a bug that users hit (spec §16), the engine fixes it;
//! each fix is marked `Qn` and listed in the README.
#![forbid(unsafe_code)]

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, Result};
use crate::session::config::{SessionConfig, ANON_PUBLIC_DATA_EXPIRY_MINUTES};
use crate::session::cookie::{self, CookieKind, CookieNames, SetCookies};
use crate::session::json;
use crate::session::jwt::{self, AnonymousClaims, JwtKey};
use crate::session::token::{
    constant_time_eq, encode_public_data_token, encode_session_token_with_hash,
    parse_session_token, HandleKind,
};
use crate::store::{
    JsonMerge, SessionRecord, SessionStore, SessionUpdate, StoreError, StoreErrorKind,
};
use crate::token::{generate_token, hash256};

/// What the engine needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInput<'a> {
    /// HTTP method, as sent (Blitz compares case-sensitively).
    pub method: &'a str,
    /// The `Cookie` header, if any.
    pub cookie_header: Option<&'a str>,
    /// The `anti-csrf` request header, if any.
    pub anti_csrf_header: Option<&'a str>,
    /// The current time in ms since the epoch.
    pub now_ms: i64,
    /// Resolve without writing to the store (React Server Components: a render
    /// cannot send cookies, so it must not refresh or re-issue anything).
    pub read_only: bool,
}

/// Anonymous (JWT in a cookie) or authenticated (row in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// `…:ajwt`: state lives in the signed cookie; the store only holds private data, if any.
    Anonymous,
    /// `…:ots`: state lives in the store, keyed by the handle.
    Authenticated,
}

/// The session as the request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The session handle.
    pub handle: String,
    /// Anonymous or authenticated.
    pub kind: SessionKind,
    /// JSON text of the public data (always an object with `userId`).
    pub public_data: String,
    /// JSON text of `publicData.userId`; `None` when it is null or absent.
    pub user_id: Option<String>,
    /// The session's anti-CSRF token.
    pub anti_csrf_token: String,
    /// The secret random part of the session token (authenticated sessions);
    /// kept so the token can be re-issued when the public data changes.
    token_id: Option<String>,
    /// Expiry of the authenticated session (ms), as stored.
    expires_at: Option<i64>,
    /// The stored token hash is already the id-bound one (native stores):
    /// re-issuing the token needs no write.
    hash_bound_to_id: bool,
}

/// Cookies and headers to send with the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseState {
    /// `Set-Cookie` values, one per cookie, in Blitz's order.
    pub cookies: SetCookies,
    /// Send `public-data-token: updated` (the public-data cookie changed).
    pub public_data_token: bool,
    /// Send `session-created: true`.
    pub session_created: bool,
    /// Send `csrf-error: true` (the request failed the anti-CSRF check).
    pub csrf_error: bool,
}

/// `resolve` failed; `response` still holds what the client must be told
/// (the `csrf-error` header, cleared cookies).
#[derive(Debug, Clone)]
pub struct ResolveFailure {
    /// Why.
    pub error: Error,
    /// What to send anyway.
    pub response: ResponseState,
}

/// A session engine: configuration plus store.
pub struct Engine {
    config: SessionConfig,
    store: Arc<dyn SessionStore>,
    names: CookieNames,
    /// Current key first, then previous ones (rotation); the first signs.
    keys: Vec<JwtKey>,
}

/// One request's session: the kernel and the response being built.
pub struct RequestSession {
    engine: Arc<Engine>,
    kernel: Kernel,
    response: ResponseState,
}

fn store_error(e: StoreError) -> Error {
    let code = match e.kind {
        StoreErrorKind::Unavailable => ErrorCode::SessionStoreUnavailable,
        _ => ErrorCode::SessionStoreFailed,
    };
    Error::new(code, e.message)
}

fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>> {
    match text.trim() {
        "" | "null" => Ok(Map::new()),
        t => match json::parse(t) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::new(
                ErrorCode::SessionStoreFailed,
                format!("stored {what} is not a JSON object"),
            )),
            Err(e) => Err(Error::new(
                ErrorCode::SessionStoreFailed,
                format!("stored {what} is not valid JSON: {e}"),
            )),
        },
    }
}

/// JSON text of `publicData.userId`, or `None` for null/absent.
fn user_id_of(public_data: &Map<String, Value>) -> Option<String> {
    match public_data.get("userId") {
        None | Some(Value::Null) => None,
        Some(v) => Some(json::stringify(v)),
    }
}

/// JavaScript truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// What the store keeps as `hashedSessionToken` once a session's token has
/// been re-issued (Q2): the hash of the token with an empty public-data
/// field. It depends on the handle and the secret id only, so every request
/// re-issuing the token writes the same value whatever the public data is at
/// that moment, and every token of the session the browser may still hold
/// (they differ only in the public-data hash) stays valid. The token it
/// hashes is never issued (an empty field does not parse). Until the first
/// re-issue the stored hash is that of the token `$create` issued, as in
/// Blitz.
fn reissued_token_hash(handle: &str, id: &str) -> String {
    hash256(encode_session_token_with_hash(handle, id, "").as_bytes())
}

fn without_user_id(merge: &JsonMerge) -> JsonMerge {
    let mut m = merge.clone();
    m.set.shift_remove("userId");
    m.remove.retain(|k| k != "userId");
    m
}

impl Engine {
    /// An engine over `store`. Fails when the configuration is invalid.
    pub fn new(config: SessionConfig, store: Arc<dyn SessionStore>) -> Result<Arc<Self>> {
        config.validate()?;
        let names = config.cookie_names();
        let keys = jwt::jwt_keys(&config.secret, &config.previous_secrets)
            .map_err(|e| Error::new(ErrorCode::InvalidConfig, format!("session secret: {e}")))?;
        Ok(Arc::new(Engine {
            config,
            store,
            names,
            keys,
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// Resolve the request's session (spec §5.1, with fixes Q4, Q5, Q7, Q8, Q9).
    pub async fn resolve(
        self: &Arc<Self>,
        req: &RequestInput<'_>,
    ) -> std::result::Result<RequestSession, ResolveFailure> {
        let mut response = ResponseState::default();
        match self.resolve_into(req, &mut response).await {
            Ok(kernel) => Ok(RequestSession {
                engine: Arc::clone(self),
                kernel,
                response,
            }),
            Err(error) => Err(ResolveFailure { error, response }),
        }
    }

    async fn resolve_into(
        &self,
        req: &RequestInput<'_>,
        response: &mut ResponseState,
    ) -> Result<Kernel> {
        let header = req.cookie_header.unwrap_or("");
        let csrf_on =
            !matches!(req.method, "GET" | "OPTIONS" | "HEAD") && !self.config.csrf_disabled;
        let mut stale_session_cookie = false;

        if let Some(st) = cookie::cookie_value(header, self.names.get(CookieKind::SessionToken))
            .filter(|v| !v.is_empty())
        {
            match self
                .resolve_authenticated(&st, req, csrf_on, response)
                .await?
            {
                Some(kernel) => return Ok(kernel),
                // Q7/Q9: an unusable session cookie is cleared and the request
                // goes on as anonymous instead of failing every time.
                None => stale_session_cookie = true,
            }
        }
        // Q8: `P_sIdRefreshToken` (Blitz's unimplemented "advanced" method) is ignored.

        if let Some(at) =
            cookie::cookie_value(header, self.names.get(CookieKind::AnonymousSessionToken))
                .filter(|v| !v.is_empty())
        {
            if let Ok(claims) = jwt::verify_anonymous_jwt(&at, &self.keys, req.now_ms) {
                // Cleared first, so a failed CSRF check sends it too.
                if stale_session_cookie {
                    self.clear_cookie(response, CookieKind::SessionToken);
                }
                if csrf_on
                    && !constant_time_eq(
                        &claims.anti_csrf_token,
                        req.anti_csrf_header.unwrap_or(""),
                    )
                {
                    return Err(self.csrf_failure(response));
                }
                // A JWT whose publicData is not an object (only possible with
                // the secret) is treated as `{}` plus userId null.
                let public_data = match claims.public_data {
                    Value::Object(m) => m,
                    _ => Map::from_iter([("userId".to_string(), Value::Null)]),
                };
                return Ok(Kernel {
                    handle: claims.handle,
                    kind: SessionKind::Anonymous,
                    user_id: user_id_of(&public_data),
                    public_data: json::stringify(&Value::Object(public_data)),
                    anti_csrf_token: claims.anti_csrf_token,
                    token_id: None,
                    expires_at: None,
                    hash_bound_to_id: false,
                });
            }
        }
        self.new_anonymous(req.now_ms, response)
    }

    fn csrf_failure(&self, response: &mut ResponseState) -> Error {
        // Q4: the client learns about it through the `csrf-error` header.
        response.csrf_error = true;
        Error::new(
            ErrorCode::CsrfTokenMismatch,
            "the anti-csrf request header does not match the session's token; send the value of the anti-CSRF cookie in the `anti-csrf` header (Blitz's client does this)",
        )
    }

    /// §5.1 A, returning `None` where Blitz falls back to "no session".
    async fn resolve_authenticated(
        &self,
        st: &str,
        req: &RequestInput<'_>,
        csrf_on: bool,
        response: &mut ResponseState,
    ) -> Result<Option<Kernel>> {
        let Ok(parts) = parse_session_token(st) else {
            return Ok(None);
        };
        let Some(row) = self
            .store
            .get(&parts.handle, req.now_ms)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let Some(csrf) = row.anti_csrf_token.clone().filter(|c| !c.is_empty()) else {
            return Err(Error::new(
                ErrorCode::SessionStoreFailed,
                "Internal error: persistedSession.antiCSRFToken is empty",
            ));
        };
        let stored_hash = row.hashed_session_token.as_deref().unwrap_or("");
        let public_data_raw = row.public_data.as_deref().unwrap_or("");
        let public_data_hash = hash256(public_data_raw.as_bytes());

        // The token's secret is its random id; the public-data hash inside it
        // is public. Once the token has been re-issued, any token with the
        // right id is the holder's (a parallel request may still carry an
        // older one): accept it and send the current token. The stored hash is
        // then either bound to the id alone (native stores) or that of the
        // current token (stores shared with @blitzjs/auth, which checks it).
        // The exact check first: it is the only one a request normally needs.
        let exact = constant_time_eq(&hash256(st.as_bytes()), stored_hash);
        let current_token =
            || encode_session_token_with_hash(&parts.handle, &parts.id, &public_data_hash);
        let current_hash = || hash256(current_token().as_bytes());
        let id_bound_hash = || reissued_token_hash(&parts.handle, &parts.id);
        let valid = exact
            || constant_time_eq(&id_bound_hash(), stored_hash)
            || constant_time_eq(&current_hash(), stored_hash);
        if !valid {
            return Ok(None);
        }
        if row.expires_at.is_some_and(|e| e < req.now_ms) {
            return Ok(None);
        }
        if csrf_on && !constant_time_eq(&csrf, req.anti_csrf_header.unwrap_or("")) {
            return Err(self.csrf_failure(response));
        }

        let public_data = parse_object(public_data_raw, "publicData")?;
        let mut kernel = Kernel {
            handle: parts.handle.clone(),
            kind: SessionKind::Authenticated,
            user_id: user_id_of(&public_data),
            public_data: json::stringify(&Value::Object(public_data)),
            anti_csrf_token: csrf,
            token_id: Some(parts.id.clone()),
            expires_at: row.expires_at,
            hash_bound_to_id: !exact && constant_time_eq(&id_bound_hash(), stored_hash),
        };

        let public_data_changed = !constant_time_eq(&parts.hashed_public_data, &public_data_hash);
        // Sliding expiry: refresh once more than a quarter of the window has
        // passed (Blitz's rule), on any method (Blitz skips GET).
        let window = self.config.session_expiry_ms();
        let quarter_passed = row.expires_at.is_some_and(|e| {
            let minutes_left = (e.saturating_sub(req.now_ms) / 60_000) as f64; // truncates toward zero
            minutes_left < 0.75 * self.config.session_expiry_minutes
        });
        if (!public_data_changed && !quarter_passed) || req.read_only {
            return Ok(Some(kernel));
        }

        let mut update = SessionUpdate::default();
        if quarter_passed {
            let e = req.now_ms.saturating_add(window);
            update.expires_at = Some(e);
            kernel.expires_at = Some(e);
        }
        let shared = self.store.shares_rows_with_blitz();
        let wanted_hash = if shared {
            current_hash()
        } else {
            id_bound_hash()
        };
        if !constant_time_eq(&wanted_hash, stored_hash) {
            update.hashed_session_token = Some(wanted_hash);
        }
        kernel.hash_bound_to_id = !shared;
        if update != SessionUpdate::default()
            && !self
                .store
                .update(&parts.handle, &update, req.now_ms)
                .await
                .map_err(store_error)?
        {
            // Revoked while this request was in flight: never revive it.
            return Ok(None);
        }
        // Q1/Q2: the cookies follow the session: the token carries the current
        // public data, and every cookie the new expiry.
        let expires = kernel
            .expires_at
            .unwrap_or(req.now_ms.saturating_add(window));
        self.write_cookie(
            response,
            CookieKind::SessionToken,
            &current_token(),
            expires,
        );
        self.write_cookie(
            response,
            CookieKind::AntiCsrfToken,
            &kernel.anti_csrf_token,
            expires,
        );
        // The public-data cookie too, so it never expires before the session.
        self.write_public_data(response, &kernel.public_data, expires);
        Ok(Some(kernel))
    }

    /// §5.3: a new anonymous session, written to the response.
    fn new_anonymous(&self, now_ms: i64, response: &mut ResponseState) -> Result<Kernel> {
        let anti_csrf_token = generate_token(32)?;
        let handle = self.store.new_handle(HandleKind::Anonymous, None)?;
        let public_data = r#"{"userId":null}"#.to_string();
        let expires = now_ms.saturating_add(self.config.anon_session_expiry_ms());
        let token = self.sign(&handle, &public_data, &anti_csrf_token, now_ms)?;
        self.write_cookie(response, CookieKind::AnonymousSessionToken, &token, expires);
        self.write_cookie(
            response,
            CookieKind::AntiCsrfToken,
            &anti_csrf_token,
            expires,
        );
        self.write_public_data(response, &public_data, expires);
        self.clear_cookie(response, CookieKind::SessionToken);
        response.session_created = true;
        Ok(Kernel {
            handle,
            kind: SessionKind::Anonymous,
            public_data,
            user_id: None,
            anti_csrf_token,
            token_id: None,
            expires_at: None,
            hash_bound_to_id: false,
        })
    }

    fn sign(
        &self,
        handle: &str,
        public_data_json: &str,
        anti_csrf_token: &str,
        now_ms: i64,
    ) -> Result<String> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| Error::new(ErrorCode::InvalidConfig, "no session secret configured"))?;
        let claims = AnonymousClaims {
            handle,
            public_data_json,
            anti_csrf_token,
        };
        Ok(jwt::sign_anonymous_jwt(key, &claims, now_ms))
    }

    fn write_cookie(
        &self,
        response: &mut ResponseState,
        which: CookieKind,
        value: &str,
        expires_ms: i64,
    ) {
        let name = self.names.get(which);
        let text = cookie::serialize_cookie(
            name,
            value,
            expires_ms,
            which.http_only(),
            &self.config.cookie,
        );
        response.cookies.set(name, &text);
    }

    fn clear_cookie(&self, response: &mut ResponseState, which: CookieKind) {
        let name = self.names.get(which);
        let text = cookie::serialize_cleared_cookie(name, which.http_only(), &self.config.cookie);
        response.cookies.set(name, &text);
    }

    fn write_public_data(&self, response: &mut ResponseState, public_data: &str, expires_ms: i64) {
        let token = encode_public_data_token(public_data);
        self.write_cookie(response, CookieKind::PublicDataToken, &token, expires_ms);
        response.public_data_token = true;
    }

    /// Handles of the live sessions of a user (`getAllSessionHandlesForUser`).
    pub async fn session_handles_for_user(
        &self,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let rows = self
            .store
            .get_for_user(user_id, now_ms)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(|r| r.handle).collect())
    }

    /// `setPublicDataForUser`: merge into every live session of the user;
    /// `userId` cannot be changed. Returns the handles updated. Their public
    /// data cookies follow on each session's next request.
    pub async fn set_public_data_for_user(
        &self,
        user_id: &str,
        merge: &JsonMerge,
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let merge = without_user_id(merge);
        if merge.is_empty() {
            return Ok(Vec::new());
        }
        self.store
            .merge_public_data_for_user(user_id, &merge, now_ms)
            .await
            .map_err(store_error)
    }
}

/// Separator of the fields of an encoded request session. Never inside a
/// field: handles and tokens use the URL alphabet, JSON.stringify escapes
/// control characters, cookies are URI-encoded, and messages are cleaned.
pub const FIELD_SEPARATOR: char = '\u{1}';

/// Flag bits of an encoded request session.
pub mod flags {
    /// The public-data cookie was written (`public-data-token: updated`).
    pub const PUBLIC_DATA_TOKEN: u32 = 1;
    /// A session was created (`session-created: true`).
    pub const SESSION_CREATED: u32 = 2;
    /// The anti-CSRF check failed (`csrf-error: true`).
    pub const CSRF_ERROR: u32 = 4;
    /// The session is anonymous.
    pub const ANONYMOUS: u32 = 8;
    /// The stored token hash is bound to the token's id (no write to re-issue).
    pub const HASH_BOUND_TO_ID: u32 = 16;
}

fn response_flags(r: &ResponseState) -> u32 {
    let mut f = 0;
    if r.public_data_token {
        f |= flags::PUBLIC_DATA_TOKEN;
    }
    if r.session_created {
        f |= flags::SESSION_CREATED;
    }
    if r.csrf_error {
        f |= flags::CSRF_ERROR;
    }
    f
}

impl ResolveFailure {
    /// `err␁flags␁code␁message␁cookie…`: what the JS layer reads.
    pub fn encode(&self) -> String {
        let sep = FIELD_SEPARATOR;
        let mut out = format!(
            "err{sep}{}{sep}{}{sep}{}",
            response_flags(&self.response),
            self.error.code().as_str(),
            self.error.message().replace(sep, " ")
        );
        for c in self.response.cookies.iter() {
            out.push(sep);
            out.push_str(c);
        }
        out
    }
}

impl RequestSession {
    /// The whole state as one string, the one thing that crosses to JS and
    /// back (creating JS objects field by field costs more than the engine):
    /// `ok␁flags␁handle␁publicData␁antiCsrfToken␁userId␁tokenId␁expiresAt␁cookie…`.
    pub fn encode(&self) -> String {
        let sep = FIELD_SEPARATOR;
        let k = &self.kernel;
        let mut f = response_flags(&self.response);
        if k.kind == SessionKind::Anonymous {
            f |= flags::ANONYMOUS;
        }
        if k.hash_bound_to_id {
            f |= flags::HASH_BOUND_TO_ID;
        }
        let mut out = String::with_capacity(256 + k.public_data.len());
        out.push_str("ok");
        for field in [
            f.to_string().as_str(),
            &k.handle,
            &k.public_data,
            &k.anti_csrf_token,
            k.user_id.as_deref().unwrap_or(""),
            k.token_id.as_deref().unwrap_or(""),
            &k.expires_at.map(|e| e.to_string()).unwrap_or_default(),
        ] {
            out.push(sep);
            out.push_str(field);
        }
        for c in self.response.cookies.iter() {
            out.push(sep);
            out.push_str(c);
        }
        out
    }

    /// Rebuild a request session from [`RequestSession::encode`]'s output.
    pub fn decode(engine: &Arc<Engine>, text: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorCode::InvalidArgument,
                "not a session state produced by this engine",
            )
        };
        let mut it = text.split(FIELD_SEPARATOR);
        if it.next() != Some("ok") {
            return Err(bad());
        }
        let f: u32 = it.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let handle = it.next().ok_or_else(bad)?.to_string();
        let public_data = it.next().ok_or_else(bad)?.to_string();
        let anti_csrf_token = it.next().ok_or_else(bad)?.to_string();
        let opt = |v: Option<&str>| -> Result<Option<String>> {
            let v = v.ok_or_else(bad)?;
            Ok((!v.is_empty()).then(|| v.to_string()))
        };
        let user_id = opt(it.next())?;
        let token_id = opt(it.next())?;
        let expires_at = match opt(it.next())? {
            None => None,
            Some(v) => Some(v.parse::<i64>().map_err(|_| bad())?),
        };
        let mut cookies = SetCookies::new();
        for c in it {
            let name = c.split('=').next().unwrap_or_default();
            cookies.set(name, c);
        }
        Ok(RequestSession {
            engine: Arc::clone(engine),
            kernel: Kernel {
                handle,
                kind: if f & flags::ANONYMOUS != 0 {
                    SessionKind::Anonymous
                } else {
                    SessionKind::Authenticated
                },
                public_data,
                user_id,
                anti_csrf_token,
                token_id,
                expires_at,
                hash_bound_to_id: f & flags::HASH_BOUND_TO_ID != 0,
            },
            response: ResponseState {
                cookies,
                public_data_token: f & flags::PUBLIC_DATA_TOKEN != 0,
                session_created: f & flags::SESSION_CREATED != 0,
                csrf_error: f & flags::CSRF_ERROR != 0,
            },
        })
    }

    /// The session.
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The response built so far.
    pub fn response(&self) -> &ResponseState {
        &self.response
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// `$create(publicData, privateData)`: log in (spec §6.3, with fixes Q12, Q14, Q15).
    pub async fn create(
        &mut self,
        public_data: &JsonMerge,
        private_data: Option<&JsonMerge>,
        now_ms: i64,
    ) -> Result<()> {
        let engine = Arc::clone(&self.engine);
        match public_data.set.get("userId") {
            None => {
                return Err(Error::new(
                    ErrorCode::InvalidSessionOperation,
                    "You must provide publicData.userId",
                ))
            }
            // Q14: only null/undefined are rejected; 0 and "" are ids like any other.
            Some(Value::Null) => {
                return Err(Error::new(
                    ErrorCode::InvalidSessionOperation,
                    "You must provide a non-empty userId as publicData.userId",
                ))
            }
            Some(_) => {}
        }
        let anti_csrf_token = generate_token(32)?;
        // Q12: carry over the anonymous public data as it is now in this
        // request (Blitz used the JWT's original).
        let base = match self.kernel.kind {
            SessionKind::Anonymous => Some(self.kernel.public_data.as_str()),
            SessionKind::Authenticated => None,
        };
        // `{...anonymousPublicData, ...publicData}`: base keys keep their place.
        let new_public =
            parse_object(&public_data.apply(base).map_err(store_error)?, "publicData")?;
        let user_id = user_id_of(&new_public);

        let mut carried_private: Option<String> = None;
        match self.kernel.kind {
            SessionKind::Anonymous => {
                if let Some(row) = engine
                    .store
                    .get(&self.kernel.handle, now_ms)
                    .await
                    .map_err(store_error)?
                {
                    carried_private = row.private_data;
                    engine
                        .store
                        .delete(&self.kernel.handle, now_ms)
                        .await
                        .map_err(store_error)?;
                }
            }
            SessionKind::Authenticated => {
                // Q15: logging in again replaces the old session (session fixation).
                engine
                    .store
                    .delete(&self.kernel.handle, now_ms)
                    .await
                    .map_err(store_error)?;
            }
        }
        let empty = JsonMerge::default();
        let private_text = private_data
            .unwrap_or(&empty)
            .apply(carried_private.as_deref())
            .map_err(store_error)?;

        let expires_at = now_ms.saturating_add(engine.config.session_expiry_ms());
        let handle = engine
            .store
            .new_handle(HandleKind::Authenticated, user_id.as_deref())?;
        let id = generate_token(32)?;
        let public_text = json::stringify(&Value::Object(new_public));
        let token = encode_session_token_with_hash(&handle, &id, &hash256(public_text.as_bytes()));
        let record = SessionRecord {
            handle: handle.clone(),
            user_id: user_id.clone(),
            expires_at: Some(expires_at),
            hashed_session_token: Some(hash256(token.as_bytes())),
            anti_csrf_token: Some(anti_csrf_token.clone()),
            public_data: Some(public_text.clone()),
            private_data: Some(private_text),
        };
        engine
            .store
            .create(&record, now_ms)
            .await
            .map_err(store_error)?;

        let r = &mut self.response;
        engine.write_cookie(r, CookieKind::SessionToken, &token, expires_at);
        engine.write_cookie(r, CookieKind::AntiCsrfToken, &anti_csrf_token, expires_at);
        engine.write_public_data(r, &public_text, expires_at);
        engine.clear_cookie(r, CookieKind::AnonymousSessionToken);
        r.session_created = true;
        self.kernel = Kernel {
            handle,
            kind: SessionKind::Authenticated,
            public_data: public_text,
            user_id,
            anti_csrf_token,
            token_id: Some(id),
            expires_at: Some(expires_at),
            hash_bound_to_id: false,
        };
        Ok(())
    }

    /// `$revoke()`: log out; the request continues with a new anonymous session.
    pub async fn revoke(&mut self, now_ms: i64) -> Result<()> {
        let engine = Arc::clone(&self.engine);
        match engine.store.delete(&self.kernel.handle, now_ms).await {
            Ok(_) => {}
            // A store that cannot be reached must not let a logout look done.
            Err(e) if e.kind == StoreErrorKind::Unavailable => return Err(store_error(e)),
            // Blitz ignores the rest (e.g. Prisma's delete of a missing row).
            Err(_) => {}
        }
        self.kernel = engine.new_anonymous(now_ms, &mut self.response)?;
        Ok(())
    }

    /// `$revokeAll()`: log out every session of this user (Q3: Blitz revoked only this one).
    pub async fn revoke_all(&mut self, now_ms: i64) -> Result<()> {
        if let Some(user_id) = self.kernel.user_id.clone() {
            if self.kernel.kind == SessionKind::Authenticated {
                self.engine
                    .store
                    .delete_for_user(&user_id, now_ms)
                    .await
                    .map_err(store_error)?;
            }
        }
        self.revoke(now_ms).await
    }

    /// `$setPublicData(data)` (spec §6.5, with fixes Q2, Q12, Q13).
    pub async fn set_public_data(&mut self, data: &JsonMerge, now_ms: i64) -> Result<()> {
        let engine = Arc::clone(&self.engine);
        let merge = without_user_id(data);
        if self.kernel.kind == SessionKind::Authenticated {
            if let Some(user_id) = &self.kernel.user_id {
                let mut sync = JsonMerge::default();
                for key in &engine.config.public_data_keys_to_sync {
                    if let Some(v) = merge.set.get(key).filter(|v| truthy(v)) {
                        sync.set.insert(key.clone(), v.clone());
                    }
                }
                if !sync.is_empty() {
                    engine
                        .store
                        .merge_public_data_for_user(user_id, &sync, now_ms)
                        .await
                        .map_err(store_error)?;
                }
            }
        }
        match self.kernel.kind {
            SessionKind::Anonymous => {
                // Q12: merge onto the current public data, not the JWT's original.
                let public_text = merge
                    .apply(Some(&self.kernel.public_data))
                    .map_err(store_error)?;
                let expires = now_ms.saturating_add(
                    (ANON_PUBLIC_DATA_EXPIRY_MINUTES as i64).saturating_mul(60_000),
                );
                let token = engine.sign(
                    &self.kernel.handle,
                    &public_text,
                    &self.kernel.anti_csrf_token,
                    now_ms,
                )?;
                engine.write_cookie(
                    &mut self.response,
                    CookieKind::AnonymousSessionToken,
                    &token,
                    expires,
                );
                engine.write_public_data(&mut self.response, &public_text, expires);
                self.kernel.public_data = public_text;
            }
            SessionKind::Authenticated => {
                let expires_at = now_ms.saturating_add(engine.config.session_expiry_ms());
                let Some(public_text) = engine
                    .store
                    .merge_public_data(&self.kernel.handle, &merge, Some(expires_at), now_ms)
                    .await
                    .map_err(store_error)?
                else {
                    return Err(Error::new(
                        ErrorCode::InvalidSessionOperation,
                        format!(
                            "getPublicData() failed because handle doesn't exist {}",
                            self.kernel.handle
                        ),
                    ));
                };
                // Q2: re-issue the session token with the new public data's hash.
                if let Some(id) = &self.kernel.token_id {
                    let token = encode_session_token_with_hash(
                        &self.kernel.handle,
                        id,
                        &hash256(public_text.as_bytes()),
                    );
                    // Shared with Blitz: the hash of the cookie we send (Blitz
                    // checks exactly that); native: bound to the id, so
                    // concurrent re-issues cannot invalidate each other.
                    let shared = engine.store.shares_rows_with_blitz();
                    // Native stores: once the stored hash is bound to the id,
                    // every later re-issue is covered without another write
                    // (one Redis round trip less per $setPublicData).
                    if shared || !self.kernel.hash_bound_to_id {
                        let hash = if shared {
                            hash256(token.as_bytes())
                        } else {
                            reissued_token_hash(&self.kernel.handle, id)
                        };
                        let update = SessionUpdate {
                            hashed_session_token: Some(hash),
                            ..SessionUpdate::default()
                        };
                        engine
                            .store
                            .update(&self.kernel.handle, &update, now_ms)
                            .await
                            .map_err(store_error)?;
                        self.kernel.hash_bound_to_id = !shared;
                    }
                    engine.write_cookie(
                        &mut self.response,
                        CookieKind::SessionToken,
                        &token,
                        expires_at,
                    );
                    engine.write_cookie(
                        &mut self.response,
                        CookieKind::AntiCsrfToken,
                        &self.kernel.anti_csrf_token,
                        expires_at,
                    );
                }
                engine.write_public_data(&mut self.response, &public_text, expires_at);
                self.kernel.expires_at = Some(expires_at);
                self.kernel.public_data = public_text;
            }
        }
        Ok(())
    }

    /// `$getPrivateData()`: JSON text of the private data (`{}` when none).
    pub async fn get_private_data(&self, now_ms: i64) -> Result<String> {
        let row = self
            .engine
            .store
            .get(&self.kernel.handle, now_ms)
            .await
            .map_err(store_error)?;
        let text = row.and_then(|r| r.private_data).unwrap_or_default();
        Ok(json::stringify(&Value::Object(parse_object(
            &text,
            "privateData",
        )?)))
    }

    /// `$setPrivateData(data)`: shallow-merge into the private data (spec
    /// §6.7), atomically where the store can.
    pub async fn set_private_data(&mut self, data: &JsonMerge, now_ms: i64) -> Result<()> {
        let store = Arc::clone(&self.engine.store);
        let handle = self.kernel.handle.clone();
        if store
            .merge_private_data(&handle, data, now_ms)
            .await
            .map_err(store_error)?
            .is_some()
        {
            return Ok(());
        }
        if self.kernel.kind == SessionKind::Authenticated {
            // Revoked while this request was in flight. A handle-only row
            // would revive it as a row without CSRF token, which fails every
            // later request carrying the old cookie instead of falling back.
            return Err(Error::new(
                ErrorCode::InvalidSessionOperation,
                format!("setPrivateData() failed because handle doesn't exist {handle}"),
            ));
        }
        // Anonymous sessions get a row holding only the handle (as in Blitz);
        // a concurrent call may have created it first, which is fine.
        let row = SessionRecord {
            handle: handle.clone(),
            ..SessionRecord::default()
        };
        if let Err(e) = store.create(&row, now_ms).await {
            if e.kind != StoreErrorKind::Conflict {
                return Err(store_error(e));
            }
        }
        if store.shares_rows_with_blitz() {
            // The app's storage is not atomic anyway; make Blitz's exact calls
            // (getSession, createSession({handle}), updateSession).
            let update = SessionUpdate {
                private_data: Some(data.apply(None).map_err(store_error)?),
                ..SessionUpdate::default()
            };
            store
                .update(&handle, &update, now_ms)
                .await
                .map_err(store_error)?;
        } else {
            store
                .merge_private_data(&handle, data, now_ms)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
