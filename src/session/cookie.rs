//! Cookies on the wire, byte for byte as Blitz writes and reads them.
//!
//! This module owns:
//! - JavaScript's `encodeURIComponent` / `decodeURIComponent`;
//! - the cookie names (`<prefix>_s<Name>`, spec §3.1);
//! - `Set-Cookie` serialization as npm `cookie@0.4.1` `serialize` does it
//!   with Blitz's options (§3.2);
//! - request `Cookie` header parsing as `cookie@0.4.1` `parse` (§3.3);
//! - the per-request `Set-Cookie` accumulator (§7.1), Blitz's
//!   `splitCookiesString` (§7.3) and the Node-response merge (§7.2).
//!
//! Where the JS code has quirks (first occurrence of a name wins, names of
//! `Object.prototype` members are never stored, the one-code-unit slice of a
//! quoted value, prefix matching when replacing a cookie) they are kept,
//! because apps and browsers already see their effects. Nothing here panics,
//! whatever the input.
#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use crate::session::date::to_utc_string;

// ---------------------------------------------------------------------------
// encodeURIComponent / decodeURIComponent

/// Whether `encodeURIComponent` leaves the ASCII byte `b` as it is.
const fn is_uri_unreserved(b: u8) -> bool {
    matches!(b,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9'
        | b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// JavaScript's `encodeURIComponent(s)`: every UTF-8 byte outside
/// `A-Z a-z 0-9 - _ . ! ~ * ' ( )` becomes `%XX` (upper-case hex).
///
/// JS throws only on lone surrogates, which a Rust `str` cannot hold, so
/// this cannot fail.
pub fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    push_uri_component(&mut out, s);
    out
}

/// [`encode_uri_component`] appended to `out`.
fn push_uri_component(out: &mut String, s: &str) {
    // The common inputs (tokens, JWTs) need no escape at all: copy in one go.
    if s.bytes().all(is_uri_unreserved) {
        out.push_str(s);
        return;
    }
    for &b in s.as_bytes() {
        if is_uri_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[usize::from(b >> 4)] as char);
            out.push(HEX_UPPER[usize::from(b & 0x0f)] as char);
        }
    }
}

const fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte of the `%XX` escape starting at `bytes[i]`, if there is one.
fn escaped_byte(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let hi = hex_value(*bytes.get(i + 1)?)?;
    let lo = hex_value(*bytes.get(i + 2)?)?;
    Some((hi << 4) | lo)
}

/// JavaScript's `decodeURIComponent(s)`; `None` where JS throws `URIError`.
///
/// Each `%XX` run must spell whole, valid UTF-8 sequences (no overlong
/// forms, no surrogates, nothing above U+10FFFF), exactly as ECMA-262's
/// `Decode` requires; a `%` not followed by two hex digits fails.
/// Characters that are not escapes are copied unchanged.
pub fn decode_uri_component(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Some(s.to_owned());
    };
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let lead = escaped_byte(bytes, i)?;
        i += 3;
        let len = match lead {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            // A continuation byte or 0xf8.. cannot start a character.
            _ => return None,
        };
        let mut seq = [lead, 0, 0, 0];
        for slot in seq.iter_mut().take(len).skip(1) {
            let cont = escaped_byte(bytes, i)?;
            if cont & 0xc0 != 0x80 {
                return None;
            }
            *slot = cont;
            i += 3;
        }
        // The standard library's UTF-8 check rejects exactly what ECMA-262
        // calls "not a valid UTF-8 encoding of a code point".
        let valid = std::str::from_utf8(&seq[..len]).ok()?;
        out.extend_from_slice(valid.as_bytes());
    }
    // Only whole characters were copied or decoded, so this cannot fail;
    // staying total keeps the function panic-free regardless.
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------
// JavaScript whitespace (String.prototype.trim, RegExp \s)

/// ECMA-262 `WhiteSpace` + `LineTerminator`: what `trim()` and `\s` remove.
/// Differs from Rust's `char::is_whitespace` (JS has U+FEFF, lacks U+0085).
pub(crate) const fn is_js_whitespace(c: char) -> bool {
    matches!(c,
        '\u{09}'..='\u{0d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
}

/// `String.prototype.trim`.
pub(crate) fn trim_js(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

// ---------------------------------------------------------------------------
// Cookie names

/// The cookies Blitz knows (spec §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CookieKind {
    /// `P_sSessionToken`: the authenticated session token (HttpOnly).
    SessionToken,
    /// `P_sAnonymousSessionToken`: the anonymous-session JWT (HttpOnly).
    AnonymousSessionToken,
    /// `P_sAntiCsrfToken`: readable by browser JS.
    AntiCsrfToken,
    /// `P_sPublicDataToken`: readable by browser JS.
    PublicDataToken,
    /// `P_sIdRefreshToken`: only ever read (its presence forces a new
    /// anonymous session, §5.1 B); Blitz never writes it.
    IdRefreshToken,
}

impl CookieKind {
    /// Every kind, in declaration order.
    pub const ALL: [CookieKind; 5] = [
        CookieKind::SessionToken,
        CookieKind::AnonymousSessionToken,
        CookieKind::AntiCsrfToken,
        CookieKind::PublicDataToken,
        CookieKind::IdRefreshToken,
    ];

    /// The part of the name after `<prefix>_s`.
    pub const fn suffix(self) -> &'static str {
        match self {
            CookieKind::SessionToken => "SessionToken",
            CookieKind::AnonymousSessionToken => "AnonymousSessionToken",
            CookieKind::AntiCsrfToken => "AntiCsrfToken",
            CookieKind::PublicDataToken => "PublicDataToken",
            CookieKind::IdRefreshToken => "IdRefreshToken",
        }
    }

    /// Whether Blitz writes the cookie with `HttpOnly`. The tokens that
    /// authenticate are hidden from page scripts; the CSRF token and the
    /// public data must be readable by the Blitz client.
    pub const fn http_only(self) -> bool {
        match self {
            CookieKind::SessionToken
            | CookieKind::AnonymousSessionToken
            | CookieKind::IdRefreshToken => true,
            CookieKind::AntiCsrfToken | CookieKind::PublicDataToken => false,
        }
    }
}

/// Whether `prefix` passes Blitz's `^[a-zA-Z0-9-_]+$` check (the empty
/// string fails, spec §2).
pub fn is_valid_cookie_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The full cookie names for one prefix, built once per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieNames {
    names: [String; 5],
}

impl CookieNames {
    /// Names for `prefix` (`blitz` gives `blitz_sSessionToken`, …). The
    /// prefix is not validated here; see [`is_valid_cookie_prefix`].
    pub fn new(prefix: &str) -> Self {
        CookieNames {
            names: CookieKind::ALL.map(|k| format!("{prefix}_s{}", k.suffix())),
        }
    }

