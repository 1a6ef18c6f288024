//! Secrets the alliance's administrators set for this install, such as API keys: stored
//! encrypted by the platform and never shown again.
//!
//! Each secret must be declared under `[secrets]` in `plugin.toml`, with a description for
//! the administrators who set it; declaring any secret gives the plugin this capability:
//!
//! ```toml
//! [secrets]
//! pay_api_key = { description = "The council's GOV.UK Pay API key" }
//! ```
//!
//! A secret may be set for the whole install and, where a council's differs, for that
//! council; [`get`] answers the calling council's own value when there is one, otherwise the
//! install's. Never log a secret or put it in a response or an error message.
//!
//! ```no_run
//! use guildhall_plugin::secrets;
//!
//! match secrets::get("pay_api_key") {
//!     Ok(Some(key)) => { /* call the API with it */ }
//!     Ok(None) => eprintln!("pay_api_key is not set for this council"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! ```

use std::fmt;

use crate::bindings::guildhall::platform::secrets as wit;

/// The value of the declared secret `name` for the council of this request, or `None` when
/// no administrator has set it.
pub fn get(name: &str) -> Result<Option<String>, SecretsError> {
    wit::get(name).map_err(SecretsError::from)
}

/// The value of the declared secret `name`, or [`SecretsError::NotSet`] when no
/// administrator has set it: for secrets the plugin cannot work without.
pub fn require(name: &str) -> Result<String, SecretsError> {
    get(name)?.ok_or_else(|| SecretsError::NotSet(name.to_owned()))
}

/// Why a secret could not be read. Carries the secret's name, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsError {
    /// The manifest does not declare a secret of this name under `[secrets]`; carries the
    /// name.
    Undeclared(String),
    /// The platform could not read or decrypt it; retrying later may work.
    Unavailable(String),
    /// No administrator has set the secret named here ([`require`] only).
    NotSet(String),
}

impl SecretsError {
    /// The HTTP status that best reports this error: `503` when the platform could not read
    /// it or nobody has set it (the service cannot work until someone does), `500` for an
    /// undeclared name (a bug in the plugin).
    pub fn status(&self) -> u16 {
        match self {
            SecretsError::Undeclared(_) => 500,
            SecretsError::Unavailable(_) | SecretsError::NotSet(_) => 503,
        }
    }
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsError::Undeclared(name) => write!(
                f,
                "the secret {name:?} is not declared under [secrets] in plugin.toml"
            ),
            SecretsError::Unavailable(message) => write!(f, "secrets unavailable: {message}"),
            SecretsError::NotSet(name) => {
                write!(f, "the secret {name:?} is not set for this council")
            }
        }
    }
}

impl std::error::Error for SecretsError {}

impl From<wit::Error> for SecretsError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Undeclared(name) => SecretsError::Undeclared(name),
            wit::Error::Unavailable(message) => SecretsError::Unavailable(message),
        }
    }
}

impl From<SecretsError> for crate::Response {
    /// A problem response with [`SecretsError::status`] that names no secret.
    fn from(error: SecretsError) -> Self {
        crate::Response::error(
            error.status(),
            "this service is not fully set up; try again later",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_secret_and_hide_it_from_callers() {
        let e = SecretsError::NotSet("pay_api_key".into());
        assert_eq!(e.status(), 503);
        assert!(e.to_string().contains("pay_api_key"));
        let response = crate::Response::from(e);
        assert_eq!(response.status, 503);
        assert!(!response.body_text().contains("pay_api_key"));
        assert_eq!(SecretsError::Undeclared("x".into()).status(), 500);
        assert_eq!(SecretsError::Unavailable("db".into()).status(), 503);
    }
}
