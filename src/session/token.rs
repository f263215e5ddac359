//! The session's own token formats (spec §4.2–§4.5): handles, the
//! authenticated session token and its stored hash, the public-data token,
//! and the constant-time comparison every secret goes through.
//!
//! The anonymous-session JWT lives in [`crate::session::jwt`]; the random
//! and hashing primitives (`generateToken`, `hash256`) in [`crate::token`].
#![forbid(unsafe_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::encoding::decode_base64_lenient;
use crate::error::Result;
use crate::token::{generate_token, hash256, DEFAULT_TOKEN_LENGTH};

/// `TOKEN_SEPARATOR`: joins the fields of a session token.
pub const TOKEN_SEPARATOR: char = ';';
/// `HANDLE_SEPARATOR`: between a handle's random part and its kind.
pub const HANDLE_SEPARATOR: char = ':';
/// `SESSION_TOKEN_VERSION_0`: the only session token version.
pub const SESSION_TOKEN_VERSION_0: &str = "v0";

/// The two kinds of session handle (spec §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandleKind {
    /// `ots` ("opaque token simple"): an authenticated, stored session.
    Authenticated,
    /// `ajwt`: an anonymous session carried in a JWT.
    Anonymous,
}

impl HandleKind {
    /// The suffix after `:` (`SESSION_TYPE_OPAQUE_TOKEN_SIMPLE` /
    /// `SESSION_TYPE_ANONYMOUS_JWT`).
    pub const fn suffix(self) -> &'static str {
        match self {
            HandleKind::Authenticated => "ots",
            HandleKind::Anonymous => "ajwt",
        }
    }

    /// The kind a handle names: the text after its last `:`. Blitz itself
    /// decides anonymity from the JWT, not the handle; this is for callers
    /// (stores, tests) that only have the handle.
    pub fn of(handle: &str) -> Option<HandleKind> {
        match handle.rsplit_once(HANDLE_SEPARATOR)?.1 {
            "ots" => Some(HandleKind::Authenticated),
            "ajwt" => Some(HandleKind::Anonymous),
            _ => None,
        }
    }
}

/// A new handle: 32 random characters, `:`, the kind (36 or 37 characters).
pub fn generate_handle(kind: HandleKind) -> Result<String> {
    let mut handle = generate_token(DEFAULT_TOKEN_LENGTH)?;
    handle.push(HANDLE_SEPARATOR);
    handle.push_str(kind.suffix());
    Ok(handle)
}

/// A new anti-CSRF token: 32 random characters (spec §4.4).
pub fn generate_anti_csrf_token() -> Result<String> {
    generate_token(DEFAULT_TOKEN_LENGTH)
}

/// The authenticated session token for known parts:
/// base64(`handle;id;sha256hex(public_data_json);v0`), standard alphabet
/// with padding (b64-lite's `toBase64`, i.e. Node's `Buffer` encoder).
pub fn encode_session_token(handle: &str, id: &str, public_data_json: &str) -> String {
    encode_session_token_with_hash(handle, id, &hash256(public_data_json.as_bytes()))
}

/// [`encode_session_token`] for a caller that already holds
/// `sha256hex(public_data_json)` (it compares that hash anyway).
pub fn encode_session_token_with_hash(handle: &str, id: &str, hashed_public_data: &str) -> String {
    let mut text = String::with_capacity(handle.len() + id.len() + hashed_public_data.len() + 5);
    text.push_str(handle);
    text.push(TOKEN_SEPARATOR);
    text.push_str(id);
    text.push(TOKEN_SEPARATOR);
    text.push_str(hashed_public_data);
    text.push(TOKEN_SEPARATOR);
    text.push_str(SESSION_TOKEN_VERSION_0);
    STANDARD.encode(text)
}

/// A new session token for `handle` with a fresh random id (`$create`).
pub fn create_session_token(handle: &str, public_data_json: &str) -> Result<String> {
    let id = generate_token(DEFAULT_TOKEN_LENGTH)?;
    Ok(encode_session_token(handle, &id, public_data_json))
}

/// What storage keeps as `hashedSessionToken`: SHA-256 hex of the base64
/// token text itself (not the decoded text, not the URI-encoded cookie).
pub fn hash_session_token(token: &str) -> String {
    hash256(token.as_bytes())
}

/// The fields of a parsed session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokenParts {
    /// The session handle (`…:ots`).
    pub handle: String,
    /// The random id that makes every token unique.
    pub id: String,
    /// SHA-256 hex of the public data JSON when the token was issued.
    pub hashed_public_data: String,
    /// Always [`SESSION_TOKEN_VERSION_0`] in a successful parse.
    pub version: String,
}

