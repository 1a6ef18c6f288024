//! The audit log: per-tenant hash chains, append-only.
//!
//! Appending locks the chain's head row first (a write, so SQLite takes its write lock and
//! PostgreSQL a row lock), reads the last sequence number and hash, and inserts the next
//! entry, all in one transaction: concurrent appends to one chain queue, different chains
//! do not. No function here updates or deletes an entry; on PostgreSQL the application
//! role is not granted UPDATE or DELETE on `audit_log` either.

use guildhall_domain::audit::{ChainEntry, GENESIS, PLATFORM_CHAIN};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::entities::{audit_heads, audit_log};
use crate::{Result, TenantScope, scoped};

/// An entry to append.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    /// Who acted.
    pub actor: &'a str,
    /// What was done, e.g. `installs.put`.
    pub action: &'a str,
    /// What it was done to.
    pub object: &'a str,
    /// How it ended: an HTTP status or a word.
    pub outcome: &'a str,
    /// The request it happened in.
    pub request_id: &'a str,
    /// Further detail as JSON.
    pub detail: serde_json::Value,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When, RFC 3339.
    pub at: String,
    /// Who acted.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub object: String,
    /// How it ended.
    pub outcome: String,
    /// The request it happened in.
    pub request_id: String,
    /// Further detail (JSON text).
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// `sha256(prev_hash ‖ canonical entry)`.
    pub hash: String,
}

/// Where verification found a chain broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The first entry that does not check out (for a missing tail, the first missing).
    pub seq: i64,
    /// Why.
    pub reason: String,
}

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// The chain: a tenant id or `_platform`.
    pub chain: String,
    /// Entries checked.
    pub entries: u64,
    /// The first broken entry, if any.
    pub broken: Option<Broken>,
}

/// A tenant's chain deleted with the tenant (`forgotten_audit_chains`), which `audit verify`
/// reports so that a chain begun again after a deletion shows as such.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForgottenChain {
    /// The tenant whose chain it was.
    pub tenant: String,
    /// How many entries it had.
    pub entries: i64,
    /// The hash of its last entry.
    pub head_hash: String,
    /// When it was deleted, RFC 3339.
    pub forgotten_at: String,
}

/// Every chain deleted with its tenant, oldest first.
pub(crate) async fn forgotten_chains(db: &DatabaseConnection) -> Result<Vec<ForgottenChain>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT tenant_id, entries, head_hash, forgotten_at_ms FROM forgotten_audit_chains \
             ORDER BY forgotten_at_ms, tenant_id",
        ))
        .await?;
    let mut chains = Vec::with_capacity(rows.len());
    for row in rows {
        chains.push(ForgottenChain {
            tenant: row.try_get("", "tenant_id")?,
            entries: row.try_get("", "entries")?,
            head_hash: row.try_get("", "head_hash")?,
            forgotten_at: crate::millis::from_ms(row.try_get("", "forgotten_at_ms")?)
                .format(&Rfc3339)
                .unwrap_or_default(),
        });
    }
    Ok(chains)
}

/// One audit chain: a tenant's, or the platform's.
#[derive(Debug)]
pub struct Audit<'a> {
    db: &'a DatabaseConnection,
    chain: String,
}

impl<'a> Audit<'a> {
    pub(crate) fn tenant(db: &'a DatabaseConnection, scope: &TenantScope) -> Self {
        Self {
            db,
            chain: scope.tenant().as_str().to_string(),
        }
    }

    pub(crate) fn platform(db: &'a DatabaseConnection) -> Self {
        Self {
            db,
            chain: PLATFORM_CHAIN.to_string(),
        }
    }

    /// Appends one entry in its own transaction.
    pub async fn append(&self, entry: NewAuditEntry<'_>) -> Result<AuditRecord> {
        let txn = scoped::begin_write(self.db, &self.chain).await?;
        let record = append_in(&txn, &self.chain, entry).await?;
        txn.commit().await?;
        Ok(record)
    }

    /// Up to `limit` entries after sequence number `after`, oldest first.
    pub async fn list(&self, after: i64, limit: u64) -> Result<Vec<AuditRecord>> {
        let txn = scoped::begin(self.db, &self.chain).await?;
        let rows = audit_log::Entity::find()
            .filter(audit_log::Column::TenantId.eq(self.chain.as_str()))
            .filter(audit_log::Column::Seq.gt(after))
            .order_by_asc(audit_log::Column::Seq)
            .limit(limit)
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(rows.into_iter().map(to_record).collect())
    }

    /// Recomputes the chain from its first entry and reports the first entry whose
    /// sequence number, previous hash or own hash does not check out, or a tail that was
    /// removed (the head names a later entry than the last one stored).
    pub async fn verify(&self) -> Result<Verification> {
        let txn = scoped::begin(self.db, &self.chain).await?;
        let mut verification = Verification {
            chain: self.chain.clone(),
            entries: 0,
            broken: None,
        };
        let mut prev_hash = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut after = 0;
        'pages: loop {
            let rows = audit_log::Entity::find()
                .filter(audit_log::Column::TenantId.eq(self.chain.as_str()))
                .filter(audit_log::Column::Seq.gt(after))
                .order_by_asc(audit_log::Column::Seq)
                .limit(1000)
                .all(&txn)
                .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                after = row.seq;
                verification.entries += 1;
                let reason = if row.seq != expected_seq {
                    Some(format!("expected entry {expected_seq}, found {}", row.seq))
                } else if row.prev_hash != prev_hash {
                    Some("its previous hash does not match the entry before it".to_string())
                } else if chain_entry(&self.chain, &row).hash(&row.prev_hash) != row.hash {
                    Some("its content does not match its hash".to_string())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    verification.broken = Some(Broken {
                        seq: expected_seq.min(row.seq),
                        reason,
                    });
                    break 'pages;
                }
                prev_hash = row.hash;
                expected_seq += 1;
            }
        }
        if verification.broken.is_none() {
            let head = audit_heads::Entity::find_by_id(self.chain.clone())
                .one(&txn)
                .await?;
            if let Some(head) = head
                && (head.seq != expected_seq - 1 || head.hash != prev_hash)
            {
                verification.broken = Some(Broken {
                    seq: expected_seq,
                    reason: format!(
                        "the chain ends at entry {} but its head names entry {}",
                        expected_seq - 1,
                        head.seq
                    ),
                });
            }
        }
        txn.commit().await?;
        Ok(verification)
    }
}

