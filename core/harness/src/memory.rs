//! The harness's platform: kv, events, secrets, sessions, access rules and outbound answers
//! kept in memory, behind the runtime's ports, so a plugin runs exactly as under the server
//! (same runtime, same limits and checks) with nothing else running.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use guildhall_domain::{CouncilId, PluginName, TenantId};
use guildhall_runtime::{
    Authorizer, AuthzQuestion, CallSession, EventsPort, HttpPort, KvPort, KvSetError,
    OutboundRequest, PluginEvent, PortFuture, SecretsPort, SessionError,
};

/// Everything the plugin wrote or asked for, shared by the ports and the harness.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) kv: Mutex<BTreeMap<String, Vec<u8>>>,
    /// When keys written with a time to live expire.
    pub(crate) kv_expiry: Mutex<HashMap<String, std::time::Instant>>,
    pub(crate) events: Mutex<Vec<Event>>,
    /// `(council, name)` → value; `council = None` is the install's own value.
    pub(crate) secrets: Mutex<HashMap<(Option<String>, String), String>>,
    pub(crate) rules: Mutex<Vec<Rule>>,
    pub(crate) answers: Mutex<Vec<Answer>>,
    pub(crate) requests: Mutex<Vec<Recorded>>,
}

impl Memory {
    /// The plugin's kv with expired keys removed first, held: every read and write goes
    /// through it, so an expired key is absent as on the platform.
    pub(crate) fn kv(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        let mut kv = self.kv.lock().expect("kv");
        let mut expiry = self.kv_expiry.lock().expect("kv expiry");
        let now = std::time::Instant::now();
        expiry.retain(|key, at| {
            let live = *at > now;
            if !live {
                kv.remove(key);
            }
            live
        });
        kv
    }

    /// Sets or clears `key`'s time to live.
    fn expire(&self, key: &str, ttl: Option<std::time::Duration>) {
        let mut expiry = self.kv_expiry.lock().expect("kv expiry");
        match ttl {
            Some(ttl) => {
                expiry.insert(key.to_string(), std::time::Instant::now() + ttl);
            }
            None => {
                expiry.remove(key);
            }
        }
    }
}

/// An event the plugin emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The council of the call that emitted it.
    pub council: String,
    /// The event's name.
    pub name: String,
    /// Its payload, as JSON.
    pub payload: serde_json::Value,
    /// Who the plugin acted for: the caller's subject, or `anonymous`.
    pub actor: String,
}

/// An access rule for the plugin's `authz` questions: callers holding `role` may do
/// `action` on `object` (`*` matches anything).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) role: String,
    pub(crate) action: String,
    pub(crate) object: String,
}

/// A canned answer to outbound requests with this method and URL.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) method: http::Method,
    pub(crate) url: String,
    pub(crate) response: http::Response<Bytes>,
}

/// An outbound request the plugin made, and whether a canned answer matched it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request, whole.
    pub request: OutboundRequest,
    /// Whether a canned answer was given; otherwise the plugin saw a refused connection.
    pub answered: bool,
}

/// The ports over one [`Memory`].
#[derive(Debug, Clone)]
pub(crate) struct MemoryPorts(pub(crate) Arc<Memory>);

fn ready<'a, T: Send + 'a, E: Send + 'a>(value: Result<T, E>) -> PortFuture<'a, T, E> {
    Box::pin(std::future::ready(value))
}

impl MemoryPorts {
    fn usage(kv: &BTreeMap<String, Vec<u8>>, replacing: &str) -> u64 {
        kv.iter()
            .filter(|(k, _)| k.as_str() != replacing)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum()
    }

    fn store(
        kv: &mut BTreeMap<String, Vec<u8>>,
        key: &str,
        value: Vec<u8>,
        quota: u64,
    ) -> Result<(), KvSetError> {
        if Self::usage(kv, key) + (key.len() + value.len()) as u64 > quota {
            return Err(KvSetError::QuotaExceeded { quota });
        }
        kv.insert(key.to_string(), value);
        Ok(())
    }
}

