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
pub mod limiter;
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
pub use oidc::{Oidc, OidcError, OidcIssuer};

/// The access-control model.
pub const MODEL: &str = include_str!("../model.conf");

/// The domain of platform-wide bindings and objects.
pub const PLATFORM: &str = "*";

/// Longest lifetime of a token, in days.
pub const MAX_TOKEN_DAYS: u32 = 365;

/// Default lifetime of a token, in days.
pub const DEFAULT_TOKEN_DAYS: u32 = 90;

/// What each built-in role may do, by the roles' casbin names (`role:<name>`). Restored at
/// every start.
pub const DEFAULT_POLICIES: &[[&str; 4]] = &[
    ["role:operator", "*", "*", "*"],
    ["role:publisher", "*", "catalogue", "publish"],
    ["role:publisher", "*", "catalogue", "yank"],
    ["role:tenant-admin", "*", "tenant", "*"],
    ["role:tenant-admin", "*", "members", "*"],
    ["role:tenant-admin", "*", "tokens", "*"],
    ["role:tenant-admin", "*", "installs", "*"],
    ["role:tenant-admin", "*", "audit", "read"],
    ["role:tenant-admin", "*", "usage", "read"],
    ["role:tenant-admin", "*", "kpis", "read"],
    ["role:tenant-admin", "*", "plugin:*", "*"],
    ["role:officer", "*", "tenant", "read"],
    ["role:officer", "*", "installs", "read"],
    ["role:officer", "*", "kpis", "read"],
    ["role:officer", "*", "plugin:*", "*"],
    ["role:auditor", "*", "tenant", "read"],
    ["role:auditor", "*", "installs", "read"],
    ["role:auditor", "*", "audit", "read"],
    ["role:auditor", "*", "usage", "read"],
    ["role:auditor", "*", "kpis", "read"],
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
        rebind_legacy_members(&store, &oidc).await?;
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

    /// Turns an `Authorization` header into a principal. No header is [`Principal::Anonymous`].
    ///
    /// A credential that checks out is never refused, whatever failed before it from the
    /// same address. Failures count against the presented token's id when the credential is a
    /// well-formed Guildhall token of a known id, and against `client` otherwise (garbage,
    /// unknown ids, refused identity tokens, whose claims anyone can write). A key over its
    /// limit is answered 429 instead of 401.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let Some(header) = authorization else {
            return Ok(Principal::Anonymous);
        };
        let (error, token_id) = match self.check_credential(header).await {
            Ok(principal) => return Ok(principal),
            // Our own failures (database, the provider's keys unreachable) are not the
            // caller's and do not count against it.
            Err((e @ (AuthError::Store(_) | AuthError::Oidc(OidcError::Jwks(_))), _)) => {
                return Err(e);
            }
            Err(failure) => failure,
        };
        let key = match token_id {
            Some(id) => Some(FailureKey::Token(id)),
            None => client.map(FailureKey::from),
        };
        if let Some(key) = key {
            let wait = self.inner.limiter.blocked(&key);
            self.inner.limiter.failed(key);
            if let Some(wait) = wait {
                return Err(AuthError::RateLimited(wait));
            }
        }
        Err(error)
    }

    /// Checks a credential. A failure carries the token's id when the credential was a
    /// well-formed token of an id that exists, so the failure counts against that token.
    async fn check_credential(
        &self,
        header: &str,
    ) -> Result<Principal, (AuthError, Option<String>)> {
        let credential = bearer(header).ok_or((AuthError::BadScheme, None))?;
        if let Some(id) = tokens::id_of(credential) {
            let record = self
                .inner
                .store
                .tokens()
                .find(id)
                .await
                .map_err(|e| (e.into(), None))?
                .ok_or((AuthError::Invalid, None))?;
            let known = || Some(record.id.clone());
            if !tokens::matches(credential, &record.hash) {
                return Err((AuthError::Invalid, known()));
            }
            if record.revoked_at.is_some() {
                return Err((AuthError::Revoked, known()));
            }
            if record.expires_at <= OffsetDateTime::now_utc() {
                return Err((AuthError::Expired, known()));
            }
            return Ok(Principal::Authenticated {
                subject: token_subject(&record.id),
                credential: Credential::Token {
                    record: Box::new(record),
                },
            });
        }
        if self.inner.oidc.is_enabled() && Oidc::looks_like_jwt(credential) {
            let identity = self
                .inner
                .oidc
                .verify(credential)
                .await
                .map_err(|e| (e.into(), None))?;
            // `oidc:<issuer id>:<sub>`: whatever the provider puts in `sub`, the subject
            // cannot name a token, a role or another issuer's user.
            return Ok(Principal::Authenticated {
                subject: identity.subject.as_str().to_string(),
                credential: Credential::Oidc {
                    issuer: identity.issuer,
                },
            });
        }
        Err((AuthError::Invalid, None))
    }

    /// Whether a principal may act in `domain` at all: an OIDC subject only in the tenants
    /// its issuer serves, and on the platform only when its issuer is not limited to some
    /// tenants (so a council's provider can never reach a platform-wide role).
    fn may_act_in(&self, principal: &Principal, domain: Domain<'_>) -> bool {
        match (principal, domain) {
            (
                Principal::Authenticated {
                    credential: Credential::Oidc { issuer },
                    ..
                },
                Domain::Tenant(t),
            ) => self
                .inner
                .oidc
                .issuer_allows_tenant(issuer.as_str(), t.as_str()),
            (
                Principal::Authenticated {
                    credential: Credential::Oidc { issuer },
                    ..
                },
                Domain::Platform,
            ) => !self.inner.oidc.issuer_is_restricted(issuer.as_str()),
            (Principal::Anonymous, _) => false,
            (Principal::Authenticated { .. }, _) => true,
        }
    }

    /// Whether `principal` may do `action` on `object` in `domain`, by the rules as they
    /// were at the last [`refresh`](Self::refresh).
    pub fn allowed(
        &self,
        principal: &Principal,
        domain: Domain<'_>,
        object: &str,
        action: &str,
    ) -> bool {
        if !self.may_act_in(principal, domain) || !namespaced(principal.subject()) {
            return false;
        }
        self.loaded()
            .decide(principal.subject(), domain.as_str(), object, action)
    }

    /// Whether `subject`, already known to hold a role in `tenant`, may do `action` on
    /// `object` there. For plugins' `authz` import, whose caller was authenticated (and its
    /// issuer checked against the tenant) when the request arrived.
    pub fn allowed_subject(
        &self,
        subject: &str,
        tenant: &TenantId,
        object: &str,
        action: &str,
    ) -> bool {
        namespaced(subject)
            && self
                .loaded()
                .decide(subject, tenant.as_str(), object, action)
    }

    /// The roles `principal` holds in `tenant`, platform-wide ones included.
    pub fn roles_in(&self, principal: &Principal, tenant: &TenantId) -> Vec<Role> {
        if principal.is_anonymous() {
            return Vec::new();
        }
        let loaded = self.loaded();
        let enforcer = &loaded.enforcer;
        let mut roles = Vec::new();
        if self.may_act_in(principal, Domain::Platform) {
            roles.extend(
                enforcer
                    .get_roles_for_user(principal.subject(), Some(PLATFORM))
                    .into_iter()
                    .filter_map(|r| Role::from_casbin(&r)),
            );
        }
        if self.may_act_in(principal, Domain::Tenant(tenant)) {
            roles.extend(
                enforcer
                    .get_roles_for_user(principal.subject(), Some(tenant.as_str()))
                    .into_iter()
                    .filter_map(|r| Role::from_casbin(&r)),
            );
        }
        roles.sort();
        roles.dedup();
        roles
    }

    /// Whether `principal` holds any role bound in `tenant` itself (platform-wide roles do
    /// not count): such callers are told 403 rather than 404 when they lack a permission.
    pub fn holds_role_in(&self, principal: &Principal, tenant: &TenantId) -> bool {
        !principal.is_anonymous()
            && self.may_act_in(principal, Domain::Tenant(tenant))
            && !self
                .loaded()
                .enforcer
                .get_roles_for_user(principal.subject(), Some(tenant.as_str()))
                .is_empty()
    }

    /// The tenants in which `principal` holds a role (for listing), or `None` when it holds
    /// a platform-wide role that sees every tenant.
    pub fn tenants_of(&self, principal: &Principal) -> Option<Vec<String>> {
        if self.allowed(principal, Domain::Platform, "tenants", "list") {
            return None;
        }
        let loaded = self.loaded();
        let enforcer = &loaded.enforcer;
        let mut tenants: Vec<String> = enforcer
            .get_model()
            .get_model()
            .get("g")
            .and_then(|g| g.get("g"))
            .map(|g| {
                g.get_policy()
                    .iter()
                    .filter(|rule| rule.first().map(String::as_str) == Some(principal.subject()))
                    .filter_map(|rule| rule.get(2).cloned())
                    .filter(|d| d != PLATFORM)
                    .filter(|d| match principal {
                        Principal::Authenticated {
                            credential: Credential::Oidc { issuer },
                            ..
                        } => self.inner.oidc.issuer_allows_tenant(issuer.as_str(), d),
                        _ => true,
                    })
                    .collect()
            })
            .unwrap_or_default();
        tenants.sort();
        tenants.dedup();
        Some(tenants)
    }

    /// The council `principal` is limited to in this tenant, if any: an officer token's
    /// council, or the council of an OIDC subject's member binding.
    pub async fn council_limit(
        &self,
        principal: &Principal,
        scope: &TenantScope,
    ) -> Result<Option<String>, guildhall_store::Error> {
        match principal {
            Principal::Anonymous => Ok(None),
            Principal::Authenticated {
                credential: Credential::Token { record },
                ..
            } => Ok(record.council.clone()),
            Principal::Authenticated { subject, .. } => Ok(self
                .inner
                .store
                .members(scope)
                .get(subject)
                .await?
                .and_then(|m| m.council)),
        }
    }

    /// Mints a token: stores its hash and its role binding, and returns the token text
    /// (to show once) with its record.
    pub async fn create_token(
        &self,
        request: TokenRequest<'_>,
    ) -> Result<(String, TokenRecord), ManageError> {
        match (request.role.is_global(), request.tenant) {
            (true, Some(_)) => {
                return Err(ManageError::Invalid(format!(
                    "role {} is platform-wide and takes no tenant",
                    request.role
                )));
            }
            (false, None) => {
                return Err(ManageError::Invalid(format!(
                    "role {} needs a tenant",
                    request.role
                )));
            }
            _ => {}
        }
        if request.council.is_some() && request.role != Role::Officer {
            return Err(ManageError::Invalid(
                "only officer tokens can be limited to a council".to_string(),
            ));
        }
        if !(1..=MAX_TOKEN_DAYS).contains(&request.days) {
            return Err(ManageError::Invalid(format!(
                "a token lives from 1 to {MAX_TOKEN_DAYS} days, not {}",
                request.days
            )));
        }
        let name = request.name.trim();
        guildhall_domain::text::line("name", name, MAX_TOKEN_NAME)
            .map_err(|e| ManageError::Field("name", format!("a token's name {}", e.reason)))?;
        let secret = tokens::generate();
        let domain = request.tenant.map_or(PLATFORM, |t| t.as_str());
        let subject = token_subject(&secret.id);
        let record = self
            .inner
            .store
            .tokens()
            .create(NewToken {
                id: &secret.id,
                tenant: request.tenant,
                name,
                role: request.role,
                council: request.council,
                hash: &secret.hash,
                created_by: request.created_by,
                expires_at: OffsetDateTime::now_utc()
                    + time::Duration::days(i64::from(request.days)),
                binding: binding(&subject, request.role, domain),
            })
            .await?;
        Ok((secret.token, record))
    }

    /// Revokes a tenant's token and its binding.
    pub async fn revoke_token(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<TokenRecord>, ManageError> {
        let Some(record) = self.inner.store.tokens().find(id).await? else {
            return Ok(None);
        };
        let rule = binding(&token_subject(id), record.role, scope.tenant().as_str());
        Ok(self.inner.store.tokens().revoke(scope, id, &rule).await?)
    }

    /// Sets `subject`'s roles in a tenant; an empty list removes the binding. The subject
    /// must be an OIDC subject of a configured issuer that serves this tenant: tokens get
    /// their role when they are minted, and platform-wide roles are never given here.
    pub async fn put_member(
        &self,
        scope: &TenantScope,
        subject: &Subject,
        roles: &[Role],
        council: Option<&CouncilId>,
    ) -> Result<(guildhall_store::Applied, Option<MemberRecord>), ManageError> {
        if let Some(global) = roles.iter().find(|r| r.is_global()) {
            return Err(ManageError::Invalid(format!(
                "role {global} is platform-wide and cannot be given in a tenant"
            )));
        }
        if council.is_some() && roles.iter().any(|r| *r != Role::Officer) {
            return Err(ManageError::Invalid(
                "only officers can be limited to a council".to_string(),
            ));
        }
        let Some((issuer, _)) = subject.oidc_parts() else {
            return Err(ManageError::Invalid(
                "token subjects get their role when the token is created".to_string(),
            ));
        };
        let tenant = scope.tenant().as_str();
        // Removing a binding is allowed whatever the configuration says now, so bindings of
        // an issuer that was since removed or narrowed can still be cleaned up.
        if !roles.is_empty() {
            if !self.inner.oidc.knows_issuer(issuer) {
                return Err(ManageError::Field(
                    "issuer",
                    format!("no OpenID Connect issuer with id {issuer:?} is configured"),
                ));
            }
            if !self.inner.oidc.issuer_allows_tenant(issuer, tenant) {
                return Err(ManageError::Field(
                    "issuer",
                    format!("the issuer {issuer:?} does not serve tenant {tenant}"),
                ));
            }
        }
        let subject = subject.as_str();
        let old: Vec<RuleRow> = Role::ALL
            .iter()
            .filter(|r| !r.is_global())
            .map(|r| binding(subject, *r, tenant))
            .collect();
        let new: Vec<RuleRow> = roles.iter().map(|r| binding(subject, *r, tenant)).collect();
        Ok(self
            .inner
            .store
            .members(scope)
            .put(subject, roles, council, &old, &new)
            .await?)
    }
}