/// Why a session token cookie is not a usable token. Both are expected
/// outcomes of reading a request, so they are values, not crate errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionTokenError {
    /// One of the four fields is missing or empty. Blitz throws
    /// `AuthenticationError("Failed to parse session token")` here.
    Malformed,
    /// The version field is not `v0`. Blitz logs `AuthenticationError("Session
    /// token version is not v0")` and carries on without a session.
    WrongVersion(SessionTokenParts),
}

/// Parse a session token cookie value as Blitz does: Node's lenient base64
/// (either alphabet, padding optional, stray characters skipped), UTF-8 with
/// invalid bytes replaced, split on `;`, the first four fields (extra fields
/// ignored). A missing or empty field wins over a wrong version, as in Blitz.
pub fn parse_session_token(
    token: &str,
) -> std::result::Result<SessionTokenParts, SessionTokenError> {
    let bytes = decode_base64_lenient(token.as_bytes());
    let text = String::from_utf8_lossy(&bytes);
    let mut fields = text.split(TOKEN_SEPARATOR);
    let mut next = || fields.next().filter(|f| !f.is_empty()).map(str::to_owned);
    let (Some(handle), Some(id), Some(hashed_public_data), Some(version)) =
        (next(), next(), next(), next())
    else {
        return Err(SessionTokenError::Malformed);
    };
    let parts = SessionTokenParts {
        handle,
        id,
        hashed_public_data,
        version,
    };
    if parts.version == SESSION_TOKEN_VERSION_0 {
        Ok(parts)
    } else {
        Err(SessionTokenError::WrongVersion(parts))
    }
}

/// The public-data token (cookie `P_sPublicDataToken`): base64 (standard,
/// padded) of the publicData JSON text. Nothing else is in it.
pub fn encode_public_data_token(public_data_json: &str) -> String {
    STANDARD.encode(public_data_json)
}

