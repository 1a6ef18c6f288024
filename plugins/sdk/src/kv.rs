//! A key-value store private to this plugin in this tenant.
//!
//! Needs the `kv` capability. Keys are UTF-8 strings of 1 to 512 bytes; values are at most
//! 1 MiB; the total per install is capped by the operator's quota. Every council the plugin
//! is installed for shares the same store, so keep each council's data under its own keys:
//! [`CouncilKv::current`] puts every key under `council/<council>/`, for the council of the
//! URL the request came through ([`crate::context::council`]), so one council's requests
//! can neither read nor overwrite another's data by choosing a key.
//!
//! There is no transaction or compare-and-swap: two requests that read, change and write the
//! same key at once can overwrite each other.
//!
//! ```no_run
//! use guildhall_plugin::kv;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Note {
//!     text: String,
//! }
//!
//! # fn main() -> Result<(), kv::KvError> {
//! kv::set_json("notes/1", &Note { text: "hello".into() })?;
//! let note: Option<Note> = kv::get_json("notes/1")?;
//! for key in kv::list_all_keys("notes/")? {
//!     kv::delete(&key)?;
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::guildhall::platform::kv as wit;

pub use wit::Page;

/// The largest `limit` [`list_keys`] honours.
pub const MAX_PAGE: u32 = 1000;

/// The bytes stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    wit::get(key).map_err(KvError::from)
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    wit::set(key, value).map_err(KvError::from)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, KvError> {
    wit::delete(key).map_err(KvError::from)
}

/// One page of keys starting with `prefix`, in ascending byte order, after `cursor` (the
/// previous page's [`Page::next`]), at most `limit` of them (1 to [`MAX_PAGE`]).
pub fn list_keys(prefix: &str, cursor: Option<&str>, limit: u32) -> Result<Page, KvError> {
    wit::list_keys(prefix, cursor, limit.clamp(1, MAX_PAGE)).map_err(KvError::from)
}

/// Every key starting with `prefix`, in ascending byte order, fetched page by page.
pub fn list_all_keys(prefix: &str) -> Result<Vec<String>, KvError> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = list_keys(prefix, cursor.as_deref(), MAX_PAGE)?;
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

/// The JSON value stored under `key`, deserialised into `T`, or `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    match get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| KvError::Decode {
                key: key.to_owned(),
                message: e.to_string(),
            }),
    }
}

/// Stores `value` serialised as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value).map_err(|e| KvError::Encode(e.to_string()))?;
    set(key, &bytes)
}

/// The part of the store that belongs to one council: every key is put under
/// `council/<council>/`.
///
/// Build it with [`CouncilKv::current`], for the council of the URL the request came
/// through. Keys given to its methods and returned by [`CouncilKv::list_all_keys`] are relative
/// to the council's prefix. Check the caller first with [`crate::context::writer`] before a
/// write.
///
/// ```no_run
/// use guildhall_plugin::kv::CouncilKv;
///
/// # fn main() -> Result<(), guildhall_plugin::kv::KvError> {
/// let store = CouncilKv::current();
/// store.set_json("notes/1", "hello")?; // stored as council/<council>/notes/1
/// let note: Option<String> = store.get_json("notes/1")?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouncilKv {
    prefix: String,
}

impl CouncilKv {
    /// The store of the council this request came through.
    pub fn current() -> Self {
        Self::for_council(&crate::context::council())
    }

    /// The store of `council`. In a handler use [`CouncilKv::current`]: a council taken from
    /// the request is the caller's choice, not the platform's. This exists for tests and for
    /// reading data a plugin itself filed under another council.
    pub fn for_council(council: &str) -> Self {
        Self {
            prefix: format!("council/{council}/"),
        }
    }

