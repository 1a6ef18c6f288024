//! Identity and access control: who is calling, and may they do this here.
//!
//! - [`tokens`]: Guildhall's own API tokens, stored as hashes.
//! - [`oidc`]: JWTs from councils' identity providers.
//! - casbin, RBAC with domains (a domain is a tenant; `*` is the platform), with its rules
//!   in the database through [`adapter::StoreAdapter`]. The model is `model.conf`.
//!
//! **Architecture Invariant:** this is the only crate that calls casbin. Every decision,
//! for the HTTP API and for plugins' `authz` import alike, goes through [`Authz::allowed`].
//!
//! **Architecture Invariant:** a change to a binding, a token or a policy bumps the access
//! revision in the same transaction; [`Authz::refresh`] compares it before each decision
//! batch, so a change made through any replica holds on every replica's next request.

pub mod adapter;
mod authenticate;
mod decide;
pub mod limiter;
mod manage;
pub mod oidc;
pub mod tokens;

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use casbin::{CoreApi, DefaultModel, Enforcer, RbacApi};
use guildhall_domain::{CouncilId, IssuerId, Role, Subject, TenantId};
use guildhall_store::{MemberRecord, NewToken, RuleRow, Store, TenantScope, TokenRecord};
use time::OffsetDateTime;

pub use limiter::{ClientKey, FailureKey, FailureLimiter};
pub use manage::member_bindings;
pub use oidc::{ClientSecret, Oidc, OidcError, OidcIssuer, SignInIssuer, SignInRequest};

/// The access-control model.
pub const MODEL: &str = include_str!("../model.conf");

/// The domain of platform-wide bindings and objects.
pub const PLATFORM: &str = "*";

/// Longest lifetime of a token, in days.
pub const MAX_TOKEN_DAYS: u32 = 365;

/// Default lifetime of a token, in days.
pub const DEFAULT_TOKEN_DAYS: u32 = 90;

/// What each built-in role may do, by the roles' casbin names (`role:<name>`). Restored at
/// every start ([`Authz::new`] adds any that are missing), so a policy added here reaches
/// existing databases on their next start.
pub const DEFAULT_POLICIES: &[[&str; 4]] = &[
    ["role:operator", "*", "*", "*"],
    ["role:publisher", "*", "catalogue", "publish"],
    ["role:publisher", "*", "catalogue", "yank"],
    ["role:tenant-admin", "*", "tenant", "*"],
    ["role:tenant-admin", "*", "members", "*"],
    ["role:tenant-admin", "*", "tokens", "*"],
    ["role:tenant-admin", "*", "installs", "*"],
    // Install secrets are write-only: `read` lists names and when they were set.
    ["role:tenant-admin", "*", "secrets", "*"],
    ["role:tenant-admin", "*", "settings", "*"],
    ["role:tenant-admin", "*", "schedules", "*"],
    ["role:tenant-admin", "*", "audit", "read"],
    ["role:tenant-admin", "*", "usage", "read"],
    ["role:tenant-admin", "*", "kpis", "read"],
    // Citizens' comments are free text that may hold personal data: their own object,
    // which auditors (who read the audit log, usage and KPIs) do not hold.
    ["role:tenant-admin", "*", "feedback", "read"],
    ["role:tenant-admin", "*", "plugin:*", "*"],
    ["role:officer", "*", "tenant", "read"],
    ["role:officer", "*", "installs", "read"],
    // A council's officers keep its own settings (a limited officer only its council's).
    ["role:officer", "*", "settings", "*"],
    ["role:officer", "*", "schedules", "read"],
    ["role:officer", "*", "kpis", "read"],
    ["role:officer", "*", "feedback", "read"],
    ["role:officer", "*", "plugin:*", "*"],
    ["role:auditor", "*", "tenant", "read"],
    ["role:auditor", "*", "installs", "read"],
    ["role:auditor", "*", "schedules", "read"],
    ["role:auditor", "*", "audit", "read"],
    ["role:auditor", "*", "usage", "read"],
    ["role:auditor", "*", "kpis", "read"],
    // Subject requests return residents' personal data from every service: their own
    // object, held by tenant administrators and data protection officers only.
    ["role:tenant-admin", "*", "subject-requests", "*"],
    // A tenant's administrators may take the alliance's archive and remove one of its
    // councils; removing the whole alliance (`lifecycle:delete`) is the operator's alone.
    ["role:tenant-admin", "*", "lifecycle", "export"],
    ["role:tenant-admin", "*", "councils", "delete"],
    ["role:data-protection-officer", "*", "tenant", "read"],
    ["role:data-protection-officer", "*", "installs", "read"],
    ["role:data-protection-officer", "*", "subject-requests", "*"],
];

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A Guildhall API token.
    Token {
        /// The token's record (no secret in it).
        record: Box<TokenRecord>,
    },
    /// A JWT from a configured OpenID Connect issuer.
    Oidc {
        /// The issuer's configured id.
        issuer: IssuerId,
    },
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials: a citizen.
    Anonymous,
    /// A checked credential.
    Authenticated {
        /// The casbin subject: `token:<id>` for tokens, `oidc:<issuer id>:<sub>` for OIDC
        /// (see [`Subject`]); never a role's name.
        subject: String,
        /// How it was proved.
        credential: Credential,
    },
}

