//! The session engine: wire formats (cookies, tokens, JSON) and the request
//! state machine of Blitz's `getSession` / `SessionContext`.

pub mod config;
pub mod cookie;
pub mod date;
pub mod engine;
pub mod json;
pub mod jwt;
pub mod token;
