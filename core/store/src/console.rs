//! The console's server-side sessions and OpenID Connect sign-ins in progress.
//!
//! The store keeps hashes, never the secrets a browser holds: a session is found by the
//! sha256 of its cookie, a sign-in by the sha256 of its `state`. Timeouts are the caller's
//! policy; the store answers what is recorded and deletes what it is told to.
//!
//! **Architecture Invariant:** a sign-in row is used at most once: [`ConsoleSessions::take_sign_in`]
//! deletes it and returns it only to the caller whose delete removed it, so two callbacks
//! racing with one `state` cannot both sign in.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use time::OffsetDateTime;

use crate::entities::{console_sessions, console_sign_ins};
use crate::{Result, scoped};

/// A new session.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The sha256 (hex) of the cookie's secret.
    pub id_hash: &'a str,
    /// The casbin subject the session acts as.
    pub subject: &'a str,
    /// The OpenID Connect issuer's id, for provider sign-ins.
    pub issuer: Option<&'a str>,
    /// The token's id, for token sign-ins.
    pub token_id: Option<&'a str>,
    /// The session's anti-forgery token, embedded in every form.
    pub csrf: &'a str,
    /// When the session ends whatever happens (the absolute timeout).
    pub expires_at: OffsetDateTime,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The sha256 (hex) of the cookie's secret.
    pub id_hash: String,
    /// The casbin subject.
    pub subject: String,
    /// The OpenID Connect issuer's id, for provider sign-ins.
    pub issuer: Option<String>,
    /// The token's id, for token sign-ins.
    pub token_id: Option<String>,
    /// The anti-forgery token.
    pub csrf: String,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it was last used (updated at most once a minute).
    pub last_seen_at: OffsetDateTime,
    /// Its absolute end.
    pub expires_at: OffsetDateTime,
}

/// An OpenID Connect sign-in between the redirect and the provider's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRecord {
    /// The issuer's configured id.
    pub issuer: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// The console path to return to.
    pub return_to: String,
    /// When the sign-in began.
    pub created_at: OffsetDateTime,
}

/// Console sessions and sign-ins.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSessions<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> ConsoleSessions<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Records a new session.
    pub async fn create(&self, new: NewSession<'_>) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        console_sessions::ActiveModel {
            id_hash: Set(new.id_hash.to_string()),
            subject: Set(new.subject.to_string()),
            issuer: Set(new.issuer.map(str::to_string)),
            token_id: Set(new.token_id.map(str::to_string)),
            csrf: Set(new.csrf.to_string()),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(new.expires_at),
        }
        .insert(self.db)
        .await?;
        Ok(())
    }

    /// The session whose cookie hashes to `id_hash`, if it is recorded.
    pub async fn find(&self, id_hash: &str) -> Result<Option<SessionRecord>> {
        Ok(console_sessions::Entity::find_by_id(id_hash.to_string())
            .one(self.db)
            .await?
            .map(|row| SessionRecord {
                id_hash: row.id_hash,
                subject: row.subject,
                issuer: row.issuer,
                token_id: row.token_id,
                csrf: row.csrf,
                created_at: row.created_at,
                last_seen_at: row.last_seen_at,
                expires_at: row.expires_at,
            }))
    }

    /// Records that the session was used at `at`.
    pub async fn touch(&self, id_hash: &str, at: OffsetDateTime) -> Result<()> {
        console_sessions::Entity::update_many()
            .col_expr(
                console_sessions::Column::LastSeenAt,
                sea_orm::sea_query::Expr::value(at),
            )
            .filter(console_sessions::Column::IdHash.eq(id_hash))
            .exec(self.db)
            .await?;
        Ok(())
    }

    /// Ends one session; `true` when it existed.
    pub async fn end(&self, id_hash: &str) -> Result<bool> {
        Ok(console_sessions::Entity::delete_by_id(id_hash.to_string())
            .exec(self.db)
            .await?
            .rows_affected
            > 0)
    }

    /// Ends every session of `subject` (on every replica at once: they all read here).
    pub async fn end_all_of(&self, subject: &str) -> Result<u64> {
        Ok(console_sessions::Entity::delete_many()
            .filter(console_sessions::Column::Subject.eq(subject))
            .exec(self.db)
            .await?
            .rows_affected)
    }

    /// Ends every session signed in with the token `token_id`.
    pub async fn end_all_of_token(&self, token_id: &str) -> Result<u64> {
        Ok(console_sessions::Entity::delete_many()
            .filter(console_sessions::Column::TokenId.eq(token_id))
            .exec(self.db)
            .await?
            .rows_affected)
    }

    /// Deletes sessions past their absolute end or idle since `idle_since`, and sign-ins
    /// begun before `sign_ins_since`. Returns how many rows went.
    pub async fn purge(
        &self,
        now: OffsetDateTime,
        idle_since: OffsetDateTime,
        sign_ins_since: OffsetDateTime,
    ) -> Result<u64> {
        let sessions = console_sessions::Entity::delete_many()
            .filter(
                sea_orm::Condition::any()
                    .add(console_sessions::Column::ExpiresAt.lte(now))
                    .add(console_sessions::Column::LastSeenAt.lt(idle_since)),
            )
            .exec(self.db)
            .await?
            .rows_affected;
        let sign_ins = console_sign_ins::Entity::delete_many()
            .filter(console_sign_ins::Column::CreatedAt.lt(sign_ins_since))
            .exec(self.db)
            .await?
            .rows_affected;
        Ok(sessions + sign_ins)
    }

    /// Records a sign-in in progress under the hash of its `state`.
    pub async fn begin_sign_in(&self, state_hash: &str, sign_in: &SignInRecord) -> Result<()> {
        console_sign_ins::ActiveModel {
            state_hash: Set(state_hash.to_string()),
            issuer: Set(sign_in.issuer.clone()),
            nonce: Set(sign_in.nonce.clone()),
            verifier: Set(sign_in.verifier.clone()),
            return_to: Set(sign_in.return_to.clone()),
            created_at: Set(sign_in.created_at),
        }
        .insert(self.db)
        .await?;
        Ok(())
    }

    /// Takes the sign-in recorded under `state_hash`: returns it to the one caller whose
    /// delete removed it, and `None` to anyone else (unknown, or already used).
    pub async fn take_sign_in(&self, state_hash: &str) -> Result<Option<SignInRecord>> {
        let txn = scoped::write(self.db).await?;
        let Some(row) = console_sign_ins::Entity::find_by_id(state_hash.to_string())
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let deleted = console_sign_ins::Entity::delete_by_id(state_hash.to_string())
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok((deleted == 1).then_some(SignInRecord {
            issuer: row.issuer,
            nonce: row.nonce,
            verifier: row.verifier,
            return_to: row.return_to,
            created_at: row.created_at,
        }))
    }
}