impl KvPort for MemoryPorts {
    fn get<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, Option<Vec<u8>>> {
        ready(Ok(self.0.kv().get(key).cloned()))
    }

    fn set<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        key: &'a str,
        value: &'a [u8],
        ttl: Option<std::time::Duration>,
        quota: u64,
    ) -> PortFuture<'a, (), KvSetError> {
        let mut kv = self.0.kv();
        let stored = Self::store(&mut kv, key, value.to_vec(), quota);
        if stored.is_ok() {
            self.0.expire(key, ttl);
        }
        ready(stored)
    }

    fn increment<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        key: &'a str,
        delta: i64,
        quota: u64,
    ) -> PortFuture<'a, i64, KvSetError> {
        let mut kv = self.0.kv();
        let current = match kv.get(key) {
            None => Ok(0),
            Some(bytes) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<i64>().ok())
                .ok_or_else(|| {
                    KvSetError::NotANumber(format!(
                        "the value under {key:?} is not a decimal 64-bit integer"
                    ))
                }),
        };
        let result = current.and_then(|n| {
            let sum = n.checked_add(delta).ok_or_else(|| {
                KvSetError::NotANumber(format!("{n} + {delta} is outside the 64-bit range"))
            })?;
            Self::store(&mut kv, key, sum.to_string().into_bytes(), quota)?;
            Ok(sum)
        });
        ready(result)
    }

    fn compare_and_swap<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        key: &'a str,
        old: Option<&'a [u8]>,
        new: &'a [u8],
        quota: u64,
    ) -> PortFuture<'a, bool, KvSetError> {
        let mut kv = self.0.kv();
        if kv.get(key).map(Vec::as_slice) != old {
            return ready(Ok(false));
        }
        ready(Self::store(&mut kv, key, new.to_vec(), quota).map(|()| true))
    }

    fn delete<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        key: &'a str,
    ) -> PortFuture<'a, bool> {
        let existed = self.0.kv().remove(key).is_some();
        self.0.expire(key, None);
        ready(Ok(existed))
    }

    fn list_keys<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        prefix: &'a str,
        cursor: Option<&'a str>,
        limit: u32,
    ) -> PortFuture<'a, (Vec<String>, Option<String>)> {
        let kv = self.0.kv();
        let mut keys: Vec<String> = kv
            .keys()
            .filter(|k| k.starts_with(prefix))
            .filter(|k| cursor.is_none_or(|c| k.as_str() > c))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let next = if keys.len() > limit as usize {
            keys.truncate(limit as usize);
            keys.last().cloned()
        } else {
            None
        };
        ready(Ok((keys, next)))
    }
}

impl EventsPort for MemoryPorts {
    fn record<'a>(&'a self, event: PluginEvent<'a>) -> PortFuture<'a, ()> {
        let payload = serde_json::from_str(event.payload).unwrap_or(serde_json::Value::Null);
        self.0.events.lock().expect("events").push(Event {
            council: event.council.to_string(),
            name: event.name.to_string(),
            payload,
            actor: event.actor.to_string(),
        });
        ready(Ok(()))
    }
}

impl SecretsPort for MemoryPorts {
    fn get<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a PluginName,
        council: &'a CouncilId,
        name: &'a str,
    ) -> PortFuture<'a, Option<String>> {
        let secrets = self.0.secrets.lock().expect("secrets");
        let value = secrets
            .get(&(Some(council.to_string()), name.to_string()))
            .or_else(|| secrets.get(&(None, name.to_string())))
            .cloned();
        ready(Ok(value))
    }
}

impl Authorizer for MemoryPorts {
    fn allowed(&self, question: AuthzQuestion<'_>) -> bool {
        let roles: Vec<&str> = match question.principal {
            guildhall_domain::Caller::Anonymous => return false,
            guildhall_domain::Caller::Subject { roles, council, .. } => {
                if council.as_ref().is_some_and(|c| c != question.council) {
                    return false;
                }
                roles.iter().map(|r| r.as_str()).collect()
            }
        };
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        self.0.rules.lock().expect("rules").iter().any(|rule| {
            roles.contains(&rule.role.as_str())
                && matches(&rule.action, question.action)
                && matches(&rule.object, question.object)
        })
    }
}

