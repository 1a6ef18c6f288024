//! Identity: API tokens, member bindings and the access-control rules casbin loads.
//!
//! Casbin rules are a platform table: the enforcer loads every rule. Member bindings are
//! tenant data and are reached through a [`TenantScope`]. A tenant's tokens are tenant data
//! too, under row-level security on PostgreSQL; platform tokens (no tenant) are not.
//! Authentication reads a token by the id inside it before any tenant is known, through
//! the one-row `guildhall.token_id` lookup (see the `tokens_rls` migration).

use guildhall_domain::{CouncilId, Role, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::claim::{self, Claim};
use crate::entities::{casbin_rules, members, platform_revision, tokens};
use crate::{Error, Result, TenantScope, scoped};

/// One casbin rule: its type (`p`, `g`) and up to six values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleRow {
    /// `p` for a policy, `g` for a role binding.
    pub ptype: String,
    /// The rule's values in order.
    pub values: Vec<String>,
}

impl RuleRow {
    /// A rule of type `ptype` with `values`.
    pub fn new(ptype: &str, values: &[&str]) -> Self {
        Self {
            ptype: ptype.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn active(&self) -> casbin_rules::ActiveModel {
        let v = |i: usize| Set(self.values.get(i).cloned().unwrap_or_default());
        casbin_rules::ActiveModel {
            ptype: Set(self.ptype.clone()),
            v0: v(0),
            v1: v(1),
            v2: v(2),
            v3: v(3),
            v4: v(4),
            v5: v(5),
            ..Default::default()
        }
    }

    fn condition(&self) -> sea_orm::Condition {
        let columns = [
            casbin_rules::Column::V0,
            casbin_rules::Column::V1,
            casbin_rules::Column::V2,
            casbin_rules::Column::V3,
            casbin_rules::Column::V4,
            casbin_rules::Column::V5,
        ];
        let mut condition =
            sea_orm::Condition::all().add(casbin_rules::Column::Ptype.eq(self.ptype.as_str()));
        for (i, column) in columns.into_iter().enumerate() {
            condition = condition.add(column.eq(self.values.get(i).cloned().unwrap_or_default()));
        }
        condition
    }

    fn from_model(row: casbin_rules::Model) -> Self {
        let mut values = vec![row.v0, row.v1, row.v2, row.v3, row.v4, row.v5];
        while values.last().is_some_and(String::is_empty) {
            values.pop();
        }
        Self {
            ptype: row.ptype,
            values,
        }
    }
}

/// The stored access-control rules, for the casbin adapter.
#[derive(Debug)]
pub struct Rules<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> Rules<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Every rule.
    pub async fn all(&self) -> Result<Vec<RuleRow>> {
        Ok(casbin_rules::Entity::find()
            .order_by_asc(casbin_rules::Column::Id)
            .all(self.db)
            .await?
            .into_iter()
            .map(RuleRow::from_model)
            .collect())
    }

    /// Adds rules that are not stored yet; returns how many were added.
    pub async fn add(&self, rules: &[RuleRow]) -> Result<usize> {
        let txn = scoped::write(self.db).await?;
        let added = insert_rules(&txn, rules).await?;
        if added > 0 {
            bump_authz_revision(&txn).await?;
        }
        txn.commit().await?;
        Ok(added)
    }

    /// Removes these exact rules; returns how many were removed.
    pub async fn remove(&self, rules: &[RuleRow]) -> Result<usize> {
        let txn = scoped::write(self.db).await?;
        let mut removed = 0;
        for rule in rules {
            removed += casbin_rules::Entity::delete_many()
                .filter(rule.condition())
                .exec(&txn)
                .await?
                .rows_affected as usize;
        }
        if removed > 0 {
            bump_authz_revision(&txn).await?;
        }
        txn.commit().await?;
        Ok(removed)
    }

    /// Removes the rules of type `ptype` whose values from `field_index` on equal
    /// `values` (an empty value matches anything), as casbin's filtered removal does.
    pub async fn remove_filtered(
        &self,
        ptype: &str,
        field_index: usize,
        values: &[String],
    ) -> Result<usize> {
        let columns = [
            casbin_rules::Column::V0,
            casbin_rules::Column::V1,
            casbin_rules::Column::V2,
            casbin_rules::Column::V3,
            casbin_rules::Column::V4,
            casbin_rules::Column::V5,
        ];
        let mut condition = sea_orm::Condition::all().add(casbin_rules::Column::Ptype.eq(ptype));
        for (offset, value) in values.iter().enumerate() {
            let Some(column) = columns.get(field_index + offset) else {
                break;
            };
            if !value.is_empty() {
                condition = condition.add(column.eq(value.as_str()));
            }
        }
        let txn = scoped::write(self.db).await?;
        let removed = casbin_rules::Entity::delete_many()
            .filter(condition)
            .exec(&txn)
            .await?
            .rows_affected as usize;
        if removed > 0 {
            bump_authz_revision(&txn).await?;
        }
        txn.commit().await?;
        Ok(removed)
    }

    /// Replaces every rule with `rules`.
    pub async fn replace_all(&self, rules: &[RuleRow]) -> Result<()> {
        let txn = scoped::write(self.db).await?;
        casbin_rules::Entity::delete_many().exec(&txn).await?;
        insert_rules(&txn, rules).await?;
        bump_authz_revision(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The access-control revision: it goes up with every change to rules, bindings or
    /// tokens, so every replica reloads before its next decision.
    pub async fn revision(&self) -> Result<i64> {
        Ok(platform_revision::Entity::find_by_id(2)
            .one(self.db)
            .await?
            .map_or(0, |row| row.revision))
    }
}

/// Inserts the rules not stored yet. A rule another replica inserts at the same moment
/// (both restoring the built-in policies at start, say) is skipped, not an error.
pub(crate) async fn insert_rules<C: ConnectionTrait>(db: &C, rules: &[RuleRow]) -> Result<usize> {
    use sea_orm::TryInsertResult;
    use sea_orm::sea_query::OnConflict;
    let mut added = 0;
    for rule in rules {
        let result = casbin_rules::Entity::insert(rule.active())
            .on_conflict(
                OnConflict::columns([
                    casbin_rules::Column::Ptype,
                    casbin_rules::Column::V0,
                    casbin_rules::Column::V1,
                    casbin_rules::Column::V2,
                    casbin_rules::Column::V3,
                    casbin_rules::Column::V4,
                    casbin_rules::Column::V5,
                ])
                .do_nothing()
                .to_owned(),
            )
            .try_insert()
            .exec(db)
            .await?;
        if matches!(result, TryInsertResult::Inserted(_)) {
            added += 1;
        }
    }
    Ok(added)
}

pub(crate) async fn bump_authz_revision<C: ConnectionTrait>(db: &C) -> Result<()> {
    platform_revision::Entity::update_many()
        .col_expr(
            platform_revision::Column::Revision,
            Expr::col(platform_revision::Column::Revision).add(1),
        )
        .filter(platform_revision::Column::Id.eq(2))
        .exec(db)
        .await?;
    Ok(())
}

/// A token as stored: everything but the secret, which is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The token's public id (also in the token text).
    pub id: String,
    /// The tenant it acts in; `None` for a global role.
    pub tenant: Option<String>,
    /// A label for people.
    pub name: String,
    /// The role it carries.
    pub role: Role,
    /// The one council it is limited to, if any.
    pub council: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// SHA-256 of the token, hex.
    #[serde(skip)]
    pub hash: String,
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Its public id.
    pub id: &'a str,
    /// The tenant, or `None` for a global role.
    pub tenant: Option<&'a TenantId>,
    /// Its label.
    pub name: &'a str,
    /// Its role.
    pub role: Role,
    /// The council it is limited to.
    pub council: Option<&'a CouncilId>,
    /// SHA-256 of the token text, hex.
    pub hash: &'a str,
    /// Who creates it.
    pub created_by: &'a str,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The role binding casbin needs for it.
    pub binding: RuleRow,
}

/// API tokens: looked up by id when a request presents one, managed per tenant.
#[derive(Debug)]
pub struct Tokens<'a> {
    db: &'a DatabaseConnection,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores a token and its role binding in one transaction.
    pub async fn create(&self, new: NewToken<'_>) -> Result<TokenRecord> {
        let txn = match new.tenant {
            Some(tenant) => scoped::begin_write(self.db, tenant.as_str()).await?,
            None => scoped::write(self.db).await?,
        };
        let row = tokens::ActiveModel {
            id: Set(new.id.to_string()),
            tenant_id: Set(new.tenant.map(|t| t.as_str().to_string())),
            name: Set(new.name.to_string()),
            role: Set(new.role.as_str().to_string()),
            council: Set(new.council.map(|c| c.as_str().to_string())),
            hash: Set(new.hash.to_string()),
            created_by: Set(new.created_by.to_string()),
            created_at: Set(OffsetDateTime::now_utc()),
            expires_at: Set(new.expires_at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_rules(&txn, std::slice::from_ref(&new.binding)).await?;
        bump_authz_revision(&txn).await?;
        txn.commit().await?;
        to_token(row)
    }

    /// The token with this id, revoked and expired ones included, whatever its tenant:
    /// authentication reads it before any tenant is known. On PostgreSQL the read can see
    /// this one row only.
    pub async fn find(&self, id: &str) -> Result<Option<TokenRecord>> {
        let txn = scoped::begin_token_lookup(self.db, id).await?;
        let row = tokens::Entity::find_by_id(id.to_string()).one(&txn).await?;
        txn.commit().await?;
        row.map(to_token).transpose()
    }

    /// The tokens of one tenant, newest first.
    pub async fn list(&self, scope: &TenantScope) -> Result<Vec<TokenRecord>> {
        let txn = scoped::begin(self.db, scope.tenant().as_str()).await?;
        let rows = tokens::Entity::find()
            .filter(tokens::Column::TenantId.eq(scope.tenant().as_str()))
            .order_by_desc(tokens::Column::CreatedAt)
            .all(&txn)
            .await?;
        txn.commit().await?;
        rows.into_iter().map(to_token).collect()
    }

    /// Revokes one of the tenant's tokens and removes its role binding. Returns the
    /// token, or `None` when the tenant has no token with this id.
    pub async fn revoke(
        &self,
        scope: &TenantScope,
        id: &str,
        binding: &RuleRow,
    ) -> Result<Option<TokenRecord>> {
        let txn = scoped::begin_write(self.db, scope.tenant().as_str()).await?;
        // Held until commit: a concurrent revocation waits, then finds it revoked.
        let Some(row) = tokens::Entity::find_by_id(id.to_string())
            .filter(tokens::Column::TenantId.eq(scope.tenant().as_str()))
            .lock_exclusive()
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let row = if row.revoked_at.is_none() {
            let mut active: tokens::ActiveModel = row.into();
            active.revoked_at = Set(Some(OffsetDateTime::now_utc()));
            let row = active.update(&txn).await?;
            casbin_rules::Entity::delete_many()
                .filter(binding.condition())
                .exec(&txn)
                .await?;
            bump_authz_revision(&txn).await?;
            row
        } else {
            row
        };
        txn.commit().await?;
        Ok(Some(to_token(row)?))
    }
}

fn to_token(row: tokens::Model) -> Result<TokenRecord> {
    Ok(TokenRecord {
        role: Role::parse(&row.role)
            .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("corrupt token: {e}"))))?,
        id: row.id,
        tenant: row.tenant_id,
        name: row.name,
        council: row.council,
        created_by: row.created_by,
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        hash: row.hash,
    })
}

