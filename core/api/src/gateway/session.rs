//! Citizens' sessions with plugins that declare `session`: the cookie, the anti-forgery
//! check before the plugin runs, and the [`CallSession`] a call reads and writes through.
//!
//! A browser holds one random secret per tenant, council and plugin, in a cookie named for
//! all three (`__Host-guildhall.{tenant}.{council}.{plugin}`: `Secure`, `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, dropped when the browser closes). `__Host-` cookies cannot be
//! scoped to a path, so the name scopes it instead, and the database finds a session only
//! by the hash of its secret together with the tenant, council and plugin of the request:
//! a cookie presented anywhere else finds nothing. Plugins never see any cookie, and never
//! set one (the gateway drops `Set-Cookie` from their responses).
//!
//! **Architecture Invariant:** a request that is not `GET`, `HEAD` or `OPTIONS` and carries
//! a plugin's session cookie reaches the plugin only when it also carries that session's
//! token (the urlencoded form field `csrf`, or the header `x-csrf-token`), compared in
//! constant time. A session is started only by a `GET` or `HEAD`, so a cross-site post can
//! neither use a session (`SameSite=Lax` withholds the cookie, the token is unknown) nor
//! plant one.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use guildhall_domain::{CouncilId, PluginName};
// `is_safe`: whether a method may start a session and needs no token; every other method
// (`OPTIONS` too: browsers send no cookie with a preflight) needs the token when it carries
// the cookie. `presented_token`: the header, or the urlencoded body's `csrf` field.
use guildhall_runtime::edge::{is_safe, presented_token};
use guildhall_runtime::{CallSession, PortFuture, SessionError};
use guildhall_store::{SessionKey, Store, TenantScope};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cookies;

/// A session is marked used at most this often, so reading pages does not write each time.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The header an API client may carry a session's token in instead of the form field.
pub use guildhall_runtime::edge::CSRF_HEADER;

/// The `[sessions]` section: citizens' sessions with plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Session cookies are `__Host-` and `Secure`. Turn off only to try services over plain
    /// HTTP on a machine's own loopback address.
    pub secure_cookies: bool,
    /// A session unused for this long ends, with its data.
    pub idle_timeout_mins: u64,
    /// A session ends this long after it began, however much it is used.
    pub absolute_timeout_hours: u64,
    /// The most a session's data may hold (keys plus values), in bytes.
    pub max_bytes: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            idle_timeout_mins: 30,
            absolute_timeout_hours: 12,
            max_bytes: 64 * 1024,
        }
    }
}

impl SessionsConfig {
    /// Checks the settings (for `guildhall config check`, and at start).
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=24 * 60).contains(&self.idle_timeout_mins) {
            return Err(format!(
                "sessions.idle_timeout_mins is {}; it must be between 1 and 1440",
                self.idle_timeout_mins
            ));
        }
        if !(1..=7 * 24).contains(&self.absolute_timeout_hours) {
            return Err(format!(
                "sessions.absolute_timeout_hours is {}; it must be between 1 and 168",
                self.absolute_timeout_hours
            ));
        }
        if !(1024..=1024 * 1024).contains(&self.max_bytes) {
            return Err(format!(
                "sessions.max_bytes is {}; it must be between 1024 and 1048576",
                self.max_bytes
            ));
        }
        Ok(())
    }

    fn idle(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_mins * 60)
    }

    fn absolute(&self) -> Duration {
        Duration::from_secs(self.absolute_timeout_hours * 3600)
    }
}

/// The cookie of a plugin's sessions for one council of one tenant.
pub fn cookie_name(secure: bool, tenant: &str, council: &str, plugin: &str) -> String {
    let prefix = if secure {
        "__Host-guildhall"
    } else {
        "guildhall"
    };
    format!("{prefix}.{tenant}.{council}.{plugin}")
}

/// The `Set-Cookie` that tells the browser to drop cookie `name`.
fn removal(name: &str, secure: bool) -> Option<HeaderValue> {
    HeaderValue::from_str(&cookies::set_cookie(name, "", secure, None)).ok()
}

