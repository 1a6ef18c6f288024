//! `[console]`: the console's settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[console]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Whether `/console` is served at all.
    pub enabled: bool,
    /// The console's public address as browsers reach it, e.g.
    /// `https://guildhall.example.gov.uk`. Identity providers send people back to
    /// `<public_url>/console/sign-in/callback`, which must be registered with them. Without
    /// it, identity-provider sign-in is not offered.
    pub public_url: Option<String>,
    /// Session cookies are `__Host-` and `Secure`. Turn off only to try the console over
    /// plain HTTP on a machine's own loopback address.
    pub secure_cookies: bool,
    /// Whether people may sign in to the console by pasting an API token. Unset: allowed
    /// only when no identity provider offers sign-in.
    pub token_sign_in: Option<bool>,
    /// A session unused for this long ends.
    pub idle_timeout_mins: u64,
    /// A session ends this long after sign-in, however much it is used.
    pub absolute_timeout_hours: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            public_url: None,
            secure_cookies: true,
            token_sign_in: None,
            idle_timeout_mins: 30,
            absolute_timeout_hours: 12,
        }
    }
}

/// The settings with their defaults worked out against the configured identity providers.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `<public_url>/console/sign-in/callback`, when identity-provider sign-in is offered.
    pub redirect_uri: Option<String>,
    /// The public URL's origin (`https://host[:port]`): form posts may come from it even
    /// when a proxy changes the `Host` the server sees.
    pub public_origin: Option<String>,
    /// `__Host-` and `Secure` cookies.
    pub secure_cookies: bool,
    /// Whether token sign-in is on.
    pub token_sign_in: bool,
    /// The idle timeout.
    pub idle: Duration,
    /// The absolute timeout.
    pub absolute: Duration,
}

impl ConsoleConfig {
    /// Checks the settings on their own (for `guildhall config check`, and at start).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=24 * 60).contains(&self.idle_timeout_mins) {
            return Err(format!(
                "console.idle_timeout_mins is {}; it must be between 1 and 1440",
                self.idle_timeout_mins
            ));
        }
        if !(1..=7 * 24).contains(&self.absolute_timeout_hours) {
            return Err(format!(
                "console.absolute_timeout_hours is {}; it must be between 1 and 168",
                self.absolute_timeout_hours
            ));
        }
        if let Some(url) = &self.public_url {
            redirect_uri(url)?;
        }
        Ok(())
    }

    /// Checks the settings and works out the defaults.
    pub(crate) fn resolve(&self, authz: &guildhall_authz::Authz) -> Result<Resolved, String> {
        self.validate()?;
        let redirect_uri = match &self.public_url {
            None => None,
            Some(url) => Some(redirect_uri(url)?),
        };
        let providers = redirect_uri.is_some() && !authz.oidc().sign_in_issuers().is_empty();
        Ok(Resolved {
            public_origin: self
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_ascii_lowercase()),
            redirect_uri,
            secure_cookies: self.secure_cookies,
            token_sign_in: self.token_sign_in.unwrap_or(!providers),
            idle: Duration::from_secs(self.idle_timeout_mins * 60),
            absolute: Duration::from_secs(self.absolute_timeout_hours * 3600),
        })
    }
}

fn redirect_uri(public_url: &str) -> Result<String, String> {
    let trimmed = public_url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("console.public_url {public_url:?} must start with https:// (or http:// for loopback)")
        })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) || rest.contains('/') {
        return Err(format!(
            "console.public_url {public_url:?} must be a scheme and host (and port), with no path"
        ));
    }
    if trimmed.starts_with("http://") {
        // The host without its port; an IPv6 literal keeps its brackets.
        let host = match rest.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or(rest, |(h, _)| h),
            None => rest.split_once(':').map_or(rest, |(h, _)| h),
        };
        if !matches!(host, "localhost" | "127.0.0.1" | "::1") {
            return Err(format!(
                "console.public_url {public_url:?} uses http://; only loopback addresses may"
            ));
        }
    }
    Ok(format!("{trimmed}{}/sign-in/callback", crate::PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_a_scheme_and_host() {
        assert_eq!(
            redirect_uri("https://guildhall.example.gov.uk/").unwrap(),
            "https://guildhall.example.gov.uk/console/sign-in/callback"
        );
        assert_eq!(
            redirect_uri("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/console/sign-in/callback"
        );
        for loopback in ["http://localhost", "http://[::1]", "http://[::1]:8080"] {
            assert!(redirect_uri(loopback).is_ok(), "{loopback} refused");
        }
        for bad in [
            "guildhall.example.gov.uk",
            "http://guildhall.example.gov.uk",
            "https://guildhall.example.gov.uk/console",
            "https://",
            "ftp://x",
            "http://[::2]:80",
            "http://localhost.evil.example",
        ] {
            assert!(redirect_uri(bad).is_err(), "{bad} accepted");
        }
    }
}
