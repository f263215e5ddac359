//! The anonymous-session token (cookie `P_sAnonymousSessionToken`): an HS256
//! JWT signed and verified exactly as Blitz does with `jsonwebtoken@9.0.0`
//! (spec §4.6), and the rules that pick its secret.
//!
//! Signing writes the header and payload text byte for byte as Blitz does
//! (fixed key order, `JSON.stringify` escaping, the public data embedded as
//! its JSON text), so a token we sign verifies in Blitz and vice versa.
//!
//! Verification accepts what `jsonwebtoken.verify(token, secret, {algorithms:
//! ["HS256"], issuer, audience, subject})` accepts, step by step:
//! - three `.`-separated segments; header and payload non-empty and made of
//!   the base64url alphabet only (the `jws` regex: no padding, no `+` `/`),
//!   decoded the lenient Node way (stray trailing bits and a dangling
//!   character ignored);
//! - header: JSON (decoded as Latin-1, as `jws` does) whose `alg` is exactly
//!   `HS256`; `alg: none` and every other algorithm are refused; `typ` only
//!   decides whether a payload that is not JSON is an error now or later;
//! - signature: must be the canonical base64url of the HMAC, compared in
//!   constant time (`jws` compares the base64url text, so a non-canonical
//!   spelling of the right MAC is refused; a strict decoder gives the same);
//! - payload (UTF-8, invalid bytes replaced): a JSON object; `nbf` / `exp`
//!   enforced with zero tolerance when present (and refused when not numbers);
//!   `aud` is `blitzjs` or an array containing it; `iss` is `blitzjs`; `sub`
//!   is `anonymous`.
//!
//! Then Blitz reads the `blitzjs` claim. Blitz accepts any truthy value
//! there; this module requires what a session needs (an object with string
//! `handle` and `antiCSRFToken` and a `publicData` member), because anything
//! else would break later in Blitz anyway and can only come from someone
//! holding the secret.
//!
//! Known differences from `JSON.parse`, only reachable with a validly signed
//! token: `serde_json` refuses escaped lone surrogates, numbers beyond the
//! f64 range and nesting deeper than 128 levels, where JS accepts them.
#![forbid(unsafe_code)]

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::encoding::decode_base64_lenient;
use crate::error::{Error, ErrorCode};
use crate::session::json::{stringify, write_string};

type HmacSha256 = Hmac<Sha256>;

/// The secret outside production when `SESSION_SECRET_KEY` is empty or unset.
pub const DEFAULT_DEV_SECRET: &str = "default-dev-secret";
/// Minimum secret length in production, in UTF-16 code units (JS `length`).
pub const MIN_PRODUCTION_SECRET_LENGTH: usize = 32;
/// Claim that holds the session (`JWT_NAMESPACE`).
pub const JWT_NAMESPACE: &str = "blitzjs";
/// `iss` of every Blitz JWT.
pub const JWT_ISSUER: &str = "blitzjs";
/// `aud` of every Blitz JWT.
pub const JWT_AUDIENCE: &str = "blitzjs";
/// `sub` of anonymous-session JWTs.
pub const JWT_ANONYMOUS_SUBJECT: &str = "anonymous";

/// base64url of `{"alg":"HS256","typ":"JWT"}`, the only header Blitz writes.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

// ---------------------------------------------------------------------------
// Secrets

/// The three `Error`s Blitz throws when the production secret is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// `SESSION_SECRET_KEY` empty while the old name `SECRET_SESSION_KEY` is set.
    RenameSecretSessionKey,
    /// `SESSION_SECRET_KEY` empty or unset in production.
    MissingInProduction,
    /// `SESSION_SECRET_KEY` shorter than 32 UTF-16 code units in production.
    TooShort,
}

