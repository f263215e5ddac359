//! JSON exactly as JavaScript's `JSON.stringify` writes it, and JSON text
//! read back the way `JSON.parse` reads it.
//!
//! The public data travels as JSON text that is hashed (into the session
//! token) and base64-encoded (into the public-data cookie), so the bytes must
//! match what Blitz produces: no whitespace, keys in JavaScript's property
//! order (array-index keys ascending, then the rest in insertion order, which
//! `serde_json`'s `preserve_order` keeps), non-ASCII as-is, only `"`, `\` and
//! control characters escaped, and numbers in ECMAScript's `Number::toString`
//! form (`1e+21`, `1.5e-7`, `5` rather than `5.0`).
//!
//! Stored data was written by JavaScript, so [`parse`] must accept whatever
//! `JSON.parse` accepts; a refusal would fail every request of that session.
//! `serde_json` (with `float_roundtrip`, so every double is read exactly)
//! agrees with `JSON.parse` except in three places, handled here:
//!
//! - lone UTF-16 surrogate escapes (`"\ud83d"`, which ES2019 `JSON.stringify`
//!   writes for a lone surrogate) are read as U+FFFD, since a Rust `String`
//!   cannot hold a surrogate. Such data is therefore re-serialized with a
//!   literal U+FFFD where Blitz would write the escape again: the bytes differ
//!   from Blitz's for that (rare) data, but the session keeps working;
//! - numbers too large for a double (`1e400`), which `JSON.parse` reads as
//!   `±Infinity`, are read as `null` — exactly what `JSON.stringify` writes
//!   for an infinity, so the re-serialized bytes match Blitz's;
//! - nesting is limited to [`MAX_DEPTH`] arrays/objects (`serde_json`'s
//!   recursion limit); deeper text is an error value, never a stack overflow.
//!   Lifting the limit would need `serde_stacker` and recursion-free
//!   drop/stringify to be safe on small thread stacks; session data that
//!   deep does not occur in practice.
#![forbid(unsafe_code)]

use std::fmt::{self, Write as _};

use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and objects [`parse`] accepts (`serde_json`'s
/// recursion limit); deeper input is an `Err`, not a panic.
pub const MAX_DEPTH: usize = 127;

/// Serialize like `JSON.stringify(value)`.
pub fn stringify(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value);
    out
}

/// Parse JSON text like `JSON.parse(text)`: everything `JSON.parse` accepts is
/// accepted (up to [`MAX_DEPTH`] levels of nesting), with the substitutions the
/// module documentation lists for lone surrogates and infinite numbers.
///
/// Use this instead of `serde_json::from_str` for any text JavaScript wrote.
/// The error is `serde_json`'s, so its message (line and column) describes the
/// text as given.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    // The common case pays nothing extra: only text serde_json refuses is
    // scanned for the constructs JSON.parse accepts and serde_json does not.
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => match to_serde_dialect(text) {
            Some(fixed) => serde_json::from_str(&fixed),
            None => Err(first),
        },
    }
}

/// Why [`parse_object`] refused a text.
#[derive(Debug)]
pub enum ParseObjectError {
    /// `JSON.parse` would throw on the text.
    Invalid(serde_json::Error),
    /// The text is valid JSON but not an object (an array, string, `null`, ...).
    NotAnObject,
}

impl fmt::Display for ParseObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseObjectError::Invalid(e) => write!(f, "not valid JSON: {e}"),
            ParseObjectError::NotAnObject => f.write_str("not a JSON object"),
        }
    }
}

impl std::error::Error for ParseObjectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseObjectError::Invalid(e) => Some(e),
            ParseObjectError::NotAnObject => None,
        }
    }
}

/// [`parse`] a text that must hold a JSON object. Whether empty text or
/// `null` mean `{}` is the caller's business: here they are errors.
pub fn parse_object(text: &str) -> Result<Map<String, Value>, ParseObjectError> {
    match parse(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ParseObjectError::NotAnObject),
        Err(e) => Err(ParseObjectError::Invalid(e)),
    }
}

