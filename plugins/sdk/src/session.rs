//! A citizen's session with this plugin for this council: the answers given so far in a
//! journey, and the token every form of the session must carry.
//!
//! Needs the `session` capability: `session = true` under `[capabilities]` in `plugin.toml`.
//! A plugin that never calls a function of this module does not import the interface, and
//! needs no declaration; the [`crate::kit`] page kit never calls it by itself.
//!
//! # How sessions work
//!
//! - The platform keeps the session's values; the browser holds only a random cookie that
//!   the plugin never sees. A session belongs to one tenant, council and plugin, ends after a
//!   while without use, and its values are capped in size ([`SessionError::TooLarge`]).
//! - **Only a `GET` (or `HEAD`) starts a session**, when it calls [`set`] or
//!   [`csrf_token`]. Show a journey's first form from a `GET` that asks for the token.
//! - **A `POST` (or any other method) that carries the session cookie must carry the
//!   session's token**, as the form field `csrf` (or the header `x-csrf-token`). The platform
//!   checks it before the plugin runs and refuses a request without it (`403`), so a handler
//!   that is called has a checked token. Put the token in every form:
//!   `<input type="hidden" name="csrf" value="{{ csrf }}">` (the kit's `post_form` macro does).
//! - A request of another method **without** the cookie (an API client's, or a browser that
//!   refuses cookies) has no session: [`get`] answers `None` and [`set`] fails with
//!   [`SessionError::NoSession`].
//!
//! ```no_run
//! use guildhall_plugin::session;
//!
//! # fn main() -> Result<(), session::SessionError> {
//! // On a GET: start the session and put the token in the page's form.
//! let token = session::csrf_token()?;
//! // On the POST that follows: keep an answer for the next page.
//! session::set_json("report/where", &serde_json::json!({ "street": "High Street" }))?;
//! let where_: Option<serde_json::Value> = session::get_json("report/where")?;
//! // After the journey is submitted.
//! session::clear()?;
//! # Ok(())
//! # }
//! ```
//!
//! A journey of question pages rarely needs these functions directly:
//! [`crate::kit::Journey`] keeps its answers under one key.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::guildhall::platform::session as wit;

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// The bytes stored under `key` in this citizen's session, or `None` (also when this request
/// has no session).
pub fn get(key: &str) -> Result<Option<Vec<u8>>, SessionError> {
    wit::get(key).map_err(SessionError::from)
}

/// Stores `value` under `key`, starting the session when this `GET` or `HEAD` has none.
pub fn set(key: &str, value: &[u8]) -> Result<(), SessionError> {
    wit::set(key, value).map_err(SessionError::from)
}

/// Removes `key`; returns whether it existed.
pub fn remove(key: &str) -> Result<bool, SessionError> {
    wit::remove(key).map_err(SessionError::from)
}

/// Removes every value, for example after a journey is submitted. The session and its token
/// stay, so the next page can still show a form.
pub fn clear() -> Result<(), SessionError> {
    wit::clear().map_err(SessionError::from)
}

/// The token to put in every form of this session as the hidden field `csrf`, starting the
/// session when this `GET` or `HEAD` has none.
pub fn csrf_token() -> Result<String, SessionError> {
    wit::csrf_token().map_err(SessionError::from)
}

/// The JSON value stored under `key`, deserialised into `T`, or `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, SessionError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SessionError::Decode {
                key: key.to_owned(),
                message: e.to_string(),
            }),
    }
}

/// Stores `value` serialised as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), SessionError> {
    let bytes = serde_json::to_vec(value).map_err(|e| SessionError::Encode(e.to_string()))?;
    set(key, &bytes)
}

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// This request has no session and cannot start one: it is not a `GET` or `HEAD` and
    /// came without the session cookie (the browser refuses cookies, or the citizen came
    /// straight to a form's `POST`).
    NoSession,
    /// The key is empty or longer than [`MAX_KEY_LEN`] bytes; carries the key's length.
    InvalidKey(u32),
    /// The session's values would be larger than the platform's cap; carries the cap in
    /// bytes.
    TooLarge(u64),
    /// The platform's storage failed; retrying later may work.
    Unavailable(String),
    /// The value could not be serialised to JSON; carries serde's message.
    Encode(String),
    /// The stored value is not JSON of the type asked for (for example after the plugin
    /// changed the shape of what it keeps).
    Decode {
        /// The key read.
        key: String,
        /// serde's message.
        message: String,
    },
}