impl SecretError {
    /// Blitz's message, verbatim (including its spelling of "sufficent").
    pub const fn message(self) -> &'static str {
        match self {
            SecretError::RenameSecretSessionKey => {
                "You need to rename the SECRET_SESSION_KEY environment variable to SESSION_SECRET_KEY (but don't feel bad, we've all done it :)"
            }
            SecretError::MissingInProduction => {
                "You must provide the SESSION_SECRET_KEY environment variable in production. This is used to sign and verify tokens. It should be 32 chars long."
            }
            SecretError::TooShort => {
                "The SESSION_SECRET_KEY environment variable must be at least 32 bytes for sufficent token security"
            }
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for SecretError {}

impl From<SecretError> for Error {
    fn from(e: SecretError) -> Self {
        Error::new(ErrorCode::InvalidConfig, e.message())
    }
}

/// Blitz's `getSessionSecretKey()`, given the environment values (`None` =
/// unset; an empty string counts as unset, as it is falsy in JS).
///
/// In production (`NODE_ENV` exactly `production`) the key must be set and
/// at least 32 UTF-16 code units long (Blitz checks the JS `length`, though
/// its message says bytes); the old name `SECRET_SESSION_KEY` only changes
/// which error is reported. Elsewhere the key is used when set, else
/// [`DEFAULT_DEV_SECRET`].
pub fn resolve_secret(
    node_env: Option<&str>,
    session_secret_key: Option<&str>,
    secret_session_key: Option<&str>,
) -> Result<String, SecretError> {
    let key = session_secret_key.filter(|k| !k.is_empty());
    if node_env != Some("production") {
        return Ok(key.unwrap_or(DEFAULT_DEV_SECRET).to_owned());
    }
    let Some(key) = key else {
        return Err(if secret_session_key.is_some_and(|k| !k.is_empty()) {
            SecretError::RenameSecretSessionKey
        } else {
            SecretError::MissingInProduction
        });
    };
    if key.encode_utf16().count() < MIN_PRODUCTION_SECRET_LENGTH {
        return Err(SecretError::TooShort);
    }
    Ok(key.to_owned())
}

/// Earlier secrets from `SESSION_SECRET_KEY_PREVIOUS` (our addition, for key
/// rotation: tokens signed with them still verify, new ones use the current
/// secret): comma-separated, each trimmed, empty entries dropped.
pub fn parse_previous_secrets(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------
// Keys

/// An HMAC-SHA256 key ready to sign or verify. The keyed state is computed
/// once and cloned per token, so the secret is not re-hashed per request.
#[derive(Clone)]
pub struct JwtKey {
    mac: HmacSha256,
}

impl JwtKey {
    /// A key from a secret's UTF-8 bytes. An empty secret is refused, as
    /// `jsonwebtoken` refuses it for signing and verifying.
    pub fn new(secret: &str) -> Result<Self, JwtError> {
        if secret.is_empty() {
            return Err(JwtError::EmptySecret);
        }
        // HMAC takes keys of any length; the error arm is unreachable but
        // handled rather than unwrapped.
        let mac =
            HmacSha256::new_from_slice(secret.as_bytes()).map_err(|_| JwtError::EmptySecret)?;
        Ok(JwtKey { mac })
    }

    fn mac_of(&self, signing_input: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signing_input);
        mac
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.write_str("JwtKey(..)")
    }
}

/// Keys for the current secret followed by the previous ones (verification
/// tries them in this order; signing uses the first).
pub fn jwt_keys(current: &str, previous: &[String]) -> Result<Vec<JwtKey>, JwtError> {
    std::iter::once(current)
        .chain(previous.iter().map(String::as_str))
        .map(JwtKey::new)
        .collect()
}

// ---------------------------------------------------------------------------
// Signing

/// What an anonymous session puts in its JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousClaims<'a> {
    /// The session handle (`…:ajwt`).
    pub handle: &'a str,
    /// `JSON.stringify(publicData)`, embedded verbatim; the caller guarantees
    /// it is that serializer's output (see [`crate::session::json`]).
    pub public_data_json: &'a str,
    /// The session's anti-CSRF token.
    pub anti_csrf_token: &'a str,
}

/// Sign an anonymous-session JWT as `jsonwebtoken.sign({blitzjs: …}, secret,
/// {algorithm: "HS256", issuer, audience, subject})` does at `now_ms`:
/// payload keys `blitzjs`, `iat` (= floor(now / 1000)), `aud`, `iss`, `sub`.
pub fn sign_anonymous_jwt(key: &JwtKey, claims: &AnonymousClaims<'_>, now_ms: i64) -> String {
    let iat = now_ms.div_euclid(1000);
    let mut payload = String::with_capacity(
        160 + claims.handle.len() + claims.public_data_json.len() + claims.anti_csrf_token.len(),
    );
    payload.push_str("{\"blitzjs\":{\"isAnonymous\":true,\"handle\":");
    write_string(&mut payload, claims.handle);
    payload.push_str(",\"publicData\":");
    payload.push_str(claims.public_data_json);
    payload.push_str(",\"antiCSRFToken\":");
    write_string(&mut payload, claims.anti_csrf_token);
    payload.push_str("},\"iat\":");
    payload.push_str(&iat.to_string());
    payload.push_str(",\"aud\":\"blitzjs\",\"iss\":\"blitzjs\",\"sub\":\"anonymous\"}");

    let mut token = String::with_capacity(HEADER_B64.len() + payload.len() * 4 / 3 + 48);
    token.push_str(HEADER_B64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload.as_bytes(), &mut token);
    let tag = key.mac_of(token.as_bytes()).finalize().into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

// ---------------------------------------------------------------------------
// Verification

/// Why a token was refused. Blitz treats every one of these as "no session";
/// the variant is for logs and tests (it names the first check that failed,
/// in `jsonwebtoken`'s order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// An empty secret, or no key at all.
    EmptySecret,
    /// Not three segments, bad characters, or a header/payload that is not JSON.
    Malformed,
    /// `alg` is not exactly `HS256`.
    InvalidAlgorithm,
    /// No key produces this signature (or it is missing or not canonical).
    InvalidSignature,
    /// `nbf` present but not a number.
    InvalidNotBefore,
    /// `nbf` is in the future.
    NotActive,
    /// `exp` present but not a number.
    InvalidExpiry,
    /// `exp` has passed.
    Expired,
    /// `aud` is not `blitzjs` (or the payload is not an object).
    InvalidAudience,
    /// `iss` is not `blitzjs`.
    InvalidIssuer,
    /// `sub` is not `anonymous`.
    InvalidSubject,
    /// The `blitzjs` claim is missing or lacks the session fields.
    InvalidSessionClaim,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::EmptySecret => "secret or public key must be provided",
            JwtError::Malformed => "jwt malformed",
            JwtError::InvalidAlgorithm => "invalid algorithm",
            JwtError::InvalidSignature => "invalid signature",
            JwtError::InvalidNotBefore => "invalid nbf value",
            JwtError::NotActive => "jwt not active",
            JwtError::InvalidExpiry => "invalid exp value",
            JwtError::Expired => "jwt expired",
            JwtError::InvalidAudience => "jwt audience invalid",
            JwtError::InvalidIssuer => "jwt issuer invalid",
            JwtError::InvalidSubject => "jwt subject invalid",
            JwtError::InvalidSessionClaim => "jwt has no usable blitzjs claim",
        })
    }
}

