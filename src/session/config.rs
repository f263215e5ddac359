//! The session configuration: Blitz's `AuthServerPlugin` options, validated.
//!
//! Option names and defaults are Blitz's (spec §2). Everything that Blitz
//! reads from the environment is resolved once, by the caller, into plain
//! values here, so the engine itself never looks at the process environment.
#![forbid(unsafe_code)]

use crate::error::{Error, ErrorCode, Result};
use crate::session::cookie::{is_valid_cookie_prefix, CookieNames, CookieOptions, SameSite};

/// Default `sessionExpiryMinutes`: 30 days.
pub const DEFAULT_SESSION_EXPIRY_MINUTES: f64 = 43_200.0;
/// Default `anonSessionExpiryMinutes`: 5 × 365 days.
pub const DEFAULT_ANON_SESSION_EXPIRY_MINUTES: f64 = 2_628_000.0;
/// Lifetime of an anonymous session after its public data changes: 30 years of 365.25 days.
pub const ANON_PUBLIC_DATA_EXPIRY_MINUTES: f64 = 30.0 * 525_960.0;

/// Validated configuration of one session engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// `P` in every cookie name.
    pub cookie_prefix: String,
    /// Idle window of authenticated sessions, in minutes.
    pub session_expiry_minutes: f64,
    /// Cookie lifetime of a new anonymous session, in minutes.
    pub anon_session_expiry_minutes: f64,
    /// Attributes shared by every cookie.
    pub cookie: CookieOptions,
    /// Public-data keys copied to every session of the user by `$setPublicData`.
    pub public_data_keys_to_sync: Vec<String>,
    /// HMAC key of anonymous-session JWTs.
    pub secret: String,
    /// Earlier keys still accepted when verifying (key rotation).
    pub previous_secrets: Vec<String>,
    /// `DANGEROUSLY_DISABLE_CSRF_PROTECTION`.
    pub csrf_disabled: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_prefix: "blitz".to_string(),
            session_expiry_minutes: DEFAULT_SESSION_EXPIRY_MINUTES,
            anon_session_expiry_minutes: DEFAULT_ANON_SESSION_EXPIRY_MINUTES,
            cookie: CookieOptions {
                domain: None,
                secure: false,
                same_site: SameSite::Lax,
            },
            public_data_keys_to_sync: vec!["role".to_string(), "roles".to_string()],
            secret: "default-dev-secret".to_string(),
            previous_secrets: Vec::new(),
            csrf_disabled: false,
        }
    }
}

impl SessionConfig {
    /// Check the values a caller can get wrong; the messages are Blitz's where Blitz has one.
    pub fn validate(&self) -> Result<()> {
        if !is_valid_cookie_prefix(&self.cookie_prefix) {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                "The cookie prefix used has invalid characters. Only alphanumeric characters, \"-\"  and \"_\" character are supported",
            ));
        }
        for (name, v) in [
            ("sessionExpiryMinutes", self.session_expiry_minutes),
            ("anonSessionExpiryMinutes", self.anon_session_expiry_minutes),
        ] {
            // Ten million years is where JS dates end; anything else is a typo.
            if !v.is_finite() || v <= 0.0 || v > 5_000_000_000.0 {
                return Err(Error::new(
                    ErrorCode::InvalidConfig,
                    format!("{name} must be a positive number of minutes, got {v}"),
                ));
            }
        }
        if let Err(e) = self.cookie.validate() {
            return Err(Error::new(ErrorCode::InvalidConfig, e.message()));
        }
        if self.secret.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                "the session secret is empty",
            ));
        }
        Ok(())
    }

    /// `sessionExpiryMinutes` in milliseconds (whole minutes, as Blitz truncates).
    pub fn session_expiry_ms(&self) -> i64 {
        minutes_to_ms(self.session_expiry_minutes)
    }

    /// `anonSessionExpiryMinutes` in milliseconds (whole minutes).
    pub fn anon_session_expiry_ms(&self) -> i64 {
        minutes_to_ms(self.anon_session_expiry_minutes)
    }

    /// The cookie names for this prefix.
    pub fn cookie_names(&self) -> CookieNames {
        CookieNames::new(&self.cookie_prefix)
    }
}

fn minutes_to_ms(minutes: f64) -> i64 {
    (minutes.trunc() as i64).saturating_mul(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let c = SessionConfig::default();
        c.validate().expect("defaults are valid");
        assert_eq!(
            c.cookie_names()
                .get(crate::session::cookie::CookieKind::SessionToken),
            "blitz_sSessionToken"
        );
        assert_eq!(c.session_expiry_ms(), 43_200 * 60_000);
    }

    #[test]
    fn rejects_bad_values() {
        for prefix in ["", "a b", "a;b", "é"] {
            let c = SessionConfig {
                cookie_prefix: prefix.into(),
                ..SessionConfig::default()
            };
            let e = c.validate().expect_err(prefix);
            assert_eq!(e.code(), ErrorCode::InvalidConfig);
            assert!(e
                .message()
                .starts_with("The cookie prefix used has invalid characters."));
        }
        for m in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let c = SessionConfig {
                session_expiry_minutes: m,
                ..SessionConfig::default()
            };
            assert!(c.validate().is_err());
        }
        let c = SessionConfig {
            session_expiry_minutes: 90.9,
            ..SessionConfig::default()
        };
        assert_eq!(c.session_expiry_ms(), 90 * 60_000);
    }
}
