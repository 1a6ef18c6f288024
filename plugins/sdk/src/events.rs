//! Named events, recorded by the platform with the tenant, council, plugin and time, audited
//! and counted.
//!
//! Needs the `events` capability.
//!
//! ```no_run
//! use guildhall_plugin::events;
//!
//! events::emit("request.created", &serde_json::json!({ "id": "42" }))
//!     .unwrap_or_else(|e| eprintln!("event not recorded: {e}"));
//! ```

use std::fmt;

use serde::Serialize;

use crate::bindings::guildhall::platform::events as wit;

/// Records an event called `name` (1 to 64 of `a-z 0-9 . - _`) with `payload` serialised as
/// JSON (at most 64 KiB). Never put personal data in an event.
pub fn emit<T: Serialize + ?Sized>(name: &str, payload: &T) -> Result<(), EventError> {
    let payload = serde_json::to_string(payload).map_err(|e| EventError::Encode(e.to_string()))?;
    wit::emit(name, &payload).map_err(EventError::from)
}

/// Why an event was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The name is not 1 to 64 characters of `a-z`, `0-9`, `.`, `-` and `_`.
    InvalidName(String),
    /// The platform did not accept the payload as JSON; carries its message.
    InvalidPayload(String),
    /// The payload is larger than 64 KiB; carries its length.
    TooLarge(u64),
    /// The platform did not record the event: its storage failed, or a quota ran out (at
    /// most a set number of events per call and per tenant per minute; the message then
    /// starts with `quota exceeded:`, see [`EventError::is_quota_exceeded`]).
    Unavailable(String),
    /// The payload could not be serialised to JSON; carries serde's message.
    Encode(String),
}

impl EventError {
    /// Whether the event was refused because a quota ran out: emitting more in this call
    /// is pointless, and the tenant's per-minute quota comes back within a minute.
    pub fn is_quota_exceeded(&self) -> bool {
        matches!(self, EventError::Unavailable(message) if message.starts_with("quota exceeded:"))
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventError::InvalidName(name) => write!(f, "invalid event name {name:?}"),
            EventError::InvalidPayload(message) => write!(f, "invalid event payload: {message}"),
            EventError::TooLarge(len) => {
                write!(f, "event payload of {len} bytes is larger than 64 KiB")
            }
            EventError::Unavailable(message) => write!(f, "event not recorded: {message}"),
            EventError::Encode(message) => write!(f, "could not serialise the payload: {message}"),
        }
    }
}

impl std::error::Error for EventError {}

impl From<wit::Error> for EventError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::InvalidName(name) => EventError::InvalidName(name),
            wit::Error::InvalidPayload(message) => EventError::InvalidPayload(message),
            wit::Error::TooLarge(len) => EventError::TooLarge(len),
            wit::Error::Unavailable(message) => EventError::Unavailable(message),
        }
    }
}