    /// The name of one cookie.
    pub fn get(&self, kind: CookieKind) -> &str {
        let i = match kind {
            CookieKind::SessionToken => 0,
            CookieKind::AnonymousSessionToken => 1,
            CookieKind::AntiCsrfToken => 2,
            CookieKind::PublicDataToken => 3,
            CookieKind::IdRefreshToken => 4,
        };
        &self.names[i]
    }
}

// ---------------------------------------------------------------------------
// Serialization (cookie@0.4.1 `serialize`)

/// The `SameSite` attribute. Blitz's option is a string (or boolean) that
/// `cookie` maps at write time; see [`SameSite::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// `SameSite=Lax` (Blitz's default `"lax"`).
    #[default]
    Lax,
    /// `SameSite=Strict` (`"strict"` or `true`).
    Strict,
    /// `SameSite=None`, emitted even without `Secure`, as `cookie` does.
    None,
    /// No attribute: the option was falsy (`undefined`, `false`, `""`).
    Omitted,
}

impl SameSite {
    /// Map a string option the way `cookie@0.4.1` does: lower-cased, then
    /// `lax`/`strict`/`none`; the empty string is falsy and omits the
    /// attribute; anything else is the `TypeError("option sameSite is
    /// invalid")` that Blitz throws on every cookie write.
    pub fn parse(option: &str) -> Result<Self, CookieError> {
        if option.is_empty() {
            return Ok(SameSite::Omitted);
        }
        match option.to_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(CookieError::InvalidSameSite),
        }
    }

    /// Map a boolean option: `true` means `Strict`, `false` omits it.
    pub const fn from_bool(option: bool) -> Self {
        if option {
            SameSite::Strict
        } else {
            SameSite::Omitted
        }
    }

    /// The attribute value, or `None` when the attribute is omitted.
    pub const fn attribute_value(self) -> Option<&'static str> {
        match self {
            SameSite::Lax => Some("Lax"),
            SameSite::Strict => Some("Strict"),
            SameSite::None => Some("None"),
            SameSite::Omitted => None,
        }
    }
}

/// Attributes shared by every cookie of one configuration (spec §3.2).
/// `Path=/` is always written and HttpOnly depends on the cookie, so neither
/// is here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookieOptions {
    /// `Domain=`; `None` or an empty string (falsy in JS) omits it.
    pub domain: Option<String>,
    /// `Secure` (Blitz's `secureCookies`, localhost included).
    pub secure: bool,
    /// `SameSite=`.
    pub same_site: SameSite,
}

impl CookieOptions {
    /// The check `cookie` makes on every write: a domain must be RFC 7230
    /// field content (tab, printable ASCII, or U+0080..U+00FF), else
    /// `TypeError("option domain is invalid")`. Run it once when the
    /// configuration is built.
    pub fn validate(&self) -> Result<(), CookieError> {
        match self.domain.as_deref() {
            Some(d) if !d.is_empty() && !is_field_content(d) => Err(CookieError::InvalidDomain),
            _ => Ok(()),
        }
    }

    fn domain(&self) -> Option<&str> {
        self.domain.as_deref().filter(|d| !d.is_empty())
    }
}

/// `cookie`'s `fieldContentRegExp`: `^[\t\x20-\x7e\x80-\xff]+$` over JS
/// characters.
fn is_field_content(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c == '\t' || (' '..='~').contains(&c) || ('\u{80}'..='\u{ff}').contains(&c))
}

/// The `TypeError`s `cookie@0.4.1` throws for Blitz's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// `sameSite` is not lax/strict/none (any case) or a boolean.
    InvalidSameSite,
    /// `domain` has characters outside RFC 7230 field content.
    InvalidDomain,
}

impl CookieError {
    /// The message of the `TypeError` Blitz throws, verbatim.
    pub const fn message(self) -> &'static str {
        match self {
            CookieError::InvalidSameSite => "option sameSite is invalid",
            CookieError::InvalidDomain => "option domain is invalid",
        }
    }
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CookieError {}

/// `Expires` of a cleared cookie: `new Date(0).toUTCString()`.
pub const CLEARED_EXPIRES: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// One `Set-Cookie` value as Blitz writes it:
/// `NAME=encodeURIComponent(VALUE)[; Domain=d]; Path=/; Expires=<UTC date>[; HttpOnly][; Secure][; SameSite=X]`.
///
/// `expires_ms` is a JS time value; outside the JS range the date prints as
/// `Invalid Date`, as it does in Blitz. `name` must be a valid cookie name
/// (Blitz's names always are; see [`CookieNames`]).
pub fn serialize_cookie(
    name: &str,
    value: &str,
    expires_ms: i64,
    http_only: bool,
    options: &CookieOptions,
) -> String {
    serialize_with_date(name, value, &to_utc_string(expires_ms), http_only, options)
}

/// The cookie Blitz writes to delete one: empty value, expired at the epoch,
/// otherwise the same attributes.
pub fn serialize_cleared_cookie(name: &str, http_only: bool, options: &CookieOptions) -> String {
    serialize_with_date(name, "", CLEARED_EXPIRES, http_only, options)
}

fn serialize_with_date(
    name: &str,
    value: &str,
    expires: &str,
    http_only: bool,
    options: &CookieOptions,
) -> String {
    let domain = options.domain();
    let mut out =
        String::with_capacity(name.len() + value.len() * 3 / 2 + domain.map_or(0, str::len) + 80);
    out.push_str(name);
    out.push('=');
    push_uri_component(&mut out, value);
    if let Some(d) = domain {
        out.push_str("; Domain=");
        out.push_str(d);
    }
    out.push_str("; Path=/; Expires=");
    out.push_str(expires);
    if http_only {
        out.push_str("; HttpOnly");
    }
    if options.secure {
        out.push_str("; Secure");
    }
    if let Some(s) = options.same_site.attribute_value() {
        out.push_str("; SameSite=");
        out.push_str(s);
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing the request Cookie header (cookie@0.4.1 `parse`)

/// Own properties `parse` never creates: it assigns `obj[key]` only while
/// `obj[key] == undefined`, and these names resolve to `Object.prototype`
/// members on a fresh object (V8, Node 20).
const OBJECT_PROTOTYPE_NAMES: [&str; 12] = [
    "constructor",
    "__defineGetter__",
    "__defineSetter__",
    "hasOwnProperty",
    "__lookupGetter__",
    "__lookupSetter__",
    "isPrototypeOf",
    "propertyIsEnumerable",
    "toString",
    "valueOf",
    "__proto__",
    "toLocaleString",
];

fn is_object_prototype_name(name: &str) -> bool {
    OBJECT_PROTOTYPE_NAMES.contains(&name)
}

/// The `key=value` pairs of a `Cookie` header, as `parse` sees them: split at
/// `;` (the spaces its `/; */` also eats are trimmed away with the key
/// anyway), pairs without `=` skipped, the key trimmed.
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        Some((trim_js(key), value))
    })
}