/// The credential of a `Bearer` header.
fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
}

/// Moves member bindings made before subjects were namespaced (a bare `sub`) to
/// `oidc:<issuer id>:<sub>`, when exactly one configured issuer serves their tenant. A bare
/// subject matches no principal, so a binding that cannot be moved grants nothing; it is
/// named in a warning for an administrator to bind again with the issuer.
async fn rebind_legacy_members(store: &Store, oidc: &Oidc) -> Result<(), ManageError> {
    if !oidc.is_enabled() {
        // Without issuers no OIDC subject can call; the bindings wait for the configuration.
        return Ok(());
    }
    for tenant in store.tenants().list().await? {
        let Some(scope) = store.scope(&tenant.id).await? else {
            continue;
        };
        let members = store.members(&scope);
        for member in members.list().await? {
            if namespaced(&member.subject) {
                continue;
            }
            let issuers = oidc.issuers_for_tenant(tenant.id.as_str());
            let moved = match issuers.as_slice() {
                [issuer] => match Subject::oidc(issuer, &member.subject) {
                    Ok(subject) => members.rename(&member.subject, subject.as_str()).await?,
                    Err(_) => false,
                },
                _ => false,
            };
            if moved {
                tracing::info!(tenant = %tenant.id, "member binding moved to its issuer's namespace");
            } else {
                tracing::warn!(
                    tenant = %tenant.id,
                    issuers = issuers.len(),
                    "a member binding made before subjects named their issuer grants nothing \
                     until it is bound again as oidc:<issuer id>:<sub>"
                );
            }
        }
    }
    Ok(())
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

fn binding(subject: &str, role: Role, domain: &str) -> RuleRow {
    RuleRow::new("g", &[subject, role.casbin_name(), domain])
}