/// A subject's roles in one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRecord {
    /// The subject: `oidc:<issuer id>:<sub>`.
    pub subject: String,
    /// Its roles in the tenant.
    pub roles: Vec<Role>,
    /// The one council it is limited to, if any.
    pub council: Option<String>,
    /// When the binding was first made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last changed.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One tenant's member bindings.
#[derive(Debug)]
pub struct Members<'a> {
    db: &'a DatabaseConnection,
    scope: &'a TenantScope,
}

impl<'a> Members<'a> {
    pub(crate) fn new(db: &'a DatabaseConnection, scope: &'a TenantScope) -> Self {
        Self { db, scope }
    }

    fn tenant(&self) -> &str {
        self.scope.tenant().as_str()
    }

    /// One subject's binding.
    pub async fn get(&self, subject: &str) -> Result<Option<MemberRecord>> {
        let txn = scoped::begin(self.db, self.tenant()).await?;
        let row = members::Entity::find_by_id((self.tenant().to_string(), subject.to_string()))
            .one(&txn)
            .await?;
        txn.commit().await?;
        row.map(to_member).transpose()
    }

    /// Every binding in the tenant, by subject.
    pub async fn list(&self) -> Result<Vec<MemberRecord>> {
        let txn = scoped::begin(self.db, self.tenant()).await?;
        let rows = members::Entity::find()
            .filter(members::Column::TenantId.eq(self.tenant()))
            .order_by_asc(members::Column::Subject)
            .all(&txn)
            .await?;
        txn.commit().await?;
        rows.into_iter().map(to_member).collect()
    }