/// A raw pair value turned into the cookie value: trimmed, one character cut
/// from each end when it starts with `"`, then URI-decoded with the text kept
/// as it is when decoding fails.
fn cookie_pair_value(raw: &str) -> Cow<'_, str> {
    let trimmed = trim_js(raw);
    let unquoted = match trimmed.strip_prefix('"') {
        Some(inner) => js_drop_last_code_unit(inner),
        None => Cow::Borrowed(trimmed),
    };
    if !unquoted.contains('%') {
        return unquoted;
    }
    match decode_uri_component(&unquoted) {
        Some(decoded) => Cow::Owned(decoded),
        None => unquoted,
    }
}

/// `s.slice(0, -1)` in UTF-16 terms. Cutting one code unit off a character
/// outside the BMP leaves a lone high surrogate in JS; a Rust string cannot
/// hold one, so it becomes U+FFFD, which is what that JS string turns into
/// when it crosses into UTF-8 (napi, Buffer).
fn js_drop_last_code_unit(s: &str) -> Cow<'_, str> {
    match s.chars().next_back() {
        None => Cow::Borrowed(s),
        Some(c) => {
            let head = &s[..s.len() - c.len_utf8()];
            if c.len_utf16() == 2 {
                Cow::Owned(format!("{head}\u{fffd}"))
            } else {
                Cow::Borrowed(head)
            }
        }
    }
}

/// The value of cookie `name` in a request `Cookie` header, exactly as
/// `cookie.parse(header)[name]` gives it: the **first** pair with that
/// (trimmed) name wins, the value is trimmed, unquoted and URI-decoded
/// (falling back to the raw text). Borrowed unless decoding changed it.
///
/// A present but empty value is `Some("")`; Blitz tests cookies for
/// truthiness, so callers treat that as absent. Names of `Object.prototype`
/// members are never found (JS would return the inherited function).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    if is_object_prototype_name(name) {
        return None;
    }
    cookie_pairs(header)
        .find(|(key, _)| *key == name)
        .map(|(_, raw)| cookie_pair_value(raw))
}

/// Every cookie of a request `Cookie` header, as `cookie.parse` builds its
/// object: first occurrence of a name wins, names of `Object.prototype`
/// members are skipped. Pairs are in first-seen order (a JS object would
/// list integer-like names first).
pub fn parse_cookie_header(header: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (key, raw) in cookie_pairs(header) {
        if is_object_prototype_name(key) || out.iter().any(|(k, _)| k == key) {
            continue;
        }
        out.push((key.to_owned(), cookie_pair_value(raw).into_owned()));
    }
    out
}

// ---------------------------------------------------------------------------
// Set-Cookie strings: splitting, naming, merging, accumulating

