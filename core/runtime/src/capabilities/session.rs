//! `guildhall:platform/session`: a citizen's session with the plugin for one council, held
//! by whoever made the call (the gateway keeps it in the platform's database and the
//! browser holds only a cookie the plugin never sees). Declared as `session = true`.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{CallSetup, PortError, PortFuture, prepared};
use crate::bindings::session;
use crate::host::{Call, Host};

/// One call's session: its data and anti-forgery token, loaded and kept by the caller of
/// [`crate::Runtime::handle`]. The runtime checks keys before it asks, and logs storage
/// failures with the call's tenant, plugin and request id; the plugin only learns that
/// storage failed.
pub trait CallSession: std::fmt::Debug + Send + Sync + 'static {
    /// The value under `key`; `None` also when the call has no session.
    fn get<'a>(&'a self, key: &'a str) -> PortFuture<'a, Option<Vec<u8>>, SessionError>;
    /// Stores `value` under `key`, starting a session when the call may.
    fn set<'a>(&'a self, key: &'a str, value: Vec<u8>) -> PortFuture<'a, (), SessionError>;
    /// Removes `key`; `true` when it existed.
    fn remove<'a>(&'a self, key: &'a str) -> PortFuture<'a, bool, SessionError>;
    /// Removes every value, keeping the session and its token.
    fn clear(&self) -> PortFuture<'_, (), SessionError>;
    /// The session's anti-forgery token, starting a session when the call may.
    fn csrf_token(&self) -> PortFuture<'_, String, SessionError>;
}

/// Why a session operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The call has no session and may not start one.
    #[error("this request has no session and cannot start one")]
    NoSession,
    /// The session's data would exceed `cap` bytes.
    #[error("the session's data would exceed {cap} bytes")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The storage behind the session failed.
    #[error(transparent)]
    Storage(PortError),
}

/// The longest key, in bytes.
pub(crate) const MAX_KEY: usize = 128;

/// The per-call state: the call's identity and its session, when it has one.
pub(crate) struct State {
    call: Arc<Call>,
}

pub(super) fn prepare(setup: &CallSetup<'_>) -> State {
    State {
        call: Arc::clone(setup.call),
    }
}

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    session::add_to_linker::<Host, HasSelf<State>>(linker, |h| {
        prepared(&mut h.capabilities.session)
    })
}

fn check_key(key: &str) -> Result<(), session::Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        Err(session::Error::InvalidKey(key.len() as u32))
    } else {
        Ok(())
    }
}

impl State {
    fn session(&self) -> Result<&Arc<dyn CallSession>, session::Error> {
        self.call
            .context
            .session
            .as_ref()
            .ok_or(session::Error::NoSession)
    }

    fn error(&self, e: SessionError) -> session::Error {
        match e {
            SessionError::NoSession => session::Error::NoSession,
            SessionError::TooLarge { cap } => session::Error::TooLarge(cap),
            SessionError::Storage(e) => {
                tracing::error!(
                    tenant = %self.call.context.tenant,
                    plugin = %self.call.plugin,
                    request_id = %self.call.context.request_id,
                    error = %e,
                    "session storage failed"
                );
                session::Error::Unavailable("the platform's storage failed; try again later".into())
            }
        }
    }
}

impl session::Host for State {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, session::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let Ok(session) = self.session() else {
            return Ok(Ok(None));
        };
        Ok(session.get(&key).await.map_err(|e| self.error(e)))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), session::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let session = match self.session() {
            Ok(session) => Arc::clone(session),
            Err(e) => return Ok(Err(e)),
        };
        Ok(session.set(&key, value).await.map_err(|e| self.error(e)))
    }

    async fn remove(&mut self, key: String) -> wasmtime::Result<Result<bool, session::Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let Ok(session) = self.session() else {
            return Ok(Ok(false));
        };
        Ok(session.remove(&key).await.map_err(|e| self.error(e)))
    }

    async fn clear(&mut self) -> wasmtime::Result<Result<(), session::Error>> {
        let Ok(session) = self.session() else {
            return Ok(Ok(()));
        };
        Ok(session.clear().await.map_err(|e| self.error(e)))
    }

    async fn csrf_token(&mut self) -> wasmtime::Result<Result<String, session::Error>> {
        let session = match self.session() {
            Ok(session) => Arc::clone(session),
            Err(e) => return Ok(Err(e)),
        };
        Ok(session.csrf_token().await.map_err(|e| self.error(e)))
    }
}