    /// The full key of `key` in this council's part of the store.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// The prefix every key of this council starts with, `council/<council>/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// [`get`] in this council's part of the store.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        get(&self.key(key))
    }

    /// [`set`] in this council's part of the store.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        set(&self.key(key), value)
    }

    /// [`delete`] in this council's part of the store.
    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        delete(&self.key(key))
    }

    /// [`get_json`] in this council's part of the store.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, KvError> {
        get_json(&self.key(key))
    }

    /// [`set_json`] in this council's part of the store.
    pub fn set_json<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), KvError> {
        set_json(&self.key(key), value)
    }

    /// Every key of this council starting with `prefix`, relative to the council's prefix,
    /// in ascending byte order.
    pub fn list_all_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        Ok(list_all_keys(&self.key(prefix))?
            .into_iter()
            .filter_map(|k| self.relative(&k).map(str::to_owned))
            .collect())
    }

    /// `key` without this council's prefix, or `None` when it is not one of this council's.
    pub fn relative<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.prefix)
    }
}

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The key is empty or longer than 512 bytes; carries the key's length.
    InvalidKey(u32),
    /// The value is larger than 1 MiB; carries the value's length.
    ValueTooLarge(u64),
    /// Storing the value would exceed the install's quota; carries the quota in bytes.
    QuotaExceeded(u64),
    /// The platform's storage failed; retrying later may work.
    Unavailable(String),
    /// The value could not be serialised to JSON; carries serde's message.
    Encode(String),
    /// The stored value is not JSON of the type asked for.
    Decode {
        /// The key read.
        key: String,
        /// serde's message.
        message: String,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::InvalidKey(len) => {
                write!(f, "invalid key of {len} bytes (keys are 1 to 512 bytes)")
            }
            KvError::ValueTooLarge(len) => {
                write!(f, "value of {len} bytes is larger than 1 MiB")
            }
            KvError::QuotaExceeded(quota) => {
                write!(f, "storage quota of {quota} bytes exceeded")
            }
            KvError::Unavailable(message) => write!(f, "storage unavailable: {message}"),
            KvError::Encode(message) => write!(f, "could not serialise the value: {message}"),
            KvError::Decode { key, message } => {
                write!(
                    f,
                    "the value stored under {key:?} is not as expected: {message}"
                )
            }
        }
    }
}

impl std::error::Error for KvError {}

impl From<wit::Error> for KvError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::InvalidKey(len) => KvError::InvalidKey(len),
            wit::Error::ValueTooLarge(len) => KvError::ValueTooLarge(len),
            wit::Error::QuotaExceeded(quota) => KvError::QuotaExceeded(quota),
            wit::Error::Unavailable(message) => KvError::Unavailable(message),
        }
    }
}

impl KvError {
    /// The HTTP status that best reports this error to a caller: `507` for the quota, `503`
    /// when storage is unavailable, `500` otherwise (a bug in the plugin).
    pub fn status(&self) -> u16 {
        match self {
            KvError::QuotaExceeded(_) => 507,
            KvError::Unavailable(_) => 503,
            _ => 500,
        }
    }
}

impl From<KvError> for crate::Response {
    /// A problem response with [`KvError::status`]. The detail names the kind of failure
    /// only, never the platform's message or a stored key.
    fn from(error: KvError) -> Self {
        let detail = match &error {
            KvError::QuotaExceeded(_) => "this service has used all the storage it is allowed",
            KvError::Unavailable(_) => "storage is unavailable; try again later",
            _ => "this service could not read or write its data",
        };
        crate::Response::error(error.status(), detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn council_keys_are_apart() {
        let tandridge = CouncilKv::for_council("tandridge");
        assert_eq!(tandridge.key("uprn/12"), "council/tandridge/uprn/12");
        assert_eq!(tandridge.prefix(), "council/tandridge/");
        assert_eq!(
            tandridge.relative("council/tandridge/uprn/12"),
            Some("uprn/12")
        );
        // A council whose id starts with another's does not share its keys: the prefix ends
        // in a separator, and council ids never contain one.
        let longer = CouncilKv::for_council("tandridge-north");
        assert_eq!(tandridge.relative(&longer.key("uprn/12")), None);
        assert_eq!(longer.relative(&tandridge.key("uprn/12")), None);
        // Keys outside every council's part, such as an old unscoped layout, are no council's.
        assert_eq!(tandridge.relative("uprn/12"), None);
    }
}