impl std::error::Error for JwtError {}

/// The session inside a verified anonymous-session JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonymousSession {
    /// `blitzjs.handle`.
    pub handle: String,
    /// `blitzjs.antiCSRFToken`.
    pub anti_csrf_token: String,
    /// `blitzjs.publicData`, parsed (key order kept).
    pub public_data: Value,
    /// `JSON.stringify(blitzjs.publicData)`.
    pub public_data_json: String,
    /// JS truthiness of `blitzjs.isAnonymous` (Blitz's `$create` carries the
    /// anonymous public and private data over only when it is truthy).
    pub is_anonymous: bool,
}

/// Whether every byte is in the base64url alphabet (`jws`'s JWS_REGEX).
fn is_base64url(segment: &str) -> bool {
    segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// JS truthiness of a JSON value.
fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Verify an anonymous-session JWT against `keys` (current secret first,
/// then previous ones) at `now_ms`, and extract the session.
pub fn verify_anonymous_jwt(
    token: &str,
    keys: &[JwtKey],
    now_ms: i64,
) -> Result<AnonymousSession, JwtError> {
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(JwtError::Malformed);
    };
    if header_b64.is_empty()
        || payload_b64.is_empty()
        || !is_base64url(header_b64)
        || !is_base64url(payload_b64)
        || !is_base64url(signature_b64)
    {
        return Err(JwtError::Malformed);
    }

    // `jws` reads the header as Latin-1 ("binary") text.
    let header_text: String = decode_base64_lenient(header_b64.as_bytes())
        .into_iter()
        .map(char::from)
        .collect();
    let header: Value =
        crate::session::json::parse(&header_text).map_err(|_| JwtError::Malformed)?;
    if !is_truthy(&header) {
        return Err(JwtError::Malformed);
    }
    let payload_bytes = decode_base64_lenient(payload_b64.as_bytes());
    let payload: Option<Value> =
        crate::session::json::parse(&String::from_utf8_lossy(&payload_bytes)).ok();
    // With `typ: "JWT"` `jws` parses the payload eagerly and a parse error
    // rejects the token here; otherwise it fails the audience check later.
    if payload.is_none() && header.get("typ").and_then(Value::as_str) == Some("JWT") {
        return Err(JwtError::Malformed);
    }
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(JwtError::InvalidAlgorithm);
    }

    if keys.is_empty() {
        return Err(JwtError::EmptySecret);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwtError::InvalidSignature)?;
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if !keys
        .iter()
        .any(|k| k.mac_of(signing_input).verify_slice(&signature).is_ok())
    {
        return Err(JwtError::InvalidSignature);
    }

    // Property reads on a non-object payload are all `undefined` in JS, which
    // fails the audience check first.
    let Some(Value::Object(claims)) = payload else {
        return Err(JwtError::InvalidAudience);
    };
    check_registered_claims(&claims, now_ms)?;
    session_from_claim(claims.get(JWT_NAMESPACE))
}

/// `nbf`, `exp`, `aud`, `iss`, `sub`, in `jsonwebtoken`'s order.
fn check_registered_claims(claims: &Map<String, Value>, now_ms: i64) -> Result<(), JwtError> {
    // clockTimestamp = Math.floor(Date.now() / 1000)
    let now_s = now_ms.div_euclid(1000) as f64;
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_f64().ok_or(JwtError::InvalidNotBefore)?;
        if nbf > now_s {
            return Err(JwtError::NotActive);
        }
    }
    if let Some(exp) = claims.get("exp") {
        let exp = exp.as_f64().ok_or(JwtError::InvalidExpiry)?;
        if now_s >= exp {
            return Err(JwtError::Expired);
        }
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(JWT_AUDIENCE)),
        Some(aud) => aud.as_str() == Some(JWT_AUDIENCE),
        None => false,
    };
    if !audience_ok {
        return Err(JwtError::InvalidAudience);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(JWT_ISSUER) {
        return Err(JwtError::InvalidIssuer);
    }
    if claims.get("sub").and_then(Value::as_str) != Some(JWT_ANONYMOUS_SUBJECT) {
        return Err(JwtError::InvalidSubject);
    }
    Ok(())
}