/// Rewrite what `JSON.parse` accepts and `serde_json` refuses into what
/// `serde_json` reads the same way: each `\uD800`–`\uDFFF` escape that is not
/// half of a high+low pair becomes `\uFFFD`, and each number literal that
/// overflows a double becomes `null` (padded with spaces). Every rewrite keeps
/// the length, so `serde_json`'s error positions still point into `text`.
/// `None` when there is nothing to rewrite.
fn to_serde_dialect(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => i = scan_string(bytes, i + 1, &mut out),
            b'-' | b'0'..=b'9' => {
                let end = bytes[i..]
                    .iter()
                    .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(bytes.len(), |n| i + n);
                if overflows_f64(&bytes[i..end]) {
                    // The shortest overflowing literal (`1e309`) is longer than `null`.
                    overwrite(&mut out, bytes, i, end - i, |slot| {
                        if let Some((word, pad)) = slot.split_at_mut_checked(4) {
                            word.copy_from_slice(b"null");
                            pad.fill(b' ');
                        }
                    });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    // Only ASCII was replaced by ASCII, so this never fails; if it somehow
    // did, parsing the original text reports the original error.
    out.and_then(|v| String::from_utf8(v).ok())
}

/// Scan a string body starting just after its opening quote; return the
/// index just after its closing quote (or the end of the input).
fn scan_string(bytes: &[u8], mut i: usize, out: &mut Option<Vec<u8>>) -> usize {
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => return i + 1,
            // `\\` and `\"` are two bytes; skipping both is what keeps
            // `\\ud83d` (the text `\ud83d`) from being taken for an escape.
            b'\\' if bytes.get(i + 1) == Some(&b'u') => match hex4(bytes, i + 2) {
                Some(0xD800..=0xDBFF) => {
                    let paired = bytes.get(i + 6) == Some(&b'\\')
                        && bytes.get(i + 7) == Some(&b'u')
                        && matches!(hex4(bytes, i + 8), Some(0xDC00..=0xDFFF));
                    if paired {
                        i += 12;
                    } else {
                        overwrite(out, bytes, i, 6, |s| s.copy_from_slice(b"\\uFFFD"));
                        i += 6;
                    }
                }
                Some(0xDC00..=0xDFFF) => {
                    overwrite(out, bytes, i, 6, |s| s.copy_from_slice(b"\\uFFFD"));
                    i += 6;
                }
                Some(_) => i += 6,
                // Malformed escape: serde_json rejects it, as JSON.parse does.
                None => i += 2,
            },
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    i
}

/// The value of four hex digits at `bytes[at..at + 4]`.
fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u16, |acc, &c| {
        let d = (c as char).to_digit(16)?;
        Some(acc << 4 | d as u16)
    })
}

/// Replace `len` bytes at `at` in the (lazily copied) output.
fn overwrite(
    out: &mut Option<Vec<u8>>,
    bytes: &[u8],
    at: usize,
    len: usize,
    fill: impl FnOnce(&mut [u8]),
) {
    let buf = out.get_or_insert_with(|| bytes.to_vec());
    if let Some(slot) = buf.get_mut(at..at + len) {
        fill(slot);
    }
}

/// Whether `literal` is a JSON number (RFC 8259 grammar, which `JSON.parse`
/// shares) whose value is beyond the largest double, i.e. `±Infinity` in JS.
fn overflows_f64(literal: &[u8]) -> bool {
    // Only an exponent or 309+ integer digits (1.8e308 written out) can
    // overflow; the grammar check keeps us from "fixing" text JSON.parse
    // rejects (`01e999`).
    let has_exponent = literal.iter().any(|c| matches!(c, b'e' | b'E'));
    if !(has_exponent || literal.len() >= 309) || !is_json_number(literal) {
        return false;
    }
    std::str::from_utf8(literal)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(f64::is_infinite)
}