impl Principal {
    /// The subject, or `anonymous`.
    pub fn subject(&self) -> &str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Authenticated { subject, .. } => subject,
        }
    }

    /// Whether the caller presented no credentials.
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Principal::Anonymous)
    }
}

/// Why a request could not be authenticated. Messages never include the credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The `Authorization` header is not `Bearer <credential>`.
    #[error("the Authorization header must be `Bearer <token>`")]
    BadScheme,
    /// The credential is neither a Guildhall token nor an accepted JWT.
    #[error("the bearer credential is not valid")]
    Invalid,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token was revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// The JWT was refused.
    #[error("the identity token was refused: {0}")]
    Oidc(#[from] OidcError),
    /// Too many failures with this credential, or from this client.
    #[error("too many failed authentications; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] guildhall_store::Error),
}

/// Where a decision is made: the platform, or one tenant.
#[derive(Debug, Clone, Copy)]
pub enum Domain<'a> {
    /// Platform-wide objects (the catalogue, the tenant list).
    Platform,
    /// One tenant's objects.
    Tenant(&'a TenantId),
}

impl Domain<'_> {
    fn as_str(&self) -> &str {
        match self {
            Domain::Platform => PLATFORM,
            Domain::Tenant(t) => t.as_str(),
        }
    }
}

/// Errors from managing bindings and tokens.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// A global role was asked for in a tenant, or a tenant role without one.
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is unacceptable: (field, reason).
    #[error("{1}")]
    Field(&'static str, String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] guildhall_store::Error),
    /// casbin failed.
    #[error("access control: {0}")]
    Casbin(#[from] casbin::Error),
}

/// The longest token name, in characters.
pub const MAX_TOKEN_NAME: usize = 100;

/// A token to mint.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// A label.
    pub name: &'a str,
    /// Its role.
    pub role: Role,
    /// The tenant (required for tenant roles, refused for global ones).
    pub tenant: Option<&'a TenantId>,
    /// The council an officer token is limited to.
    pub council: Option<&'a CouncilId>,
    /// Lifetime in days (1 to [`MAX_TOKEN_DAYS`]).
    pub days: u32,
    /// Who mints it.
    pub created_by: &'a str,
}

/// Authentication and authorisation, shared by the API and the plugin runtime.
#[derive(Clone)]
pub struct Authz {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    oidc: Oidc,
    limiter: FailureLimiter,
    /// Refused state-changing calls recorded in the audit log, per principal.
    refusals: FailureLimiter,
    enforcer: RwLock<Arc<Loaded>>,
    revision: tokio::sync::Mutex<i64>,
}

/// The rules as loaded at one revision, and the decisions already made on them. A reload
/// replaces both at once, so a cached decision never outlives the rules it came from.
struct Loaded {
    enforcer: Enforcer,
    decisions: std::sync::Mutex<std::collections::HashMap<String, bool>>,
}

