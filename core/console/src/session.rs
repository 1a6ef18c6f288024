//! Server-side sessions and the anti-forgery check on every form.
//!
//! A browser holds a random secret in a cookie (`__Host-guildhall-console`: `Secure`,
//! `HttpOnly`, `SameSite=Lax`, `Path=/`); the database holds only its sha256, with the
//! subject the session acts as, an anti-forgery token and the times that end it. Every
//! request reads the row, so a sign-out, a revoked token or an expiry ends the session on
//! every replica at once.
//!
//! **Architecture Invariant:** no form post reaches a handler unless its `csrf` field equals
//! the session's token (or, for the sign-in form, the sign-in cookie's), compared in
//! constant time, and its `Origin`, when sent, is this server's. [`forms_guard`] checks it
//! for every route, so a new form cannot forget.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use guildhall_authz::{Credential, Principal};
use guildhall_domain::IssuerId;
use guildhall_store::SessionRecord;
use time::OffsetDateTime;

use crate::Console;
use crate::render::PageError;

/// A session is marked used at most this often, so reading pages does not write each time.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The largest form body read.
pub const MAX_FORM_BYTES: usize = 256 * 1024;

/// The session cookie's name.
pub fn session_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-guildhall-console"
    } else {
        "guildhall-console"
    }
}

/// The cookie that ties a sign-in (its form, or its trip to the identity provider) to the
/// browser that began it.
pub fn sign_in_cookie(secure: bool) -> &'static str {
    if secure {
        "__Host-guildhall-sign-in"
    } else {
        "guildhall-sign-in"
    }
}

pub use guildhall_api::cookies::{cookie_value, hash, same, secret, set_cookie};

/// Someone signed in, as the page they asked for sees them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The principal every decision is asked for.
    pub principal: Principal,
    /// The session.
    pub session: SessionRecord,
}

impl SignedIn {
    /// The anti-forgery token to embed in this session's forms.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    /// How to name the signed-in person on the page.
    pub fn display(&self) -> String {
        match &self.principal {
            Principal::Authenticated {
                credential: Credential::Token { record },
                ..
            } => format!("token {} ({})", record.name, record.id),
            Principal::Authenticated { subject, .. } => subject
                .strip_prefix("oidc:")
                .and_then(|rest| rest.split_once(':'))
                .map(|(issuer, sub)| format!("{sub} ({issuer})"))
                .unwrap_or_else(|| subject.clone()),
            Principal::Anonymous => "nobody".to_string(),
        }
    }
}

/// Why there is no session.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, or one the database does not know.
    Missing,
    /// The session timed out or its credential ended; it has been deleted.
    Ended,
    /// The database failed.
    Failed(PageError),
}

/// The session of a request, checked against its timeouts and credential.
pub async fn load(console: &Console, headers: &HeaderMap) -> Result<SignedIn, NoSession> {
    let secure = console.config.secure_cookies;
    let secret = cookie_value(headers, session_cookie(secure)).ok_or(NoSession::Missing)?;
    let store = &console.app.store;
    let sessions = store.console_sessions();
    let id_hash = hash(&secret);
    let record = sessions
        .find(&id_hash)
        .await
        .map_err(|e| NoSession::Failed(e.into()))?
        .ok_or(NoSession::Missing)?;
    let now = OffsetDateTime::now_utc();
    let idle_since = now - console.config.idle;
    let end = |record: SessionRecord| async move {
        sessions
            .end(&record.id_hash)
            .await
            .map_err(|e| NoSession::Failed(e.into()))?;
        Err::<SignedIn, _>(NoSession::Ended)
    };
    if record.expires_at <= now || record.last_seen_at < idle_since {
        return end(record).await;
    }
    let credential = match (&record.token_id, &record.issuer) {
        (Some(token_id), None) => {
            let token = store
                .tokens()
                .find(token_id)
                .await
                .map_err(|e| NoSession::Failed(e.into()))?;
            match token {
                Some(token) if token.revoked_at.is_none() && token.expires_at > now => {
                    Credential::Token {
                        record: Box::new(token),
                    }
                }
                _ => return end(record).await,
            }
        }
        (None, Some(issuer)) => match IssuerId::parse(issuer) {
            Ok(issuer) if console.app.authz.oidc().knows_issuer(issuer.as_str()) => {
                Credential::Oidc { issuer }
            }
            _ => return end(record).await,
        },
        _ => return end(record).await,
    };
    // Marked at most once a minute, and often enough that a session in use never looks idle.
    if now - record.last_seen_at > TOUCH_EVERY.min(console.config.idle / 4) {
        sessions
            .touch(&record.id_hash, now)
            .await
            .map_err(|e| NoSession::Failed(e.into()))?;
    }
    Ok(SignedIn {
        principal: Principal::Authenticated {
            subject: record.subject.clone(),
            credential,
        },
        session: record,
    })
}

