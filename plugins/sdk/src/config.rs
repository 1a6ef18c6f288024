//! The install's configuration: the settings a tenant gave when installing this plugin,
//! checked by the platform against the `[config.<key>]` declarations in `plugin.toml`.
//!
//! Needs no capability.
//!
//! ```no_run
//! use guildhall_plugin::config;
//!
//! let name: String = config::get("council_name").unwrap_or_else(|| "the council".to_owned());
//! let max_rows: u64 = config::get("max_upload_rows").unwrap_or(5000);
//! ```

use std::fmt;

use serde::de::DeserializeOwned;

use crate::bindings::guildhall::platform::context as wit;

/// The value of setting `key` as a `T`, or `None` when it is not set or is not a `T`.
///
/// Use [`try_get`] to tell the two apart.
pub fn get<T: DeserializeOwned>(key: &str) -> Option<T> {
    try_get(key).ok().flatten()
}

/// The value of setting `key` as a `T`: `Ok(None)` when it is not set, an error when it is
/// set but is not a `T`.
pub fn try_get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, ConfigError> {
    let Some(text) = wit::config_value(key) else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ConfigError {
            key: key.to_owned(),
            message: e.to_string(),
        })
}

/// The whole configuration, a JSON object (`{}` if the platform sent something unreadable).
pub fn all() -> serde_json::Value {
    serde_json::from_str(&wit::config())
        .unwrap_or_else(|_| serde_json::Value::Object(serde_json::Map::new()))
}

/// A setting that is present but does not have the type asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting's key.
    pub key: String,
    /// Why it could not be read as the type asked for.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "setting {:?} has the wrong type: {}",
            self.key, self.message
        )
    }
}

impl std::error::Error for ConfigError {}
