//! Cookies the platform sets for itself (the console's session, citizens' sessions with
//! plugins): random secrets, their stored hashes, constant-time comparison, and the
//! `Set-Cookie` values, always `HttpOnly`, `SameSite=Lax` and `Path=/`, and `Secure` unless
//! an operator turned that off to try the platform over plain HTTP on loopback.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh random secret: 32 bytes, base64url (43 characters).
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the form of a [`secret`], so nothing else is hashed or looked up.
pub fn is_secret(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The sha256 (hex) under which a secret is stored.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether two secrets are equal, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn build(name: &str, value: &str, secure: bool) -> cookie::CookieBuilder<'static> {
    cookie::Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(cookie::SameSite::Lax)
}

/// A `Set-Cookie` value for `name` = `value`, living `max_age` (`None`: removes it).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<Duration>) -> String {
    let cookie = build(name, value, secure);
    let cookie = match max_age {
        Some(age) => cookie.max_age(cookie::time::Duration::seconds(
            i64::try_from(age.as_secs()).unwrap_or(i64::MAX),
        )),
        None => cookie.max_age(cookie::time::Duration::ZERO),
    };
    cookie.build().to_string()
}

/// A `Set-Cookie` value for `name` = `value` that the browser drops when it closes (the
/// server ends the session sooner when it times out).
pub fn set_browser_session_cookie(name: &str, value: &str, secure: bool) -> String {
    build(name, value, secure).build().to_string()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_compared_in_full() {
        let (a, b) = (secret(), secret());
        assert_ne!(a, b);
        assert!(is_secret(&a));
        assert!(!is_secret(&a[..42]));
        assert!(!is_secret(&format!("{}=", &a[..42])));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..42]));
        assert_eq!(hash(&a).len(), 64);
    }

    #[test]
    fn cookies_are_http_only_lax_and_host_wide() {
        let c = set_browser_session_cookie("__Host-x", "v", true);
        for part in ["__Host-x=v", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Max-Age"), "{c}");
        assert!(set_cookie("x", "", false, None).contains("Max-Age=0"));
    }
}