/// Where to send someone with no session who asked for `path`.
pub fn to_sign_in(path_and_query: &str, ended: bool) -> Response {
    let mut target = format!("{}/sign-in", crate::PREFIX);
    let mut query = Vec::new();
    if ended {
        query.push("ended=1".to_string());
    }
    if path_and_query.starts_with(crate::PREFIX) && path_and_query != crate::PREFIX {
        query.push(format!("return_to={}", urlencoding(path_and_query)));
    }
    if !query.is_empty() {
        target.push('?');
        target.push_str(&query.join("&"));
    }
    Redirect::to(&target).into_response()
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencoding(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path and query the browser asked for, with the console's prefix.
fn original_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| parts.uri.clone())
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

impl FromRequestParts<Console> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        if let Some(signed_in) = parts.extensions.get::<SignedIn>() {
            return Ok(signed_in.clone());
        }
        match load(console, &parts.headers).await {
            Ok(signed_in) => {
                parts.extensions.insert(signed_in.clone());
                Ok(signed_in)
            }
            Err(NoSession::Failed(e)) => Err(e.into_response()),
            Err(NoSession::Missing) => Err(to_sign_in(&original_path(parts), false)),
            Err(NoSession::Ended) => Err(to_sign_in(&original_path(parts), true)),
        }
    }
}

/// The form's fields, read once by [`forms_guard`] and left in the request for handlers.
#[derive(Debug, Clone, Default)]
pub struct FormFields(pub Vec<(String, String)>);

impl FormFields {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FormFields {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<FormFields>()
            .cloned()
            .ok_or_else(|| PageError::bad_request("this page expects a form").into_response())
    }
}

/// Checks every form post before its handler runs: the `Origin` (when sent) is this
/// server, the body is a urlencoded form within [`MAX_FORM_BYTES`], and its `csrf` field
/// matches the session's token — or, on the sign-in form, the sign-in cookie. A post that
/// fails any check gets a page saying so and changes nothing.
pub async fn forms_guard(State(console): State<Console>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    if *request.method() != Method::POST {
        return PageError::method_not_allowed().into_response();
    }
    let (mut parts, body) = request.into_parts();
    if !same_origin(&parts.headers, console.config.public_origin.as_deref()) {
        return PageError::forbidden(
            "This form was sent from another website, so it was not accepted.",
        )
        .into_response();
    }
    let urlencoded = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !urlencoded {
        return PageError::bad_request("Forms must be sent as application/x-www-form-urlencoded.")
            .into_response();
    }
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return PageError::too_large().into_response();
        }
    };
    let fields: Vec<(String, String)> = match serde_urlencoded::from_bytes(&bytes) {
        Ok(fields) => fields,
        Err(_) => return PageError::bad_request("The form could not be read.").into_response(),
    };
    let fields = FormFields(fields);
    let sent = fields.get("csrf").unwrap_or_default().to_string();
    let secure = console.config.secure_cookies;
    let expected = if parts.uri.path() == "/sign-in" {
        cookie_value(&parts.headers, sign_in_cookie(secure))
    } else {
        match load(&console, &parts.headers).await {
            Ok(signed_in) => {
                let csrf = signed_in.session.csrf.clone();
                parts.extensions.insert(signed_in);
                Some(csrf)
            }
            Err(NoSession::Failed(e)) => return e.into_response(),
            Err(NoSession::Missing) => return to_sign_in(crate::PREFIX, false),
            Err(NoSession::Ended) => return to_sign_in(crate::PREFIX, true),
        }
    };
    match expected {
        Some(expected) if !sent.is_empty() && same(&sent, &expected) => {}
        _ => {
            return PageError::forbidden(
                "This form has expired or was not sent from the console. Go back, reload the page and try again.",
            )
            .into_response();
        }
    }
    parts.extensions.insert(fields);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether the `Origin` header, when present, names the host the request was sent to or
/// the console's configured public origin.
fn same_origin(headers: &HeaderMap, public: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if let (Some(public), Ok(origin)) = (public, origin.to_str())
        && origin.eq_ignore_ascii_case(public)
    {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        h
    }

    #[test]
    fn forms_are_accepted_only_from_this_origin() {
        assert!(same_origin(&headers(None, Some("a.example")), None));
        assert!(same_origin(
            &headers(Some("https://a.example"), Some("a.example")),
            None
        ));
        assert!(same_origin(
            &headers(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
            None
        ));
        assert!(!same_origin(
            &headers(Some("https://evil.example"), Some("a.example")),
            None
        ));
        assert!(!same_origin(
            &headers(Some("null"), Some("a.example")),
            None
        ));
        assert!(!same_origin(
            &headers(Some("https://a.example.evil"), Some("a.example")),
            None
        ));
        assert!(!same_origin(
            &headers(Some("https://a.example"), None),
            None
        ));
        // Behind a proxy that rewrites Host, the configured public origin is accepted.
        assert!(same_origin(
            &headers(
                Some("https://guildhall.example.gov.uk"),
                Some("guildhall:8080")
            ),
            Some("https://guildhall.example.gov.uk")
        ));
    }

    #[test]
    fn session_cookies_are_host_only_secure_and_not_for_scripts() {
        let cookie = set_cookie(
            session_cookie(true),
            "v",
            true,
            Some(Duration::from_secs(60)),
        );
        assert!(cookie.starts_with("__Host-guildhall-console=v"), "{cookie}");
        for part in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(!cookie.contains("Domain"), "{cookie}");
        let relaxed = set_cookie(session_cookie(false), "v", false, None);
        assert!(relaxed.starts_with("guildhall-console=v"), "{relaxed}");
        assert!(!relaxed.contains("Secure"), "{relaxed}");
        assert!(relaxed.contains("Max-Age=0"), "{relaxed}");
    }
}