/// Why the gateway refuses a request before its plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The cookie names no live session: it timed out or ended.
    Ended,
    /// The request does not carry the session's token.
    Forged,
}

/// One call's session, loaded when the call starts.
#[derive(Debug)]
pub(crate) struct CitizenSession {
    store: Store,
    scope: TenantScope,
    council: CouncilId,
    plugin: PluginName,
    config: SessionsConfig,
    cookie: String,
    /// Whether this call may start a session (a `GET` or `HEAD`).
    may_start: bool,
    /// Whether the browser presented a cookie that names no live session.
    stale_cookie: bool,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    current: Option<Current>,
    /// The secret of a session this call started, for the response's cookie.
    started: Option<String>,
}

#[derive(Debug)]
struct Current {
    id_hash: String,
    csrf: String,
    values: BTreeMap<String, Vec<u8>>,
    bytes: u64,
}

fn decode(data: &str) -> BTreeMap<String, Vec<u8>> {
    let encoded: BTreeMap<String, String> = serde_json::from_str(data).unwrap_or_default();
    encoded
        .into_iter()
        .filter_map(|(k, v)| STANDARD.decode(v).ok().map(|v| (k, v)))
        .collect()
}

fn encode(values: &BTreeMap<String, Vec<u8>>) -> String {
    let encoded: BTreeMap<&str, String> = values
        .iter()
        .map(|(k, v)| (k.as_str(), STANDARD.encode(v)))
        .collect();
    serde_json::to_string(&encoded).unwrap_or_else(|_| "{}".to_string())
}

fn storage(e: guildhall_store::Error) -> SessionError {
    SessionError::Storage(Box::new(e))
}

/// What the gateway needs to open a call's session.
pub(crate) struct Opening<'a> {
    pub(crate) store: &'a Store,
    pub(crate) scope: &'a TenantScope,
    pub(crate) council: &'a CouncilId,
    pub(crate) plugin: &'a PluginName,
    pub(crate) config: &'a SessionsConfig,
    pub(crate) method: &'a Method,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

impl Refusal {
    /// The answer's headers beyond the page: an ended session's cookie is removed.
    pub(crate) fn headers(self, at: &Opening<'_>) -> Option<HeaderValue> {
        let secure = at.config.secure_cookies;
        (self == Refusal::Ended).then(|| {
            let name = cookie_name(
                secure,
                at.scope.tenant().as_str(),
                at.council.as_str(),
                at.plugin.as_str(),
            );
            removal(&name, secure)
        })?
    }
}

impl CitizenSession {
    /// Loads the session the request's cookie names, and refuses a request that would use
    /// a session without its token. A request of another method without a cookie gets a
    /// session that stays empty.
    pub(crate) async fn open(
        at: &Opening<'_>,
    ) -> Result<Result<CitizenSession, Refusal>, guildhall_store::Error> {
        let cookie = cookie_name(
            at.config.secure_cookies,
            at.scope.tenant().as_str(),
            at.council.as_str(),
            at.plugin.as_str(),
        );
        let secret = cookies::cookie_value(at.headers, &cookie);
        let safe = is_safe(at.method);
        let mut session = CitizenSession {
            store: at.store.clone(),
            scope: at.scope.clone(),
            council: at.council.clone(),
            plugin: at.plugin.clone(),
            config: at.config.clone(),
            cookie,
            may_start: safe,
            stale_cookie: false,
            state: tokio::sync::Mutex::new(State::default()),
        };
        let Some(secret) = secret else {
            return Ok(Ok(session));
        };
        let current = if cookies::is_secret(&secret) {
            session.load(&cookies::hash(&secret)).await?
        } else {
            None
        };
        match current {
            None if safe => {
                session.stale_cookie = true;
                Ok(Ok(session))
            }
            None => Ok(Err(Refusal::Ended)),
            Some(current) => {
                if !safe {
                    let token = presented_token(at.headers, at.body);
                    if !token.is_some_and(|t| cookies::same(&t, &current.csrf)) {
                        return Ok(Err(Refusal::Forged));
                    }
                }
                session.state.get_mut().current = Some(current);
                Ok(Ok(session))
            }
        }
    }