    /// Sets a subject's roles (an empty list removes the binding) together with the
    /// casbin role bindings that express them, in one transaction. `old_bindings` are the
    /// rules to remove (the subject's bindings in this tenant), `bindings` the new ones.
    pub async fn put(
        &self,
        subject: &str,
        roles: &[Role],
        council: Option<&CouncilId>,
        old_bindings: &[RuleRow],
        bindings: &[RuleRow],
    ) -> Result<(crate::Applied, Option<MemberRecord>)> {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let roles_text = roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let council_text = council.map(|c| c.as_str().to_string());
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        claim::lock_tenant(&txn, self.scope.tenant()).await?;
        let key = (self.tenant().to_string(), subject.to_string());
        let (applied, row) = if roles.is_empty() {
            let deleted = members::Entity::delete_by_id(key)
                .exec(&txn)
                .await?
                .rows_affected
                > 0;
            let applied = if deleted {
                crate::Applied::Updated
            } else {
                crate::Applied::Unchanged
            };
            (applied, None)
        } else {
            let now = OffsetDateTime::now_utc();
            let new = members::ActiveModel {
                tenant_id: Set(self.tenant().to_string()),
                subject: Set(subject.to_string()),
                roles: Set(roles_text.clone()),
                council: Set(council_text.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            };
            match claim::claim(&txn, new, members::Entity::find_by_id(key)).await? {
                Claim::Created(row) => (crate::Applied::Created, Some(row)),
                Claim::Existing(row) if row.roles == roles_text && row.council == council_text => {
                    (crate::Applied::Unchanged, Some(row))
                }
                Claim::Existing(row) => {
                    let created_at = row.created_at;
                    let mut active: members::ActiveModel = row.into();
                    active.roles = Set(roles_text);
                    active.council = Set(council_text);
                    active.updated_at = Set(claim::stamp(created_at));
                    (crate::Applied::Updated, Some(active.update(&txn).await?))
                }
            }
        };
        if applied != crate::Applied::Unchanged {
            for rule in old_bindings {
                casbin_rules::Entity::delete_many()
                    .filter(rule.condition())
                    .exec(&txn)
                    .await?;
            }
            insert_rules(&txn, bindings).await?;
            bump_authz_revision(&txn).await?;
        }
        txn.commit().await?;
        Ok((applied, row.map(to_member).transpose()?))
    }
}

impl Members<'_> {
    /// Renames a subject's binding in this tenant, with its casbin role bindings, in one
    /// transaction. Used once, to move bindings made before subjects were namespaced to
    /// their `oidc:<issuer id>:<sub>` form. `false` when there was nothing to rename or the
    /// new subject is already bound (then the old binding is left for an administrator).
    pub async fn rename(&self, old: &str, new: &str) -> Result<bool> {
        let txn = scoped::begin_write(self.db, self.tenant()).await?;
        let key = |s: &str| (self.tenant().to_string(), s.to_string());
        let Some(row) = members::Entity::find_by_id(key(old)).one(&txn).await? else {
            return Ok(false);
        };
        if members::Entity::find_by_id(key(new))
            .one(&txn)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        members::Entity::delete_by_id(key(old)).exec(&txn).await?;
        members::ActiveModel {
            subject: Set(new.to_string()),
            ..row.into()
        }
        .insert(&txn)
        .await?;
        casbin_rules::Entity::update_many()
            .col_expr(casbin_rules::Column::V0, Expr::value(new))
            .filter(casbin_rules::Column::Ptype.eq("g"))
            .filter(casbin_rules::Column::V0.eq(old))
            .filter(casbin_rules::Column::V2.eq(self.tenant()))
            .exec(&txn)
            .await?;
        bump_authz_revision(&txn).await?;
        txn.commit().await?;
        Ok(true)
    }
}

fn to_member(row: members::Model) -> Result<MemberRecord> {
    let roles = row
        .roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(Role::parse)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Database(sea_orm::DbErr::Custom(format!("corrupt member: {e}"))))?;
    Ok(MemberRecord {
        subject: row.subject,
        roles,
        council: row.council,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
