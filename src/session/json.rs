//! JSON exactly as JavaScript's `JSON.stringify` writes it.
//!
//! The public data travels as JSON text that is hashed (into the session
//! token) and base64-encoded (into the public-data cookie), so the bytes must
//! match what Blitz produces: no whitespace, keys in insertion order
//! (`serde_json` with `preserve_order`), non-ASCII as-is, only `"`, `\` and
//! control characters escaped, and numbers in ECMAScript's `Number::toString`
//! form (`1e+21`, `1.5e-7`, `5` rather than `5.0`).
#![forbid(unsafe_code)]

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Serialize like `JSON.stringify(value)`.
pub fn stringify(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value);
    out
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
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
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
    // Shortest round-trip digits (what JS uses), as "d.ddde±x" from `{:e}`.
    let sci = format!("{:e}", x.abs());
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
mod tests {
    use super::*;

    fn num(x: f64) -> String {
        let mut s = String::new();
        write_f64(&mut s, x);
        s
    }

    #[test]
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
        ];
        for t in texts {
            let v: Value = serde_json::from_str(t).expect("parse");
            let again = stringify(&v);
            if t.contains("9007199254740993") {
                // JS itself parses 9007199254740993 as 9007199254740992.
                assert!(again.ends_with("9007199254740992]}"), "{again}");
            } else {
                assert_eq!(again, t);
            }
        }
    }
}