    fn key<'a>(&'a self, id_hash: &'a str) -> SessionKey<'a> {
        SessionKey {
            council: &self.council,
            plugin: &self.plugin,
            id_hash,
        }
    }

    /// The live session with this hash, ending it when it has timed out.
    async fn load(&self, id_hash: &str) -> Result<Option<Current>, guildhall_store::Error> {
        let sessions = self.store.citizen_sessions(&self.scope);
        let Some(record) = sessions.find(self.key(id_hash)).await? else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        if record.expires_at <= now || record.last_seen_at < now - self.config.idle() {
            sessions.end(self.key(id_hash)).await?;
            return Ok(None);
        }
        if record.last_seen_at < now - TOUCH_EVERY {
            sessions.touch(self.key(id_hash), now).await?;
        }
        Ok(Some(Current {
            id_hash: id_hash.to_string(),
            csrf: record.csrf,
            values: decode(&record.data),
            bytes: u64::try_from(record.bytes).unwrap_or(0),
        }))
    }

    /// The current session, started now when there is none and this call may start one.
    async fn current<'s>(&self, state: &'s mut State) -> Result<&'s mut Current, SessionError> {
        if state.current.is_none() {
            if !self.may_start {
                return Err(SessionError::NoSession);
            }
            let secret = cookies::secret();
            let id_hash = cookies::hash(&secret);
            let csrf = cookies::secret();
            let ends = OffsetDateTime::now_utc() + self.config.absolute();
            self.store
                .citizen_sessions(&self.scope)
                .create(self.key(&id_hash), &csrf, ends)
                .await
                .map_err(storage)?;
            state.started = Some(secret);
            state.current = Some(Current {
                id_hash,
                csrf,
                values: BTreeMap::new(),
                bytes: 0,
            });
        }
        Ok(state.current.as_mut().expect("just set"))
    }

    /// Writes the values after a change; a session ended meanwhile is gone.
    async fn save(&self, current: &Current) -> Result<(), SessionError> {
        let bytes = i64::try_from(current.bytes).unwrap_or(i64::MAX);
        let saved = self
            .store
            .citizen_sessions(&self.scope)
            .save(
                self.key(&current.id_hash),
                &encode(&current.values),
                bytes,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(storage)?;
        if saved {
            Ok(())
        } else {
            Err(SessionError::NoSession)
        }
    }

    /// Adds the session's cookie to the response: the new session's secret, or the
    /// removal of a cookie that names no live session. An answer for a session is never
    /// cached, whatever the plugin said: it may carry the session's token or answers.
    pub(crate) async fn finish(&self, headers: &mut HeaderMap) {
        let state = self.state.lock().await;
        if state.current.is_some() {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        let value = match (&state.started, self.stale_cookie) {
            (Some(secret), _) => cookies::set_browser_session_cookie(
                &self.cookie,
                secret,
                self.config.secure_cookies,
            ),
            (None, true) => {
                headers.extend(
                    removal(&self.cookie, self.config.secure_cookies)
                        .map(|v| (header::SET_COOKIE, v)),
                );
                return;
            }
            (None, false) => return,
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

impl CallSession for CitizenSession {
    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, Option<Vec<u8>>, SessionError> {
        Box::pin(async move {
            let state = self.state.lock().await;
            Ok(state
                .current
                .as_ref()
                .and_then(|c| c.values.get(key).cloned()))
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> PortFuture<'a, (), SessionError> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let current = self.current(&mut state).await?;
            let old = current
                .values
                .get(key)
                .map_or(0, |v| (key.len() + v.len()) as u64);
            let bytes = current.bytes.saturating_sub(old) + (key.len() + value.len()) as u64;
            if bytes > self.config.max_bytes {
                return Err(SessionError::TooLarge {
                    cap: self.config.max_bytes,
                });
            }
            let previous = current.values.insert(key.to_string(), value);
            let before = current.bytes;
            current.bytes = bytes;
            if let Err(e) = self.save(current).await {
                // Keep memory as the database has it.
                match previous {
                    Some(v) => current.values.insert(key.to_string(), v),
                    None => current.values.remove(key),
                };
                current.bytes = before;
                return Err(e);
            }
            Ok(())
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> PortFuture<'a, bool, SessionError> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let Some(current) = state.current.as_mut() else {
                return Ok(false);
            };
            let Some(value) = current.values.remove(key) else {
                return Ok(false);
            };
            let before = current.bytes;
            current.bytes = before.saturating_sub((key.len() + value.len()) as u64);
            if let Err(e) = self.save(current).await {
                // Keep memory as the database has it.
                current.values.insert(key.to_string(), value);
                current.bytes = before;
                return Err(e);
            }
            Ok(true)
        })
    }

    fn clear(&self) -> PortFuture<'_, (), SessionError> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            let Some(current) = state.current.as_mut() else {
                return Ok(());
            };
            if current.values.is_empty() {
                return Ok(());
            }
            let (values, bytes) = (std::mem::take(&mut current.values), current.bytes);
            current.bytes = 0;
            if let Err(e) = self.save(current).await {
                current.values = values;
                current.bytes = bytes;
                return Err(e);
            }
            Ok(())
        })
    }

    fn csrf_token(&self) -> PortFuture<'_, String, SessionError> {
        Box::pin(async move {
            let mut state = self.state.lock().await;
            Ok(self.current(&mut state).await?.csrf.clone())
        })
    }
}

