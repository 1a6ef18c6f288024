//! The rules of the platform's edge that decide what a plugin sees of a request and what a
//! caller sees of its answer: shared by the gateway and by the test harness, so a plugin
//! tested in-process meets the same rules as in production.

use http::{HeaderMap, HeaderName, Method, header};

use crate::CallError;

/// The header an API client may send a session's anti-forgery token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Request headers the platform sets on every plugin call; callers cannot set their own.
pub const PLATFORM_HEADER_PREFIX: &str = "x-guildhall-";

/// Headers never passed to a plugin: credentials stay with the platform.
const WITHHELD: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Whether a request header reaches the plugin: not a credential, not one of the
/// platform's own.
pub fn passed_to_plugin(name: &HeaderName) -> bool {
    !WITHHELD.contains(name) && !name.as_str().starts_with(PLATFORM_HEADER_PREFIX)
}

/// Removes what a plugin may not set in its answer: the platform's cookies are not its to
/// set or clear.
pub fn strip_plugin_response(headers: &mut HeaderMap) {
    headers.remove(header::SET_COOKIE);
    headers.remove("clear-site-data");
}

/// Whether a method may start a session and needs no anti-forgery token.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Whether the body is an urlencoded form.
pub fn is_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The token a request carries: the header when there is one, else the urlencoded body's
/// first `csrf` field.
pub fn presented_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if let Some(value) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(value.to_string());
    }
    if !is_urlencoded(headers) {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned())
}

/// The status a caller gets for a failed call: 504 past the deadline, 413 for a body over
/// the cap, 500 for the platform's own failure, 502 for the plugin's.
pub fn failure_status(error: &CallError) -> u16 {
    match error {
        CallError::Deadline(_) => 504,
        CallError::BodyTooLarge(_) => 413,
        CallError::Internal(_) => 500,
        CallError::MemoryCap(_)
        | CallError::Trap(_)
        | CallError::BadResponse(_)
        | CallError::HostLimit(_) => 502,
    }
}