impl Loaded {
    /// Decisions remembered at most; the memory is cleared when full.
    const CAPACITY: usize = 100_000;

    fn new(enforcer: Enforcer) -> Arc<Self> {
        Arc::new(Self {
            enforcer,
            decisions: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// casbin's decision for `(subject, domain, object, action)`, evaluated once per
    /// revision of the rules.
    fn decide(&self, subject: &str, domain: &str, object: &str, action: &str) -> bool {
        // Length-prefixed, so no two requests share a key whatever their characters.
        let key = format!(
            "{}:{subject}{}:{domain}{}:{object}{}:{action}",
            subject.len(),
            domain.len(),
            object.len(),
            action.len()
        );
        if let Some(decision) = self.decisions.lock().expect("decisions lock").get(&key) {
            return *decision;
        }
        let decision = self
            .enforcer
            .enforce((subject, domain, object, action))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "access-control evaluation failed; denying");
                false
            });
        let mut decisions = self.decisions.lock().expect("decisions lock");
        if decisions.len() >= Self::CAPACITY {
            decisions.clear();
        }
        decisions.insert(key, decision);
        decision
    }
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz")
            .field("oidc", &self.inner.oidc.is_enabled())
            .finish_non_exhaustive()
    }
}

async fn load_enforcer(store: &Store) -> Result<Enforcer, casbin::Error> {
    let model = DefaultModel::from_str(MODEL).await?;
    Enforcer::new(model, adapter::StoreAdapter::new(store.clone())).await
}

impl Authz {
    /// Refused state-changing calls of one principal recorded in the audit log per minute;
    /// more are answered the same way but not recorded.
    pub const REFUSALS_AUDITED_PER_MINUTE: u32 = 30;

    /// Counts a refused state-changing call of `principal`; `true` while it is within its
    /// quota of audited refusals.
    pub fn note_refusal(&self, principal: &Principal) -> bool {
        let key = FailureKey::Subject(principal.subject().to_string());
        let within = self.inner.refusals.blocked(&key).is_none();
        self.inner.refusals.failed(key);
        within
    }

    /// Restores the built-in roles' policies and loads every rule.
    pub async fn new(store: Store, oidc: Oidc) -> Result<Self, ManageError> {
        let defaults: Vec<RuleRow> = DEFAULT_POLICIES
            .iter()
            .map(|p| RuleRow::new("p", p))
            .collect();
        store.rules().add(&defaults).await?;
        manage::rebind_legacy_members(&store, &oidc).await?;
        let revision = store.rules().revision().await?;
        let enforcer = load_enforcer(&store).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                oidc,
                limiter: FailureLimiter::default(),
                refusals: FailureLimiter::new(
                    Self::REFUSALS_AUDITED_PER_MINUTE,
                    FailureLimiter::WINDOW,
                ),
                enforcer: RwLock::new(Loaded::new(enforcer)),
                revision: tokio::sync::Mutex::new(revision),
            }),
        })
    }

    /// The configured identity providers.
    pub fn oidc(&self) -> &Oidc {
        &self.inner.oidc
    }

    /// The store this works on.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Reloads the rules when any replica changed them since the last load.
    pub async fn refresh(&self) -> Result<(), ManageError> {
        let mut loaded = self.inner.revision.lock().await;
        let current = self.inner.store.rules().revision().await?;
        if current != *loaded {
            let enforcer = load_enforcer(&self.inner.store).await?;
            *self.inner.enforcer.write().expect("enforcer lock") = Loaded::new(enforcer);
            *loaded = current;
        }
        Ok(())
    }

    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(&self.inner.enforcer.read().expect("enforcer lock"))
    }
}

/// The casbin subject of a token.
pub fn token_subject(id: &str) -> String {
    Subject::token(id).as_str().to_string()
}

/// Whether `subject` is in one of the namespaces principals are given. Decisions for any
/// other text (a role's name, `*`, `anonymous`) are refused before casbin sees them.
fn namespaced(subject: &str) -> bool {
    subject.starts_with("token:") || subject.starts_with("oidc:")
}