impl super::Gateway {
    /// Deletes ended citizens' sessions every five minutes, tenant by tenant, until the
    /// process ends. Every replica may run it: deleting what has ended is idempotent.
    pub fn spawn_session_purger(&self) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(300));
            loop {
                every.tick().await;
                if let Err(e) = gateway.purge_sessions().await {
                    tracing::warn!(error = %e, "cannot purge ended citizens' sessions");
                }
            }
        })
    }

    /// Deletes every tenant's ended sessions; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64, guildhall_store::Error> {
        let store = &self.inner.store;
        let now = OffsetDateTime::now_utc();
        let idle_since = now - self.inner.sessions.idle();
        let mut purged = 0;
        for tenant in store.tenants().list().await? {
            let Some(scope) = store.scope(&tenant.id).await? else {
                continue;
            };
            purged += store
                .citizen_sessions(&scope)
                .purge(now, idle_since)
                .await?;
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_the_header_or_the_form() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_token(&headers, b"csrf=abc"), None);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert_eq!(
            presented_token(&headers, b"a=1&csrf=ab%2Bc&csrf=second").as_deref(),
            Some("ab+c")
        );
        headers.insert(CSRF_HEADER, HeaderValue::from_static("from-header"));
        assert_eq!(
            presented_token(&headers, b"csrf=abc").as_deref(),
            Some("from-header")
        );
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(presented_token(&json, b"csrf=abc"), None);
    }

    #[test]
    fn values_survive_encoding() {
        let mut values = BTreeMap::new();
        values.insert("answers".to_string(), b"{\"a\":1}".to_vec());
        values.insert("bin\u{0}".to_string(), vec![0, 255, 10]);
        assert_eq!(decode(&encode(&values)), values);
        assert!(decode("not json").is_empty());
    }

    #[test]
    fn cookies_are_named_for_tenant_council_and_plugin() {
        assert_eq!(
            cookie_name(true, "north-downs", "tandridge", "report-a-problem"),
            "__Host-guildhall.north-downs.tandridge.report-a-problem"
        );
        assert!(!cookie_name(false, "t1", "c1", "p1").starts_with("__Host-"));
    }

    #[test]
    fn defaults_pass_their_checks() {
        assert!(SessionsConfig::default().validate().is_ok());
        let zero = SessionsConfig {
            idle_timeout_mins: 0,
            ..SessionsConfig::default()
        };
        assert!(zero.validate().is_err());
    }
}