/// `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
fn is_json_number(s: &[u8]) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let mut rest = s.strip_prefix(b"-").unwrap_or(s);
    match rest.first() {
        Some(b'0') => rest = &rest[1..],
        Some(b'1'..=b'9') => rest = &rest[digits(rest)..],
        _ => return false,
    }
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, v);
            }
            out.push(']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

/// An object's members in JavaScript's property order (`OrdinaryOwnPropertyKeys`,
/// which `JSON.stringify` follows): array-index keys in ascending numeric
/// order, then every other key in insertion order. So `{userId: null, 2: "x"}`
/// is written `{"2":"x","userId":null}`.
fn write_object(out: &mut String, map: &Map<String, Value>) {
    out.push('{');
    let mut first = true;
    let mut member = |out: &mut String, k: &str, v: &Value| {
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, k);
        out.push(':');
        write_value(out, v);
    };
    if map.keys().any(|k| array_index(k).is_some()) {
        let mut indexed: Vec<(u32, &str, &Value)> = map
            .iter()
            .filter_map(|(k, v)| array_index(k).map(|n| (n, k.as_str(), v)))
            .collect();
        // Canonical decimal keys are unique numbers, so the sort is total.
        indexed.sort_unstable_by_key(|&(n, _, _)| n);
        for (_, k, v) in indexed {
            member(out, k, v);
        }
        for (k, v) in map.iter().filter(|(k, _)| array_index(k).is_none()) {
            member(out, k, v);
        }
    } else {
        for (k, v) in map {
            member(out, k, v);
        }
    }
    out.push('}');
}

/// The array index a property key denotes, if any: its canonical decimal form
/// (`0`, or no leading zero, no sign, no fraction) of a number up to
/// 2^32 − 2. `"4294967295"`, `"01"`, `"-1"`, `"1.0"` and `""` are plain
/// string keys in JavaScript, ordered by insertion.
fn array_index(key: &str) -> Option<u32> {
    let b = key.as_bytes();
    let canonical = match b {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 10 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// `JSON.stringify` of a string (the quote algorithm of ECMA-262 §25.5.2.3).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n.as_i64() {
        // Integers beyond 2^53 are not exact in JS; print what JS would.
        if i.unsigned_abs() <= (1u64 << 53) {
            let _ = write!(out, "{i}");
            return;
        }
    } else if let Some(u) = n.as_u64() {
        if u <= (1u64 << 53) {
            let _ = write!(out, "{u}");
            return;
        }
    }
    match n.as_f64() {
        Some(f) => write_f64(out, f),
        None => out.push_str("null"),
    }
}

