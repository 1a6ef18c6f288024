//! A key-value store private to this plugin in this tenant.
//!
//! Needs the `kv` capability. Keys are UTF-8 strings of 1 to 512 bytes; values are at most
//! 1 MiB; the total per install is capped by the operator's quota. Every council the plugin
//! is installed for shares the same store, so keep each council's data under its own keys:
//! [`CouncilKv::current`] puts every key under `council/<council>/`, for the council of the
//! URL the request came through ([`crate::context::council`]), so one council's requests
//! can neither read nor overwrite another's data by choosing a key.
//!
//! There are no transactions: two requests that [`get`], change and [`set`] the same key at
//! once can overwrite each other. For counters, reference numbers and records that must not
//! be overwritten use the atomic operations, which no concurrent request can interleave
//! with: [`increment`], [`compare_and_swap`] and [`set_if_absent`] (and
//! [`set_json_if_absent`]).
//!
//! ```no_run
//! use guildhall_plugin::kv::CouncilKv;
//!
//! # fn main() -> Result<(), guildhall_plugin::kv::KvError> {
//! let store = CouncilKv::current();
//! // Every concurrent request gets a different number.
//! let id = store.increment("counter/case", 1)?;
//! // Filed once: a record already under this key is never replaced.
//! let filed = store.set_json_if_absent(&format!("case/{id}"), "a new case")?;
//! assert!(filed);
//! # Ok(())
//! # }
//! ```
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

/// Stores `value` under `key` for `ttl` (whole seconds, 1 second to 10 years): after that
/// the key reads as absent and the platform removes it. [`set`] clears a key's time to live;
/// [`increment`] and [`compare_and_swap`] keep it. Use it for data with a natural end, such
/// as a one-time code or a draft, so personal data is not kept longer than needed.
pub fn set_with_ttl(key: &str, value: &[u8], ttl: std::time::Duration) -> Result<(), KvError> {
    let seconds = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
    wit::set_with_ttl(key, value, seconds).map_err(KvError::from)
}

/// Adds `delta` to the number stored under `key`, stores the sum and returns it, as one
/// write no concurrent request can interleave with. A missing key counts as 0.
///
/// The number is stored as the decimal text of an `i64` (`b"42"`, `b"-7"`), so [`get`]
/// reads it back as that text, [`get_json`]`::<i64>` as the number, and
/// [`set_json`]`(key, &41)` prepares one. Any other stored value, or a sum outside the
/// `i64` range, is [`KvError::NotANumber`] and nothing changes.
pub fn increment(key: &str, delta: i64) -> Result<i64, KvError> {
    wit::increment(key, delta).map_err(|e| KvError::from(e).for_number(key))
}

/// Stores `new` under `key` only if the key holds exactly `old` now (`None`: only if it is
/// absent), as one write no concurrent request can interleave with. Returns whether it
/// stored `new`; on `false`, read the key again and decide afresh.
pub fn compare_and_swap(key: &str, old: Option<&[u8]>, new: &[u8]) -> Result<bool, KvError> {
    wit::compare_and_swap(key, old, new).map_err(KvError::from)
}

/// Stores `value` under `key` only if the key is absent; returns whether it stored it. Of
/// concurrent calls for one key exactly one gets `true`.
pub fn set_if_absent(key: &str, value: &[u8]) -> Result<bool, KvError> {
    wit::set_if_absent(key, value).map_err(KvError::from)
}

/// Stores `value` serialised as JSON under `key` only if the key is absent; returns whether
/// it stored it.
pub fn set_json_if_absent<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<bool, KvError> {
    let bytes = serde_json::to_vec(value).map_err(|e| KvError::Encode(e.to_string()))?;
    set_if_absent(key, &bytes)
}

/// Replaces the JSON value under `key` with `new` only if it is exactly the JSON of `old`
/// now (`None`: only if the key is absent); returns whether it did. Compares bytes, so `old`
/// must serialise as the stored value did (as a value read with [`get_json`] and written
/// with [`set_json`] by the same type does).
pub fn compare_and_swap_json<T: Serialize + ?Sized>(
    key: &str,
    old: Option<&T>,
    new: &T,
) -> Result<bool, KvError> {
    let encode = |v: &T| serde_json::to_vec(v).map_err(|e| KvError::Encode(e.to_string()));
    let old = old.map(encode).transpose()?;
    compare_and_swap(key, old.as_deref(), &encode(new)?)
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

    /// [`set_with_ttl`] in this council's part of the store.
    pub fn set_with_ttl(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<(), KvError> {
        set_with_ttl(&self.key(key), value, ttl)
    }

    /// [`delete`] in this council's part of the store.
    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        delete(&self.key(key))
    }

    /// [`increment`] in this council's part of the store.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        increment(&self.key(key), delta)
    }

    /// [`compare_and_swap`] in this council's part of the store.
    pub fn compare_and_swap(
        &self,
        key: &str,
        old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        compare_and_swap(&self.key(key), old, new)
    }

    /// [`set_if_absent`] in this council's part of the store.
    pub fn set_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, KvError> {
        set_if_absent(&self.key(key), value)
    }

    /// [`set_json_if_absent`] in this council's part of the store.
    pub fn set_json_if_absent<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<bool, KvError> {
        set_json_if_absent(&self.key(key), value)
    }

    /// [`compare_and_swap_json`] in this council's part of the store.
    pub fn compare_and_swap_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        old: Option<&T>,
        new: &T,
    ) -> Result<bool, KvError> {
        compare_and_swap_json(&self.key(key), old, new)
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
    /// [`increment`] found a value that is not the decimal text of an `i64` under the key,
    /// or the sum would leave the `i64` range.
    NotANumber {
        /// The key incremented.
        key: String,
        /// The platform's message.
        message: String,
    },
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
            KvError::NotANumber { key, message } => {
                write!(
                    f,
                    "the value stored under {key:?} is not a number: {message}"
                )
            }
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

/// How the platform starts the message of an `unavailable` error that means "not a number".
const NOT_A_NUMBER: &str = "not a number: ";

impl KvError {
    /// The error an increment of `key` reports: the platform's `not a number:` message
    /// (an existing WIT case, so older components keep linking) as [`KvError::NotANumber`].
    fn for_number(self, key: &str) -> Self {
        match self {
            KvError::Unavailable(message) if message.starts_with(NOT_A_NUMBER) => {
                KvError::NotANumber {
                    key: key.to_owned(),
                    message: message[NOT_A_NUMBER.len()..].to_owned(),
                }
            }
            other => other,
        }
    }

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

    #[test]
    fn a_value_that_is_not_a_number_is_named() {
        let e = KvError::Unavailable("not a number: the stored value \"x\" is not an i64".into())
            .for_number("n");
        assert_eq!(
            e,
            KvError::NotANumber {
                key: "n".into(),
                message: "the stored value \"x\" is not an i64".into()
            }
        );
        assert_eq!(e.status(), 500);
        // Storage that failed stays a failure of storage.
        let e = KvError::Unavailable("the platform's storage failed".into()).for_number("n");
        assert_eq!(e.status(), 503);
    }
}