impl SessionError {
    /// The HTTP status that best reports this error:
    ///
    /// - `400` for [`NoSession`](Self::NoSession): the request came without the session it
    ///   needs; starting again from the journey's first page (a `GET`) fixes it;
    /// - `413` for [`TooLarge`](Self::TooLarge): the answers are more than a session holds;
    /// - `503` for [`Unavailable`](Self::Unavailable): try again later;
    /// - `500` otherwise, a bug in the plugin (a bad key, a value that does not serialise or
    ///   no longer deserialises).
    pub fn status(&self) -> u16 {
        match self {
            SessionError::NoSession => 400,
            SessionError::TooLarge(_) => 413,
            SessionError::Unavailable(_) => 503,
            _ => 500,
        }
    }

    /// What to tell a citizen, without internals: no key, no platform message.
    pub fn public_message(&self) -> &'static str {
        match self {
            SessionError::NoSession => {
                "your session has ended or your browser did not send it; start again, with cookies allowed for this site"
            }
            SessionError::TooLarge(_) => "your answers are too long to keep; shorten them",
            SessionError::Unavailable(_) => "this service is unavailable; try again later",
            _ => "this service could not keep your answers",
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::NoSession => f.write_str(
                "this request has no session and cannot start one (only GET and HEAD can)",
            ),
            SessionError::InvalidKey(len) => {
                write!(
                    f,
                    "invalid session key of {len} bytes (keys are 1 to {MAX_KEY_LEN} bytes)"
                )
            }
            SessionError::TooLarge(cap) => {
                write!(f, "the session would be larger than its cap of {cap} bytes")
            }
            SessionError::Unavailable(message) => write!(f, "session unavailable: {message}"),
            SessionError::Encode(message) => {
                write!(f, "could not serialise the session value: {message}")
            }
            SessionError::Decode { key, message } => write!(
                f,
                "the session value under {key:?} is not as expected: {message}"
            ),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<wit::Error> for SessionError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::NoSession => SessionError::NoSession,
            wit::Error::InvalidKey(len) => SessionError::InvalidKey(len),
            wit::Error::TooLarge(cap) => SessionError::TooLarge(cap),
            wit::Error::Unavailable(message) => SessionError::Unavailable(message),
        }
    }
}

impl From<SessionError> for crate::Response {
    /// A problem response (`application/problem+json`) with [`SessionError::status`] and
    /// [`SessionError::public_message`] as its detail. For pages, render
    /// [`crate::kit::PageError`] instead, which becomes an HTML page.
    fn from(error: SessionError) -> Self {
        crate::Response::error(error.status(), error.public_message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages_hide_internals() {
        let cases = [
            (SessionError::NoSession, 400),
            (SessionError::InvalidKey(0), 500),
            (SessionError::TooLarge(65_536), 413),
            (
                SessionError::Unavailable("db down at 10.0.0.7".to_owned()),
                503,
            ),
            (SessionError::Encode("x".to_owned()), 500),
            (
                SessionError::Decode {
                    key: "secret/key".to_owned(),
                    message: "m".to_owned(),
                },
                500,
            ),
        ];
        for (error, status) in cases {
            let response = crate::Response::from(error.clone());
            assert_eq!(response.status, status, "{error}");
            assert_eq!(
                response.header("content-type"),
                Some("application/problem+json")
            );
            let body = response.body_text();
            assert!(!body.contains("10.0.0.7"), "{body}");
            assert!(!body.contains("secret/key"), "{body}");
        }
        assert!(SessionError::InvalidKey(200).to_string().contains("200"));
    }
}
