//! The crate's one error type. Every variant has a stable code that reaches
//! JavaScript as `error.code`; tests assert codes, never messages.
#![forbid(unsafe_code)]

use std::fmt;

/// Stable error codes, exported to TypeScript as string literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A caller passed a value of the wrong type or shape.
    InvalidArgument,
    /// The session configuration is invalid (bad option value, missing secret).
    InvalidConfig,
    /// The session store cannot be reached (down, timed out).
    SessionStoreUnavailable,
    /// The session store failed or holds a record that cannot be read.
    SessionStoreFailed,
    /// The request's anti-CSRF token does not match the session's.
    CsrfTokenMismatch,
    /// A session operation was used wrongly (e.g. `$create` without `userId`).
    InvalidSessionOperation,
    /// The operating system's random number generator failed.
    RandomUnavailable,
    /// The Argon2 engine refused the parameters or could not allocate its memory.
    PasswordHashingFailed,
    /// The password worker pool is gone (it never is in normal operation).
    WorkerPoolUnavailable,
    /// A bug in this crate; the message says where.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 10] = [
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidConfig,
        ErrorCode::SessionStoreUnavailable,
        ErrorCode::SessionStoreFailed,
        ErrorCode::CsrfTokenMismatch,
        ErrorCode::InvalidSessionOperation,
        ErrorCode::RandomUnavailable,
        ErrorCode::PasswordHashingFailed,
        ErrorCode::WorkerPoolUnavailable,
        ErrorCode::Internal,
    ];

    /// The code as the JS side sees it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::SessionStoreUnavailable => "SESSION_STORE_UNAVAILABLE",
            ErrorCode::SessionStoreFailed => "SESSION_STORE_FAILED",
            ErrorCode::CsrfTokenMismatch => "CSRF_TOKEN_MISMATCH",
            ErrorCode::InvalidSessionOperation => "INVALID_SESSION_OPERATION",
            ErrorCode::RandomUnavailable => "RANDOM_UNAVAILABLE",
            ErrorCode::PasswordHashingFailed => "PASSWORD_HASHING_FAILED",
            ErrorCode::WorkerPoolUnavailable => "WORKER_POOL_UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// Build an error from a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias used across the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