fn session_from_claim(claim: Option<&Value>) -> Result<AnonymousSession, JwtError> {
    let Some(Value::Object(blitz)) = claim else {
        return Err(JwtError::InvalidSessionClaim);
    };
    let text = |key: &str| {
        blitz
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(JwtError::InvalidSessionClaim)
    };
    let handle = text("handle")?;
    let anti_csrf_token = text("antiCSRFToken")?;
    let public_data = blitz
        .get("publicData")
        .cloned()
        .ok_or(JwtError::InvalidSessionClaim)?;
    Ok(AnonymousSession {
        handle,
        anti_csrf_token,
        public_data_json: stringify(&public_data),
        public_data,
        is_anonymous: blitz.get("isAnonymous").is_some_and(is_truthy),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::cookie::cookie_value;

    const FLOWS_SECRET: &str = "spec-vectors-secret-key-0123456789abcdef";
    /// 2025-01-15T12:08:00Z, the `iat` of the hand-made tokens in session-flows.json.
    const FLOWS_NOW_MS: i64 = 1_736_942_880_000;

    fn vectors(file: &str) -> Value {
        let path = format!("{}/spec/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("vector file");
        serde_json::from_str(&text).expect("vector JSON")
    }

    fn key(secret: &str) -> JwtKey {
        JwtKey::new(secret).expect("key")
    }

    fn flow_token(flows: &Value, id: &str) -> String {
        let s = flows["scenarios"]
            .as_array()
            .expect("scenarios")
            .iter()
            .find(|s| s["id"] == id)
            .expect("scenario");
        let header = s["cookie"].as_str().expect("cookie header");
        cookie_value(header, "test_sAnonymousSessionToken")
            .expect("anonymous cookie")
            .into_owned()
    }

    #[test]
    fn session_tokens_vector_signs_byte_for_byte() {
        let v = vectors("session-tokens.json");
        let anon = &v["anonymous"];
        let secret = v["jwt_secret"].as_str().expect("secret");
        assert_eq!(secret, DEFAULT_DEV_SECRET);
        let jwt = anon["jwt"].as_str().expect("jwt");

        // The header and payload text of the vector are what we would write.
        let mut parts = jwt.split('.');
        let header = URL_SAFE_NO_PAD
            .decode(parts.next().expect("h"))
            .expect("b64");
        let payload = URL_SAFE_NO_PAD
            .decode(parts.next().expect("p"))
            .expect("b64");
        assert_eq!(
            header,
            anon["jwt_header_json"].as_str().expect("h").as_bytes()
        );
        assert_eq!(
            payload,
            anon["jwt_payload_json"].as_str().expect("p").as_bytes()
        );

        let public_data_json = stringify(&anon["publicData"]);
        let claims = AnonymousClaims {
            handle: anon["handle"].as_str().expect("handle"),
            public_data_json: &public_data_json,
            anti_csrf_token: anon["antiCSRFToken"].as_str().expect("csrf"),
        };
        let now_ms = 1_736_942_400_000;
        let signed = sign_anonymous_jwt(&key(secret), &claims, now_ms);
        assert_eq!(signed, jwt);
        assert!(signed.ends_with(
            anon["signature_recomputed_with_hmac_sha256_base64url"]
                .as_str()
                .expect("sig")
        ));
        // Any instant within the same second gives the same `iat`.
        assert_eq!(sign_anonymous_jwt(&key(secret), &claims, now_ms + 999), jwt);

        let s = verify_anonymous_jwt(jwt, &[key(secret)], now_ms).expect("verifies");
        assert_eq!(s.handle, claims.handle);
        assert_eq!(s.anti_csrf_token, claims.anti_csrf_token);
        assert_eq!(s.public_data_json, "{\"userId\":null}");
        assert_eq!(s.public_data, anon["publicData"]);
        assert!(s.is_anonymous);
    }

    #[test]
    fn flow_scenario_a_token_verifies_with_the_flows_secret() {
        let flows = vectors("session-flows.json");
        let a = flows["scenarios"]
            .as_array()
            .expect("scenarios")
            .iter()
            .find(|s| s["id"] == "A_no_cookies_GET")
            .expect("A");
        let joined = a["response"]["set_cookie_split"][0]
            .as_str()
            .expect("cookie");
        let jwt = joined
            .split_once('=')
            .and_then(|(_, rest)| rest.split(';').next())
            .expect("jwt");
        let s = verify_anonymous_jwt(jwt, &[key(FLOWS_SECRET)], 1_736_942_400_000).expect("ok");
        assert_eq!(s.handle, a["session"]["handle"].as_str().expect("handle"));
        assert_eq!(
            s.anti_csrf_token,
            a["session"]["antiCSRFToken"].as_str().expect("csrf")
        );
        // Re-signing the same claims at the same second reproduces it.
        let claims = AnonymousClaims {
            handle: &s.handle,
            public_data_json: &s.public_data_json,
            anti_csrf_token: &s.anti_csrf_token,
        };
        assert_eq!(
            sign_anonymous_jwt(&key(FLOWS_SECRET), &claims, 1_736_942_400_000),
            jwt
        );
    }

    #[test]
    fn flow_rejections_n8_n9_n10_n15_and_valid_n11_n14() {
        let flows = vectors("session-flows.json");
        let keys = [key(FLOWS_SECRET)];
        let check = |id: &str| verify_anonymous_jwt(&flow_token(&flows, id), &keys, FLOWS_NOW_MS);
        assert_eq!(
            check("N8_anon_jwt_wrong_secret"),
            Err(JwtError::InvalidSignature)
        );
        assert_eq!(
            check("N9_anon_jwt_wrong_subject"),
            Err(JwtError::InvalidSubject)
        );
        assert_eq!(
            check("N10_anon_jwt_expired_exp_claim"),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check("N15_anon_jwt_alg_none"),
            Err(JwtError::InvalidAlgorithm)
        );
        let ok = check("N11_anon_jwt_valid_handcrafted").expect("valid");
        assert_eq!(
            (ok.handle.as_str(), ok.anti_csrf_token.as_str()),
            ("x:ajwt", "t")
        );
        // N14: the first of two same-named cookies is the valid token.
        assert_eq!(check("N14_duplicate_cookie_name_first_wins"), Ok(ok));
        // The dev default is not the flows' secret.
        let dev = [key(DEFAULT_DEV_SECRET)];
        let n11 = flow_token(&flows, "N11_anon_jwt_valid_handcrafted");
        assert_eq!(
            verify_anonymous_jwt(&n11, &dev, FLOWS_NOW_MS),
            Err(JwtError::InvalidSignature)
        );
    }

    #[test]
    fn key_rotation_accepts_previous_secrets() {
        let flows = vectors("session-flows.json");
        let n11 = flow_token(&flows, "N11_anon_jwt_valid_handcrafted");
        let keys = jwt_keys(
            "new-secret",
            &[String::from("older"), FLOWS_SECRET.to_string()],
        )
        .expect("keys");
        assert!(verify_anonymous_jwt(&n11, &keys, FLOWS_NOW_MS).is_ok());
        assert_eq!(
            verify_anonymous_jwt(&n11, &keys[..2], FLOWS_NOW_MS),
            Err(JwtError::InvalidSignature)
        );
        assert_eq!(
            verify_anonymous_jwt(&n11, &[], FLOWS_NOW_MS),
            Err(JwtError::EmptySecret)
        );
        assert_eq!(JwtKey::new("").map(|_| ()), Err(JwtError::EmptySecret));
        assert!(jwt_keys("", &[]).is_err());
        assert_eq!(format!("{:?}", key("s3cret")), "JwtKey(..)");
    }

    /// (label, token, accepted by jsonwebtoken 9.0.0 verify + Blitz, blitzjs claim
    /// JSON.stringify'd), secret `spec-vectors-secret-key-0123456789abcdef`,
    /// clock 1736942880 s; from Node v20.
    const NODE_JWT: &[(&str, &str, Option<&str>)] = &[
        ("valid", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.F2UGYW9wb590bj_vdFBTjElKxaDco2XbWyJx1fJBg0I", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("no typ", "eyJhbGciOiJIUzI1NiJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.QAzeBaP9X0GCrWThFls3cUcqMVKVjBqu3kEYS6HDpOE", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("typ not JWT", "eyJhbGciOiJIUzI1NiIsInR5cCI6Inh5eiJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ._8B0yoL_JBi6OoVCAzoV49Why2PN30hFct5jkMzjsSk", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("header key order", "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.k2FVmtvZGDwLsp5N5nCl2xSWNEgiXRp8IpZXhSZgjoo", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("aud array with blitzjs", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6WyJ4IiwiYmxpdHpqcyJdLCJpc3MiOiJibGl0empzIiwic3ViIjoiYW5vbnltb3VzIn0.J0OLncvvxzV2pkUPe_dTgrC-2u6FU7Qd_GYALhqXs7o", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("aud array without", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6WyJ4Il0sImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.nalOZc5RaZ2T0CLekMoob1a_YENO60mQESjZVu18kCc", None),
        ("aud missing", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.kvJbgSH4Crq2YooBVy_TnNhWSBsQlLBXL_RzkrumJ7w", None),
        ("aud number", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6MSwiaXNzIjoiYmxpdHpqcyIsInN1YiI6ImFub255bW91cyJ9.4q-IynlmdSeRWYqqwu-6uqCS0YN-RC1-QkvR_wx03qI", None),
        ("iss missing", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.j0XxA5o_v5XFP9u5JXs9Nf-SgvmpGdxURUnnhbdYNHQ", None),
        ("iss array", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6ImJsaXR6anMiLCJpc3MiOlsiYmxpdHpqcyJdLCJzdWIiOiJhbm9ueW1vdXMifQ._3Ebk3aPt2_Q0kS1cdbEbL8-X4O_u2RHScdaWf45F1Q", None),
        ("sub case", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImF1ZCI6ImJsaXR6anMiLCJpc3MiOiJibGl0empzIiwic3ViIjoiQW5vbnltb3VzIn0.nOocfsVGq02mxtDddxikvJxVD3FisR7CNc1rZrzm8Dc", None),
        ("exp now", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJleHAiOjE3MzY5NDI4ODB9.EX5OU6v7Z78Ky9Tq9v41t0jWYNVooPb6fZYGkGx8-Jk", None),
        ("exp now+1", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJleHAiOjE3MzY5NDI4ODF9.6umWV8gSgn5_MB9ogMad2tDUp6wtqlczCgD7Aeml84Y", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("exp now+0.5", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJleHAiOjE3MzY5NDI4ODAuNX0.EVOiTMgG4MxWPrDVH1oH7wrtfyXGoFt2wrAmnOBUvAA", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("exp string", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJleHAiOiIxNzM2OTQyOTgwIn0.wwTKvnTW64j3QQ9vH8Aee-cNo7ERAELPL9YYlDw1jdk", None),
        ("exp null", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJleHAiOm51bGx9.ICViJzM4zfSnL1oumH1w50EdXQMW5VDoAwpI-o1C620", None),
        ("nbf now", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJuYmYiOjE3MzY5NDI4ODB9.9yDU7VQcrjRB9EzorZcCFAJCK5gMUJLEjjBZlieGoc4", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("nbf now+1", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJuYmYiOjE3MzY5NDI4ODF9._m0sYT4Al2s6gvPDUS9LvNwjRlU3gojot0I1hYEQG-c", None),
        ("nbf now+0.5", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJuYmYiOjE3MzY5NDI4ODAuNX0.T2gmDb9uuCvZi4Wl8iGXaRtH73qBpTZQZLIMc_3Hj_c", None),
        ("nbf bool", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJuYmYiOnRydWV9.XqnjLayQdJrU7rDRbNceryS49X4Ur-3WiotQucMWvOQ", None),
        ("alg HS512", "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.jB98Xp9IrwTX6dYZpp31ChX8iNLj11zptEmUnMbdzGdz9o4Byo60SR7ohLc3j-StG-2ZCLDh3sR7HaTqnMqdfg", None),
        ("alg lower", "eyJhbGciOiJoczI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.2eOHD6ln8RiWAqW6GWxrAkLyqoqMl5Wj3owHJfLNQY0", None),
        ("alg none unsigned", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.", None),
        ("alg HS256 unsigned", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.", None),
        ("wrong secret", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.-AuN5zIRfbsU-bph-OvLExAlwiF0w12TTyjK_CcDKnM", None),
        ("non-canonical signature", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.F2UGYW9wb590bj_vdFBTjElKxaDco2XbWyJx1fJBg0J", None),
        ("padded signature", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.F2UGYW9wb590bj_vdFBTjElKxaDco2XbWyJx1fJBg0I=", None),
        ("header canonical with spare bits", "eyJhbGciOiJIUzI1NiIgfQ.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.rhiZEr0RIh5brdnAFJwj8TRI2kNnk9T_9RvXfDTZFdw", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("header non-canonical trailing bits", "eyJhbGciOiJIUzI1NiIgfR.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.NfVtJwVUzal09p6UZ2CFXXfDC4pagQIjOFGJwD86pJc", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("header padded", "eyJhbGciOiJIUzI1NiIgfQ==.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.lL5g4QwbMBFf9BmhatCOWuW4L4_DyaPErkXWri5t9ZA", None),
        ("payload extra dangling char", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifSAgA.gxx9Nbw9JQYXuWRKpzIrJXo6OAKsTNyb-jKgQR2zPgk", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("payload canonical padded json", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifSAg.3okYo73DD9ulVn0bjbRDvPat2daUESkYgysF-cmZnuk", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("payload std alphabet chars", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifSAgID8/Pj4.NEJBuwTpMa-NuSkCDGPg6b0cLi5SqgTY78NJEjR9Nmg", None),
        ("four parts", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.F2UGYW9wb590bj_vdFBTjElKxaDco2XbWyJx1fJBg0I.x", None),
        ("payload not JSON typ JWT", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.bm90IGpzb24.GIQrx0h6SckS19Ecod_C57xqbhU0WK-FGdofbNWZRE8", None),
        ("payload not JSON no typ", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.zFNuCuYDRXcswMfQnHNZUrFQ2MhHzwPv6wTjLuMwb7o", None),
        ("payload array", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.WzEsMl0.4Dflx4dtYDp15kogwQur7aiIzD48veaXOdvZ8DBRV-Y", None),
        ("payload string", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ImFiYyI.D8lOd-Utoo6m7i3kB5Fi7rAyGEJ5PU4jSFSNJL3rlhI", None),
        ("header not JSON", "bm9wZQ.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.IbhuID_22rx3E7hJGrme3L65fi2ShCPVBjPo7V0FlQg", None),
        ("header null", "bnVsbA.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.YxvbZ3dp2p9p3Fh81DOVhtuRFucoV5mByZ0U2_FGro0", None),
        ("header array", "WzFd.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.r6F2lFff_lJcbnlzOnAhyMcyU-SbZdLPeYwB4lnCBmo", None),
        ("blitzjs missing", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3MzY5NDI4ODAsImF1ZCI6ImJsaXR6anMiLCJpc3MiOiJibGl0empzIiwic3ViIjoiYW5vbnltb3VzIn0.LKzWluj_jZm7G9vtrfMZJp8y_HZgpEqDu1WsExlIwNw", None),
        ("blitzjs false", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjpmYWxzZSwiaWF0IjoxNzM2OTQyODgwLCJhdWQiOiJibGl0empzIiwiaXNzIjoiYmxpdHpqcyIsInN1YiI6ImFub255bW91cyJ9.ZroPCda1HxR1cEgYWIpnMeDvddNla6IZ9ZNiSja7sVw", None),
        ("publicData unicode and numbers", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbCwiYiI6MS41MCwiYSI6Ilpvw6sg8J-agCA8Lz4iLCJjIjoxZTIxLCJkIjpbdHJ1ZSx7fV19LCJhbnRpQ1NSRlRva2VuIjoidCJ9LCJpYXQiOjE3MzY5NDI4ODAsImF1ZCI6ImJsaXR6anMiLCJpc3MiOiJibGl0empzIiwic3ViIjoiYW5vbnltb3VzIn0.AECFAFEwa-sWZ_lRMKDIGJJbtjZ4NN06QJZcld8nJrI", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null,\"b\":1.5,\"a\":\"Zo\u{eb} \u{1f680} </>\",\"c\":1e+21,\"d\":[true,{}]},\"antiCSRFToken\":\"t\"}")),
        ("header latin1 bytes", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsIngiOiLDqSJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMifQ.toZiL_d0CjwrSDNm_nmoTtm0r96iMcK_xLqLnXfV3Wo", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("payload invalid utf8", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7Im4iOiL__iJ9LCJhbnRpQ1NSRlRva2VuIjoidCJ9LCJpYXQiOjE3MzY5NDI4ODAsImF1ZCI6ImJsaXR6anMiLCJpc3MiOiJibGl0empzIiwic3ViIjoiYW5vbnltb3VzIn0.6RIEW_5uzdyeCXEjKkLcZfMt9q4tpXe0xC6ZoRSj0I4", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"n\":\"\u{fffd}\u{fffd}\"},\"antiCSRFToken\":\"t\"}")),
        ("duplicate sub last wins", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJ1c2VyIiwic3ViIjoiYW5vbnltb3VzIn0.NjVqI7JILV0hckZfKO7h1ueg8GImJBVcX3vlTQFlJGI", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("duplicate sub last loses", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImlzQW5vbnltb3VzIjp0cnVlLCJoYW5kbGUiOiJ4OmFqd3QiLCJwdWJsaWNEYXRhIjp7InVzZXJJZCI6bnVsbH0sImFudGlDU1JGVG9rZW4iOiJ0In0sImlhdCI6MTczNjk0Mjg4MCwiYXVkIjoiYmxpdHpqcyIsImlzcyI6ImJsaXR6anMiLCJzdWIiOiJhbm9ueW1vdXMiLCJzdWIiOiJ1c2VyIn0.HKa4C7kigyu4YVcmOk05CmMj4_ktmU6FFVr99oFKzKI", None),
        ("whitespace in JSON", "IHsgImFsZyIgOiAiSFMyNTYiIH0g.IHsiYmxpdHpqcyI6eyJpc0Fub255bW91cyI6dHJ1ZSAsICJoYW5kbGUiOiJ4OmFqd3QiICwgInB1YmxpY0RhdGEiOnsidXNlcklkIjpudWxsfSAsICJhbnRpQ1NSRlRva2VuIjoidCJ9ICwgImlhdCI6MTczNjk0Mjg4MCAsICJhdWQiOiJibGl0empzIiAsICJpc3MiOiJibGl0empzIiAsICJzdWIiOiJhbm9ueW1vdXMifSA.QmeBQqEZ4TXQGZIC8ESksUCIsBZ28Dhj0zm9szTBXNs", Some("{\"isAnonymous\":true,\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
        ("isAnonymous missing", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJibGl0empzIjp7ImhhbmRsZSI6Ing6YWp3dCIsInB1YmxpY0RhdGEiOnsidXNlcklkIjpudWxsfSwiYW50aUNTUkZUb2tlbiI6InQifSwiaWF0IjoxNzM2OTQyODgwLCJhdWQiOiJibGl0empzIiwiaXNzIjoiYmxpdHpqcyIsInN1YiI6ImFub255bW91cyJ9.mAB-iX-44ujF7tqhGT7kAPDKed2D4AXTn7TCUvxvgbk", Some("{\"handle\":\"x:ajwt\",\"publicData\":{\"userId\":null},\"antiCSRFToken\":\"t\"}")),
    ];

    #[test]
    fn matches_jsonwebtoken_on_crafted_tokens() {
        let keys = [key(FLOWS_SECRET)];
        for &(label, token, want) in NODE_JWT {
            let got = verify_anonymous_jwt(token, &keys, FLOWS_NOW_MS);
            match (want, &got) {
                (Some(claim), Ok(s)) => {
                    // Blitz's claim, re-serialized, carries the same session.
                    let claim: Value = serde_json::from_str(claim).expect("claim");
                    assert_eq!(s.handle, claim["handle"], "{label}");
                    assert_eq!(s.anti_csrf_token, claim["antiCSRFToken"], "{label}");
                    assert_eq!(
                        s.public_data_json,
                        stringify(&claim["publicData"]),
                        "{label}"
                    );
                    assert_eq!(
                        s.is_anonymous,
                        claim.get("isAnonymous").is_some_and(is_truthy)
                    );
                }
                (None, Err(_)) => {}
                _ => panic!("{label}: jsonwebtoken says {want:?}, we say {got:?}"),
            }
        }
    }

    #[test]
    fn public_data_is_reserialized_like_json_stringify() {
        let k = key("k");
        let pd = "{\"userId\":null,\"b\":1.5,\"a\":\"Zo\u{eb} \u{1f680} </>\",\"c\":1e+21,\"d\":[true,{}]}";
        let claims = AnonymousClaims {
            handle: "h:ajwt",
            public_data_json: pd,
            anti_csrf_token: "c\"\\",
        };
        let t = sign_anonymous_jwt(&k, &claims, 0);
        let s = verify_anonymous_jwt(&t, &[k], 0).expect("ok");
        assert_eq!(s.public_data_json, pd);
        assert_eq!(s.anti_csrf_token, "c\"\\");
        assert_eq!(s.public_data["a"], "Zo\u{eb} \u{1f680} </>");
    }

    #[test]
    fn blitz_claim_shape_is_required() {
        // Blitz would accept these (any truthy claim) but they cannot make a
        // session; they also need the secret to exist.
        let k = key("k");
        let sign = |payload: &str| {
            let mut t = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(payload));
            let tag = k.mac_of(t.as_bytes()).finalize().into_bytes();
            t.push('.');
            t.push_str(&URL_SAFE_NO_PAD.encode(tag));
            t
        };
        let std = "\"aud\":\"blitzjs\",\"iss\":\"blitzjs\",\"sub\":\"anonymous\"";
        for claim in [
            "true",
            "\"x\"",
            "{\"handle\":1,\"antiCSRFToken\":\"t\",\"publicData\":{}}",
            "{\"handle\":\"h\",\"publicData\":{}}",
            "{\"handle\":\"h\",\"antiCSRFToken\":\"t\"}",
        ] {
            let t = sign(&format!("{{\"blitzjs\":{claim},{std}}}"));
            assert_eq!(
                verify_anonymous_jwt(&t, std::slice::from_ref(&k), 0),
                Err(JwtError::InvalidSessionClaim),
                "{claim}"
            );
        }
        let t = sign(&format!("{{\"blitzjs\":{{\"handle\":\"h\",\"antiCSRFToken\":\"t\",\"publicData\":5,\"isAnonymous\":0}},{std}}}"));
        let s = verify_anonymous_jwt(&t, &[k], 0).expect("ok");
        assert_eq!((s.public_data_json.as_str(), s.is_anonymous), ("5", false));
    }

    #[test]
    fn secret_rules() {
        let prod = Some("production");
        let long = "x".repeat(32);
        assert_eq!(
            resolve_secret(None, None, None).as_deref(),
            Ok(DEFAULT_DEV_SECRET)
        );
        assert_eq!(
            resolve_secret(Some("development"), Some(""), Some("old")).as_deref(),
            Ok(DEFAULT_DEV_SECRET)
        );
        assert_eq!(
            resolve_secret(Some("test"), Some("short"), None).as_deref(),
            Ok("short")
        );
        // Only the exact string "production" is production.
        assert_eq!(
            resolve_secret(Some("Production"), None, None).as_deref(),
            Ok(DEFAULT_DEV_SECRET)
        );
        assert_eq!(resolve_secret(prod, Some(&long), None), Ok(long.clone()));
        assert_eq!(
            resolve_secret(prod, Some(&long), Some("old")),
            Ok(long.clone())
        );

        // session-config.json: prod_no_key, prod_old_name, prod_short_key.
        let v = vectors("session-config.json");
        let thrown = |mode: &str| -> String {
            v["runs"]
                .as_array()
                .expect("runs")
                .iter()
                .find(|r| r["mode"] == mode)
                .and_then(|r| r["thrown"]["message"].as_str())
                .expect("thrown message")
                .to_owned()
        };
        let err = |r: Result<String, SecretError>| r.expect_err("error").to_string();
        assert_eq!(err(resolve_secret(prod, None, None)), thrown("prod_no_key"));
        assert_eq!(
            err(resolve_secret(prod, Some(""), None)),
            thrown("prod_no_key")
        );
        assert_eq!(
            err(resolve_secret(prod, Some(""), Some(""))),
            thrown("prod_no_key")
        );
        assert_eq!(
            err(resolve_secret(prod, None, Some("old"))),
            thrown("prod_old_name")
        );
        assert_eq!(
            err(resolve_secret(prod, Some(&"x".repeat(31)), None)),
            thrown("prod_short_key")
        );
        assert!(thrown("prod_short_key").contains("sufficent"));

        // Length is counted in UTF-16 code units: 16 emoji are 32 units
        // (64 bytes); 31 'é' are 31 units (62 bytes).
        assert!(resolve_secret(prod, Some(&"\u{1f680}".repeat(16)), None).is_ok());
        assert_eq!(
            resolve_secret(prod, Some(&"\u{e9}".repeat(31)), None),
            Err(SecretError::TooShort)
        );

        let e: Error = SecretError::TooShort.into();
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
    }

    #[test]
    fn previous_secrets_parsing() {
        assert!(parse_previous_secrets(None).is_empty());
        assert!(parse_previous_secrets(Some("")).is_empty());
        assert!(parse_previous_secrets(Some(" , ,")).is_empty());
        assert_eq!(parse_previous_secrets(Some(" a ,b,, c ")), ["a", "b", "c"]);
    }

    #[test]
    fn verify_never_panics_and_tampering_is_caught() {
        let k = key("k");
        let claims = AnonymousClaims {
            handle: "h:ajwt",
            public_data_json: "{\"userId\":null}",
            anti_csrf_token: "t",
        };
        let good = sign_anonymous_jwt(&k, &claims, 1_000_000);
        let keys = [k];
        assert!(verify_anonymous_jwt(&good, &keys, 1_000_000).is_ok());
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %\"";
        let mut x: u64 = 0xdead_beef_cafe_f00d;
        let mut rand = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut bytes = good.clone().into_bytes();
            let edits = 1 + rand() % 3;
            for _ in 0..edits {
                let at = (rand() % bytes.len() as u64) as usize;
                bytes[at] = alphabet[(rand() % alphabet.len() as u64) as usize];
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            let r = verify_anonymous_jwt(&mutated, &keys, 1_000_000);
            if mutated != good {
                // A changed header or payload byte changes the signed text, and
                // jws compares the signature's exact spelling.
                assert!(r.is_err(), "{mutated}");
            }
            // Arbitrary junk, including non-ASCII.
            let junk: Vec<u8> = (0..(rand() % 120)).map(|_| rand() as u8).collect();
            let _ = verify_anonymous_jwt(&String::from_utf8_lossy(&junk), &keys, i64::MIN);
        }
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // Test case 2 of RFC 4231: key "Jefe".
        let k = key("Jefe");
        let tag = k
            .mac_of(b"what do ya want for nothing?")
            .finalize()
            .into_bytes();
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