/// `text` with NUL replaced (PostgreSQL text cannot hold it) and cut to `max` characters,
/// ending in an ellipsis when cut.
fn fit(text: &str, max: usize) -> String {
    let text = text.replace('\0', "\u{fffd}");
    match text.char_indices().nth(max - 1) {
        Some((end, _)) if text.chars().count() > max => format!("{}…", &text[..end]),
        _ => text,
    }
}

/// Appends to `chain` inside an open transaction already scoped to that chain's tenant.
///
/// A tenant's chain takes entries only while the tenant exists: its row is read with a key
/// share lock first, so an append queues behind a deletion of the tenant (which holds the
/// row) and then finds it gone ([`crate::Error::TenantGone`]), and a deletion queues behind
/// an append and then removes the entry with the rest of the chain. A chain of a deleted
/// tenant never starts again.
pub(crate) async fn append_in<C: ConnectionTrait>(
    db: &C,
    chain: &str,
    entry: NewAuditEntry<'_>,
) -> Result<AuditRecord> {
    if chain != PLATFORM_CHAIN {
        crate::claim::share_tenant(db, chain).await?;
    }
    audit_heads::Entity::insert(audit_heads::ActiveModel {
        tenant_id: Set(chain.to_string()),
        seq: Set(0),
        hash: Set(GENESIS.to_string()),
    })
    .on_conflict(
        OnConflict::column(audit_heads::Column::TenantId)
            .do_nothing()
            .to_owned(),
    )
    .try_insert()
    .exec(db)
    .await?;
    // A no-op update takes the row lock before the head is read.
    audit_heads::Entity::update_many()
        .col_expr(
            audit_heads::Column::Seq,
            sea_orm::sea_query::Expr::col(audit_heads::Column::Seq),
        )
        .filter(audit_heads::Column::TenantId.eq(chain))
        .exec(db)
        .await?;
    let head = audit_heads::Entity::find_by_id(chain.to_string())
        .one(db)
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound(format!("audit head of {chain}")))?;
    let at = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .expect("UTC times format as RFC 3339");
    // What an entry records can come from a refused request (a path, a claimed name), so it
    // is fitted to its column the same way on both databases before it is hashed.
    let actor = fit(entry.actor, 300);
    let action = fit(entry.action, 100);
    let object = fit(entry.object, 500);
    let outcome = fit(entry.outcome, 40);
    let request_id = fit(entry.request_id, 100);
    let entry = NewAuditEntry {
        actor: &actor,
        action: &action,
        object: &object,
        outcome: &outcome,
        request_id: &request_id,
        detail: entry.detail,
    };
    let detail = entry.detail.to_string();
    let seq = head.seq + 1;
    let hash = ChainEntry {
        chain,
        seq,
        at: &at,
        actor: entry.actor,
        action: entry.action,
        object: entry.object,
        outcome: entry.outcome,
        request_id: entry.request_id,
        detail: &detail,
    }
    .hash(&head.hash);
    let row = audit_log::ActiveModel {
        tenant_id: Set(chain.to_string()),
        seq: Set(seq),
        at: Set(at),
        actor: Set(entry.actor.to_string()),
        action: Set(entry.action.to_string()),
        object: Set(entry.object.to_string()),
        outcome: Set(entry.outcome.to_string()),
        request_id: Set(entry.request_id.to_string()),
        detail: Set(detail),
        prev_hash: Set(head.hash.clone()),
        hash: Set(hash.clone()),
    };
    let row = audit_log::Entity::insert(row)
        .exec_with_returning(db)
        .await?;
    audit_heads::Entity::update_many()
        .col_expr(audit_heads::Column::Seq, seq.into())
        .col_expr(audit_heads::Column::Hash, hash.into())
        .filter(audit_heads::Column::TenantId.eq(chain))
        .exec(db)
        .await?;
    Ok(to_record(row))
}

fn chain_entry<'r>(chain: &'r str, row: &'r audit_log::Model) -> ChainEntry<'r> {
    ChainEntry {
        chain,
        seq: row.seq,
        at: &row.at,
        actor: &row.actor,
        action: &row.action,
        object: &row.object,
        outcome: &row.outcome,
        request_id: &row.request_id,
        detail: &row.detail,
    }
}

fn to_record(row: audit_log::Model) -> AuditRecord {
    AuditRecord {
        seq: row.seq,
        at: row.at,
        actor: row.actor,
        action: row.action,
        object: row.object,
        outcome: row.outcome,
        request_id: row.request_id,
        detail: row.detail,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fitted_text_holds_no_nul_and_at_most_the_column_length() {
        assert_eq!(fit("a\0b", 10), "a\u{fffd}b");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
        let long = "é".repeat(1000);
        assert_eq!(fit(&long, 500).chars().count(), 500);
    }
}