/// ECMAScript `Number::toString(x)` for finite `x`; `JSON.stringify` writes
/// `null` for NaN and infinities.
pub fn write_f64(out: &mut String, x: f64) {
    if !x.is_finite() {
        out.push_str("null");
        return;
    }
    if x == 0.0 {
        out.push('0'); // also -0
        return;
    }
    if x < 0.0 {
        out.push('-');
    }
    // Shortest round-trip digits, as "d.ddde±x" from `{:e}`. When two
    // shortest candidates are equally close (x = 963715248458456.25 lies
    // halfway between …456.2 and …456.3), Number::toString takes the even
    // one and Rust's shortest mode takes the upper one. Rust's exact mode
    // rounds half to even, so the k-digit rounding of x is JS's choice
    // whenever it reads back as x; otherwise the shortest form is.
    let shortest = format!("{:e}", x.abs());
    let k = shortest
        .split_once('e')
        .map_or(shortest.len(), |(m, _)| m.len())
        .saturating_sub(usize::from(shortest.contains('.')));
    let even = format!("{:.*e}", k.saturating_sub(1), x.abs());
    let sci = if even != shortest && even.parse::<f64>() == Ok(x.abs()) {
        even
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    // value = 0.d1d2..dk × 10^n
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        for _ in 0..(n - k) {
            out.push('0');
        }
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e >= 0 { "+" } else { "-" }, e.abs());
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn num(x: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, x);
        s
    }

    /// `JSON.stringify(JSON.parse(text))`.
    fn round(text: &str) -> String {
        match parse(text) {
            Ok(v) => stringify(&v),
            Err(e) => panic!("{text:?} refused: {e}"),
        }
    }

    #[test]
    #[allow(
        clippy::excessive_precision,
        reason = "exact halfway values on purpose"
    )]
    fn numbers_like_javascript() {
        // Expected strings are what Node 20 prints for String(x).
        let cases: &[(f64, &str)] = &[
            (5.0, "5"),
            (-5.0, "-5"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (123456789.125, "123456789.125"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (0.000123, "0.000123"),
            (-0.0, "0"),
            (2f64.powi(53), "9007199254740992"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (123e-20, "1.23e-18"),
            (0.1 + 0.2, "0.30000000000000004"),
            // Exactly halfway between two shortest candidates: JS takes the
            // even last digit, Rust's `{:e}` the upper one (…456.3).
            (963715248458456.25, "963715248458456.2"),
            (1632270178259254.25, "1632270178259254.2"),
            (9986425435540.8125, "9986425435540.812"),
            (-607278631904503.25, "-607278631904503.2"),
            (7.450580596923828e-9, "7.450580596923828e-9"),
        ];
        for (x, want) in cases {
            assert_eq!(num(*x), *want, "{x:e}");
        }
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn round_trips_json_stringify_output() {
        // Produced by JSON.stringify in Node 20.
        let texts = [
            r#"{"userId":42,"role":"admin","name":"Zoë 🚀 </>?","orgs":[1,2]}"#,
            r#"{"b":1,"a":2,"nested":{"z":null,"y":[true,false,"x"]}}"#,
            r#"{"s":"quote\" backslash\\ nl\n tab\t ctl\u0001"}"#,
            r#"{"n":[0,-1,1.5,1e+21,1.5e-7,12345678901234567000,9007199254740993]}"#,
            r#"{"u2028":" ","emoji":"😀"}"#,
            r#"{"2":"x","userId":null,"a":1}"#,
        ];
        for t in texts {
            let again = round(t);
            if t.contains("9007199254740993") {
                // JS itself parses 9007199254740993 as 9007199254740992.
                assert!(again.ends_with("9007199254740992]}"), "{again}");
            } else {
                assert_eq!(again, t);
            }
        }
    }

    // ------------------------------------------------------------ 1. floats

    /// SplitMix64: a fixed seed makes any failure reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// Parse `x` written as JS writes it (`String(x)`), as Rust's shortest
    /// `{:e}` and as positional `{}`: each must read back to the same bits and
    /// stringify to `String(x)`.
    fn check_double(x: f64) {
        let js = num(x);
        for text in [js.clone(), format!("{x:e}"), format!("{x}")] {
            let v = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let back = v.as_f64().unwrap_or_else(|| panic!("{text}: {v:?}"));
            assert_eq!(back.to_bits(), x.to_bits(), "{text} read as {back:e}");
            assert_eq!(stringify(&v), js, "{text}");
        }
    }

    #[test]
    fn random_doubles_parse_exactly() {
        let mut rng = Rng(0x5EED_B117_2A07_0001);
        let mut checked = 0;
        while checked < 100_000 {
            // Uniform bit patterns cover every exponent.
            let x = f64::from_bits(rng.next());
            if x.is_finite() && x != 0.0 {
                check_double(x);
                checked += 1;
            }
        }
        // Values like the ones apps store: 17 significant digits at ordinary
        // magnitudes, where serde_json's fast path used to be off by one ulp.
        for _ in 0..100_000 {
            let frac = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let scale = 10f64.powi((rng.next() % 30) as i32 - 10);
            let sign = if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
            let x = sign * frac * scale;
            if x != 0.0 {
                check_double(x);
            }
        }
    }

    #[test]
    fn double_edge_cases() {
        for x in [
            5e-324,
            -5e-324,
            2.2250738585072014e-308,
            2.225073858507201e-308,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            0.1 + 0.2,
            1e21,
            1e-7,
            1e-6,
            999999999999999900000.0,
            380658.60827818996,
            2f64.powi(53),
            2f64.powi(53) + 2.0,
            2f64.powi(64),
            -(2f64.powi(63)),
        ] {
            check_double(x);
        }
        // (JSON text, JSON.stringify(JSON.parse(text))) as Node 20 prints them.
        let cases = [
            ("380658.60827818996", "380658.60827818996"),
            ("963715248458456.25", "963715248458456.2"),
            ("12345678901234567890", "12345678901234567000"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("9007199254740995", "9007199254740996"),
            ("18446744073709551615", "18446744073709552000"),
            ("18446744073709551616", "18446744073709552000"),
            ("-9223372036854775809", "-9223372036854776000"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("1e21", "1e+21"),
            ("1E+2", "100"),
            ("1.0", "1"),
            ("0.1e1", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e-7", "1e-7"),
            ("123e-20", "1.23e-18"),
            ("2.4703282292062328e-324", "5e-324"),
            ("2.4703282292062327e-324", "0"),
            ("1e-400", "0"),
            ("-1e-400", "0"),
            ("1.7976931348623158e308", "1.7976931348623157e+308"),
            // JSON.parse reads these as ±Infinity, which JSON.stringify writes as null.
            ("1e400", "null"),
            ("-1e400", "null"),
            ("1.7976931348623159e308", "null"),
            ("[1e999,-2E+999,{\"a\":1e309}]", "[null,null,{\"a\":null}]"),
        ];
        for (text, want) in cases {
            assert_eq!(round(text), want, "{text}");
        }
        // Written out: 309 digits is the shortest overflow.
        for (head, zeros, want) in [
            ("1", 400, "null"),
            ("18", 307, "null"),
            ("-18", 307, "null"),
            ("17", 307, "1.7e+308"),
            ("0.", 400, "0"),
        ] {
            assert_eq!(
                round(&format!("{head}{}", "0".repeat(zeros))),
                want,
                "{head}"
            );
        }
        // 9007199254740993 is read as JS reads it, not just printed so.
        assert_eq!(
            parse("9007199254740993").unwrap().as_f64(),
            Some(2f64.powi(53))
        );
    }

    // -------------------------------------------------- 2. what JSON.parse takes

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        // (JSON text, what `parse` reads; Blitz would re-write the escape.)
        let cases = [
            (r#""\ud83d""#, "\u{FFFD}"),
            (r#""\ude00""#, "\u{FFFD}"),
            (r#""\uDFFF""#, "\u{FFFD}"),
            (r#""a\ud800b""#, "a\u{FFFD}b"),
            (r#""\ud83d\ude00""#, "😀"),
            (r#""\uD83D\uDE00""#, "😀"),
            (r#""\ud83d\ud83d\ude00""#, "\u{FFFD}😀"),
            (r#""\ude00\ud83d""#, "\u{FFFD}\u{FFFD}"),
            (r#""\ud83dx\ude00""#, "\u{FFFD}x\u{FFFD}"),
            (r#""\ud83d\n""#, "\u{FFFD}\n"),
            (r#""\ud83d\u0041""#, "\u{FFFD}A"),
            (r#""\ud83d\\ude00""#, "\u{FFFD}\\ude00"),
            (r#""\\\ud83d""#, "\\\u{FFFD}"),
            (r#""\"\ud83d""#, "\"\u{FFFD}"),
            (r#""\\ud83d\ud800""#, "\\ud83d\u{FFFD}"),
            (r#""\\\\ud83d\udfff""#, "\\\\ud83d\u{FFFD}"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).ok(), Some(Value::from(want)), "{text}");
        }
        // Escaped backslashes alone are text, not escapes: nothing to fix.
        assert_eq!(parse(r#""\\ud83d""#).unwrap(), Value::from("\\ud83d"));
        assert_eq!(
            round(r#"{"userId":1,"n\udc00":"a\ud83d","ok":"\ud83d\ude00"}"#),
            "{\"userId\":1,\"n\u{FFFD}\":\"a\u{FFFD}\",\"ok\":\"😀\"}"
        );
        // Outside strings nothing is rewritten.
        assert_eq!(round(r#"[1,"\ud83d",2]"#), "[1,\"\u{FFFD}\",2]");
    }

    #[test]
    fn accepts_json_parse_whitespace_and_duplicates() {
        assert_eq!(
            round(" \t\n\r{ \"a\" :\t[ 1 ,\r\n2 ] }\r\n "),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(round(" 1 "), "1");
        assert_eq!(round(r#""x""#), r#""x""#);
        assert_eq!(round("null"), "null");
        // Last value wins, first position stays.
        assert_eq!(round(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(round(r#"{"__proto__":1}"#), r#"{"__proto__":1}"#);
    }

    #[test]
    fn refuses_what_json_parse_refuses() {
        for text in [
            "",
            " ",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "01e999",
            "1e999x",
            "-",
            ".5",
            "1.",
            "1e",
            "+1",
            "NaN",
            "Infinity",
            "'a'",
            "{a:1}",
            "[1] 2",
            "\u{feff}1",
            "\u{a0}1",
            "\"\u{1}\"",
            r#""\ud8""#,
            r#""\uZZZZ""#,
            r#""\ud83d\uZZZZ""#,
            r#""\x""#,
            r#""\ud83d"#,
            "// c\n1",
        ] {
            assert!(parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn errors_point_into_the_text_as_given() {
        let e = parse(r#"["\ud83d",1e999,x]"#).unwrap_err();
        assert_eq!((e.line(), e.column()), (1, 17), "{e}");
    }

    #[test]
    fn depth_beyond_the_limit_is_an_error_not_a_crash() {
        let nest = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
        assert!(parse(&nest(MAX_DEPTH)).is_ok());
        assert!(parse(&nest(MAX_DEPTH + 1)).is_err());
        let objects = format!("{}1{}", r#"{"a":"#.repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(stringify(&parse(&objects).unwrap()), objects);
        // Far deeper, and with something to rewrite: still just an error.
        let deep = format!("{}\"\\ud83d\"{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn parse_object_tells_invalid_from_not_an_object() {
        assert_eq!(parse_object(r#"{"a":"\ud800"}"#).unwrap()["a"], "\u{FFFD}");
        for text in ["null", "[]", "1", "\"{}\""] {
            assert!(
                matches!(parse_object(text), Err(ParseObjectError::NotAnObject)),
                "{text}"
            );
        }
        for text in ["", "{", "{}}"] {
            assert!(
                matches!(parse_object(text), Err(ParseObjectError::Invalid(_))),
                "{text}"
            );
        }
    }

    // ---------------------------------------------------------- 3. key order

    #[test]
    fn keys_in_javascript_property_order() {
        // Expected by the rule (ECMA-262 OrdinaryOwnPropertyKeys): array
        // indices 0..=4294967294 ascending, then the rest by insertion.
        let cases = [
            (
                r#"{"userId":null,"2":"x","a":1}"#,
                r#"{"2":"x","userId":null,"a":1}"#,
            ),
            (
                r#"{"b":1,"10":2,"2":3,"0":4,"4294967294":5,"4294967295":6,"01":7,"-1":8,"1.0":9,"":10,"99999999999999999999":11,"a":12,"1":13}"#,
                r#"{"0":4,"1":13,"2":3,"10":2,"4294967294":5,"b":1,"4294967295":6,"01":7,"-1":8,"1.0":9,"":10,"99999999999999999999":11,"a":12}"#,
            ),
            (
                r#"{"+1":1," 1":2,"1 ":3,"1e3":4,"0x1":5,"00":6,"١":7,"42949672940":8,"3":9}"#,
                r#"{"3":9,"+1":1," 1":2,"1 ":3,"1e3":4,"0x1":5,"00":6,"١":7,"42949672940":8}"#,
            ),
            (
                r#"{"z":{"1":1,"x":2,"0":0},"a":[{"b":1,"3":3}],"7":{"9":[],"8":{}}}"#,
                r#"{"7":{"8":{},"9":[]},"z":{"0":0,"1":1,"x":2},"a":[{"3":3,"b":1}]}"#,
            ),
            (r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#),
            ("{}", "{}"),
        ];
        for (text, want) in cases {
            assert_eq!(round(text), want, "{text}");
        }
        let mut m = Map::new();
        m.insert("userId".into(), Value::Null);
        m.insert("2".into(), Value::from("x"));
        m.insert("a".into(), Value::from(1));
        assert_eq!(
            stringify(&Value::Object(m)),
            r#"{"2":"x","userId":null,"a":1}"#
        );
    }

    #[test]
    fn array_index_boundaries() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        for k in [
            "4294967295",
            "4294967296",
            "10000000000",
            "01",
            "00",
            "-0",
            "-1",
            "1.0",
            "",
            "+1",
            "1a",
        ] {
            assert_eq!(array_index(k), None, "{k:?}");
        }
    }
}