/// Blitz's `splitCookiesString` (spec §7.3): split a comma-joined
/// `Set-Cookie` value into cookies. A comma separates two cookies only when
/// the text after it (and after whitespace) reaches `=` before any `;` or
/// `,`, so the comma in `Expires=Thu, 01 Jan …` stays inside its cookie.
/// Pieces are verbatim slices; whitespace after a split comma is skipped.
/// The empty string gives no cookies.
pub fn split_set_cookie(joined: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if joined.is_empty() {
        return out;
    }
    let bytes = joined.as_bytes();
    let len = bytes.len();
    // Byte offset just past any JS whitespace starting at `pos`.
    let skip_ws = |mut pos: usize| {
        while let Some(c) = joined.get(pos..).and_then(|rest| rest.chars().next()) {
            if !is_js_whitespace(c) {
                break;
            }
            pos += c.len_utf8();
        }
        pos
    };
    let mut start = 0;
    let mut pos = 0;
    // The JS has an outer loop around this one, but the inner loop always
    // runs to the end of the string, so the outer body runs exactly once.
    loop {
        pos = skip_ws(pos);
        if pos >= len {
            break;
        }
        if bytes[pos] == b',' {
            let last_comma = pos;
            let next_start = skip_ws(pos + 1);
            let mut scan = next_start;
            // `=`, `;` and `,` are ASCII, so a byte scan cannot stop inside
            // a multi-byte character.
            while scan < len && !matches!(bytes[scan], b'=' | b';' | b',') {
                scan += 1;
            }
            if scan < len && bytes[scan] == b'=' {
                out.push(&joined[start..last_comma]);
                start = next_start;
                pos = next_start;
            } else {
                pos = last_comma + 1;
            }
        } else {
            // Step over one whole character.
            pos += joined[pos..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push(&joined[start..]);
    out
}

/// The cookie name of one `Set-Cookie` string as Blitz's Node merge finds it
/// (§7.2): `cookie.parse` of the text before the first `;`, first key. No
/// `=`, an empty name, or an `Object.prototype` member name gives `None`
/// (such entries are dropped by the merge).
pub fn set_cookie_name(cookie: &str) -> Option<&str> {
    let name_value = cookie.split(';').next().unwrap_or(cookie);
    let (key, _) = name_value.split_once('=')?;
    let key = trim_js(key);
    if key.is_empty() || is_object_prototype_name(key) {
        return None;
    }
    Some(key)
}

/// Blitz's merge of its cookies into a Node `ServerResponse` (spec §7.2):
/// every entry of `existing` (the response's current `Set-Cookie` values)
/// and then of `new` is split per §7.3; cookies are keyed by
/// [`set_cookie_name`] (entries without a name are dropped); a later cookie
/// with a known name replaces the earlier one **at the earlier position**.
/// Path and Domain are not part of the key, as in Blitz.
pub fn merge_set_cookie(existing: &[String], new: &[String]) -> Vec<String> {
    let mut merged: Vec<(&str, &str)> = Vec::new();
    for header in existing.iter().chain(new) {
        for cookie in split_set_cookie(header) {
            let Some(name) = set_cookie_name(cookie) else {
                continue;
            };
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = cookie,
                None => merged.push((name, cookie)),
            }
        }
    }
    merged.into_iter().map(|(_, c)| c.to_owned()).collect()
}

/// The `Set-Cookie` values Blitz builds up during one request (spec §7.1).
///
/// Blitz keeps all cookies in one `", "`-joined string and, for every write,
/// splits it (§7.3), replaces the first cookie whose text **starts with the
/// cookie name** or appends, and joins again. This type keeps the split list
/// instead (splitting once, in [`SetCookies::from_joined`], when a request
/// seeds it), which gives the same result without re-splitting the whole
/// string on every write: that re-split was most of the cost of a first visit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCookies {
    entries: Vec<String>,
}

impl SetCookies {
    /// Nothing written yet.
    pub fn new() -> Self {
        SetCookies::default()
    }

    /// Start from an existing joined value. Blitz's per-request headers start
    /// as the request's own headers, so a `set-cookie` request header is where
    /// its list begins.
    pub fn from_joined(joined: &str) -> Self {
        SetCookies {
            entries: split_set_cookie(joined)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Write cookie `name` (its full `Set-Cookie` text in `cookie`): replace
    /// the first entry whose text starts with `name`, else append.
    ///
    /// The match is a plain prefix test on the entry, as in Blitz
    /// (`cookie.startsWith(cookieName)`), not an exact name comparison; no two
    /// of Blitz's own names are prefixes of each other, so for its cookies
    /// this is the same as matching `name=`.
    pub fn set(&mut self, name: &str, cookie: &str) {
        match self.entries.iter().position(|p| p.starts_with(name)) {
            Some(i) => cookie.clone_into(&mut self.entries[i]),
            None => self.entries.push(cookie.to_owned()),
        }
    }

    /// Whether no cookie has been written.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The single `Set-Cookie` value Blitz's Fetch path appends (cookies
    /// joined by `", "`); empty when nothing was written.
    pub fn joined(&self) -> String {
        self.entries.join(", ")
    }

    /// The individual cookies, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// The individual cookies as owned strings (what the Node path merges).
    pub fn to_vec(&self) -> Vec<String> {
        self.entries.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors(file: &str) -> Value {
        let path = format!("{}/spec/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("vector file");
        serde_json::from_str(&text).expect("vector JSON")
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    }

    fn scenario<'a>(flows: &'a Value, id: &str) -> &'a Value {
        flows["scenarios"]
            .as_array()
            .expect("scenarios")
            .iter()
            .find(|s| s["id"] == id)
            .expect("scenario")
    }

    /// Frozen clock of the vectors: 2025-01-15T12:00:00Z.
    const NOW: i64 = 1_736_942_400_000;
    const MINUTE: i64 = 60_000;

    /// (input, decodeURIComponent or None where it throws), from Node v20.
    const NODE_DECODE: &[(&str, Option<&str>)] = &[
        ("", Some("")),
        ("abc", Some("abc")),
        ("%41%42", Some("AB")),
        ("%c3%a9", Some("\u{e9}")),
        ("%C3%A9", Some("\u{e9}")),
        ("%E2%9C%93", Some("\u{2713}")),
        ("%F0%9F%9A%80", Some("\u{1f680}")),
        ("%E2%9C", None),
        ("%zz", None),
        ("%", None),
        ("%4", None),
        ("a%20b%", None),
        ("%C0%80", None),
        ("%C1%BF", None),
        ("%ED%A0%80", None),
        ("%ED%9F%BF", Some("\u{d7ff}")),
        ("%EE%80%80", Some("\u{e000}")),
        ("%F4%8F%BF%BF", Some("\u{10ffff}")),
        ("%F4%90%80%80", None),
        ("%F5%80%80%80", None),
        ("%F8%80%80%80%80", None),
        ("%80", None),
        ("%BF", None),
        ("%C3%28", None),
        ("%C3", None),
        ("%C3%A9%", None),
        ("\u{e9}%20\u{fc}", Some("\u{e9} \u{fc}")),
        ("%25", Some("%")),
        ("%2525", Some("%25")),
        ("%E2%82%AC%2B%2F%3D", Some("\u{20ac}+/=")),
        ("%e2%82%ac", Some("\u{20ac}")),
        ("+%20+", Some("+ +")),
        ("%00", Some("\u{0}")),
        ("%7F%7f", Some("\u{7f}\u{7f}")),
        ("%EF%BB%BF", Some("\u{feff}")),
        ("%E0%A0%80", Some("\u{800}")),
        ("%E0%9F%BF", None),
        ("%F0%90%80%80", Some("\u{10000}")),
        ("%F0%8F%BF%BF", None),
    ];

    /// (input, encodeURIComponent), from Node v20.
    const NODE_ENCODE: &[(&str, &str)] = &[
        ("", ""),
        ("abc", "abc"),
        ("A-Z_a.z!~*'()", "A-Z_a.z!~*'()"),
        ("+/=", "%2B%2F%3D"),
        ("a b", "a%20b"),
        ("\u{e9}", "%C3%A9"),
        ("\u{2713}", "%E2%9C%93"),
        ("\u{1f680}", "%F0%9F%9A%80"),
        ("\u{0}\u{1f}\u{7f}", "%00%1F%7F"),
        ("\"%;,\\", "%22%25%3B%2C%5C"),
        ("\u{65e5}\u{672c}\u{8a9e}", "%E6%97%A5%E6%9C%AC%E8%AA%9E"),
        ("\u{a0}\u{feff}", "%C2%A0%EF%BB%BF"),
        ("eyJ1c2VySWQiOjF9", "eyJ1c2VySWQiOjF9"),
        ("x?y#z&w=v", "x%3Fy%23z%26w%3Dv"),
    ];

    /// (Cookie header, cookie.parse entries), from cookie@0.4.1 under Node v20.
    const NODE_PARSE: &[(&str, &[(&str, &str)])] = &[
        ("a=1; b=2", &[("a", "1"), ("b", "2")]),
        ("a=1;b=2;  c=3", &[("a", "1"), ("b", "2"), ("c", "3")]),
        ("a=1; a=2", &[("a", "1")]),
        (" a = 1 ;b", &[("a", "1")]),
        ("x=\"quoted\"", &[("x", "quoted")]),
        ("x=\"", &[("x", "")]),
        ("x=\"\"", &[("x", "")]),
        ("x=\"ab", &[("x", "a")]),
        ("x=\"ab\"", &[("x", "ab")]),
        ("x=%E2%9C%93", &[("x", "\u{2713}")]),
        ("x=%E2%9C", &[("x", "%E2%9C")]),
        ("x=%zz", &[("x", "%zz")]),
        ("x=a%20b%", &[("x", "a%20b%")]),
        ("toString=1; y=2", &[("y", "2")]),
        ("__proto__=1; constructor=2; z=3; valueOf=4", &[("z", "3")]),
        ("=empty; k=v", &[("", "empty"), ("k", "v")]),
        ("k==v", &[("k", "=v")]),
        ("k=v=w", &[("k", "v=w")]),
        ("k=\u{9} v \u{9}", &[("k", "v")]),
        ("k\u{a0}=\u{a0}v\u{a0}", &[("k", "v")]),
        ("k=\u{feff}v\u{feff}", &[("k", "v")]),
        ("k=\u{85}v\u{85}", &[("k", "\u{85}v\u{85}")]),
        ("k=\u{180e}v\u{180e}", &[("k", "\u{180e}v\u{180e}")]),
        ("k=\u{2028}v\u{3000}", &[("k", "v")]),
        ("a=1,b=2", &[("a", "1,b=2")]),
        ("a=1;\u{9}b=2", &[("a", "1"), ("b", "2")]),
        ("k=\"\u{1f680}\"x", &[("k", "\u{1f680}\"")]),
        ("k=\"\u{1f680}", &[("k", "\u{fffd}")]),
        ("k=\"%41\"", &[("k", "A")]),
        ("k=%C0%80", &[("k", "%C0%80")]),
        ("k=%ED%A0%80", &[("k", "%ED%A0%80")]),
        ("k=%F0%9F%9A%80", &[("k", "\u{1f680}")]),
        ("k=%41%42", &[("k", "AB")]),
        ("k=%c3%a9", &[("k", "\u{e9}")]),
        ("", &[]),
        ("   ", &[]),
        (";;;", &[]),
        ("a", &[]),
        (";a=1", &[("a", "1")]),
        ("a=; a=2", &[("a", "")]),
        ("a=\"\"; b=\" x \"", &[("a", ""), ("b", " x ")]),
        ("k=\" %41 \"", &[("k", " A ")]),
        ("k=\"\u{e9}", &[("k", "")]),
        (
            "caf\u{e9}=cr\u{e8}me; na\u{ef}ve=1",
            &[("caf\u{e9}", "cr\u{e8}me"), ("na\u{ef}ve", "1")],
        ),
        (
            "test_sSessionToken=abc%3D; test_sAnonymousSessionToken=eyJ.x.y",
            &[
                ("test_sSessionToken", "abc="),
                ("test_sAnonymousSessionToken", "eyJ.x.y"),
            ],
        ),
    ];

    /// (joined Set-Cookie, splitCookiesString), from Blitz 3.0.2 under Node v20.
    const NODE_SPLIT: &[(&str, &[&str])] = &[
        ("", &[]),
        ("a=1", &["a=1"]),
        ("a=1, b=2", &["a=1", "b=2"]),
        ("a=1,b=2", &["a=1", "b=2"]),
        ("a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT, b=2; Expires=Wed, 15 Jan 2025 12:00:00 GMT", &["a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "b=2; Expires=Wed, 15 Jan 2025 12:00:00 GMT"]),
        (" a=1 ,  b=2 ", &[" a=1 ", "b=2 "]),
        ("a=1, b", &["a=1, b"]),
        ("a=1, b;c=2", &["a=1, b;c=2"]),
        ("a=1,, b=2", &["a=1,", "b=2"]),
        ("a=1,\u{a0}b=2", &["a=1", "b=2"]),
        ("a=1,\u{9}b=2", &["a=1", "b=2"]),
        ("a=1, =2", &["a=1", "=2"]),
        ("a=1, b c=2", &["a=1", "b c=2"]),
        (",a=1", &["", "a=1"]),
        (",", &[","]),
        (", ,", &[", ,"]),
        ("a=1,", &["a=1,"]),
        ("a=1, ", &["a=1, "]),
        ("\u{e9}=1, \u{fc}=2", &["\u{e9}=1", "\u{fc}=2"]),
        ("a=1; Domain=x,y=z", &["a=1; Domain=x", "y=z"]),
        ("null", &["null"]),
    ];

    #[test]
    fn uri_coding_matches_node() {
        for &(input, want) in NODE_DECODE {
            assert_eq!(
                decode_uri_component(input).as_deref(),
                want,
                "decode {input:?}"
            );
        }
        for &(input, want) in NODE_ENCODE {
            assert_eq!(encode_uri_component(input), want, "encode {input:?}");
            assert_eq!(decode_uri_component(want).as_deref(), Some(input));
        }
    }

    #[test]
    fn cookie_parse_matches_node() {
        for &(header, want) in NODE_PARSE {
            let got = parse_cookie_header(header);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "parse {header:?}");
            for (k, v) in &want {
                assert_eq!(
                    cookie_value(header, k).as_deref(),
                    Some(v.as_str()),
                    "{header:?}"
                );
            }
        }
        assert_eq!(cookie_value("toString=1", "toString"), None);
        assert_eq!(cookie_value("a=1", "b"), None);
    }

    #[test]
    fn cookie_value_borrows_unless_decoding_changes_it() {
        let h = "x=1; test_sSessionToken=abc; y=%41";
        assert!(matches!(
            cookie_value(h, "test_sSessionToken"),
            Some(Cow::Borrowed("abc"))
        ));
        assert!(matches!(cookie_value(h, "y"), Some(Cow::Owned(ref s)) if s == "A"));
        assert!(matches!(
            cookie_value("y=%zz", "y"),
            Some(Cow::Borrowed("%zz"))
        ));
    }

    #[test]
    fn set_cookie_split_matches_blitz() {
        for &(joined, want) in NODE_SPLIT {
            assert_eq!(split_set_cookie(joined), want, "split {joined:?}");
        }
    }

    #[test]
    fn same_site_option_mapping() {
        assert_eq!(SameSite::parse("lax"), Ok(SameSite::Lax));
        assert_eq!(SameSite::parse("LAX"), Ok(SameSite::Lax));
        assert_eq!(SameSite::parse("Strict"), Ok(SameSite::Strict));
        assert_eq!(SameSite::parse("none"), Ok(SameSite::None));
        assert_eq!(SameSite::parse(""), Ok(SameSite::Omitted));
        assert_eq!(SameSite::from_bool(true), SameSite::Strict);
        assert_eq!(SameSite::from_bool(false), SameSite::Omitted);
        let e = SameSite::parse("bogus").expect_err("invalid");
        // session-config.json, mode badsamesite.
        assert_eq!(e.to_string(), "option sameSite is invalid");
        let opts = CookieOptions {
            same_site: SameSite::Omitted,
            ..CookieOptions::default()
        };
        assert_eq!(
            serialize_cookie("a", "b", 0, false, &opts),
            "a=b; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn domain_validation_and_empty_domain() {
        let mut opts = CookieOptions {
            domain: Some("example.com".into()),
            ..CookieOptions::default()
        };
        assert_eq!(opts.validate(), Ok(()));
        opts.domain = Some("bad\ndomain".into());
        assert_eq!(
            opts.validate().map_err(|e| e.message()),
            Err("option domain is invalid")
        );
        opts.domain = Some("\u{100}.com".into());
        assert_eq!(opts.validate(), Err(CookieError::InvalidDomain));
        opts.domain = Some("caf\u{e9}.com".into()); // Latin-1 is field content
        assert_eq!(opts.validate(), Ok(()));
        // An empty domain is falsy in JS: no attribute, and valid.
        opts.domain = Some(String::new());
        assert_eq!(opts.validate(), Ok(()));
        assert!(!serialize_cookie("a", "b", 0, false, &opts).contains("Domain"));
    }

    #[test]
    fn names_and_prefix() {
        let n = CookieNames::new("test");
        assert_eq!(n.get(CookieKind::SessionToken), "test_sSessionToken");
        assert_eq!(
            n.get(CookieKind::AnonymousSessionToken),
            "test_sAnonymousSessionToken"
        );
        assert_eq!(n.get(CookieKind::AntiCsrfToken), "test_sAntiCsrfToken");
        assert_eq!(n.get(CookieKind::PublicDataToken), "test_sPublicDataToken");
        assert_eq!(n.get(CookieKind::IdRefreshToken), "test_sIdRefreshToken");
        assert!(is_valid_cookie_prefix("My-App_1"));
        for bad in ["", "bad prefix!", "a:b", "a\n", "caf\u{e9}"] {
            assert!(!is_valid_cookie_prefix(bad), "{bad:?}");
        }
        // No Blitz name is a prefix of another, which SetCookies::set relies on.
        for a in CookieKind::ALL {
            for b in CookieKind::ALL {
                if a != b {
                    assert!(!n.get(a).starts_with(n.get(b)));
                }
            }
        }
    }

    /// Rebuild one of Blitz's four new-session/login cookies.
    fn blitz_cookie(
        names: &CookieNames,
        kind: CookieKind,
        value: Option<&str>,
        expires_ms: i64,
        opts: &CookieOptions,
    ) -> String {
        match value {
            Some(v) => serialize_cookie(names.get(kind), v, expires_ms, kind.http_only(), opts),
            None => serialize_cleared_cookie(names.get(kind), kind.http_only(), opts),
        }
    }

    #[test]
    fn session_tokens_set_cookie_vectors() {
        let v = vectors("session-tokens.json");
        let names = CookieNames::new("test");
        let opts = CookieOptions::default();

        let anon = &v["anonymous"];
        let expires = NOW + 2_628_000 * MINUTE;
        let built = vec![
            blitz_cookie(
                &names,
                CookieKind::AnonymousSessionToken,
                anon["jwt"].as_str(),
                expires,
                &opts,
            ),
            blitz_cookie(
                &names,
                CookieKind::AntiCsrfToken,
                anon["antiCSRFToken"].as_str(),
                expires,
                &opts,
            ),
            blitz_cookie(
                &names,
                CookieKind::PublicDataToken,
                Some("eyJ1c2VySWQiOm51bGx9"),
                expires,
                &opts,
            ),
            blitz_cookie(&names, CookieKind::SessionToken, None, 0, &opts),
        ];
        assert_eq!(built, strings(&anon["set_cookie"]));

        let auth = &v["authenticated"];
        let expires = NOW + 1000 + 43_200 * MINUTE; // the vector's clock had moved 1 s
        let built = vec![
            blitz_cookie(&names, CookieKind::AnonymousSessionToken, None, 0, &opts),
            blitz_cookie(
                &names,
                CookieKind::AntiCsrfToken,
                auth["stored_row"]["antiCSRFToken"].as_str(),
                expires,
                &opts,
            ),
            blitz_cookie(
                &names,
                CookieKind::PublicDataToken,
                auth["publicData_token"].as_str(),
                expires,
                &opts,
            ),
            blitz_cookie(
                &names,
                CookieKind::SessionToken,
                auth["session_token"].as_str(),
                expires,
                &opts,
            ),
        ];
        assert_eq!(built, strings(&auth["set_cookie"]));
        let raw = encode_uri_component(auth["session_token"].as_str().expect("token"));
        assert_eq!(
            raw,
            auth["session_token_cookie_value_raw"]
                .as_str()
                .expect("raw")
        );
        let raw = encode_uri_component(auth["publicData_token"].as_str().expect("token"));
        assert_eq!(
            raw,
            auth["publicData_cookie_value_raw"].as_str().expect("raw")
        );

        for t in v["public_data_tokens"].as_array().expect("tokens") {
            let token = t["token_base64"].as_str().expect("token");
            let wire = t["cookie_value_on_the_wire"].as_str().expect("wire");
            assert_eq!(encode_uri_component(token), wire);
            // and back, through the request parser
            let header = format!("x=1; test_sPublicDataToken={wire}");
            assert_eq!(
                cookie_value(&header, "test_sPublicDataToken").as_deref(),
                Some(token)
            );
        }
    }

    #[test]
    fn session_config_attribute_variants() {
        let v = vectors("session-config.json");
        let names = CookieNames::new("test");
        for run in v["runs"].as_array().expect("runs") {
            let Some(set_cookie) = run.get("set_cookie") else {
                continue; // a mode that throws
            };
            let cfg = &run["effective_config"];
            let opts = CookieOptions {
                domain: cfg["domain"].as_str().map(str::to_owned),
                secure: cfg["secureCookies"].as_bool().expect("secure"),
                same_site: SameSite::parse(cfg["sameSite"].as_str().expect("sameSite"))
                    .expect("valid sameSite"),
            };
            opts.validate().expect("valid options");
            let anon_minutes = cfg["anonSessionExpiryMinutes"].as_i64().expect("minutes");
            let expires = NOW + anon_minutes * MINUTE;
            let value = Some("<value>");
            // The vectors replace values with `<value>`; rebuild with that text
            // and undo the encoding of `<` and `>`.
            let built: Vec<String> = [
                blitz_cookie(
                    &names,
                    CookieKind::AnonymousSessionToken,
                    value,
                    expires,
                    &opts,
                ),
                blitz_cookie(&names, CookieKind::AntiCsrfToken, value, expires, &opts),
                blitz_cookie(&names, CookieKind::PublicDataToken, value, expires, &opts),
                blitz_cookie(&names, CookieKind::SessionToken, Some(""), 0, &opts),
            ]
            .into_iter()
            .map(|c| {
                c.replace("%3Cvalue%3E", "<value>")
                    .replacen("=;", "=<value>;", 1)
            })
            .collect();
            assert_eq!(built, strings(set_cookie), "mode {}", run["mode"]);

            if let Some(after) = run.get("after_create") {
                let minutes = cfg["sessionExpiryMinutes"].as_i64().expect("minutes");
                let expires = NOW + minutes * MINUTE;
                let built: Vec<String> = [
                    blitz_cookie(
                        &names,
                        CookieKind::AnonymousSessionToken,
                        Some(""),
                        0,
                        &opts,
                    ),
                    blitz_cookie(&names, CookieKind::AntiCsrfToken, value, expires, &opts),
                    blitz_cookie(&names, CookieKind::PublicDataToken, value, expires, &opts),
                    blitz_cookie(&names, CookieKind::SessionToken, value, expires, &opts),
                ]
                .into_iter()
                .map(|c| {
                    c.replace("%3Cvalue%3E", "<value>")
                        .replacen("=;", "=<value>;", 1)
                })
                .collect();
                assert_eq!(built, strings(after), "mode {} after $create", run["mode"]);
            }
        }
    }

    #[test]
    fn cleared_cookie_is_an_empty_value_at_the_epoch() {
        let opts = CookieOptions {
            domain: Some("example.com".into()),
            secure: true,
            same_site: SameSite::None,
        };
        assert_eq!(
            serialize_cleared_cookie("p_sSessionToken", true, &opts),
            "p_sSessionToken=; Domain=example.com; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=None"
        );
        assert_eq!(
            serialize_cleared_cookie("n", false, &opts),
            serialize_cookie("n", "", 0, false, &opts)
        );
        // Out of the JS Date range: Blitz writes `Invalid Date`.
        assert!(
            serialize_cookie("n", "v", i64::MAX, false, &opts).contains("Expires=Invalid Date;")
        );
    }

    /// The values of scenario A's cookies, rebuilt in Blitz's write order
    /// through the accumulator, give exactly the joined header, and the
    /// joined header splits back into the four cookies (§7.1, §7.3).
    #[test]
    fn scenario_a_joined_header() {
        let flows = vectors("session-flows.json");
        let a = scenario(&flows, "A_no_cookies_GET");
        let headers = a["response"]["headers"].as_array().expect("headers");
        let joined = headers
            .iter()
            .find(|h| h[0] == "set-cookie")
            .and_then(|h| h[1].as_str())
            .expect("set-cookie");
        let split = strings(&a["response"]["set_cookie_split"]);
        assert_eq!(split_set_cookie(joined), split);

        let names = CookieNames::new("test");
        let opts = CookieOptions::default();
        let decoded = &a["decoded_cookies"];
        let jwt = split[0]
            .split_once('=')
            .and_then(|(_, rest)| rest.split(';').next())
            .expect("jwt");
        let expires = NOW + 2_628_000 * MINUTE;
        let mut acc = SetCookies::new();
        for (kind, value) in [
            (CookieKind::AnonymousSessionToken, Some(jwt)),
            (
                CookieKind::AntiCsrfToken,
                decoded["test_sAntiCsrfToken"].as_str(),
            ),
            (
                CookieKind::PublicDataToken,
                decoded["test_sPublicDataToken"]["base64"].as_str(),
            ),
            (CookieKind::SessionToken, None),
        ] {
            acc.set(
                names.get(kind),
                &blitz_cookie(&names, kind, value, expires, &opts),
            );
        }
        assert_eq!(acc.joined(), joined);
        assert_eq!(acc.to_vec(), split);
        assert_eq!(acc.iter().count(), 4);
    }

    /// Scenario Q: `$create` in the request that created the anonymous
    /// session replaces the anonymous entries in place, so the session
    /// cookie stays last and the cleared anonymous cookie comes first.
    /// Scenario E (request with an anonymous cookie) writes into an empty
    /// list, so the order is the write order.
    #[test]
    fn replace_in_place_orders_like_blitz() {
        let names = CookieNames::new("test");
        let opts = CookieOptions::default();
        let n = |k| names.get(k);
        let anon_expires = NOW + 2_628_000 * MINUTE;
        let auth_expires = NOW + 43_200 * MINUTE;
        let login = [
            (CookieKind::SessionToken, Some("tok")),
            (CookieKind::AntiCsrfToken, Some("csrf2")),
            (CookieKind::PublicDataToken, Some("pd2")),
            (CookieKind::AnonymousSessionToken, None),
        ];

        let mut q = SetCookies::new();
        for (kind, value) in [
            (CookieKind::AnonymousSessionToken, Some("jwt")),
            (CookieKind::AntiCsrfToken, Some("csrf1")),
            (CookieKind::PublicDataToken, Some("pd1")),
            (CookieKind::SessionToken, None),
        ] {
            q.set(
                n(kind),
                &blitz_cookie(&names, kind, value, anon_expires, &opts),
            );
        }
        for (kind, value) in login {
            q.set(
                n(kind),
                &blitz_cookie(&names, kind, value, auth_expires, &opts),
            );
        }
        let order: Vec<&str> = q.iter().filter_map(set_cookie_name).collect();
        assert_eq!(
            order,
            [
                "test_sAnonymousSessionToken",
                "test_sAntiCsrfToken",
                "test_sPublicDataToken",
                "test_sSessionToken"
            ]
        );
        assert!(q.joined().contains("test_sSessionToken=tok;"));
        assert!(!q.joined().contains("csrf1"));

        let mut e = SetCookies::new();
        for (kind, value) in login {
            e.set(
                n(kind),
                &blitz_cookie(&names, kind, value, auth_expires, &opts),
            );
        }
        let order: Vec<&str> = e.iter().filter_map(set_cookie_name).collect();
        assert_eq!(
            order,
            [
                "test_sSessionToken",
                "test_sAntiCsrfToken",
                "test_sPublicDataToken",
                "test_sAnonymousSessionToken"
            ]
        );
    }

    #[test]
    fn set_cookies_prefix_match_and_seeding() {
        // Blitz matches by prefix of the raw text, seeded from the request.
        let mut acc = SetCookies::from_joined("abcd=1,x=2");
        acc.set("abc", "abc=3");
        assert_eq!(acc.joined(), "abc=3, x=2");
        acc.set("y", "y=4");
        assert_eq!(acc.joined(), "abc=3, x=2, y=4");
        assert!(SetCookies::new().is_empty());
        assert_eq!(SetCookies::new().iter().count(), 0);
    }

    /// Scenario P (Node path): a response that already had `custom=1` and a
    /// stale CSRF cookie; Blitz's cookies merge in by name, keeping the
    /// earlier positions. Then `$create` merges its cookies into that.
    #[test]
    fn scenario_p_node_merge() {
        let flows = vectors("session-flows.json");
        let p = scenario(&flows, "P_node_path");
        let after_get = strings(&p["set_cookie_after_getSession"]);
        let after_create = strings(&p["set_cookie_after_create"]);
        let by_name = |list: &[String], name: &str| {
            list.iter()
                .find(|c| set_cookie_name(c) == Some(name))
                .cloned()
                .expect("cookie")
        };

        // The vector does not record the response's Set-Cookie before
        // getSession; the result implies `custom=1` and an older CSRF cookie.
        let existing = vec![
            "custom=1; Path=/".to_string(),
            "test_sAntiCsrfToken=old; Path=/".to_string(),
        ];
        let mut acc = SetCookies::new();
        for name in [
            "test_sAnonymousSessionToken",
            "test_sAntiCsrfToken",
            "test_sPublicDataToken",
            "test_sSessionToken",
        ] {
            acc.set(name, &by_name(&after_get, name));
        }
        let merged = merge_set_cookie(&existing, &[acc.joined().to_string()]);
        assert_eq!(merged, after_get);

        // $create: replace in place in the request's list, then merge again.
        for name in [
            "test_sSessionToken",
            "test_sAntiCsrfToken",
            "test_sPublicDataToken",
            "test_sAnonymousSessionToken",
        ] {
            acc.set(name, &by_name(&after_create, name));
        }
        let merged = merge_set_cookie(&after_get, &[acc.joined().to_string()]);
        assert_eq!(merged, after_create);
        // Same result when the new cookies arrive already split.
        assert_eq!(merge_set_cookie(&after_get, &acc.to_vec()), after_create);
    }

    #[test]
    fn merge_drops_nameless_entries_and_splits_existing() {
        let existing = vec![
            "a=1, b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
            "garbage".to_string(),
            "=x".to_string(),
            "toString=1".to_string(),
        ];
        let new = vec!["a=3; Path=/".to_string(), " c = 4".to_string()];
        assert_eq!(
            merge_set_cookie(&existing, &new),
            [
                "a=3; Path=/",
                "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                " c = 4"
            ]
        );
        assert!(merge_set_cookie(&[], &[String::new()]).is_empty());
        assert_eq!(set_cookie_name("a b = 1; x=y"), Some("a b"));
        assert_eq!(set_cookie_name("noequals; x=y"), None);
    }

    /// N14: two cookies with the same name; `parse` keeps the first.
    #[test]
    fn scenario_n14_first_cookie_wins() {
        let flows = vectors("session-flows.json");
        let header = scenario(&flows, "N14_duplicate_cookie_name_first_wins")["cookie"]
            .as_str()
            .expect("cookie");
        let got = cookie_value(header, "test_sAnonymousSessionToken").expect("present");
        assert!(got.starts_with("eyJ"), "{got}");
        assert_ne!(got, "garbage");
        assert_eq!(parse_cookie_header(header).len(), 1);
    }

    /// Small deterministic generator for the no-panic properties (no extra
    /// dev-dependency needed).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        /// Text biased towards the characters the parsers care about.
        fn text(&mut self, max: usize) -> String {
            const PIECES: &[&str] = &[
                "%",
                "%2",
                "%C3",
                "%A9",
                "%zz",
                "%E2%9C%93",
                ";",
                "; ",
                "=",
                "\"",
                ",",
                ", ",
                " ",
                "\t",
                "a",
                "Z",
                "0",
                "é",
                "🚀",
                "\u{a0}",
                "\u{feff}",
                "\u{85}",
                "Expires=Thu, 01 Jan",
                "toString",
                "__proto__",
                "\0",
                "\u{fffd}",
            ];
            let len = self.below(max + 1);
            (0..len).map(|_| PIECES[self.below(PIECES.len())]).collect()
        }
        fn bytes_lossy(&mut self, max: usize) -> String {
            let len = self.below(max + 1);
            let bytes: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_input() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in 0..20_000 {
            let s = if i % 2 == 0 {
                rng.text(24)
            } else {
                rng.bytes_lossy(64)
            };
            let _ = decode_uri_component(&s);
            let parsed = parse_cookie_header(&s);
            for (k, v) in &parsed {
                assert_eq!(cookie_value(&s, k).as_deref(), Some(v.as_str()));
            }
            let _ = cookie_value(&s, "a");
            let parts = split_set_cookie(&s);
            // Splitting only cuts; the pieces appear in order in the input.
            let mut rest = s.as_str();
            for p in &parts {
                let at = rest.find(p).expect("piece in input");
                rest = &rest[at + p.len()..];
            }
            let _ = merge_set_cookie(
                std::slice::from_ref(&s),
                &parts.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            );
            let mut acc = SetCookies::from_joined(&s);
            acc.set("a", "a=1");
            let _ = acc.to_vec();
            let opts = CookieOptions {
                domain: Some(s.clone()),
                ..CookieOptions::default()
            };
            let _ = opts.validate();
            let _ = SameSite::parse(&s);
        }
        let huge = "a=%E2%9C%93; ".repeat(100_000);
        assert_eq!(cookie_value(&huge, "a").as_deref(), Some("\u{2713}"));
        assert_eq!(split_set_cookie(&huge).len(), 1);
    }

    #[test]
    fn uri_round_trip_on_arbitrary_text() {
        let mut rng = Rng(42);
        for _ in 0..5_000 {
            let s = rng.bytes_lossy(48);
            let enc = encode_uri_component(&s);
            assert!(enc
                .bytes()
                .all(|b| is_uri_unreserved(b) || b == b'%' || b.is_ascii_hexdigit()));
            assert_eq!(decode_uri_component(&enc).as_deref(), Some(s.as_str()));
            // What we write, we read back through the Cookie header.
            let header = format!("k={enc}");
            assert_eq!(cookie_value(&header, "k").as_deref(), Some(s.as_str()));
        }
    }

    #[test]
    fn serialized_cookies_split_back_apart() {
        let mut rng = Rng(7);
        let opts = CookieOptions {
            domain: Some("example.com".into()),
            secure: true,
            same_site: SameSite::Strict,
        };
        for _ in 0..2_000 {
            let n = 1 + rng.below(5);
            let cookies: Vec<String> = (0..n)
                .map(|i| {
                    let value = rng.bytes_lossy(30);
                    let ms = (rng.next() % (2 * MAX_TEST_MS) as u64) as i64 - MAX_TEST_MS;
                    serialize_cookie(&format!("c{i}"), &value, ms, i % 2 == 0, &opts)
                })
                .collect();
            let joined = cookies.join(", ");
            assert_eq!(split_set_cookie(&joined), cookies);
        }
    }

    const MAX_TEST_MS: i64 = crate::session::date::MAX_TIME_MS;
}
