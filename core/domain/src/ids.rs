//! Validated identifiers for tenants, councils and plugins.
//!
//! Every identifier in Guildhall matches `[a-z0-9-]{2,48}`. Parsing is the only way to build
//! one, so a value of these types is always valid and safe to put in a URL, a log line or a
//! database key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// The shortest identifier Guildhall accepts.
pub const ID_MIN_LEN: usize = 2;
/// The longest identifier Guildhall accepts.
pub const ID_MAX_LEN: usize = 48;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: {reason}")]
pub struct IdError {
    /// What the identifier was for: `tenant`, `council` or `plugin`.
    pub kind: &'static str,
    /// The rejected input, truncated to keep error messages short.
    pub value: String,
    /// What rule it broke.
    pub reason: &'static str,
}

fn check(kind: &'static str, value: &str) -> Result<(), IdError> {
    let reason = if value.len() < ID_MIN_LEN {
        Some("must be at least 2 characters")
    } else if value.len() > ID_MAX_LEN {
        Some("must be at most 48 characters")
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("may only contain lowercase letters a-z, digits 0-9 and '-'")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(IdError {
            kind,
            value: value.chars().take(64).collect(),
            reason,
        }),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an identifier.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Consumes the identifier and returns the inner string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(value).map_err(serde::de::Error::custom)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some("^[a-z0-9-]{2,48}$"))
                    .min_length(Some(ID_MIN_LEN))
                    .max_length(Some(ID_MAX_LEN))
                    .examples([serde_json::json!(concat!("example-", $kind))])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// An alliance of councils: the unit of isolation in Guildhall.
    TenantId,
    "tenant"
);
id_type!(
    /// A member council of one tenant; unique within that tenant.
    CouncilId,
    "council"
);
id_type!(
    /// A service module's name in the shared catalogue.
    PluginName,
    "plugin"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_pattern() {
        for ok in ["ab", "north-downs", "e07000215", &"a".repeat(48)] {
            assert!(TenantId::parse(ok).is_ok(), "{ok} should be valid");
        }
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let cases = [
            ("a", "at least 2"),
            (&"a".repeat(49) as &str, "at most 48"),
            ("North-Downs", "lowercase"),
            ("north_downs", "lowercase"),
            ("north downs", "lowercase"),
            ("nörth", "lowercase"),
            ("../etc", "lowercase"),
        ];
        for (bad, reason) in cases {
            let err = CouncilId::parse(bad).unwrap_err();
            assert!(err.to_string().contains(reason), "{bad}: {err}");
            assert_eq!(err.kind, "council");
        }
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<PluginName>("\"Bad\"").unwrap_err();
        assert!(err.to_string().contains("invalid plugin id"), "{err}");
        let ok: PluginName = serde_json::from_str("\"bin-collections\"").unwrap();
        assert_eq!(ok.as_str(), "bin-collections");
    }
}