impl HttpPort for MemoryPorts {
    fn send(&self, request: OutboundRequest) -> PortFuture<'_, http::Response<Bytes>> {
        let answer = self
            .0
            .answers
            .lock()
            .expect("answers")
            .iter()
            .find(|a| a.method == request.method && a.url == request.url)
            .map(|a| a.response.clone());
        let failure = answer.is_none().then(|| {
            format!(
                "no canned answer for {} {} (give one with [[outbound]] or Harness::answer)",
                request.method, request.url
            )
        });
        self.0.requests.lock().expect("requests").push(Recorded {
            request,
            answered: answer.is_some(),
        });
        ready(answer.ok_or_else(|| failure.unwrap_or_default().into()))
    }
}

/// A citizen's session with the plugin for one council, kept in memory; like the
/// gateway's, it starts only on a `GET` or `HEAD`.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    pub(crate) data: Mutex<Option<SessionData>>,
    /// Whether the last page the citizen got carried the session's token (so its form
    /// would post it back).
    pub(crate) page_had_token: std::sync::atomic::AtomicBool,
}

impl SessionStore {
    /// The session's token, once it has started.
    pub(crate) fn token(&self) -> Option<String> {
        self.data
            .lock()
            .expect("session")
            .as_ref()
            .map(|d| d.csrf.clone())
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct SessionData {
    pub(crate) values: BTreeMap<String, Vec<u8>>,
    pub(crate) csrf: String,
}

/// The largest session, as the server's default `sessions.max_bytes`.
const SESSION_CAP: u64 = 64 << 10;

/// One call's view of a [`SessionStore`].
#[derive(Debug)]
pub(crate) struct CallSessionView {
    pub(crate) store: Arc<SessionStore>,
    /// Whether this call may start a session (`GET` and `HEAD`).
    pub(crate) may_start: bool,
}

impl CallSessionView {
    fn with<T>(
        &self,
        start: bool,
        f: impl FnOnce(&mut SessionData) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let mut data = self.store.data.lock().expect("session");
        if data.is_none() {
            if !(start && self.may_start) {
                return Err(SessionError::NoSession);
            }
            *data = Some(SessionData {
                values: BTreeMap::new(),
                csrf: uuid::Uuid::new_v4().simple().to_string(),
            });
        }
        f(data.as_mut().expect("started above"))
    }
}

impl CallSession for CallSessionView {
    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, Option<Vec<u8>>, SessionError> {
        let value = match self.with(false, |d| Ok(d.values.get(key).cloned())) {
            Err(SessionError::NoSession) => Ok(None),
            other => other,
        };
        ready(value)
    }

    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> PortFuture<'a, (), SessionError> {
        ready(self.with(true, |d| {
            let size: usize = d
                .values
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
                + key.len()
                + value.len();
            if size as u64 > SESSION_CAP {
                return Err(SessionError::TooLarge { cap: SESSION_CAP });
            }
            d.values.insert(key.to_string(), value);
            Ok(())
        }))
    }

    fn remove<'a>(&'a self, key: &'a str) -> PortFuture<'a, bool, SessionError> {
        let removed = match self.with(false, |d| Ok(d.values.remove(key).is_some())) {
            Err(SessionError::NoSession) => Ok(false),
            other => other,
        };
        ready(removed)
    }

    fn clear(&self) -> PortFuture<'_, (), SessionError> {
        let cleared = match self.with(false, |d| {
            d.values.clear();
            Ok(())
        }) {
            Err(SessionError::NoSession) => Ok(()),
            other => other,
        };
        ready(cleared)
    }

    fn csrf_token(&self) -> PortFuture<'_, String, SessionError> {
        ready(self.with(true, |d| Ok(d.csrf.clone())))
    }
}
