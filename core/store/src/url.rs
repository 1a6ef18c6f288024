//! Database URLs, kept out of logs.

use std::fmt;
use std::path::{Path, PathBuf};

use sea_orm::DbBackend;
use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// A database URL whose `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The engine the URL names.
    pub fn backend(&self) -> Result<DbBackend> {
        let scheme = self.0.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(DbBackend::Sqlite),
            "postgres" | "postgresql" => Ok(DbBackend::Postgres),
            _ => Err(Error::BadUrl {
                url: self.to_string(),
                reason: "expected a sqlite:// or postgres:// URL".to_string(),
            }),
        }
    }

    /// The file a `sqlite://` URL points at, or `None` for in-memory databases.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self
            .0
            .strip_prefix("sqlite://")
            .or_else(|| self.0.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }

    pub(crate) fn create_sqlite_parent_dir(&self) -> Result<()> {
        let Some(path) = self.sqlite_path() else {
            return Ok(());
        };
        match path.parent() {
            Some(dir) if dir != Path::new("") && !dir.exists() => {
                std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
                tracing::info!(folder = %dir.display(), "created the database folder");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The URL with the password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let mut out = match (url.find("://"), url.rfind('@')) {
            (Some(scheme_end), Some(at)) if at > scheme_end => {
                let userinfo = &url[scheme_end + 3..at];
                match userinfo.find(':') {
                    Some(colon) => format!(
                        "{}{}:***{}",
                        &url[..scheme_end + 3],
                        &userinfo[..colon],
                        &url[at..]
                    ),
                    None => url.clone(),
                }
            }
            _ => url.clone(),
        };
        // Passwords may also travel as a query parameter.
        if let Some(q) = out.find('?') {
            let (base, query) = out.split_at(q + 1);
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&");
            out = format!("{base}{query}");
        }
        out
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        let url = Self(url);
        url.backend().map_err(serde::de::Error::custom)?;
        Ok(url)
    }
}

impl serde::Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_passwords_everywhere() {
        let url =
            DatabaseUrl::new("postgres://app:s3cret@db.internal:5432/guildhall?sslmode=require");
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db.internal:5432/guildhall?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let url = DatabaseUrl::new("postgres://db/guildhall?user=app&password=s3cret");
        assert_eq!(
            url.to_string(),
            "postgres://db/guildhall?user=app&password=***"
        );
        let url = DatabaseUrl::new("postgres://p%40ss:x@y@db/g");
        assert!(!url.to_string().contains('x'), "{url}");
    }

    #[test]
    fn knows_sqlite_paths() {
        let url = DatabaseUrl::new("sqlite://data/guildhall.db?mode=rwc");
        assert_eq!(url.sqlite_path(), Some(PathBuf::from("data/guildhall.db")));
        assert_eq!(DatabaseUrl::new("sqlite::memory:").sqlite_path(), None);
        assert!(DatabaseUrl::new("mysql://x").backend().is_err());
    }
}