/// The JSON text inside a public-data token, decoded as the Blitz client
/// does (Node-lenient base64, invalid UTF-8 replaced); `None` for an empty
/// token, which the client rejects.
pub fn decode_public_data_token(token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let bytes = decode_base64_lenient(token.as_bytes());
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Compare two secrets (token hashes, CSRF tokens, session tokens) without
/// leaking through timing where they differ. Only the length may leak, and
/// every value compared this way has a public, fixed length.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::cookie::{cookie_value, encode_uri_component};
    use serde_json::Value;

    fn vectors(file: &str) -> Value {
        let path = format!("{}/spec/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("vector file");
        serde_json::from_str(&text).expect("vector JSON")
    }

    fn s<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is a string"))
    }

    #[test]
    fn authenticated_vector_rebuilds_token_and_hash() {
        let v = vectors("session-tokens.json");
        let auth = &v["authenticated"];
        let parts = &auth["parts"];
        let row = &auth["stored_row"];
        let public_data_json = s(row, "publicData");
        assert_eq!(public_data_json, s(auth, "publicData_json"));

        let token = encode_session_token(s(parts, "handle"), s(parts, "id"), public_data_json);
        assert_eq!(token, s(auth, "session_token"));
        assert_eq!(token.len(), 184);
        assert_eq!(
            encode_session_token_with_hash(
                s(parts, "handle"),
                s(parts, "id"),
                s(parts, "hashedPublicData")
            ),
            token
        );
        assert_eq!(hash_session_token(&token), s(row, "hashedSessionToken"));
        assert_eq!(
            hash256(public_data_json.as_bytes()),
            s(parts, "hashedPublicData")
        );

        let parsed = parse_session_token(&token).expect("parses");
        assert_eq!(parsed.handle, s(parts, "handle"));
        assert_eq!(parsed.id, s(parts, "id"));
        assert_eq!(parsed.hashed_public_data, s(parts, "hashedPublicData"));
        assert_eq!(parsed.version, "v0");
        assert_eq!(
            HandleKind::of(&parsed.handle),
            Some(HandleKind::Authenticated)
        );

        // From the cookie as it travels.
        let header = format!(
            "test_sSessionToken={}",
            s(auth, "session_token_cookie_value_raw")
        );
        let from_cookie = cookie_value(&header, "test_sSessionToken").expect("cookie");
        assert_eq!(from_cookie, token);
        assert_eq!(
            encode_uri_component(&token),
            s(auth, "session_token_cookie_value_raw")
        );

        // Public data token and its cookie value.
        let pd = encode_public_data_token(public_data_json);
        assert_eq!(pd, s(auth, "publicData_token"));
        assert_eq!(
            encode_uri_component(&pd),
            s(auth, "publicData_cookie_value_raw")
        );
        assert_eq!(
            decode_public_data_token(&pd).as_deref(),
            Some(public_data_json)
        );
    }

    #[test]
    fn public_data_token_vectors() {
        let v = vectors("session-tokens.json");
        for t in v["public_data_tokens"].as_array().expect("list") {
            let json = s(t, "json");
            // The JSON text is what JSON.stringify makes of the object.
            assert_eq!(crate::session::json::stringify(&t["publicData"]), json);
            let token = encode_public_data_token(json);
            assert_eq!(token, s(t, "token_base64"));
            assert_eq!(
                encode_uri_component(&token),
                s(t, "cookie_value_on_the_wire")
            );
            assert_eq!(decode_public_data_token(&token).as_deref(), Some(json));
        }
        assert_eq!(decode_public_data_token(""), None);
        // The client's decoder is Node's: URL alphabet and missing padding pass.
        assert_eq!(
            decode_public_data_token("eyJ1c2VySWQiOjMsIngiOiI_Pz4-In0").as_deref(),
            Some("{\"userId\":3,\"x\":\"??>>\"}")
        );
    }

    #[test]
    fn flow_vectors_bad_session_tokens() {
        // session-flows.json N1/N2 (Blitz throws) and N3 (no session).
        assert_eq!(
            parse_session_token("garbage"),
            Err(SessionTokenError::Malformed)
        );
        let n2 = cookie_value("t=aDpvdHM7aWQ7aGFzaA%3D%3D", "t").expect("cookie");
        assert_eq!(parse_session_token(&n2), Err(SessionTokenError::Malformed));
        let n3 = cookie_value("t=aDpvdHM7aWQ7aGFzaDt2MQ%3D%3D", "t").expect("cookie");
        match parse_session_token(&n3) {
            Err(SessionTokenError::WrongVersion(p)) => {
                assert_eq!((p.handle.as_str(), p.version.as_str()), ("h:ots", "v1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parse_rules() {
        let b64 = |t: &str| STANDARD.encode(t);
        assert_eq!(parse_session_token(""), Err(SessionTokenError::Malformed));
        assert_eq!(
            parse_session_token(&b64("h;i;x;")),
            Err(SessionTokenError::Malformed)
        );
        assert_eq!(
            parse_session_token(&b64(";i;x;v0")),
            Err(SessionTokenError::Malformed)
        );
        // Empty field beats a wrong version.
        assert_eq!(
            parse_session_token(&b64("h;;x;v9")),
            Err(SessionTokenError::Malformed)
        );
        // Extra fields are ignored.
        let p = parse_session_token(&b64("h;i;x;v0;extra;more")).expect("ok");
        assert_eq!(
            (p.handle.as_str(), p.hashed_public_data.as_str()),
            ("h", "x")
        );
        // Lenient base64: URL alphabet, no padding, whitespace inside.
        let text = "h\u{fb}\u{ff}:ots;i;x;v0";
        let std_b64 = b64(text);
        let url = std_b64.replace('+', "-").replace('/', "_").replace('=', "");
        let spaced = format!(" {}\n{} ", &url[..5], &url[5..]);
        assert_eq!(
            parse_session_token(&spaced).map(|p| p.handle),
            Ok("h\u{fb}\u{ff}:ots".into())
        );
        // Invalid UTF-8 becomes U+FFFD, as Buffer#toString does.
        let raw = STANDARD.encode(b"h\xff;i;x;v0");
        assert_eq!(
            parse_session_token(&raw).map(|p| p.handle),
            Ok("h\u{fffd}".into())
        );
    }

    #[test]
    fn handles() {
        let a = generate_handle(HandleKind::Authenticated).expect("handle");
        let b = generate_handle(HandleKind::Anonymous).expect("handle");
        assert_eq!((a.len(), b.len()), (36, 37));
        assert!(a.ends_with(":ots") && b.ends_with(":ajwt"));
        assert_eq!(HandleKind::of(&a), Some(HandleKind::Authenticated));
        assert_eq!(HandleKind::of(&b), Some(HandleKind::Anonymous));
        assert_eq!(HandleKind::of("x:ajwt"), Some(HandleKind::Anonymous));
        assert_eq!(HandleKind::of("nocolon"), None);
        assert_eq!(HandleKind::of("x:other"), None);
        assert_eq!(generate_anti_csrf_token().expect("token").len(), 32);
        let t = create_session_token(&a, "{\"userId\":1}").expect("token");
        assert_eq!(t.len(), 184);
        let p = parse_session_token(&t).expect("parses");
        assert_eq!(p.handle, a);
        assert_eq!(p.id.len(), 32);
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(constant_time_eq("", ""));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
        assert!(!constant_time_eq("abc", ""));
    }

    #[test]
    fn parse_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 200) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (x.rotate_left(i as u32 % 64) as u8).wrapping_add(i as u8))
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_session_token(&text);
            let _ = decode_public_data_token(&text);
            // Also as base64 of arbitrary bytes, which reaches the split.
            let _ = parse_session_token(&STANDARD.encode(&bytes));
        }
    }
}
